//! The scenarios: load shapes that reproduce the failures of the reference
//! incidents, each a list of [`Phase`]s over one or more arrival
//! [`Stream`]s ([`ScenarioKind::build`]).
//!
//! Arrivals are open-loop: a Poisson process whose rate is the phase's load
//! times the database's capacity (connections / service time). Open loop is
//! the point: a closed-loop benchmark slows its own clients down when the
//! pool stalls and so hides the storm; real clients keep arriving.
//!
//! One scenario is a closed loop on purpose ([`ClosedLoop`]): a batch job or
//! a worker pool, N workers each sending its next request as soon as the
//! last one ended, with deadlines an hour away. It saturates the pool
//! without overloading it, and asks what a worker pool moving over from
//! another pool asks: does it get the same throughput, how long does it
//! wait for a connection, and does it get errors where it should get none?
//!
//! Phase durations are multiplied by `--scale`, with a floor of two
//! deadlines so that even a short run sees whole request lifetimes. The
//! wedge of the `wedged` scenarios is not scaled: it only has to last long
//! enough for every connection to pick up a stuck query.
//!
//! # Why the wedged scenarios have holders
//!
//! A request that gives up at its deadline frees its stuck connection by
//! itself in a pool that cancels abandoned statements (stormpool does), so
//! requests alone never show what a hold limit is for. The incident's
//! holder does not give up: a job with no deadline, stuck behind a lock.
//! The wedged scenarios start one such job per connection at the start of
//! the wedge (see [`Scenario::holders`]); only a hold limit (`max_hold`)
//! takes their connections back.

use std::time::Duration;

use serde::Serialize;

use crate::base::{LabParams, ScenarioKind};

/// How long the wedge phase makes every new query hang.
const WEDGE: Duration = Duration::from_millis(100);

/// The deadline of a closed-loop worker's requests: far beyond any wait a
/// healthy pool imposes.
pub const CLOSED_LOOP_DEADLINE: Duration = Duration::from_secs(3600);

