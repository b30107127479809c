//! From the attempts of one run to its results: outcomes, goodput per phase,
//! latency percentiles, recovery time and the time series of the charts.
//!
//! # Definitions
//!
//! * **Goodput** is the rate of successful requests (the query finished
//!   before the request's deadline), counted when they finish, as a
//!   percentage of the capacity (connections / service time); those that
//!   finish after the load count in its last phase, except in a closed
//!   loop, whose rate is that of the load alone (its **throughput**).
//! * **Dead hand-off**: the pool yielded a connection to a request whose
//!   deadline had already passed (the client was gone or going).
//! * **Late hand-off**: the request got its connection before its deadline
//!   but its query did not finish by then; the query's remaining work is
//!   dead work on the server.
//! * **Latency** of a success: from the start of its attempt to the end of
//!   its query.
//! * **Recovery time**: measured from the start of the phase where the load
//!   drops. A 100 ms window is *good* if it has at least one success and a
//!   success p99 at most twice the service time. The pool has recovered at
//!   the end of the first of three back-to-back good windows, the first
//!   one starting at the drop at the earliest (so 100 ms is the least
//!   recovery time), the windows sliding in 10 ms steps: recovery at `t`
//!   means the windows ending at `t`, `t + 100 ms` and `t + 200 ms` are all
//!   good. "Not recovered" if no three such windows fit in the load. On a
//!   live server the quantile and bound are adapted to a real machine
//!   ([`RecoveryRule::live`]).
//! * **Effective capacity** (real time, simulated database): the most
//!   requests per second a saturated closed loop gets through the best
//!   pool, measured in the same run (the `calibration` module); a query
//!   costs more than its service time on a real machine (timer ticks,
//!   wake-ups, the pool's own work), so this is the most a pool can serve
//!   there. Goodput is given as % of it too ([`Capacity`]).
//! * **Acquire wait**: from the start of an attempt to its hand-off, for
//!   the attempts handed a connection.
//! * **Critical % of possible** (priority mix): critical requests served in
//!   time, as % of the most that could be: the critical arrivals, or the
//!   effective capacity over the load if that is fewer.
//! * **First success**: from the same start, the end of the first request
//!   served in time (how long a pool serves nothing at all after a storm:
//!   with deadpool-postgres on a live server, about 4.7 s).

use std::time::Duration;

use serde::Serialize;

use crate::base::{LabParams, PoolError, PoolKind, ScenarioKind};
use crate::scenario::{Keys, Scenario};

/// How often a run samples the pool's waiting count: the step of the
/// recovery windows and of the charts' buckets.
pub const SAMPLE: Duration = Duration::from_millis(10);

/// The window of the sliding p99 behind the recovery time.
pub const RECOVERY_WINDOW: Duration = Duration::from_millis(100);

/// How many good windows in a row make a recovery.
pub const RECOVERY_WINDOWS: u64 = 3;

/// How many points a time series has, about.
const SERIES_POINTS: u64 = 120;

/// How an attempt ended, as the client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    /// The query finished in time.
    Completed,
    /// The client gave up at the deadline.
    Abandoned,
    /// The pool returned an error.
    Failed(PoolError),
}

/// One attempt of one request; times in microseconds from the run's start.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// The attempt's number in its run, unique (live backends tag its
    /// statement with it).
    pub id: u64,
    /// The client request it belongs to.
    pub request: u64,
    /// 0 for the first attempt, then 1, 2, ... for the retries.
    pub retry: u32,
    /// Whether the request is in the critical class.
    pub critical: bool,
    /// The request's fairness key.
    pub key: Option<u32>,
    /// When the attempt started.
    pub start_us: u64,
    /// When the client gives up on it.
    pub deadline_us: u64,
    /// When it ended for the client.
    pub end_us: u64,
    /// When the pool yielded a connection to it, if it did before the run
    /// ended (possibly after the client gave up).
    pub granted_us: Option<u64>,
    /// How it ended.
    pub result: AttemptResult,
}

