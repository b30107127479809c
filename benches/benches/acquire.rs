//! Acquire and release, stormpool against deadpool and bb8 in one run:
//! uncontended (one task, one connection free), and the hand-off rate with
//! 256 tasks looping on 16 connections with zero hold time.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use stormpool_bench as pools;

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn uncontended(c: &mut Criterion) {
    let rt = current_thread();
    let mut group = c.benchmark_group("uncontended acquire+release");
    let storm = rt.block_on(pools::stormpool(16));
    group.bench_function("stormpool", |b| {
        b.to_async(&rt)
            .iter(|| async { drop(storm.get().await.unwrap()) })
    });
    let dead = rt.block_on(pools::deadpool(16));
    group.bench_function("deadpool", |b| {
        b.to_async(&rt)
            .iter(|| async { drop(dead.get().await.unwrap()) })
    });
    let bb8 = rt.block_on(pools::bb8(16));
    group.bench_function("bb8", |b| {
        b.to_async(&rt)
            .iter(|| async { drop(bb8.get().await.unwrap()) })
    });
    group.finish();
}

const TASKS: u64 = 256;

/// Spawns `TASKS` tasks that together acquire and release `iters` times.
macro_rules! contended {
    ($rt:expr, $pool:expr, $iters:expr) => {{
        let per_task = ($iters / TASKS).max(1);
        let start = Instant::now();
        $rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..TASKS {
                let pool = $pool.clone();
                tasks.spawn(async move {
                    for _ in 0..per_task {
                        drop(pool.get().await.unwrap());
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        });
        let elapsed = start.elapsed();
        // Scale to the requested number of iterations.
        elapsed.mul_f64($iters as f64 / (per_task * TASKS) as f64)
    }};
}

fn handoff(c: &mut Criterion) {
    let rt = multi_thread();
    let mut group = c.benchmark_group("256 tasks on 16 connections");
    group.measurement_time(Duration::from_secs(5));
    let storm = rt.block_on(pools::stormpool(16));
    group.bench_function(BenchmarkId::new("stormpool", "hand-off"), |b| {
        b.iter_custom(|iters| contended!(rt, storm, iters))
    });
    let dead = rt.block_on(pools::deadpool(16));
    group.bench_function(BenchmarkId::new("deadpool", "hand-off"), |b| {
        b.iter_custom(|iters| contended!(rt, dead, iters))
    });
    let bb8 = rt.block_on(pools::bb8(16));
    group.bench_function(BenchmarkId::new("bb8", "hand-off"), |b| {
        b.iter_custom(|iters| contended!(rt, bb8, iters))
    });
    group.finish();
}

criterion_group!(benches, uncontended, handoff);
criterion_main!(benches);