impl ScenarioKind {
    /// The scenario's phases and traffic for these parameters.
    pub fn build(self, params: &LabParams) -> Scenario {
        let phase = |name, load, secs: f64| Phase {
            name,
            load,
            duration: scaled(secs, params),
            hang: false,
        };
        let wedged = |max_hold: Option<Duration>, title, description: String| Scenario {
            kind: self,
            title,
            description,
            phases: vec![
                phase("before", 0.5, 1.0),
                Phase {
                    name: "wedge",
                    load: 0.5,
                    duration: WEDGE,
                    hang: true,
                },
                phase("after", 0.5, 3.0),
            ],
            streams: vec![Stream::plain()],
            retries: 0,
            max_hold,
            holders: params.connections,
            cancels_ignored: self.simulated_only(),
            headline: 2,
            recovery_from: Some(2),
            closed: None,
            reports_errors: false,
        };
        match self {
            ScenarioKind::Steady => Scenario {
                kind: self,
                title: "Steady load (0.8x)",
                description: "Poisson arrivals at 80% of capacity. Every pool should serve \
                    all requests within the service time plus a little queueing."
                    .into(),
                phases: vec![phase("steady", 0.8, 4.0)],
                ..Scenario::single(self)
            },
            ScenarioKind::NearCapacity => Scenario {
                kind: self,
                title: "Near capacity (0.9x for 10 s)",
                description: "Poisson arrivals at 90% of capacity for 10 s: queues form and \
                    drain all the time, and every request can be served in time. A pool \
                    whose overload detection fires here sheds work it could have done: \
                    the shed % should be zero."
                    .into(),
                phases: vec![phase("near", 0.9, 10.0)],
                reports_errors: true,
                ..Scenario::single(self)
            },
            ScenarioKind::ClosedLoop => Scenario {
                kind: self,
                title: "Closed loop (workers with an hour of deadline)",
                description: format!(
                    "{} workers on {} connections, each sending its next request as soon \
                     as the last one ended (1 ms after an error), every request with a \
                     deadline an hour away, for 4 s: a batch job or a worker pool. The \
                     pool is saturated but not overloaded: a queue of about {} ms \
                     stands for good and every request in it is served long before its \
                     deadline. Throughput, the wait for a connection, and errors, of \
                     which there should be none.",
                    params.workers,
                    params.connections,
                    (params.service.as_secs_f64() * 1000.0 * params.workers as f64
                        / params.connections.max(1) as f64)
                        .round()
                ),
                phases: vec![Phase {
                    name: "closed",
                    load: 0.0,
                    duration: scaled(4.0, params),
                    hang: false,
                }],
                streams: Vec::new(),
                closed: Some(ClosedLoop {
                    workers: params.workers,
                    deadline: CLOSED_LOOP_DEADLINE,
                }),
                reports_errors: true,
                ..Scenario::single(self)
            },
            ScenarioKind::Overload => Scenario {
                kind: self,
                title: "Overload (2x)",
                description: "Arrivals at twice the capacity: the timeout storm of the \
                    Vitess incident. Half of the requests cannot be served; the question \
                    is whether the other half is, or whether the pool spends its \
                    connections on requests that have already given up."
                    .into(),
                phases: vec![phase("overload", 2.0, 4.0)],
                ..Scenario::single(self)
            },
            ScenarioKind::Storm => Scenario {
                kind: self,
                title: "Storm, then calm (2x for 3 s, then 0.5x)",
                description: "Twice the capacity for 3 s, then half of it. Requests that \
                    give up mid-query leave their statements running on a real server: \
                    with a plain pool the connection goes back with that work queued on \
                    it, the next request waits behind it, and seconds of dead work pile \
                    up per connection, so the pool is slow long after the load dropped."
                    .into(),
                phases: vec![phase("storm", 2.0, 3.0), phase("calm", 0.5, 3.0)],
                recovery_from: Some(1),
                ..Scenario::single(self)
            },
            ScenarioKind::RetryStorm => Scenario {
                kind: self,
                title: "Retry storm (2x with 3 immediate retries, then 0.5x)",
                description: "Twice the capacity, and every failed attempt is retried at \
                    once, up to three times, each with a fresh deadline. Then the load \
                    falls to half the capacity (clients still retry): a pool that stalled \
                    stays stalled if its retries keep it overloaded."
                    .into(),
                phases: vec![phase("storm", 2.0, 3.0), phase("after", 0.5, 3.0)],
                retries: 3,
                recovery_from: Some(1),
                ..Scenario::single(self)
            },
            ScenarioKind::Spike => Scenario {
                kind: self,
                title: "Spike and recovery (3x for 2 s, then 0.5x)",
                description: "Half the capacity, a spike to three times the capacity, \
                    then half again: how long until latency is back to normal?"
                    .into(),
                phases: vec![
                    phase("before", 0.5, 1.0),
                    phase("spike", 3.0, 2.0),
                    phase("after", 0.5, 3.0),
                ],
                headline: 1,
                recovery_from: Some(2),
                ..Scenario::single(self)
            },
            ScenarioKind::Wedged => wedged(
                None,
                "Wedged pool, no hold limit",
                "Half the capacity; for 100 ms every new query hangs on the server (a \
                 deadlock), then queries run normally again. As the wedge starts, one job \
                 without a deadline per connection asks for a connection, waits as long \
                 as it takes, and runs a query that hangs: a job stuck behind a lock, \
                 which never gives up (the jobs are not requests: no goodput counts \
                 them). Without a hold limit nothing frees their connections, and every \
                 pool serves nothing after the wedge, stormpool included. (Requests stuck \
                 in the wedge are not the problem: they give up at their deadline, and \
                 stormpool stops their statements then.)"
                    .into(),
            ),
            ScenarioKind::WedgedMaxHold => wedged(
                Some(params.max_hold),
                "Wedged pool, with a hold limit (max_hold)",
                format!(
                    "As `wedged`, with the pool's hold limit where it has one: a connection \
                     held past max_hold ({} ms) is revoked: its query is cancelled on the \
                     server, its job lets go, and a new connection takes its slot, at most \
                     max_orphans ({}) at a time. stormpool serves again shortly after \
                     max_hold; deadpool, bb8 and the pre-fix model have no such limit and \
                     stay wedged.",
                    params.max_hold.as_millis(),
                    params.max_orphans
                ),
            ),
            ScenarioKind::WedgedNoCancel => wedged(
                Some(params.max_hold),
                "Wedged pool, hold limit, cancels ignored",
                format!(
                    "As `wedged-max-hold`, but the server ignores cancels (a hung network, \
                     a server that does not act on them), so a revoked job never lets go of \
                     its connection. stormpool revokes at most max_orphans of them and \
                     opens as many new connections, so that the server never holds more \
                     than max_size + max_orphans sessions of the pool; the other stuck \
                     connections stay lost. With max_orphans {} (stormpool's default is \
                     {}), {} of the {} connections come back: a larger max_orphans gets \
                     more capacity back when cancels do not work, at the cost of more \
                     sessions on the server.",
                    params.max_orphans,
                    stormpool::Config::default().max_orphans,
                    params.max_orphans.min(params.connections),
                    params.connections
                ),
            ),
            ScenarioKind::PriorityMix => Scenario {
                kind: self,
                title: "Priority mix (2x, half critical)",
                description: "Twice the capacity; half of the requests are critical. \
                    A pool with priority classes should serve the critical half in full."
                    .into(),
                phases: vec![phase("overload", 2.0, 4.0)],
                streams: vec![Stream {
                    critical: 0.5,
                    ..Stream::plain()
                }],
                ..Scenario::single(self)
            },
            ScenarioKind::FanOut => Scenario {
                kind: self,
                title: "Key fan-out fairness (1.5x)",
                description: "Tenant 0 fans out bursts of 32 requests at once and carries \
                    two thirds of the load; tenants 1 to 8 share the last third in steady \
                    Poisson traffic. Total: 1.5x capacity. A fair pool serves the small \
                    tenants in full and lets the fan-out absorb the overload."
                    .into(),
                phases: vec![phase("fan-out", 1.5, 4.0)],
                streams: vec![
                    Stream {
                        share: 2.0 / 3.0,
                        burst: 32,
                        keys: Keys::Fixed(0),
                        critical: 0.0,
                    },
                    Stream {
                        share: 1.0 / 3.0,
                        burst: 1,
                        keys: Keys::Uniform { first: 1, count: 8 },
                        critical: 0.0,
                    },
                ],
                ..Scenario::single(self)
            },
        }
    }
}