/// The final verdict on an attempt; see the module docs for the definitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Served in time.
    Success,
    /// Handed a connection after its deadline.
    DeadHandoff,
    /// Handed a connection in time, but its query did not finish in time.
    Late,
    /// Never got a connection.
    TimedOut,
    /// Rejected by the pool (shed, wedged, too many waiters, key queue full,
    /// closed).
    Rejected,
    /// Connect or query error.
    Failed,
}

impl Attempt {
    /// The attempt's verdict.
    pub fn outcome(&self) -> Outcome {
        match (self.result, self.granted_us) {
            (AttemptResult::Completed, _) => Outcome::Success,
            (_, Some(granted)) if granted >= self.deadline_us => Outcome::DeadHandoff,
            (AttemptResult::Failed(PoolError::Query), _) => Outcome::Failed,
            (_, Some(_)) => Outcome::Late,
            (AttemptResult::Abandoned | AttemptResult::Failed(PoolError::Timeout), None) => {
                Outcome::TimedOut
            }
            (AttemptResult::Failed(PoolError::Connect), None) => Outcome::Failed,
            (AttemptResult::Failed(_), None) => Outcome::Rejected,
        }
    }
}

/// What the server saw during a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerStats {
    /// Connections opened.
    pub connects: u64,
    /// Queries started.
    pub queries: u64,
    /// Queries that ran to completion.
    pub completed: u64,
    /// Queries stopped by a server-side cancel.
    pub cancelled: u64,
    /// Server time spent on queries whose client had gone, in milliseconds.
    pub abandoned_ms: f64,
}

/// What became of a scenario's holders, the jobs without a deadline of the
/// wedged scenarios ([`Scenario::holders`]), by the end of the run. They are
/// not requests: no other measure counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Holders {
    /// Holders started.
    pub started: u64,
    /// Holders the pool yielded a connection to.
    pub granted: u64,
    /// Holders whose query failed: stopped on the server (cancelled when
    /// the pool revoked their connection), so they let go.
    pub stopped: u64,
    /// Holders whose query finished: it did not hang (it started after the
    /// wedge, say).
    pub finished: u64,
    /// Holders still holding their connection, their query hanging, when
    /// the run ended.
    pub stuck: u64,
    /// Connections the pool revoked for being held past its hold limit,
    /// the holders' and any other; `None` for a pool without a hold limit.
    pub revoked: Option<u64>,
}

/// Everything the driver recorded in one run.
#[derive(Clone, Debug)]
pub struct RawRun {
    /// The pool.
    pub pool: PoolKind,
    /// Client requests started (first attempts).
    pub requests: u64,
    /// Every attempt that ended.
    pub attempts: Vec<Attempt>,
    /// (time in µs, waiting requests), every [`SAMPLE`].
    pub waiting: Vec<(u64, usize)>,
    /// The server's counters at the end.
    pub server: ServerStats,
    /// The pool's remarks on the run.
    pub notes: Vec<String>,
    /// The holders' fate, in scenarios that have holders.
    pub holders: Option<Holders>,
}

/// The capacities goodput is measured against.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Capacity {
    /// Connections / service time, in requests per second.
    pub nominal_rps: f64,
    /// The effective capacity measured in this run, in requests per second:
    /// in real time on the simulated database only.
    pub effective_rps: Option<f64>,
}

impl Capacity {
    /// The nominal capacity of `params`, no effective one measured.
    pub fn nominal(params: &LabParams) -> Capacity {
        Capacity {
            nominal_rps: params.capacity_rps(),
            effective_rps: None,
        }
    }

    /// `pct_of_nominal` (a rate in % of the nominal capacity) in % of the
    /// effective capacity, if one was measured.
    pub fn of_effective(&self, pct_of_nominal: f64) -> Option<f64> {
        self.effective_rps
            .map(|e| pct(pct_of_nominal * self.nominal_rps / 100.0, e))
    }

