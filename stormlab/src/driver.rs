//! Runs one pool through one scenario on one database and records every
//! attempt.
//!
//! Each run gets its own runtime and opens its own database, the simulated
//! one or a live server's sessions, through the [`Database`] trait: the
//! driver builds the pool over it, readies it, offers the load, lets it
//! settle and reads what its server saw. Under the virtual clock the runtime
//! is a current-thread runtime with tokio's clock paused: time jumps to the
//! next timer whenever every task waits, so a run is deterministic for a
//! seed and costs only CPU. (Timers fire on whole milliseconds, tokio's
//! timer resolution; service times and deadlines are whole milliseconds for
//! that reason.)
//!
//! The load is the test kit's open-loop generator, one arrival process per
//! stream of the scenario: a request is a task that starts an attempt with a
//! fresh deadline and hands it to the pool wrapped in `timeout_at(deadline)`
//! (the client gives up then, whatever the pool does: a query dropped
//! half-way keeps running on the server, simulated or real), and retries a
//! failed attempt at once as often as the scenario says, while the load
//! lasts.
//!
//! A closed-loop scenario ([`ClosedLoop`]) has workers instead: each one a
//! task sending its next request as soon as the last one ended, under the
//! same `timeout_at(deadline)`, while the load lasts.
//!
//! A scenario's holders (jobs without a deadline, see
//! [`Scenario::holders`]) are tasks too, started as its wedge starts; they
//! are counted apart from the requests.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stormpool::clock::Rng;
use stormpool::Priority;
use stormpool_testkit::open_loop::{self, Arrivals, Ended, Grant, OpenLoop, Plan, Record};
use tokio::time::{sleep_until, timeout_at, Instant};

use crate::base::{Backend, Clock, LabError, LabParams, PoolError, PoolKind};
use crate::database::live::mysql::MySql;
use crate::database::live::postgres::Postgres;
use crate::database::live::{self, Live};
use crate::database::sim::Simulated;
use crate::database::{Database, Hang};
use crate::metrics::{
    Attempt, AttemptResult, Capacity, Holders, RawRun, RecoveryRule, ServerStats, SAMPLE,
};
use crate::pools::{PoolSetup, Request, SharedPool};
use crate::progress::Progress;
use crate::scenario::{ClosedLoop, Keys, Scenario, Stream};

/// How long a holder the pool turned away waits before it asks again: a
/// tick, so that a pool that refuses at once does not spin the clock still.
const HOLDER_RETRY: Duration = Duration::from_millis(1);

/// How long a closed-loop worker whose request failed waits before its
/// next one: a tick, for the same reason.
const CLOSED_LOOP_PAUSE: Duration = Duration::from_millis(1);

/// The first holder's id: apart from the attempts' (counted up from 0) and
/// the live warm-up's (counted down from `u64::MAX`), since live backends
/// tag statements with it.
const HOLDER_IDS: u64 = u64::MAX / 2;

/// The virtual time one run of `scenario` covers: the load, then one
/// deadline for the last requests to finish, then one sample.
pub fn run_length(scenario: &Scenario, params: &LabParams) -> Duration {
    scenario.duration() + params.deadline + SAMPLE
}

/// Checks that the lab can run against `backend`, and says how recovery is
/// judged there: on the simulation, against the service time; on a live
/// server, once it answers, against a statement's latency on it, measured
/// now while it is idle.
pub fn prepare(backend: &Backend, params: &LabParams) -> Result<RecoveryRule, LabError> {
    match backend {
        Backend::Sim => Ok(RecoveryRule::simulated(params.service)),
        Backend::Postgres(url) => {
            live::ensure_reachable(url, backend.name())?;
            live::unloaded_latency::<Postgres>(url, params.service).map(RecoveryRule::live)
        }
        Backend::Mysql(url) => {
            live::ensure_reachable(url, backend.name())?;
            live::unloaded_latency::<MySql>(url, params.service).map(RecoveryRule::live)
        }
    }
}

