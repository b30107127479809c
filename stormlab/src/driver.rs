//! Runs one pool through one scenario and records every attempt.
//!
//! Each run gets its own runtime and its own database: a simulated one
//! here, or a live server's sessions (see [`crate::live`]). Under the
//! virtual clock the runtime is a current-thread runtime with tokio's clock
//! paused: time jumps to the next timer whenever every task waits, so a run
//! is deterministic for a seed and costs only CPU. (Timers fire on whole
//! milliseconds, tokio's timer resolution; service times and deadlines are
//! whole milliseconds for that reason.)
//!
//! A request is a task: it starts an attempt with a fresh deadline, hands it
//! to the pool wrapped in `timeout_at(deadline)` (the client gives up then,
//! whatever the pool does: a query dropped half-way keeps running on the
//! simulated server, as on a real one), and retries a failed attempt at once
//! as often as the scenario says, while the load lasts.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stormpool::clock::Rng;
use stormpool::sim::{SimConfig, SimManager};
use stormpool::Priority;
use tokio::time::{sleep_until, timeout_at, Instant};

use crate::backend::Backend;
use crate::config::{Clock, LabParams};
use crate::error::LabError;
use crate::metrics::{Attempt, AttemptResult, RawRun, ServerStats};
use crate::pools::Probe;
use crate::pools::{
    Bb8Lab, DeadpoolLab, LabPool, PoolKind, PoolSetup, PrefixLab, Request, StormpoolLab,
};
use crate::progress::Progress;
use crate::scenario::{Keys, Scenario, Stream};

/// How often the driver samples the pool's waiting count.
pub const SAMPLE: Duration = Duration::from_millis(10);

/// The virtual time one run of `scenario` covers: the load, then one
/// deadline for the last requests to finish, then one sample.
pub fn run_length(scenario: &Scenario, params: &LabParams) -> Duration {
    scenario.duration() + params.deadline + SAMPLE
}

/// Runs `pool` through `scenario` on `backend`.
pub fn run(
    pool: PoolKind,
    scenario: &Scenario,
    params: &LabParams,
    backend: &Backend,
    progress: &Progress,
) -> Result<RawRun, LabError> {
    let run = Run {
        scenario,
        params,
        progress,
    };
    match backend {
        Backend::Sim => run.simulated(pool),
        Backend::Postgres(url) => crate::live::postgres::run(&run, pool, url),
        Backend::Mysql(url) => crate::live::mysql::run(&run, pool, url),
    }
}

/// The runtime of one run: a paused current-thread one under the virtual
/// clock, a multi-thread one in real time.
pub(crate) fn runtime(clock: Clock) -> Result<tokio::runtime::Runtime, LabError> {
    match clock {
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

/// The simulated database of a run: the lab's service time and seed.
// `SimConfig` is non-exhaustive: no struct update syntax outside stormpool.
#[allow(clippy::field_reassign_with_default)]
fn sim_config(params: &LabParams) -> SimConfig {
    let mut config = SimConfig::default();
    config.service_time = params.service;
    config.seed = params.seed;
    config
}

/// What every task of one run shares.
struct Shared {
    t0: Instant,
    load_end: Instant,
    deadline: Duration,
    retries: u32,
    /// Attempts waiting for a connection, as the driver counts them.
    waiting: Arc<AtomicUsize>,
    next_request: AtomicU64,
    next_attempt: AtomicU64,
    /// # Invariant
    /// Held only to push or take; never across an `.await`.
    attempts: Mutex<Vec<Finished>>,
}

/// An attempt that ended, before its grant (which may come later) is read.
struct Finished {
    attempt: u64,
    request: u64,
    retry: u32,
    priority: Priority,
    key: Option<u32>,
    start: Instant,
    deadline: Instant,
    end: Instant,
    result: AttemptResult,
    probe: Arc<Probe>,
}

/// Sets whether every query started from now on hangs on the server.
pub(crate) type Hang = Arc<dyn Fn(bool) + Send + Sync>;

/// One scenario, ready to drive pools through.
pub(crate) struct Run<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) params: &'a LabParams,
    pub(crate) progress: &'a Progress,
}