    /// `rps` (the effective capacity, say) as % of the nominal capacity.
    pub fn of_nominal(&self, rps: Option<f64>) -> Option<f64> {
        rps.map(|r| pct(r, self.nominal_rps))
    }

    /// The time a query takes when `connections` serve the best capacity
    /// back to back: the service time under the paused clock, more on the
    /// wall clock.
    pub fn query_time(&self, connections: usize) -> Duration {
        Duration::from_secs_f64(connections as f64 / self.best_rps())
    }

    /// The capacity a ceiling is taken from, and the load a multiple of: the
    /// effective one if measured.
    pub fn best_rps(&self) -> f64 {
        self.effective_rps.unwrap_or(self.nominal_rps)
    }
}

/// Attempts that ended in an error or were abandoned, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Errors {
    /// The client gave up at its deadline (with or without a connection).
    pub abandoned: u64,
    /// The pool's own wait timed out.
    pub timeout: u64,
    /// Shed by the pool's overload detection.
    pub shed: u64,
    /// Rejected because the pool was wedged.
    pub wedged: u64,
    /// Rejected: too many requests waiting.
    pub too_many_waiters: u64,
    /// Rejected: too many requests of the key waiting.
    pub key_queue_full: u64,
    /// The pool was closed.
    pub closed: u64,
    /// Connecting failed.
    pub connect: u64,
    /// The query failed.
    pub query: u64,
}

impl Errors {
    fn count(&mut self, result: AttemptResult) {
        let counter = match result {
            AttemptResult::Completed => return,
            AttemptResult::Abandoned => &mut self.abandoned,
            AttemptResult::Failed(e) => match e {
                PoolError::Timeout => &mut self.timeout,
                PoolError::Shed => &mut self.shed,
                PoolError::Wedged => &mut self.wedged,
                PoolError::TooManyWaiters => &mut self.too_many_waiters,
                PoolError::KeyQueueFull => &mut self.key_queue_full,
                PoolError::Closed => &mut self.closed,
                PoolError::Connect => &mut self.connect,
                PoolError::Query => &mut self.query,
            },
        };
        *counter += 1;
    }

    /// Timeouts: the pool's own, and the client giving up.
    pub fn timeouts(&self) -> u64 {
        self.timeout + self.abandoned
    }

    /// Every error but the shed ones and the timeouts.
    pub fn others(&self) -> u64 {
        self.wedged
            + self.too_many_waiters
            + self.key_queue_full
            + self.closed
            + self.connect
            + self.query
    }
}

/// The wait for a connection of the attempts that got one, in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Wait {
    /// The median.
    pub p50_ms: Option<f64>,
    /// The 99th percentile.
    pub p99_ms: Option<f64>,
    /// The longest.
    pub max_ms: Option<f64>,
}

/// How many attempts ended each way.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcomes {
    /// Served in time.
    pub success: u64,
    /// Connections handed to requests past their deadline.
    pub dead_handoffs: u64,
    /// Hand-offs too late for the query to finish by the deadline.
    pub late_handoffs: u64,
    /// Never got a connection.
    pub timed_out: u64,
    /// Rejected by the pool.
    pub rejected: u64,
    /// Connect or query errors.
    pub failed: u64,
}

/// One phase of a run.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseResult {
    /// The phase's name.
    pub name: &'static str,
    /// The offered load, as a multiple of capacity.
    pub load: f64,
    /// Successes per second during the phase, as % of the nominal capacity.
    pub goodput_pct: f64,
    /// The same, as % of the effective capacity, where one was measured.
    pub goodput_pct_effective: Option<f64>,
    /// Requests arriving in the phase that were served (by any attempt), %.
    pub served_pct: f64,
}