/// Runs `kind` through `scenario` on `backend`; a phase's load is a
/// multiple of `capacity` (its effective capacity where one was measured).
pub fn run(
    kind: PoolKind,
    scenario: &Scenario,
    params: &LabParams,
    backend: &Backend,
    capacity: Capacity,
    progress: &Progress,
) -> Result<RawRun, LabError> {
    let run = Run {
        kind,
        scenario,
        params,
        load_rps: capacity.best_rps(),
        progress,
    };
    match backend {
        Backend::Sim => run.on(params.clock, async {
            Ok(Simulated::open(params, scenario))
        }),
        // A live server runs in real time.
        Backend::Postgres(url) => {
            run.on(Clock::Real, Live::<Postgres>::open(url, scenario, params))
        }
        Backend::Mysql(url) => run.on(Clock::Real, Live::<MySql>::open(url, scenario, params)),
    }
}

/// What a request of the lab carries to the pool.
#[derive(Clone, Copy, Debug)]
struct Client {
    priority: Priority,
    key: Option<u32>,
}

/// One pool through one scenario.
struct Run<'a> {
    kind: PoolKind,
    scenario: &'a Scenario,
    params: &'a LabParams,
    /// Requests per second at load 1.0.
    load_rps: f64,
    progress: &'a Progress,
}