/// A phase's duration under the lab's scale, with a floor of two deadlines.
fn scaled(secs: f64, params: &LabParams) -> Duration {
    let scaled = Duration::from_secs_f64(secs * params.scale);
    // Whole milliseconds: the virtual clock fires timers on millisecond ticks.
    let scaled = Duration::from_millis(scaled.as_millis() as u64);
    scaled.max(params.deadline * 2)
}

/// A stretch of constant load.
#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    /// The phase's name in reports.
    pub name: &'static str,
    /// Offered load, as a multiple of the database's capacity; 0 in a
    /// closed loop, where the workers offer as much as the pool serves.
    pub load: f64,
    /// How long the phase lasts.
    #[serde(serialize_with = "crate::base::units::millis")]
    pub duration: Duration,
    /// Every query started in this phase hangs on the server until cancelled.
    pub hang: bool,
}

/// Which fairness key a stream's requests carry.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Keys {
    /// No key.
    None,
    /// Always this key.
    Fixed(u32),
    /// A key drawn uniformly from `first..first + count`.
    Uniform {
        /// The first key.
        first: u32,
        /// How many keys.
        count: u32,
    },
}

/// One arrival process of a scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Stream {
    /// The stream's share of the phase's load.
    pub share: f64,
    /// Requests per arrival: more than 1 is a fan-out arriving at once.
    pub burst: u32,
    /// The fairness keys of the stream's requests.
    pub keys: Keys,
    /// The fraction of requests in the critical class (the others are normal).
    pub critical: f64,
}

impl Stream {
    /// All the load, one request per arrival, no key, no priority.
    pub fn plain() -> Stream {
        Stream {
            share: 1.0,
            burst: 1,
            keys: Keys::None,
            critical: 0.0,
        }
    }
}

/// A closed loop: workers that each send their next request as soon as the
/// last one ended.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ClosedLoop {
    /// How many workers.
    pub workers: usize,
    /// Each request's deadline, from its start.
    #[serde(serialize_with = "crate::base::units::millis")]
    pub deadline: Duration,
}

