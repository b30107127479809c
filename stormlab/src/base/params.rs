//! The parameters every run of a suite shares, and the clock it follows.

use std::time::Duration;

use serde::Serialize;

use super::error::LabError;

/// Which clock the runs follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Clock {
    /// tokio's paused clock on a current-thread runtime: time jumps to the
    /// next timer whenever every task waits, so a run is deterministic for a
    /// seed, costs CPU only, and is immune to machine noise. The default.
    Virtual,
    /// Wall-clock time on a multi-thread runtime: what a real service sees,
    /// including the machine's noise and the CPU every operation costs.
    /// Runs one pool at a time; on the simulated database the suite first
    /// measures the effective capacity (see the `calibration` module).
    Real,
}

impl Clock {
    /// The option value naming the clock.
    pub fn name(self) -> &'static str {
        match self {
            Clock::Virtual => "virtual",
            Clock::Real => "real",
        }
    }

    /// The runtime of one run on this clock: a paused current-thread one
    /// under the virtual clock, a multi-thread one in real time.
    pub fn runtime(self) -> Result<tokio::runtime::Runtime, LabError> {
        match self {
            Clock::Virtual => tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build(),
            Clock::Real => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build(),
        }
        .map_err(LabError::Runtime)
    }
}

/// The parameters every run of a suite shares.
#[derive(Clone, Debug, Serialize)]
pub struct LabParams {
    /// Connections per pool; the simulated database serves this many queries
    /// at once. Default: 16.
    pub connections: usize,
    /// Server time of one query. Default: 2 ms.
    #[serde(serialize_with = "super::units::millis")]
    pub service: Duration,
    /// Each request's deadline, from its start: the client abandons the
    /// request then, whatever the pool does. Default: 50 ms.
    #[serde(serialize_with = "super::units::millis")]
    pub deadline: Duration,
    /// Multiplies every phase's duration. Default: 1.0.
    pub scale: f64,
    /// Seed of the arrival processes. Default: 1.
    pub seed: u64,
    /// Which clock the runs follow. Default: virtual.
    pub clock: Clock,
    /// The hold limit of the scenarios that set one (`wedged-max-hold`,
    /// `wedged-no-cancel`). Default: 100 ms.
    #[serde(serialize_with = "super::units::millis")]
    pub max_hold: Duration,
    /// stormpool's `max_orphans`: the most revoked connections whose holders
    /// have not let go yet. Default: stormpool's own (4).
    pub max_orphans: usize,
    /// The workers of the closed loop (the `closed-loop` scenario and the
    /// effective-capacity calibration). Default: 256.
    pub workers: usize,
}

impl Default for LabParams {
    fn default() -> Self {
        LabParams {
            connections: 16,
            service: Duration::from_millis(2),
            deadline: Duration::from_millis(50),
            scale: 1.0,
            seed: 1,
            clock: Clock::Virtual,
            max_hold: Duration::from_millis(100),
            max_orphans: stormpool::Config::default().max_orphans,
            workers: 256,
        }
    }
}

impl LabParams {
    /// The most requests per second the database can serve:
    /// connections / service time (the nominal capacity).
    pub fn capacity_rps(&self) -> f64 {
        self.connections as f64 / self.service.as_secs_f64()
    }
}