impl Run<'_> {
    /// The run on the database `open` opens, in its own runtime on `clock`.
    fn on<D: Database>(
        &self,
        clock: Clock,
        open: impl Future<Output = Result<D, LabError>>,
    ) -> Result<RawRun, LabError> {
        let runtime = clock.runtime()?;
        runtime.block_on(async {
            let mut db = open.await?;
            let result = self.through(&mut db).await;
            // Whatever happened, leave nothing of the run behind.
            db.close().await?;
            result
        })
    }

    /// Builds the pool over `db`, offers it the load, and reads what the
    /// pool and the server saw.
    async fn through<D: Database>(&self, db: &mut D) -> Result<RawRun, LabError> {
        let pool = db.build(self.kind, &self.setup())?;
        db.ready(&pool).await;
        let t0 = Instant::now();
        let mut raw = self.drive(pool.clone(), t0, &db.hang()).await;
        db.settle().await;
        raw.notes = pool.notes();
        // The pool's own count of dead work, where the server cannot tell.
        let own = pool.dead_work().map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        drop(pool);
        raw.server = db.server_stats(t0, &raw.attempts);
        raw.server.abandoned_ms += own;
        Ok(raw)
    }

    /// How every pool of this run is configured.
    fn setup(&self) -> PoolSetup {
        PoolSetup {
            max_size: self.params.connections,
            // A pool that takes one timeout for all its requests (bb8) takes
            // the closed loop's deadline there.
            deadline: self
                .scenario
                .closed
                .map_or(self.params.deadline, |c| c.deadline),
            max_hold: self.scenario.max_hold,
            max_orphans: self.params.max_orphans,
        }
    }

    /// The scenario's load from `t0` on, as the generator takes it.
    fn plan(&self, t0: Instant) -> Plan {
        Plan {
            start: t0,
            phases: (self.scenario.phases.iter())
                .map(|p| open_loop::Phase {
                    load: p.load,
                    duration: p.duration,
                })
                .collect(),
            deadline: self.params.deadline,
            retries: self.scenario.retries,
        }
    }

    /// Offers the scenario's load to `pool` from `t0` on and records every
    /// attempt, the holders' fate and the waiting count (the pool's notes
    /// and the server's counters are left for the caller to fill in).
    async fn drive(&self, pool: SharedPool, t0: Instant, hang: &Hang) -> RawRun {
        let holders = Arc::new(HolderLog::default());
        self.schedule_wedge(t0, hang, &pool, &holders);
        let (requests, attempts, waiting) = match self.scenario.closed {
            Some(closed) => self.closed_loop(&pool, t0, closed).await,
            None => self.open_loop(&pool, t0).await,
        };
        RawRun {
            pool: self.kind,
            requests,
            attempts,
            waiting,
            server: ServerStats::default(),
            notes: Vec::new(),
            holders: (self.scenario.holders > 0).then(|| holders.read(pool.revoked())),
        }
    }

    /// The scenario's open-loop streams: (requests, attempts, waiting).
    async fn open_loop(&self, pool: &SharedPool, t0: Instant) -> Recorded {
        let load = OpenLoop::new(self.plan(t0), {
            let pool = pool.clone();
            move |attempt: open_loop::Attempt<Client>| {
                let pool = pool.clone();
                async move {
                    let Client { priority, key } = attempt.client;
                    let deadline = Some(attempt.deadline);
                    let req = Request::new(attempt.id, priority, key, deadline, attempt.grant);
                    pool.serve(&req).await
                }
            }
        });
        let capacity = self.load_rps;
        for (i, stream) in self.scenario.streams.iter().enumerate() {
            // Each stream its own sequence, all derived from the one seed.
            let seed = self.params.seed ^ (0x9E37_79B9_7F4A_7C15_u64.wrapping_mul(i as u64 + 1));
            let arrivals = Arrivals {
                capacity,
                share: stream.share,
                burst: stream.burst,
            };
            let client = client(stream.clone());
            tokio::spawn(load.arrivals(arrivals, Rng::with_seed(seed), client));
        }
        let waiting = self.sample(pool, t0, || load.waiting()).await;
        let attempts = (load.take_records().into_iter())
            .map(|record| attempt(record, t0))
            .collect();
        (load.requests(), attempts, waiting)
    }

    /// The scenario's closed loop: `closed.workers` tasks, each sending its
    /// next request as soon as the last one ended (after
    /// [`CLOSED_LOOP_PAUSE`] if it failed), while the load lasts. A request
    /// still running when the run ends is not counted.
    async fn closed_loop(&self, pool: &SharedPool, t0: Instant, closed: ClosedLoop) -> Recorded {
        let end = t0 + self.scenario.duration();
        let shared = Arc::new(Workers::default());
        let mut workers = tokio::task::JoinSet::new();
        for worker in 0..closed.workers {
            let (pool, shared) = (pool.clone(), shared.clone());
            workers.spawn(async move {
                while Instant::now() < end {
                    let id = shared.next.fetch_add(1, Ordering::Relaxed);
                    let start = Instant::now();
                    let deadline = start + closed.deadline;
                    let grant = Grant::new();
                    shared.current(worker, Some(grant.clone()));
                    let req = Request::new(id, Priority::Normal, None, Some(deadline), grant);
                    let result = match timeout_at(deadline, pool.serve(&req)).await {
                        Ok(Ok(())) => AttemptResult::Completed,
                        Ok(Err(e)) => AttemptResult::Failed(e),
                        Err(_) => AttemptResult::Abandoned,
                    };
                    shared.current(worker, None);
                    let at = |t: Instant| micros(t.saturating_duration_since(t0));
                    shared.record(Attempt {
                        id,
                        request: id,
                        retry: 0,
                        critical: false,
                        key: None,
                        start_us: at(start),
                        deadline_us: at(deadline),
                        end_us: at(Instant::now()),
                        granted_us: req.grant().granted_at().map(at),
                        result,
                    });
                    if result != AttemptResult::Completed {
                        tokio::time::sleep(CLOSED_LOOP_PAUSE).await;
                    }
                }
            });
        }
        let waiting = self.sample(pool, t0, || shared.waiting()).await;
        // Whatever still runs (a pool that stalled) is not counted.
        workers.abort_all();
        while workers.join_next().await.is_some() {}
        let attempts = shared.take();
        (attempts.len() as u64, attempts, waiting)
    }

    /// Samples the requests waiting every [`SAMPLE`] until the run's end:
    /// the pool's own count, or `load`'s where the pool keeps none.
    async fn sample(
        &self,
        pool: &SharedPool,
        t0: Instant,
        load: impl Fn() -> usize,
    ) -> Vec<(u64, usize)> {
        let end = t0 + run_length(self.scenario, self.params);
        let mut waiting = Vec::new();
        let mut tick = t0;
        while tick < end {
            tick += SAMPLE;
            sleep_until(tick).await;
            let now = pool.waiting().unwrap_or_else(&load);
            waiting.push((micros(tick - t0), now));
            self.progress.advance(SAMPLE);
        }
        waiting
    }

    /// Makes every query started during a `hang` phase hang on the server,
    /// and starts the scenario's holders as the first one starts (once the
    /// hang is on, so that their queries hang).
    fn schedule_wedge(&self, t0: Instant, hang: &Hang, pool: &SharedPool, log: &Arc<HolderLog>) {
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

/// What a load recorded: requests started, attempts ended, and the
/// waiting count sampled every [`SAMPLE`] (µs from the start, count).
type Recorded = (u64, Vec<Attempt>, Vec<(u64, usize)>);

/// The workers of a closed loop, as they report to the driver.
#[derive(Default)]
struct Workers {
    /// The next attempt's id.
    next: AtomicU64,
    /// Each worker's attempt in progress, if any, to count the waiting
    /// ones for a pool that keeps no count of its own.
    ///
    /// # Invariant
    /// Held to read or write only; never across an `.await`.
    current: Mutex<HashMap<usize, Grant>>,
    /// # Invariant
    /// Held to push or take only; never across an `.await`.
    attempts: Mutex<Vec<Attempt>>,
}

impl Workers {
    fn current(&self, worker: usize, grant: Option<Grant>) {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        match grant {
            Some(grant) => current.insert(worker, grant),
            None => current.remove(&worker),
        };
    }

    /// Workers whose attempt waits for a connection now.
    fn waiting(&self) -> usize {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current
            .values()
            .filter(|g| g.granted_at().is_none())
            .count()
    }

    fn record(&self, attempt: Attempt) {
        (self.attempts.lock().unwrap_or_else(|p| p.into_inner())).push(attempt);
    }

    fn take(&self) -> Vec<Attempt> {
        std::mem::take(&mut *self.attempts.lock().unwrap_or_else(|p| p.into_inner()))
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
    grants: Mutex<Vec<Grant>>,
    /// Holders whose query failed (stopped on the server).
    stopped: AtomicU64,
    /// Holders whose query finished.
    finished: AtomicU64,
}

impl HolderLog {
    /// The holders' fate at the end of the run; `revoked`: the pool's count.
    fn read(&self, revoked: Option<u64>) -> Holders {
        let grants = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        let granted = grants.iter().filter(|g| g.granted_at().is_some()).count() as u64;
        // Relaxed: the tasks that counted are done or stuck for good.
        let stopped = self.stopped.load(Ordering::Relaxed);
        let finished = self.finished.load(Ordering::Relaxed);
        Holders {
            started: grants.len() as u64,
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
async fn hold(pool: SharedPool, log: Arc<HolderLog>, id: u64) {
    // One request for every try, its grant counted nowhere: a holder is not
    // a request the driver counts waiting. The grant is recorded when one
    // comes.
    let req = Request::new(id, Priority::Normal, None, None, Grant::new());
    let grant = req.grant().clone();
    log.grants
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(grant.clone());
    loop {
        let result = pool.serve(&req).await;
        if grant.granted_at().is_none() {
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

/// What each request of `stream` carries, drawn from the stream's
/// sequence: its key, then its priority.
fn client(stream: Stream) -> impl FnMut(&mut Rng) -> Client + Send + 'static {
    move |rng| {
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
        Client { priority, key }
    }
}

/// An attempt as the generator recorded it, in the lab's terms; times
/// from `t0`.
fn attempt(record: Record<Client, PoolError>, t0: Instant) -> Attempt {
    let at = |t: Instant| micros(t.saturating_duration_since(t0));
    Attempt {
        id: record.id,
        request: record.request,
        retry: record.retry,
        critical: record.client.priority == Priority::Critical,
        key: record.client.key,
        start_us: at(record.start),
        deadline_us: at(record.deadline),
        end_us: at(record.end),
        // Read now: the pre-fix model grants connections to requests
        // long gone, after their attempt ended.
        granted_us: record.granted_at().map(at),
        result: match record.ended {
            Ended::Completed => AttemptResult::Completed,
            Ended::Abandoned => AttemptResult::Abandoned,
            Ended::Failed(e) => AttemptResult::Failed(e),
        },
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}