/// Latency percentiles of successful attempts, in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Latency {
    /// The median.
    pub p50_ms: Option<f64>,
    /// The 99th percentile.
    pub p99_ms: Option<f64>,
}

/// The recovery after the load drops (see the module docs).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Recovery {
    /// Whether the pool recovered before the load ended.
    pub recovered: bool,
    /// How long it took, in milliseconds, if it did.
    pub ms: Option<f64>,
    /// When the first request after the drop was served in time, in
    /// milliseconds from the drop.
    pub first_success_ms: Option<f64>,
}

/// How recovery is judged: a quantile of the success latency over each
/// window, and the bound it must stay under.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RecoveryRule {
    /// The quantile: 0.99 for the p99.
    pub quantile: f64,
    /// The bound.
    #[serde(serialize_with = "crate::base::units::millis")]
    pub bound: Duration,
}

impl RecoveryRule {
    /// On the simulated database: the p99 under twice the service time.
    pub fn simulated(service: Duration) -> RecoveryRule {
        RecoveryRule {
            quantile: 0.99,
            bound: service * 2,
        }
    }

    /// In real time on the simulated database: the p99 at most twice the
    /// time a query takes on the machine, measured with the effective
    /// capacity ([`Capacity::query_time`]). A simulated query waits on a
    /// timer that fires on the next whole millisecond, so on the wall clock
    /// it takes a good part of a millisecond more than its service time,
    /// and no pool would ever have a p99 under twice the service time.
    pub fn measured(query_time: Duration) -> RecoveryRule {
        RecoveryRule {
            quantile: 0.99,
            bound: query_time * 2,
        }
    }

    /// On a live server: the p90 under twice the statement's measured
    /// latency on an idle server (`unloaded`: the sleep plus the round trip
    /// and the server's own overhead, where the simulation has none).
    ///
    /// Why not the p99: over a 100 ms window at half the capacity the p99
    /// is the 4th slowest of about 400 requests, and on a machine shared by
    /// the server, the lab and whatever else runs there, a scheduling stall
    /// of a few milliseconds (seen every second or so, in every pool alike,
    /// with or without load) makes it. The p90 needs a tenth of the
    /// requests to be slow, which a backlog of dead work does and a stall
    /// does not.
    pub fn live(unloaded: Duration) -> RecoveryRule {
        RecoveryRule {
            quantile: 0.90,
            bound: unloaded * 2,
        }
    }

    /// "p99" for 0.99.
    pub fn quantile_name(&self) -> String {
        format!("p{}", (self.quantile * 100.0).round())
    }
}

/// Served shares by group of requests, in %.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Shares {
    /// The group's name (critical, fan-out tenant, ...).
    pub first: &'static str,
    /// Served % of that group.
    pub first_pct: f64,
    /// The other group's name.
    pub second: &'static str,
    /// Served % of the other group.
    pub second_pct: f64,
}

/// The time series of a run's charts: one value per bucket.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    /// Bucket width.
    pub bucket_ms: f64,
    /// Successes per second in each bucket, as % of capacity.
    pub goodput_pct: Vec<f64>,
    /// Success p99 in each bucket (`None` without successes).
    pub p99_ms: Vec<Option<f64>>,
    /// Most requests waiting in each bucket.
    pub waiting: Vec<usize>,
}