/// A scenario, ready to run.
#[derive(Clone, Debug, Serialize)]
pub struct Scenario {
    /// Which scenario.
    pub kind: ScenarioKind,
    /// A one-line title.
    pub title: &'static str,
    /// What it does and what to look for.
    pub description: String,
    /// The phases, in order.
    pub phases: Vec<Phase>,
    /// The arrival processes, all following the phases' load.
    pub streams: Vec<Stream>,
    /// How many times a client retries a failed attempt, at once.
    pub retries: u32,
    /// The hold limit given to pools that support one.
    #[serde(serialize_with = "crate::base::units::opt_millis")]
    pub max_hold: Option<Duration>,
    /// Jobs without a deadline started as the first `hang` phase starts:
    /// each waits for a connection as long as it takes (asking again when
    /// the pool turns it away), runs a query that hangs, and never gives up.
    /// They are not client requests: no goodput counts them; the results
    /// report their fate apart (`holders` in the JSON).
    pub holders: usize,
    /// The server ignores cancels for the whole run (simulated database
    /// only).
    pub cancels_ignored: bool,
    /// The phase whose goodput the summary shows.
    pub headline: usize,
    /// The phase from whose start recovery is measured, if any.
    pub recovery_from: Option<usize>,
    /// A closed loop instead of the open-loop streams, if set: the phases
    /// then only say how long the workers work.
    pub closed: Option<ClosedLoop>,
    /// Whether the tables show the errors by kind (shed, timeouts, other):
    /// in the scenarios where any error is one too many.
    pub reports_errors: bool,
}

impl Scenario {
    /// A one-phase, plain-traffic scenario without retries, for struct update.
    fn single(kind: ScenarioKind) -> Scenario {
        Scenario {
            kind,
            title: "",
            description: String::new(),
            phases: Vec::new(),
            streams: vec![Stream::plain()],
            retries: 0,
            max_hold: None,
            holders: 0,
            cancels_ignored: false,
            headline: 0,
            recovery_from: None,
            closed: None,
            reports_errors: false,
        }
    }

    /// Phase `i` as the tables and charts label it: its name and load
    /// ("storm 2x"), or the workers of a closed loop ("256 workers").
    pub fn phase_label(&self, i: usize) -> String {
        match (&self.closed, self.phases.get(i)) {
            (Some(closed), _) => format!("{} workers", closed.workers),
            (None, Some(p)) => format!("{} {}x", p.name, p.load),
            (None, None) => String::new(),
        }
    }

    /// The scenario's name.
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// The total duration of the load.
    pub fn duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// When each phase starts, from the start of the run.
    pub fn phase_starts(&self) -> Vec<Duration> {
        let mut t = Duration::ZERO;
        self.phases
            .iter()
            .map(|p| {
                let start = t;
                t += p.duration;
                start
            })
            .collect()
    }

    /// The phase running at `t` from the start, if the load has not ended.
    pub fn phase_at(&self, t: Duration) -> Option<usize> {
        let mut end = Duration::ZERO;
        for (i, p) in self.phases.iter().enumerate() {
            end += p.duration;
            if t < end {
                return Some(i);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_is_well_formed() {
        let params = LabParams::default();
        for kind in ScenarioKind::ALL {
            let s = kind.build(&params);
            assert_eq!(ScenarioKind::from_name(kind.name()), Some(kind));
            assert!(!s.phases.is_empty() && !s.title.is_empty(), "{}", s.name());
            assert!(s.headline < s.phases.len());
            assert!(s.recovery_from.is_none_or(|p| p < s.phases.len()));
            // Holders start with a wedge: a scenario with holders has one.
            assert!(s.holders == 0 || s.phases.iter().any(|p| p.hang));
            // Open-loop streams share the load; a closed loop has none.
            let shares: f64 = s.streams.iter().map(|st| st.share).sum();
            let expected = if s.closed.is_some() { 0.0 } else { 1.0 };
            assert!(
                (shares - expected).abs() < 1e-9,
                "{}: shares {shares}",
                s.name()
            );
        }
    }

    #[test]
    fn phases_scale_with_a_floor() {
        let params = LabParams {
            scale: 0.001,
            ..LabParams::default()
        };
        let s = ScenarioKind::Spike.build(&params);
        assert!(s.phases.iter().all(|p| p.duration == params.deadline * 2));
        assert_eq!(s.phase_at(Duration::ZERO), Some(0));
        assert_eq!(s.phase_at(params.deadline * 2), Some(1));
        assert_eq!(s.phase_at(s.duration()), None);
    }
}
