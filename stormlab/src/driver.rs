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
//!
//! A scenario's holders (jobs without a deadline, see
//! [`Scenario::holders`]) are tasks too, started as its wedge starts; they
//! are counted apart from the requests.

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
use crate::metrics::{Attempt, AttemptResult, Holders, RawRun, ServerStats};
use crate::pools::Probe;
use crate::pools::{
    Bb8Lab, DeadpoolLab, LabPool, PoolKind, PoolSetup, PrefixLab, Request, StormpoolLab,
};
use crate::progress::Progress;
use crate::scenario::{Keys, Scenario, Stream};

/// How often the driver samples the pool's waiting count.
pub const SAMPLE: Duration = Duration::from_millis(10);

/// How long a holder the pool turned away waits before it asks again: a
/// tick, so that a pool that refuses at once does not spin the clock still.
const HOLDER_RETRY: Duration = Duration::from_millis(1);

/// The first holder's id: apart from the attempts' (counted up from 0) and
/// the live warm-up's (counted down from `u64::MAX`), since live backends
/// tag statements with it.
const HOLDER_IDS: u64 = u64::MAX / 2;

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
    if scenario.cancels_ignored && *backend != Backend::Sim {
        // A live server acts on cancels; the lab cannot make it ignore them.
        return Err(LabError::ScenarioUnsupported {
            scenario: scenario.name(),
            database: backend.name(),
        });
    }
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
        db.set_cancellable(!self.scenario.cancels_ignored);
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
            max_orphans: self.params.max_orphans,
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
        let holders = Arc::new(HolderLog::default());
        self.schedule_wedge(t0, hang, &pool, &holders);
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
            holders: (self.scenario.holders > 0).then(|| holders.read(pool.revoked())),
        }
    }

    /// Makes every query started during a `hang` phase hang on the server,
    /// and starts the scenario's holders as the first one starts (once the
    /// hang is on, so that their queries hang).
    fn schedule_wedge<P: LabPool>(
        &self,
        t0: Instant,
        hang: &Hang,
        pool: &Arc<P>,
        log: &Arc<HolderLog>,
    ) {
        let starts = self.scenario.phase_starts();
        let mut holders = self.scenario.holders as u64;
        for (phase, start) in self.scenario.phases.iter().zip(starts) {
            if !phase.hang {
                continue;
            }
            let (hang, pool, log) = (hang.clone(), pool.clone(), log.clone());
            let (from, to) = (t0 + start, t0 + start + phase.duration);
            tokio::spawn(async move {
                sleep_until(from).await;
                hang(true);
                for id in HOLDER_IDS..HOLDER_IDS + holders {
                    tokio::spawn(hold(pool.clone(), log.clone(), id));
                }
                sleep_until(to).await;
                hang(false);
            });
            holders = 0;
        }
    }
}

/// What the driver learns about the holders of a run.
#[derive(Default)]
struct HolderLog {
    /// Every holder's request, to read at the end whether it got a
    /// connection (its task may never end).
    ///
    /// # Invariant
    /// Held only to push or read; never across an `.await`.
    probes: Mutex<Vec<Arc<Probe>>>,
    /// Holders whose query failed (stopped on the server).
    stopped: AtomicU64,
    /// Holders whose query finished.
    finished: AtomicU64,
}

impl HolderLog {
    /// The holders' fate at the end of the run; `revoked`: the pool's count.
    fn read(&self, revoked: Option<u64>) -> Holders {
        let probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        let granted = probes.iter().filter(|p| p.granted_at().is_some()).count() as u64;
        // Relaxed: the tasks that counted are done or stuck for good.
        let stopped = self.stopped.load(Ordering::Relaxed);
        let finished = self.finished.load(Ordering::Relaxed);
        Holders {
            started: probes.len() as u64,
            granted,
            stopped,
            finished,
            stuck: granted.saturating_sub(stopped + finished),
            revoked,
        }
    }
}

/// One holder: a job without a deadline. It asks for a connection until it
/// gets one (the pool may turn it away: shed, timed out on the pool's own
/// wait), runs its query, and never gives up on it.
async fn hold<P: LabPool>(pool: Arc<P>, log: Arc<HolderLog>, id: u64) {
    // Its own gauge: a holder is not a request the driver counts waiting.
    let gauge = Arc::new(AtomicUsize::new(0));
    // One request for every try: the probe records the grant when one comes.
    let req = Request::new(id, Priority::Normal, None, None, gauge);
    let probe = req.probe();
    log.probes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(probe.clone());
    loop {
        let result = pool.serve(&req).await;
        if probe.granted_at().is_none() {
            tokio::time::sleep(HOLDER_RETRY).await;
            continue;
        }
        let ended = if result.is_ok() {
            &log.finished
        } else {
            &log.stopped
        };
        ended.fetch_add(1, Ordering::Relaxed);
        return;
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
        let req = Request::new(
            attempt,
            priority,
            key,
            Some(deadline),
            shared.waiting.clone(),
        );
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