/// The results of one pool in one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    /// The pool.
    pub pool: PoolKind,
    /// The scenario.
    pub scenario: ScenarioKind,
    /// Client requests.
    pub requests: u64,
    /// Attempts, retries included.
    pub attempts: u64,
    /// Goodput of the scenario's headline phase, % of the nominal capacity.
    pub goodput_pct: f64,
    /// The same, % of the effective capacity, where one was measured.
    pub goodput_pct_effective: Option<f64>,
    /// Successes per second in the headline phase.
    pub throughput_rps: f64,
    /// Requests served (by any attempt), % of all requests.
    pub served_pct: f64,
    /// How the attempts ended.
    pub outcomes: Outcomes,
    /// The attempts that ended in an error or were abandoned, by kind.
    pub errors: Errors,
    /// The wait for a connection.
    pub wait: Wait,
    /// Per phase.
    pub phases: Vec<PhaseResult>,
    /// Success latency over the whole run.
    pub latency: Latency,
    /// Most requests waiting at once.
    pub max_waiting: usize,
    /// Recovery after the load drops, for scenarios where it does.
    pub recovery: Option<Recovery>,
    /// Critical vs normal served %, for the priority mix.
    pub classes: Option<Shares>,
    /// Critical requests served in time, % of the most that could be (the
    /// critical arrivals, or the effective capacity over the load if
    /// fewer), for the priority mix.
    pub critical_of_possible_pct: Option<f64>,
    /// Fan-out tenant vs the other tenants served %, for the fan-out.
    pub tenants: Option<Shares>,
    /// The server's counters.
    pub server: ServerStats,
    /// What became of the holders, in scenarios that have them.
    pub holders: Option<Holders>,
    /// Chart data.
    pub series: Series,
    /// Remarks on the run (options a pool lacks, ...).
    pub notes: Vec<String>,
}

