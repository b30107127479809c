//! The hand-off rate on a multi-thread runtime, as services see it: 256
//! tasks on 16 connections, each acquiring, yielding once while it holds
//! the connection (as a task awaiting its query would), and giving it back.
//! Every pool in the same run, on 1 and 2 worker threads, with a tokio
//! semaphore in front of a stack of free connections as the floor. Prints
//! operations per second (median of the rounds) and each pool's ratio to
//! deadpool's: the median of the ratios of rounds run back to back, since
//! on a virtual machine the rate of every pool can move two- or threefold
//! from one second to the next (where the host places the two vCPUs), and
//! a ratio of medians would then compare rounds from different moments.
//! Then, on the same runtime, the uncontended path as a request task sees
//! it: one task on a worker getting and giving back a free connection.
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

/// One round of the uncontended path on a runtime worker: one task gets
/// and gives back a free connection `cycles` times; nanoseconds per cycle.
macro_rules! uncontended {
    ($rt:expr, $pool:expr, $cycles:expr) => {{
        let pool = $pool.clone();
        let took = $rt.block_on(async move {
            tokio::spawn(async move {
                let start = Instant::now();
                for _ in 0..$cycles {
                    drop(pool.get().await.unwrap());
                }
                start.elapsed()
            })
            .await
            .unwrap()
        });
        took.as_secs_f64() * 1e9 / $cycles as f64
    }};
}

/// The median of the ratios of rounds run back to back.
fn median_ratio(pool: &[f64], deadpool: &[f64]) -> f64 {
    median(pool.iter().zip(deadpool).map(|(p, d)| p / d).collect())
}

/// One line per pool: its median and its ratio to deadpool's.
fn rows(pools: &[Vec<f64>; 4], show: impl Fn(f64, f64) -> String) {
    let names = ["stormpool", "deadpool", "bb8", "semaphore"];
    for (name, pool) in names.iter().zip(pools) {
        let shown = show(median(pool.clone()), median_ratio(pool, &pools[1]));
        println!("  {name:<10} {shown}");
    }
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
            let took = round!(rt, storm, 2_000);
            eprintln!("{:.0} ops/s", (TASKS * 2_000) as f64 / took.as_secs_f64());
        }
        return;
    }
    let (rounds, per_task, cycles) = if quick {
        (1, 200, 20_000)
    } else {
        (9, 2_000, 1_000_000)
    };
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
        // Interleaved rounds, so a noisy moment hurts every pool alike.
        let mut rates = [const { Vec::new() }; 4];
        for _ in 0..rounds {
            rates[0].push(rate(round!(rt, storm, per_task)));
            rates[1].push(rate(round!(rt, dead, per_task)));
            rates[2].push(rate(round!(rt, bb8, per_task)));
            rates[3].push(rate(round!(rt, semaphore, per_task)));
        }
        let mut cycle = [const { Vec::new() }; 4];
        for _ in 0..rounds {
            cycle[0].push(uncontended!(rt, storm, cycles));
            cycle[1].push(uncontended!(rt, dead, cycles));
            cycle[2].push(uncontended!(rt, bb8, cycles));
            cycle[3].push(uncontended!(rt, semaphore, cycles));
        }
        println!("{workers} worker(s), hand-offs per second and the ratio to deadpool's:");
        rows(&rates, |rate, ratio| {
            format!("{rate:>9.0} ops/s  {ratio:.2}x deadpool")
        });
        println!("  uncontended, one task on a worker, per get and give back:");
        rows(&cycle, |ns, ratio| {
            format!("{ns:>6.0} ns  {ratio:.2}x deadpool's time")
        });
    }
}
