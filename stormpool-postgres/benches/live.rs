//! stormpool-postgres against deadpool-postgres and bb8-postgres on the live
//! server, in one run: `SELECT 1` and a 2 ms `pg_sleep`, 32 concurrent
//! requests on 8 connections per iteration, each pool with its default
//! checkout validation. Then what deadline propagation costs one checkout,
//! and what transaction hygiene costs one: checkout, `SELECT 1`, return,
//! one request at a time, against deadpool-postgres.
//!
//! Skips (prints and exits 0) when `STORMPOOL_PG_URL` is unset.
//!
//! ```text
//! STORMPOOL_PG_URL=postgres://root@127.0.0.1:5432/test \
//!     cargo bench -p stormpool-postgres --bench live
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use stormpool::{AcquireOptions, Pool};
use stormpool_postgres::tokio_postgres::{self, NoTls};
use stormpool_postgres::PgManager;
use tokio::runtime::Runtime;

const POOL_SIZE: u32 = 8;
const CONCURRENCY: usize = 32;

fn url() -> Option<String> {
    std::env::var("STORMPOOL_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn config(url: &str) -> tokio_postgres::Config {
    let mut config: tokio_postgres::Config = url.parse().expect("STORMPOOL_PG_URL");
    config.application_name("stormpool_bench");
    config
}

/// The three pools behind one interface: run `sql` on a pooled connection.
#[derive(Clone)]
enum AnyPool {
    Stormpool(Pool<PgManager>),
    Deadpool(deadpool_postgres::Pool),
    Bb8(bb8::Pool<bb8_postgres::PostgresConnectionManager<NoTls>>),
}

impl AnyPool {
    fn name(&self) -> &'static str {
        match self {
            AnyPool::Stormpool(_) => "stormpool",
            AnyPool::Deadpool(_) => "deadpool",
            AnyPool::Bb8(_) => "bb8",
        }
    }

    async fn run(&self, sql: &'static str) {
        match self {
            AnyPool::Stormpool(pool) => {
                let conn = pool.get().await.expect("stormpool get");
                conn.simple_query(sql).await.expect("query");
            }
            AnyPool::Deadpool(pool) => {
                let conn = pool.get().await.expect("deadpool get");
                conn.simple_query(sql).await.expect("query");
            }
            AnyPool::Bb8(pool) => {
                let conn = pool.get().await.expect("bb8 get");
                conn.simple_query(sql).await.expect("query");
            }
        }
    }
}

async fn pools(url: &str) -> Vec<AnyPool> {
    let stormpool = Pool::builder(PgManager::new(config(url)))
        .max_size(POOL_SIZE as usize)
        .build()
        .expect("stormpool");
    let deadpool = deadpool_postgres::Pool::builder(deadpool_postgres::Manager::from_config(
        config(url),
        NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    ))
    .max_size(POOL_SIZE as usize)
    .build()
    .expect("deadpool");
    let bb8 = bb8::Pool::builder()
        .max_size(POOL_SIZE)
        .build(bb8_postgres::PostgresConnectionManager::new(
            config(url),
            NoTls,
        ))
        .await
        .expect("bb8");
    vec![
        AnyPool::Stormpool(stormpool),
        AnyPool::Deadpool(deadpool),
        AnyPool::Bb8(bb8),
    ]
}

/// `CONCURRENCY` requests at once, each acquiring, running `sql`, releasing.
fn burst(pool: &AnyPool, sql: &'static str) -> impl Future<Output = ()> + Send + 'static {
    let pool = Arc::new(pool.clone());
    async move {
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.run(sql).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("request task");
        }
    }
}

fn live(c: &mut Criterion) {
    let Some(url) = url() else {
        println!("skipped: STORMPOOL_PG_URL not set");
        return;
    };
    let rt = runtime();
    let pools = rt.block_on(pools(&url));
    for (name, sql) in [
        ("select_1", "SELECT 1"),
        ("pg_sleep_2ms", "SELECT pg_sleep(0.002)"),
    ] {
        let mut group = c.benchmark_group(format!("live_pg/{name}"));
        group.throughput(Throughput::Elements(CONCURRENCY as u64));
        group.sample_size(20);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(4));
        for pool in &pools {
            group.bench_function(BenchmarkId::from_parameter(pool.name()), |b| {
                b.to_async(&rt).iter(|| burst(pool, sql));
            });
        }
        group.finish();
    }
}