/// Summarizes a run.
pub fn summarize(
    raw: &RawRun,
    scenario: &Scenario,
    capacity: Capacity,
    rule: RecoveryRule,
) -> RunResult {
    let nominal = capacity.nominal_rps;
    let starts: Vec<u64> = scenario
        .phase_starts()
        .iter()
        .map(|d| d.as_micros() as u64)
        .collect();
    let load_end = scenario.duration().as_micros() as u64;
    let phase_of = |t: u64| starts.iter().rposition(|&s| s <= t).unwrap_or(0);

    let mut outcomes = Outcomes::default();
    let mut errors = Errors::default();
    let mut waits = Vec::new();
    // Per request: (arrival, critical, key, served).
    let mut requests = vec![(u64::MAX, false, None, false); raw.requests as usize];
    let mut successes = Vec::new(); // (end, latency)
    for a in &raw.attempts {
        let outcome = a.outcome();
        let counter = match outcome {
            Outcome::Success => &mut outcomes.success,
            Outcome::DeadHandoff => &mut outcomes.dead_handoffs,
            Outcome::Late => &mut outcomes.late_handoffs,
            Outcome::TimedOut => &mut outcomes.timed_out,
            Outcome::Rejected => &mut outcomes.rejected,
            Outcome::Failed => &mut outcomes.failed,
        };
        *counter += 1;
        errors.count(a.result);
        if let Some(granted) = a.granted_us {
            waits.push(granted.saturating_sub(a.start_us));
        }
        if let Some(r) = requests.get_mut(a.request as usize) {
            r.0 = r.0.min(a.start_us);
            r.1 = a.critical;
            r.2 = a.key;
            r.3 |= outcome == Outcome::Success;
        }
        if outcome == Outcome::Success {
            successes.push((a.end_us, a.end_us.saturating_sub(a.start_us)));
        }
    }
    successes.sort_unstable();
    // In a closed loop the workers stop at the end of the load: the
    // requests they still have running then are not part of its rate.
    if scenario.closed.is_some() {
        successes.retain(|s| s.0 < load_end);
    }
    let requests: Vec<_> = requests.into_iter().filter(|r| r.0 != u64::MAX).collect();

    let phases = scenario
        .phases
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let served = successes.iter().filter(|s| phase_of(s.0) == i).count();
            let arrived: Vec<_> = requests.iter().filter(|r| phase_of(r.0) == i).collect();
            let goodput_pct = pct(served as f64, nominal * p.duration.as_secs_f64());
            PhaseResult {
                name: p.name,
                load: p.load,
                goodput_pct,
                goodput_pct_effective: capacity.of_effective(goodput_pct),
                served_pct: share(arrived.iter().map(|r| r.3)),
            }
        })
        .collect::<Vec<_>>();

    let mut latencies: Vec<u64> = successes.iter().map(|s| s.1).collect();
    latencies.sort_unstable();
    let latency = Latency {
        p50_ms: percentile(&latencies, 0.50).map(ms),
        p99_ms: percentile(&latencies, 0.99).map(ms),
    };
    waits.sort_unstable();
    let wait = Wait {
        p50_ms: percentile(&waits, 0.50).map(ms),
        p99_ms: percentile(&waits, 0.99).map(ms),
        max_ms: waits.last().copied().map(ms),
    };

    let critical_share: f64 = scenario.streams.iter().map(|s| s.critical).sum();
    let classes = (critical_share > 0.0).then(|| Shares {
        first: "critical",
        first_pct: share(requests.iter().filter(|r| r.1).map(|r| r.3)),
        second: "normal",
        second_pct: share(requests.iter().filter(|r| !r.1).map(|r| r.3)),
    });
    // The most critical requests that could be served in time: all of
    // them, or as many as the capacity serves over the load.
    let critical_of_possible_pct = classes.map(|_| {
        let critical = requests.iter().filter(|r| r.1);
        let (arrived, served) =
            critical.fold((0u64, 0u64), |(n, ok), r| (n + 1, ok + u64::from(r.3)));
        let possible = (arrived as f64).min(capacity.best_rps() * load_end as f64 / 1e6);
        pct(served as f64, possible)
    });
    let fanout_key = scenario.streams.iter().find_map(|s| match s.keys {
        Keys::Fixed(k) if s.burst > 1 => Some(k),
        _ => None,
    });
    let tenants = fanout_key.map(|k| Shares {
        first: "fan-out tenant",
        first_pct: share(requests.iter().filter(|r| r.2 == Some(k)).map(|r| r.3)),
        second: "other tenants",
        second_pct: share(requests.iter().filter(|r| r.2 != Some(k)).map(|r| r.3)),
    });

    let recovery = scenario
        .recovery_from
        .map(|phase| recovery(&successes, starts[phase], load_end, rule));

    let headline = phases.get(scenario.headline);
    let goodput_pct = headline.map_or(0.0, |p| p.goodput_pct);
    RunResult {
        pool: raw.pool,
        scenario: scenario.kind,
        requests: requests.len() as u64,
        attempts: raw.attempts.len() as u64,
        goodput_pct,
        goodput_pct_effective: capacity.of_effective(goodput_pct),
        throughput_rps: goodput_pct * nominal / 100.0,
        served_pct: share(requests.iter().map(|r| r.3)),
        outcomes,
        errors,
        wait,
        phases,
        latency,
        max_waiting: raw.waiting.iter().map(|w| w.1).max().unwrap_or(0),
        recovery,
        classes,
        critical_of_possible_pct,
        tenants,
        server: raw.server.clone(),
        holders: raw.holders,
        series: series(raw, &successes, load_end, nominal),
        notes: raw.notes.clone(),
    }
}

fn recovery(successes: &[(u64, u64)], from: u64, until: u64, rule: RecoveryRule) -> Recovery {
    let step = SAMPLE.as_micros() as u64;
    let window = RECOVERY_WINDOW.as_micros() as u64;
    let bound = rule.bound.as_micros() as u64;
    let first_success = successes.get(successes.partition_point(|s| s.0 < from));
    // Whether the window ending at `t` has a success and its quantile
    // within the bound.
    let good = |t: u64| {
        let lo_i = successes.partition_point(|s| s.0 < t - window);
        let hi_i = successes.partition_point(|s| s.0 < t);
        let mut latencies: Vec<u64> = successes[lo_i..hi_i].iter().map(|s| s.1).collect();
        latencies.sort_unstable();
        percentile(&latencies, rule.quantile).is_some_and(|p| p <= bound)
    };
    let mut recovered_at = None;
    let mut t = from + window;
    while t + (RECOVERY_WINDOWS - 1) * window <= until {
        if (0..RECOVERY_WINDOWS).all(|k| good(t + k * window)) {
            recovered_at = Some(t);
            break;
        }
        t += step;
    }
    Recovery {
        recovered: recovered_at.is_some(),
        ms: recovered_at.map(|t| ms(t - from)),
        first_success_ms: first_success
            .filter(|s| s.0 <= until)
            .map(|s| ms(s.0 - from)),
    }
}

