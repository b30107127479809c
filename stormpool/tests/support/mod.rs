//! Open-loop load against a pool of the simulated database, under paused
//! time: the test kit's generator (Poisson arrivals, per-request deadlines,
//! requests abandoned by the client at their deadline whatever the pool
//! does) driving this file's pool.
#![allow(dead_code)]

use std::time::Duration;

use stormpool::clock::{Instant, Rng};
use stormpool::sim::{SimConfig, SimManager};
use stormpool::{AcquireError, AcquireOptions, Conn, Pool, Priority};
use stormpool_testkit::open_loop::{Arrivals, Ended, OpenLoop, Plan};

pub const CONNECTIONS: usize = 16;
pub const SERVICE: Duration = Duration::from_millis(2);
pub const DEADLINE: Duration = Duration::from_millis(50);

/// Requests per second the pool can serve: connections / service time.
pub fn capacity() -> f64 {
    capacity_for(SERVICE)
}

pub fn capacity_for(service: Duration) -> f64 {
    CONNECTIONS as f64 / service.as_secs_f64()
}

pub fn pool(
    configure: impl FnOnce(stormpool::Builder<SimManager>) -> stormpool::Builder<SimManager>,
) -> Pool<SimManager> {
    pool_with(SERVICE, configure)
}

pub fn pool_with(
    service: Duration,
    configure: impl FnOnce(stormpool::Builder<SimManager>) -> stormpool::Builder<SimManager>,
) -> Pool<SimManager> {
    let manager = SimManager::new(SimConfig {
        service_time: service,
        connect_latency: Duration::from_millis(1),
        ..SimConfig::default()
    });
    configure(
        Pool::builder(manager)
            .max_size(CONNECTIONS)
            .min_idle(CONNECTIONS),
    )
    .build()
    .expect("valid test configuration")
}

pub use stormpool_testkit::open_loop::Phase;

pub fn phase(load: f64, millis: u64) -> Phase {
    Phase {
        load,
        duration: Duration::from_millis(millis),
    }
}

/// What happened to one request (one client attempt).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Finished its query before its deadline.
    Ok,
    /// Got a connection in time but its query did not finish in time.
    Late,
    /// Got a connection after its deadline (a dead hand-off).
    Dead,
    Timeout,
    Shed,
    Rejected,
}

#[derive(Clone, Debug)]
pub struct Record {
    pub start: Instant,
    pub end: Instant,
    pub priority: Priority,
    pub key: u64,
    pub attempt: u32,
    pub outcome: End,
}

impl Record {
    pub fn latency(&self) -> Duration {
        self.end - self.start
    }
}

/// How the generator shapes each request.
#[derive(Clone)]
pub struct Shape {
    /// The pool's service time, to turn load multiples into rates.
    pub service: Duration,
    pub deadline: Duration,
    /// Immediate client retries after a failed attempt, while the load lasts.
    pub retries: u32,
    pub priority: fn(&mut Rng) -> Priority,
    pub key: fn(&mut Rng) -> u64,
    pub seed: u64,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            service: SERVICE,
            deadline: DEADLINE,
            retries: 0,
            priority: |_| Priority::Normal,
            key: |_| 0,
            seed: 7,
        }
    }
}

/// Runs the phases back to back from now and returns every attempt's
/// record, once every request has ended.
pub async fn run(pool: &Pool<SimManager>, phases: &[Phase], shape: Shape) -> Vec<Record> {
    let load = Load::new(pool, phases, &shape);
    let arrivals = Arrivals::of_capacity(capacity_for(shape.service));
    let (priority, key) = (shape.priority, shape.key);
    // The priority is drawn first, then the key.
    let client = move |rng: &mut Rng| (priority(rng), key(rng));
    load.0
        .arrivals(arrivals, Rng::with_seed(shape.seed), client)
        .await;
    load.records().await
}

/// Open-loop requests against a pool of the simulated database: each
/// attempt asks for a connection with its deadline, priority and key,
/// and runs one query.
#[derive(Clone)]
pub struct Load(OpenLoop<(Priority, u64), End>);

impl Load {
    /// A load over `phases` from now (none: requests started one by one
    /// with [`Load::spawn`], never retried).
    pub fn new(pool: &Pool<SimManager>, phases: &[Phase], shape: &Shape) -> Load {
        let plan = Plan {
            start: Instant::now(),
            phases: phases.to_vec(),
            deadline: shape.deadline,
            retries: shape.retries,
        };
        let pool = pool.clone();
        Load(OpenLoop::new(plan, move |attempt| {
            let pool = pool.clone();
            async move {
                let (priority, key) = attempt.client;
                let mut options = AcquireOptions::new()
                    .deadline(attempt.deadline)
                    .priority(priority);
                if key != 0 {
                    options = options.key(key);
                }
                let mut conn = pool_get(&pool, options).await?;
                attempt.grant.granted();
                conn.query().await.map_err(|_| End::Late)
            }
        }))
    }

    /// Starts one request now.
    pub fn spawn(&self, priority: Priority, key: u64) {
        self.0.spawn((priority, key));
    }

    /// Every attempt's record, by start, once every request has ended.
    pub async fn records(&self) -> Vec<Record> {
        self.0.ended().await;
        let mut records: Vec<Record> = self
            .0
            .take_records()
            .into_iter()
            .map(|r| Record {
                start: r.start,
                end: r.end,
                priority: r.client.0,
                key: r.client.1,
                attempt: r.retry,
                outcome: match r.ended {
                    Ended::Completed => End::Ok,
                    Ended::Failed(e) => e,
                    Ended::Abandoned => match r.granted_at() {
                        Some(at) if at >= r.deadline => End::Dead,
                        Some(_) => End::Late,
                        None => End::Timeout,
                    },
                },
            })
            .collect();
        records.sort_by_key(|r| r.start);
        records
    }
}

async fn pool_get(
    pool: &Pool<SimManager>,
    options: AcquireOptions,
) -> Result<Conn<SimManager>, End> {
    pool.get_with(options).await.map_err(|e| match e {
        AcquireError::Timeout => End::Timeout,
        AcquireError::Shed { .. } => End::Shed,
        _ => End::Rejected,
    })
}

pub fn count(records: &[Record], outcome: End) -> usize {
    records.iter().filter(|r| r.outcome == outcome).count()
}

/// Successful requests as a fraction of what the pool could serve in `span`.
pub fn goodput(records: &[Record], span: Duration) -> f64 {
    count(records, End::Ok) as f64 / (capacity() * span.as_secs_f64())
}

/// The `q` quantile of the latencies of the successful requests.
pub fn quantile(records: &[Record], q: f64) -> Duration {
    let mut latencies: Vec<_> = records
        .iter()
        .filter(|r| r.outcome == End::Ok)
        .map(Record::latency)
        .collect();
    if latencies.is_empty() {
        return Duration::MAX;
    }
    latencies.sort();
    let idx = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
    latencies[idx]
}

pub fn between(records: &[Record], from: Instant, to: Instant) -> Vec<Record> {
    records
        .iter()
        .filter(|r| r.start >= from && r.start < to)
        .cloned()
        .collect()
}

/// Lets the pool open its `min_idle` connections before the load starts.
pub async fn warm(pool: &Pool<SimManager>) {
    for _ in 0..100 {
        if pool.status().idle >= CONNECTIONS {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("pool did not warm up: {:?}", pool.status());
}
