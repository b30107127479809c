//! The waitlist's O(1) claims: with 100 to 100,000 requests queued, the cost
//! of one more request joining and leaving (a cancel), and of one hand-off,
//! stays flat.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use stormpool::{AcquireOptions, Conn};

type Acquire = Pin<
    Box<
        dyn Future<
            Output = Result<Conn<stormpool::gate::PermitManager>, stormpool::gate::GateError>,
        >,
    >,
>;

fn queued(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("waitlist");
    group.measurement_time(Duration::from_secs(3));
    for depth in [100usize, 1_000, 10_000, 100_000] {
        // The detector off: a standing queue of requests that wait an hour
        // would otherwise be served newest first and shed, as it should be.
        let pool = rt.block_on(stormpool_bench::stormpool_with(1, |b| {
            b.codel(None).max_waiters(1_000_000)
        }));
        let held = rt.block_on(pool.get()).unwrap();
        // `depth` requests queue behind the one held connection.
        let mut waiting: Vec<Acquire> = Vec::with_capacity(depth);
        rt.block_on(async {
            for _ in 0..depth {
                let p = pool.clone();
                let mut fut: Acquire = Box::pin(async move {
                    p.get_with(AcquireOptions::new().timeout(Duration::from_secs(3600)))
                        .await
                });
                let _ = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
                waiting.push(fut);
            }
        });
        assert_eq!(pool.status().waiting, depth);

        group.bench_with_input(
            BenchmarkId::new("join and cancel", depth),
            &depth,
            |b, _| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let mut fut = std::pin::pin!(pool.get());
                            let _ = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
                        }
                        start.elapsed()
                    })
                })
            },
        );

        // A hand-off: the held connection is returned to the head of a
        // queue `depth` deep, which takes it and gives it straight back.
        let mut held = Some(held);
        let mut next = 0;
        group.bench_with_input(BenchmarkId::new("hand-off", depth), &depth, |b, _| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        if next == waiting.len() {
                            next = 0;
                        }
                        let start = Instant::now();
                        drop(held.take());
                        let got = poll_fn(|cx| Poll::Ready(waiting[next].as_mut().poll(cx))).await;
                        total += start.elapsed();
                        let Poll::Ready(Ok(conn)) = got else {
                            panic!("the head waiter is served")
                        };
                        held = Some(conn);
                        // Re-queue a fresh waiter in its place.
                        let p = pool.clone();
                        let mut fut: Acquire = Box::pin(async move {
                            p.get_with(AcquireOptions::new().timeout(Duration::from_secs(3600)))
                                .await
                        });
                        let _ = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
                        waiting[next] = fut;
                        next += 1;
                    }
                    total
                })
            })
        });
        drop(waiting);
    }
    group.finish();
}

criterion_group!(benches, queued);
criterion_main!(benches);