fn series(raw: &RawRun, successes: &[(u64, u64)], load_end: u64, nominal: f64) -> Series {
    let step = SAMPLE.as_micros() as u64;
    let bucket = (load_end / SERIES_POINTS).div_ceil(step).max(1) * step;
    let buckets = load_end.div_ceil(bucket) as usize;
    let mut latencies = vec![Vec::new(); buckets];
    for &(end, latency) in successes {
        if let Some(b) = latencies.get_mut((end / bucket) as usize) {
            b.push(latency);
        }
    }
    let mut waiting = vec![0; buckets];
    for &(t, n) in &raw.waiting {
        // A sample at t describes the bucket that t closes.
        let b = (t.saturating_sub(1) / bucket) as usize;
        if let Some(w) = waiting.get_mut(b) {
            *w = (*w).max(n);
        }
    }
    let bucket_s = bucket as f64 / 1e6;
    Series {
        bucket_ms: bucket as f64 / 1000.0,
        goodput_pct: latencies
            .iter()
            .map(|l| pct(l.len() as f64, nominal * bucket_s))
            .collect(),
        p99_ms: latencies
            .iter_mut()
            .map(|l| {
                l.sort_unstable();
                percentile(l, 0.99).map(ms)
            })
            .collect(),
        waiting,
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn pct(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        100.0 * part / whole
    } else {
        0.0
    }
}

/// The % of `true` among `served`.
fn share(served: impl Iterator<Item = bool>) -> f64 {
    let (n, ok) = served.fold((0u64, 0u64), |(n, ok), s| (n + 1, ok + u64::from(s)));
    pct(ok as f64, n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(result: AttemptResult, granted: Option<u64>) -> Attempt {
        Attempt {
            id: 0,
            request: 0,
            retry: 0,
            critical: false,
            key: None,
            start_us: 0,
            deadline_us: 50_000,
            end_us: 50_000,
            granted_us: granted,
            result,
        }
    }

    #[test]
    fn outcomes_follow_the_definitions() {
        use AttemptResult::*;
        assert_eq!(attempt(Completed, Some(1)).outcome(), Outcome::Success);
        assert_eq!(
            attempt(Abandoned, Some(50_000)).outcome(),
            Outcome::DeadHandoff
        );
        assert_eq!(attempt(Abandoned, Some(49_000)).outcome(), Outcome::Late);
        assert_eq!(attempt(Abandoned, None).outcome(), Outcome::TimedOut);
        let shed = Failed(PoolError::Shed);
        assert_eq!(attempt(shed, None).outcome(), Outcome::Rejected);
        let query = Failed(PoolError::Query);
        assert_eq!(attempt(query, Some(10)).outcome(), Outcome::Failed);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn recovery_takes_three_good_windows_in_a_row() {
        let ms = |m: u64| m * 1000;
        // Slow successes until 300 ms after the drop, fast ones after.
        let mut successes: Vec<(u64, u64)> = (0..300).map(|t| (ms(t), ms(40))).collect();
        successes.extend((300..1000).map(|t| (ms(t), ms(2))));
        let rule = RecoveryRule::simulated(Duration::from_millis(2));
        let r = recovery(&successes, 0, ms(1000), rule);
        assert!(r.recovered);
        // The first window without a slow success ends at 400 ms.
        assert_eq!(r.ms, Some(400.0));
        assert_eq!(r.first_success_ms, Some(0.0));
        let stuck = recovery(&successes[..300], 0, ms(1000), rule);
        assert!(!stuck.recovered && stuck.ms.is_none());
        let late = recovery(&successes[300..], 0, ms(1000), rule);
        assert_eq!(late.first_success_ms, Some(300.0));
        // The three windows must fit in the load.
        let short = recovery(&successes, 0, ms(590), rule);
        assert!(!short.recovered, "{short:?}");
        assert_eq!(recovery(&successes, 0, ms(600), rule).ms, Some(400.0));
    }

    #[test]
    fn recovery_is_at_least_one_window_and_allows_the_bound() {
        let ms = |m: u64| m * 1000;
        // Every success at exactly twice the service time: good.
        let successes: Vec<(u64, u64)> = (0..1000).map(|t| (ms(t), ms(4))).collect();
        let rule = RecoveryRule::simulated(Duration::from_millis(2));
        assert_eq!(recovery(&successes, 0, ms(1000), rule).ms, Some(100.0));
    }

    #[test]
    fn a_relapse_after_recovery_does_not_undo_it() {
        let ms = |m: u64| m * 1000;
        // One success a millisecond, 40 ms slow during `slow`, else 2 ms.
        let run = |slow: std::ops::Range<u64>| -> Vec<(u64, u64)> {
            let latency = |t| if slow.contains(&t) { ms(40) } else { ms(2) };
            (0..1000).map(|t| (ms(t), latency(t))).collect()
        };
        let rule = RecoveryRule::simulated(Duration::from_millis(2));
        // Slow from 600 to 700 ms: recovered at 100 ms already.
        let relapse = recovery(&run(600..700), 0, ms(1000), rule);
        assert_eq!(relapse.ms, Some(100.0));
        // Slow from 150 to 250 ms: the windows that hold it are bad, and
        // the first three good ones in a row start after.
        let early = recovery(&run(150..250), 0, ms(1000), rule);
        assert_eq!(early.ms, Some(350.0));
    }

    #[test]
    fn the_live_rule_looks_past_a_stall() {
        let ms = |m: u64| m * 1000;
        // Served at 2.5 ms, but a 10 ms stall at 150 ms slows 5 requests.
        let mut successes: Vec<(u64, u64)> = (0..1000).map(|t| (ms(t), 2500)).collect();
        for s in &mut successes[150..155] {
            s.1 = ms(12);
        }
        let unloaded = Duration::from_micros(2500);
        let live = recovery(&successes, 0, ms(1000), RecoveryRule::live(unloaded));
        assert_eq!(live.ms, Some(100.0));
        let strict = recovery(&successes, 0, ms(1000), RecoveryRule::simulated(unloaded));
        assert_eq!(
            strict.ms,
            Some(260.0),
            "the p99 waits for the stall to leave the window"
        );
        assert_eq!(RecoveryRule::live(unloaded).quantile_name(), "p90");
    }

    #[test]
    fn errors_are_counted_by_kind() {
        let mut errors = Errors::default();
        for result in [
            AttemptResult::Completed,
            AttemptResult::Abandoned,
            AttemptResult::Failed(PoolError::Shed),
            AttemptResult::Failed(PoolError::Shed),
            AttemptResult::Failed(PoolError::Timeout),
            AttemptResult::Failed(PoolError::Wedged),
        ] {
            errors.count(result);
        }
        assert_eq!((errors.shed, errors.timeouts(), errors.others()), (2, 2, 1));
    }

    #[test]
    fn the_effective_capacity_rescales_goodput() {
        let capacity = Capacity {
            nominal_rps: 8000.0,
            effective_rps: Some(7200.0),
        };
        assert_eq!(capacity.of_effective(90.0), Some(100.0));
        assert_eq!(capacity.best_rps(), 7200.0);
        let params = LabParams::default();
        assert_eq!(Capacity::nominal(&params).of_effective(90.0), None);
    }
}