impl Run<'_> {
    /// The run on the simulated database, with its own runtime.
    fn simulated(&self, pool: PoolKind) -> Result<RawRun, LabError> {
        let runtime = runtime(self.params.clock)?;
        let sim = SimManager::new(sim_config(self.params));
        let setup = self.setup();
        let db = sim.db().clone();
        let hang: Hang = Arc::new(move |on| db.set_hang(on));
        let mut raw = runtime.block_on(async {
            // Built inside the runtime: bb8 spawns its reaper at once.
            let t0 = Instant::now();
            Ok::<_, LabError>(match pool {
                PoolKind::Stormpool | PoolKind::StormpoolNoPropagation => {
                    let propagate = pool == PoolKind::Stormpool;
                    let lab = StormpoolLab::new(sim.clone(), &setup, propagate)?;
                    self.drive(pool, Arc::new(lab), t0, &hang).await
                }
                PoolKind::Deadpool => {
                    let lab = DeadpoolLab::new(sim.clone(), &setup)?;
                    self.drive(pool, Arc::new(lab), t0, &hang).await
                }
                PoolKind::Bb8 => {
                    let lab = Bb8Lab::new(sim.clone(), &setup)?;
                    self.drive(pool, Arc::new(lab), t0, &hang).await
                }
                PoolKind::Prefix => {
                    let lab = PrefixLab::new(sim.clone(), &setup);
                    self.drive(pool, Arc::new(lab), t0, &hang).await
                }
                PoolKind::MysqlAsync => {
                    return Err(LabError::PoolUnsupported {
                        pool: pool.name(),
                        database: "simulated",
                    })
                }
            })
        })?;
        let own = raw.server.abandoned_ms;
        raw.server = ServerStats::read(sim.db().stats());
        raw.server.abandoned_ms += own;
        Ok(raw)
    }

    /// How every pool of this run is configured.
    pub(crate) fn setup(&self) -> PoolSetup {
        PoolSetup {
            max_size: self.params.connections,
            deadline: self.params.deadline,
            max_hold: self.scenario.max_hold,
        }
    }

    /// Offers the scenario's load to `pool` from `t0` on, and records every
    /// attempt (the server's counters are left for the caller to fill in,
    /// but for the dead work the pool counts itself).
    pub(crate) async fn drive<P: LabPool>(
        &self,
        kind: PoolKind,
        pool: Arc<P>,
        t0: Instant,
        hang: &Hang,
    ) -> RawRun {
        let shared = Arc::new(Shared {
            t0,
            load_end: t0 + self.scenario.duration(),
            deadline: self.params.deadline,
            retries: self.scenario.retries,
            waiting: Arc::new(AtomicUsize::new(0)),
            next_request: AtomicU64::new(0),
            next_attempt: AtomicU64::new(0),
            attempts: Mutex::new(Vec::new()),
        });
        self.schedule_hangs(t0, hang);
        let capacity = self.params.capacity_rps();
        for (i, stream) in self.scenario.streams.iter().enumerate() {
            // Each stream its own sequence, all derived from the one seed.
            let seed = self.params.seed ^ (0x9E37_79B9_7F4A_7C15_u64.wrapping_mul(i as u64 + 1));
            let phases = self
                .scenario
                .phases
                .iter()
                .map(|p| {
                    (
                        p.duration,
                        p.load * capacity * stream.share / stream.burst as f64,
                    )
                })
                .collect();
            tokio::spawn(generate(
                pool.clone(),
                shared.clone(),
                stream.clone(),
                phases,
                Rng::with_seed(seed),
            ));
        }
        let end = t0 + run_length(self.scenario, self.params);
        let mut waiting = Vec::new();
        let mut tick = t0;
        while tick < end {
            tick += SAMPLE;
            sleep_until(tick).await;
            let now = pool
                .waiting()
                .unwrap_or_else(|| shared.waiting.load(Ordering::Relaxed));
            waiting.push((micros(tick - t0), now));
            self.progress.advance(SAMPLE);
        }
        let finished =
            std::mem::take(&mut *shared.attempts.lock().unwrap_or_else(|p| p.into_inner()));
        let attempts = finished.into_iter().map(|f| f.into_attempt(t0)).collect();
        let server = ServerStats {
            abandoned_ms: pool.dead_work().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            ..ServerStats::default()
        };
        RawRun {
            pool: kind,
            requests: shared.next_request.load(Ordering::Relaxed),
            attempts,
            waiting,
            server,
            notes: pool.notes(),
        }
    }

    /// Makes every query started during a `hang` phase hang on the server.
    fn schedule_hangs(&self, t0: Instant, hang: &Hang) {
        let starts = self.scenario.phase_starts();
        for (phase, start) in self.scenario.phases.iter().zip(starts) {
            if !phase.hang {
                continue;
            }
            let hang = hang.clone();
            let (from, to) = (t0 + start, t0 + start + phase.duration);
            tokio::spawn(async move {
                sleep_until(from).await;
                hang(true);
                sleep_until(to).await;
                hang(false);
            });
        }
    }
}

