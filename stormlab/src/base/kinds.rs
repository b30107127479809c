//! The pools and the scenarios the lab knows, by name: what the options
//! and the reports call them. What a pool is and what a scenario does live
//! higher up (`pools`, `scenario`).

use serde::Serialize;

/// The pools the lab knows. Serialized as its [`name`](PoolKind::name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// stormpool, this project.
    Stormpool,
    /// deadpool 0.12 (managed), a popular peer.
    Deadpool,
    /// bb8 0.9, a popular peer.
    Bb8,
    /// A model of Vitess smartconnpool's waitlist before its fix for the
    /// timeout storm: a FIFO that hands connections to requests that have
    /// already given up.
    Prefix,
    /// stormpool with `propagate_deadline` off: deadlines bound the wait
    /// only, never the statement on the server.
    StormpoolNoPropagation,
    /// mysql_async's own pool (live MySQL only).
    MysqlAsync,
    /// A tokio semaphore in front of a stack of connections: the least a
    /// pool can be, the floor the others are measured against (simulated
    /// database only; not run by `all`).
    Semaphore,
}

impl PoolKind {
    /// Every pool the lab knows, in report order.
    pub const ALL: [PoolKind; 7] = [
        PoolKind::Stormpool,
        PoolKind::StormpoolNoPropagation,
        PoolKind::Deadpool,
        PoolKind::Bb8,
        PoolKind::MysqlAsync,
        PoolKind::Prefix,
        PoolKind::Semaphore,
    ];

    /// The pool's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            PoolKind::Stormpool => "stormpool",
            PoolKind::StormpoolNoPropagation => "stormpool-noprop",
            PoolKind::Deadpool => "deadpool",
            PoolKind::Bb8 => "bb8",
            PoolKind::Prefix => "prefix",
            PoolKind::MysqlAsync => "mysql_async",
            PoolKind::Semaphore => "semaphore",
        }
    }

    /// Every pool's name.
    pub fn names() -> Vec<&'static str> {
        PoolKind::ALL.iter().map(|p| p.name()).collect()
    }

    /// The pool called `name`.
    pub fn from_name(name: &str) -> Option<PoolKind> {
        PoolKind::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl Serialize for PoolKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The scenarios the lab knows. Serialized as its [`name`](ScenarioKind::name);
/// `ScenarioKind::build` (in `scenario`) gives its phases and traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScenarioKind {
    /// 0.8x capacity: every pool should serve everything, fast.
    Steady,
    /// 0.9x capacity for 10 s: queues come and go, every request can be
    /// served in time; a pool that sheds here throws work away.
    NearCapacity,
    /// A closed loop: N workers, each sending its next request as soon as
    /// the last one ended, with deadlines an hour away: throughput, the
    /// wait for a connection, and errors where there should be none.
    ClosedLoop,
    /// 2x capacity: the timeout storm, where half of the requests cannot
    /// be served and a pool may spend its connections on the other half or
    /// on requests already gone.
    Overload,
    /// 2x, then 0.5x: how long after a storm until requests are served at
    /// normal latency again?
    Storm,
    /// 2x with up to 3 immediate client retries, then 0.5x: the retry storm
    /// that keeps a stalled pool stalled after the load is gone.
    RetryStorm,
    /// 3x for a short while, then 0.5x: how fast does the pool recover?
    Spike,
    /// Jobs without a deadline take every connection and hang (a job stuck
    /// behind a lock), no hold limit.
    Wedged,
    /// As `Wedged`, with the pool's hold limit (`max_hold`) where it has one.
    WedgedMaxHold,
    /// As `WedgedMaxHold`, on a server that ignores cancels: a revoked job
    /// never lets go, so `max_orphans` bounds what comes back.
    WedgedNoCancel,
    /// 2x, half of the requests critical.
    PriorityMix,
    /// One tenant fans out bursts of requests over others' steady traffic.
    FanOut,
}

impl ScenarioKind {
    /// Every scenario, in the default run order.
    pub const ALL: [ScenarioKind; 12] = [
        ScenarioKind::Steady,
        ScenarioKind::NearCapacity,
        ScenarioKind::ClosedLoop,
        ScenarioKind::Overload,
        ScenarioKind::Storm,
        ScenarioKind::RetryStorm,
        ScenarioKind::Spike,
        ScenarioKind::Wedged,
        ScenarioKind::WedgedMaxHold,
        ScenarioKind::WedgedNoCancel,
        ScenarioKind::PriorityMix,
        ScenarioKind::FanOut,
    ];

    /// The scenario's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ScenarioKind::Steady => "steady",
            ScenarioKind::NearCapacity => "near-capacity",
            ScenarioKind::ClosedLoop => "closed-loop",
            ScenarioKind::Overload => "overload",
            ScenarioKind::Storm => "storm",
            ScenarioKind::RetryStorm => "retry-storm",
            ScenarioKind::Spike => "spike",
            ScenarioKind::Wedged => "wedged",
            ScenarioKind::WedgedMaxHold => "wedged-max-hold",
            ScenarioKind::WedgedNoCancel => "wedged-no-cancel",
            ScenarioKind::PriorityMix => "priority",
            ScenarioKind::FanOut => "fanout",
        }
    }

    /// Every scenario's name.
    pub fn names() -> Vec<&'static str> {
        ScenarioKind::ALL.iter().map(|s| s.name()).collect()
    }

    /// The scenario called `name`.
    pub fn from_name(name: &str) -> Option<ScenarioKind> {
        ScenarioKind::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the scenario runs on the simulated database only: a live
    /// server acts on cancels, and the lab cannot make it ignore them.
    pub fn simulated_only(self) -> bool {
        self == ScenarioKind::WedgedNoCancel
    }
}

impl Serialize for ScenarioKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for pool in PoolKind::ALL {
            assert_eq!(PoolKind::from_name(pool.name()), Some(pool));
        }
        for scenario in ScenarioKind::ALL {
            assert_eq!(ScenarioKind::from_name(scenario.name()), Some(scenario));
        }
        assert_eq!(PoolKind::from_name("hikari"), None);
    }
}
