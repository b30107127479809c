//! One million uncontended acquire+release cycles of one pool, for
//! instruction counting (`valgrind --tool=callgrind`) or profiling.
//!
//! `cargo run --release -p stormpool-bench --example hotpath -- stormpool|deadpool|bb8`

use std::time::Instant;

fn main() {
    let which = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "stormpool".into());
    let n: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let start;
        match which.as_str() {
            "stormpool" => {
                let pool = stormpool_bench::stormpool(16).await;
                start = Instant::now();
                for _ in 0..n {
                    drop(pool.get().await.unwrap());
                }
            }
            "deadpool" => {
                let pool = stormpool_bench::deadpool(16).await;
                start = Instant::now();
                for _ in 0..n {
                    drop(pool.get().await.unwrap());
                }
            }
            "bb8" => {
                let pool = stormpool_bench::bb8(16).await;
                start = Instant::now();
                for _ in 0..n {
                    drop(pool.get().await.unwrap());
                }
            }
            other => panic!("unknown pool {other}"),
        }
        println!(
            "{which}: {:.1} ns per acquire+release",
            start.elapsed().as_nanos() as f64 / n as f64
        );
    });
}