impl Finished {
    fn into_attempt(self, t0: Instant) -> Attempt {
        let at = |t: Instant| micros(t.saturating_duration_since(t0));
        Attempt {
            id: self.attempt,
            request: self.request,
            retry: self.retry,
            critical: self.priority == Priority::Critical,
            key: self.key,
            start_us: at(self.start),
            deadline_us: at(self.deadline),
            end_us: at(self.end),
            granted_us: self.probe.granted_at().map(at),
            result: self.result,
        }
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

/// One open-loop Poisson arrival process: `phases` are (duration, arrivals
/// per second); each arrival starts `stream.burst` requests at once.
async fn generate<P: LabPool>(
    pool: Arc<P>,
    shared: Arc<Shared>,
    stream: Stream,
    phases: Vec<(Duration, f64)>,
    mut rng: Rng,
) {
    let mut phase_start = 0.0;
    for (duration, rate) in phases {
        let phase_end = phase_start + duration.as_secs_f64();
        let mut t = phase_start;
        while rate > 0.0 && t < phase_end {
            // Exponential inter-arrival time; a gap crossing the phase's end
            // is drawn again from there at the next phase's rate, which is
            // exact for a Poisson process (it has no memory).
            t += -(1.0 - rng.next_f64()).ln() / rate;
            if t >= phase_end {
                continue;
            }
            sleep_until(shared.t0 + Duration::from_secs_f64(t)).await;
            for _ in 0..stream.burst {
                let key = match stream.keys {
                    Keys::None => None,
                    Keys::Fixed(k) => Some(k),
                    Keys::Uniform { first, count } => {
                        Some(first + (rng.next_u64() % u64::from(count.max(1))) as u32)
                    }
                };
                let priority = if rng.next_f64() < stream.critical {
                    Priority::Critical
                } else {
                    Priority::Normal
                };
                tokio::spawn(request(pool.clone(), shared.clone(), priority, key));
            }
        }
        phase_start = phase_end;
    }
}

/// One client request: its attempts, retried at once while the load lasts.
async fn request<P: LabPool>(
    pool: Arc<P>,
    shared: Arc<Shared>,
    priority: Priority,
    key: Option<u32>,
) {
    let id = shared.next_request.fetch_add(1, Ordering::Relaxed);
    for retry in 0..=shared.retries {
        let start = Instant::now();
        let deadline = start + shared.deadline;
        let attempt = shared.next_attempt.fetch_add(1, Ordering::Relaxed);
        let req = Request::new(attempt, priority, key, deadline, shared.waiting.clone());
        let probe = req.probe();
        let result = match timeout_at(deadline, pool.serve(&req)).await {
            Ok(Ok(())) => AttemptResult::Completed,
            Ok(Err(e)) => AttemptResult::Failed(e),
            Err(_) => AttemptResult::Abandoned,
        };
        probe.leave_queue();
        let end = Instant::now();
        shared
            .attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Finished {
                attempt,
                request: id,
                retry,
                priority,
                key,
                start,
                deadline,
                end,
                result,
                probe,
            });
        if result == AttemptResult::Completed || end >= shared.load_end {
            break;
        }
    }
}
