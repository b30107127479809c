//! Open-loop load against a pool of the simulated database, under paused
//! time: Poisson arrivals, per-request deadlines, requests abandoned by the
//! client at their deadline whatever the pool does.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use stormpool::clock::{Instant, Rng};
use stormpool::sim::{SimConfig, SimManager};
use stormpool::{AcquireError, AcquireOptions, Conn, Pool, Priority};

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

pub type Records = Arc<Mutex<Vec<Record>>>;

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

/// One stretch of constant arrival rate.
#[derive(Clone, Copy, Debug)]
pub struct Phase {
    /// Arrival rate as a multiple of capacity.
    pub load: f64,
    pub duration: Duration,
}

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
    /// Immediate client retries after a failed attempt.
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

/// Runs the phases back to back and returns every attempt's record, once
/// every request has ended.
pub async fn run(pool: &Pool<SimManager>, phases: &[Phase], shape: Shape) -> Vec<Record> {
    let records = Arc::new(Mutex::new(Vec::new()));
    let mut rng = Rng::with_seed(shape.seed);
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = Instant::now();
    for phase in phases {
        let end = next + phase.duration;
        let rate = phase.load * capacity_for(shape.service);
        loop {
            // Exponential inter-arrival times: a Poisson process.
            let gap = -(1.0 - rng.next_f64()).ln() / rate;
            next += Duration::from_secs_f64(gap);
            if next >= end {
                next = end;
                break;
            }
            tokio::time::sleep_until(next).await;
            let priority = (shape.priority)(&mut rng);
            let key = (shape.key)(&mut rng);
            tasks.spawn(request(
                pool.clone(),
                priority,
                key,
                shape.clone(),
                records.clone(),
            ));
        }
    }
    while tasks.join_next().await.is_some() {}
    let mut records = std::mem::take(&mut *records.lock().unwrap());
    records.sort_by_key(|r| r.start);
    records
}

pub async fn request(
    pool: Pool<SimManager>,
    priority: Priority,
    key: u64,
    shape: Shape,
    records: Arc<Mutex<Vec<Record>>>,
) {
    for attempt in 0..=shape.retries {
        let start = Instant::now();
        let deadline = start + shape.deadline;
        let mut options = AcquireOptions::new().deadline(deadline).priority(priority);
        if key != 0 {
            options = options.key(key);
        }
        let got_conn = Arc::new(Mutex::new(None::<Instant>));
        let seen = got_conn.clone();
        let pool = pool.clone();
        let attempt_result = tokio::time::timeout_at(deadline, async move {
            let mut conn: Conn<SimManager> = pool_get(&pool, options).await?;
            *seen.lock().unwrap() = Some(Instant::now());
            conn.query().await.map_err(|_| End::Late)?;
            Ok::<(), End>(())
        })
        .await;
        let end = Instant::now();
        let outcome = match attempt_result {
            Ok(Ok(())) => End::Ok,
            Ok(Err(e)) => e,
            Err(_) => match *got_conn.lock().unwrap() {
                Some(at) if at >= deadline => End::Dead,
                Some(_) => End::Late,
                None => End::Timeout,
            },
        };
        let done = outcome == End::Ok;
        records.lock().unwrap().push(Record {
            start,
            end,
            priority,
            key,
            attempt,
            outcome,
        });
        if done {
            return;
        }
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