/// What deadline propagation costs a checkout: one request at a time
/// (acquire with a deadline, `SELECT 1`, release) on a pool of one
/// connection, with propagation off; on with a budget that stays in one
/// step (nothing to send after the first request); and on with a budget
/// that changes step at every checkout (a `SET statement_timeout`
/// pipelined with every statement, the worst case).
fn propagation(c: &mut Criterion) {
    let Some(url) = url() else { return };
    let rt = runtime();
    let pool = |propagate: bool| {
        Pool::builder(PgManager::new(config(&url)))
            .max_size(1)
            .propagate_deadline(propagate)
            .build()
            .expect("stormpool")
    };
    let cases = [
        ("off", pool(false), false),
        ("stable_budget", pool(true), false),
        ("budget_changes_every_checkout", pool(true), true),
    ];
    let mut group = c.benchmark_group("live_pg/deadline_propagation");
    group.sample_size(30);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for (name, pool, changing) in &cases {
        let flip = std::sync::atomic::AtomicBool::new(false);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(&rt).iter(|| {
                // 10 s and 5 s budgets fall in different steps.
                let long = !*changing || flip.fetch_xor(true, std::sync::atomic::Ordering::Relaxed);
                let budget = Duration::from_secs(if long { 10 } else { 5 });
                let options = AcquireOptions::new().deadline(tokio::time::Instant::now() + budget);
                async move {
                    let conn = pool.get_with(options).await.expect("stormpool get");
                    conn.simple_query("SELECT 1").await.expect("query");
                }
            });
        });
    }
    group.finish();
    for (name, pool, _) in &cases {
        let stats = pool.manager().stats();
        println!("{name}: statement_timeout changes {}", stats.bound_changes);
    }
}

/// deadpool-postgres with one connection and its fastest recycling (no
/// check on return).
fn deadpool_of_one(url: &str) -> AnyPool {
    AnyPool::Deadpool(
        deadpool_postgres::Pool::builder(deadpool_postgres::Manager::from_config(
            config(url),
            NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        ))
        .max_size(1)
        .build()
        .expect("deadpool"),
    )
}

/// What a checkout costs with transaction hygiene (the session's status
/// watched on the stream, a rollback only when a connection comes back in
/// a transaction), against deadpool-postgres (`RecyclingMethod::Fast`: no
/// check at all), one request at a time on a pool of one connection:
/// acquire, `SELECT 1`, release. Also the fallback when the status cannot
/// be watched (here: a configuration naming the server twice, so the
/// driver connects): every connection that ran a statement is probed
/// before its next checkout.
fn hygiene(c: &mut Criterion) {
    let Some(url) = url() else { return };
    let rt = runtime();
    let stormpool = |config: tokio_postgres::Config| {
        AnyPool::Stormpool(
            Pool::builder(PgManager::new(config))
                .max_size(1)
                .build()
                .expect("stormpool"),
        )
    };
    let deadpool = deadpool_of_one(&url);
    let mut unseen = config(&url);
    let hosts = unseen.get_hosts().to_vec();
    let ports = unseen.get_ports().to_vec();
    for (host, port) in hosts
        .iter()
        .zip(ports.iter().chain(std::iter::repeat(&5432)))
    {
        if let tokio_postgres::config::Host::Tcp(host) = host {
            unseen.host(host).port(*port);
        }
    }
    let cases = [
        ("deadpool", deadpool),
        ("stormpool", stormpool(config(&url))),
        ("stormpool_status_unseen", stormpool(unseen)),
    ];
    let mut group = c.benchmark_group("live_pg/checkout_select_1_return");
    group.sample_size(40);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for (name, pool) in &cases {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(&rt).iter(|| pool.run("SELECT 1"));
        });
    }
    group.finish();
}

criterion_group!(benches, live, propagation, hygiene);

/// The hygiene comparison again, interleaved so that a shared machine's
/// load drifts through both pools alike: 40 rounds, each running 250
/// requests on deadpool-postgres then 250 on stormpool-postgres (the order
/// alternating between rounds); prints the median per-request time of
/// each and their ratio. Run with `-- interleaved` (criterion's filter
/// does not apply to it).
fn interleaved(url: &str) {
    let rt = runtime();
    let deadpool = deadpool_of_one(url);
    let stormpool = AnyPool::Stormpool(
        Pool::builder(PgManager::new(config(url)))
            .max_size(1)
            .build()
            .expect("stormpool"),
    );
    const ROUNDS: usize = 40;
    const PER_ROUND: u32 = 250;
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    rt.block_on(async {
        for pool in [&deadpool, &stormpool] {
            for _ in 0..PER_ROUND {
                pool.run("SELECT 1").await;
            }
        }
        for round in 0..ROUNDS {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let pool = [&deadpool, &stormpool][i];
                let start = std::time::Instant::now();
                for _ in 0..PER_ROUND {
                    pool.run("SELECT 1").await;
                }
                times[i].push(start.elapsed() / PER_ROUND);
            }
        }
    });
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (dp, sp) = (median(&mut times[0]), median(&mut times[1]));
    if let AnyPool::Stormpool(pool) = &stormpool {
        let c = pool.status().counters;
        println!(
            "stormpool-postgres: {} returns drained for hygiene, {} statements cancelled",
            c.recycled_on_return, c.cancelled_on_return
        );
    }
    println!(
        "interleaved checkout + SELECT 1 + return, median of {ROUNDS} rounds of {PER_ROUND}: \
         deadpool-postgres {dp:?}, stormpool-postgres {sp:?}, ratio {:.3}",
        sp.as_secs_f64() / dp.as_secs_f64()
    );
}

fn main() {
    let Some(url) = url() else {
        println!("skipped: STORMPOOL_PG_URL not set");
        return;
    };
    if std::env::args().any(|a| a == "interleaved") {
        interleaved(&url);
        return;
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
