//! The hand-off rate on a multi-thread runtime, as services see it: 256
//! tasks on 16 connections, each acquiring, yielding once while it holds
//! the connection (as a task awaiting its query would), and giving it back.
//! Every pool in the same run, on 1 and 2 worker threads, with a tokio
//! semaphore in front of a stack of free connections as the floor. Prints
//! operations per second (median of the rounds) and each pool's ratio to
//! deadpool's.
//!
//! `cargo bench -p stormpool-bench --bench handoff` (`-- --quick` for one
//! short round).

use std::time::{Duration, Instant};

use stormpool_bench as pools;

const TASKS: usize = 256;
const CONNECTIONS: usize = 16;

/// One round: every task acquires, yields and releases `per_task` times.
macro_rules! round {
    ($rt:expr, $pool:expr, $per_task:expr) => {{
        let pool = &$pool;
        $rt.block_on(async {
            let start = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..TASKS {
                let pool = pool.clone();
                tasks.spawn(async move {
                    for _ in 0..$per_task {
                        let conn = pool.get().await.unwrap();
                        tokio::task::yield_now().await;
                        drop(conn);
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
            start.elapsed()
        })
    }};
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `--uncontended POOL`: N acquire+release cycles of one pool on a
    // current-thread runtime, for an instruction count (`valgrind
    // --tool=callgrind`), which the machine's load does not change.
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--uncontended") {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        const N: usize = 100_000;
        match args.get(i + 1).map(String::as_str) {
            Some("stormpool") => rt.block_on(async {
                let pool = pools::stormpool(CONNECTIONS).await;
                for _ in 0..N {
                    drop(pool.get().await.unwrap());
                }
            }),
            Some("deadpool") => rt.block_on(async {
                let pool = pools::deadpool(CONNECTIONS).await;
                for _ in 0..N {
                    drop(pool.get().await.unwrap());
                }
            }),
            Some("bb8") => rt.block_on(async {
                let pool = pools::bb8(CONNECTIONS as u32).await;
                for _ in 0..N {
                    drop(pool.get().await.unwrap());
                }
            }),
            _ => eprintln!("--uncontended stormpool|deadpool|bb8"),
        }
        return;
    }
    // `--profile [WORKERS]`: stormpool alone, on one worker (or WORKERS),
    // for a profiler.
    if let Some(i) = args.iter().position(|a| a == "--profile") {
        let workers = args.get(i + 1).and_then(|w| w.parse().ok()).unwrap_or(1);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .unwrap();
        let storm = rt.block_on(pools::stormpool(CONNECTIONS));
        for _ in 0..20 {
            round!(rt, storm, 2_000);
        }
        return;
    }
    let (rounds, per_task) = if quick { (1, 200) } else { (5, 2_000) };
    let ops = (TASKS * per_task) as f64;
    let rate = |d: Duration| ops / d.as_secs_f64();
    println!("hand-off: {TASKS} tasks on {CONNECTIONS} connections, yielding while they hold");
    for workers in [1, 2] {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .unwrap();
        let storm = rt.block_on(pools::stormpool(CONNECTIONS));
        let dead = rt.block_on(pools::deadpool(CONNECTIONS));
        let bb8 = rt.block_on(pools::bb8(CONNECTIONS as u32));
        let semaphore = pools::SemaphorePool::new(CONNECTIONS);
        let mut results = [const { Vec::new() }; 4];
        // Interleaved rounds, so a noisy moment hurts every pool alike.
        for _ in 0..rounds {
            results[0].push(rate(round!(rt, storm, per_task)));
            results[1].push(rate(round!(rt, dead, per_task)));
            results[2].push(rate(round!(rt, bb8, per_task)));
            results[3].push(rate(round!(rt, semaphore, per_task)));
        }
        let medians: Vec<f64> = results.into_iter().map(median).collect();
        println!("{workers} worker(s):");
        for (name, m) in ["stormpool", "deadpool", "bb8", "semaphore"]
            .iter()
            .zip(&medians)
        {
            println!(
                "  {name:<10} {:>9.0} ops/s  {:.2}x deadpool",
                m,
                m / medians[1]
            );
        }
    }
}
