//! An open-loop load: Poisson arrivals over phases of load, each request a
//! task with its own deadline, abandoned by its client at that deadline
//! whatever the pool does, and a record of what every attempt saw.
//!
//! Open loop is the point: clients keep arriving whatever the pool does, as
//! real ones do. A closed-loop load ([`load`](crate::load)) slows its own
//! clients down when the pool stalls, and so hides a timeout storm.
//!
//! The load knows nothing of pools: the caller's `work` gets an
//! [`Attempt`] (its deadline, what its client carries, a [`Grant`] to
//! report the hand-off on) and says how it went. The core's storm tests and
//! the storm lab both drive their pools through it; under tokio's paused
//! clock a load is deterministic for its seeds.
//!
//! ```
//! use std::time::Duration;
//! use stormpool::clock::Rng;
//! use stormpool_testkit::open_loop::{Arrivals, OpenLoop, Phase, Plan};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let plan = Plan {
//!     start: tokio::time::Instant::now(),
//!     phases: vec![Phase { load: 0.5, duration: Duration::from_secs(1) }],
//!     deadline: Duration::from_millis(50),
//!     retries: 0,
//! };
//! // The work: a "pool" that hands over at once and serves in 2 ms.
//! let load = OpenLoop::new(plan, |attempt| async move {
//!     attempt.grant.granted();
//!     tokio::time::sleep(Duration::from_millis(2)).await;
//!     Ok::<(), ()>(())
//! });
//! let arrivals = Arrivals::of_capacity(1000.0);
//! load.arrivals(arrivals, Rng::with_seed(7), |_| ()).await;
//! load.ended().await;
//! let records = load.take_records();
//! assert!((400..600).contains(&records.len()), "about 500 arrivals");
//! assert!(records.iter().all(|r| r.ended.is_completed()));
//! # }
//! ```

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use stormpool::clock::Rng;
use tokio::sync::Notify;
use tokio::time::{sleep_until, timeout_at, Instant};

/// A stretch of constant load.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Phase {
    /// Offered load, as a multiple of the capacity (see [`Arrivals`]).
    pub load: f64,
    /// How long the phase lasts.
    pub duration: Duration,
}

/// The shape of a load: its phases, back to back from `start`, and what
/// every request does when an attempt fails.
#[derive(Clone, Debug)]
pub struct Plan {
    /// When the first phase starts.
    pub start: Instant,
    /// The phases, in order.
    pub phases: Vec<Phase>,
    /// Each attempt's deadline, from its start: its client abandons it then.
    pub deadline: Duration,
    /// How many times a request retries a failed attempt, at once and
    /// each time with a fresh deadline, while the load lasts (an attempt
    /// that ends after the last phase is not retried).
    pub retries: u32,
}

impl Plan {
    /// When the last phase ends.
    pub fn end(&self) -> Instant {
        self.start + self.phases.iter().map(|p| p.duration).sum::<Duration>()
    }
}

/// One arrival process: how a phase's load becomes a rate of arrivals.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Arrivals {
    /// Requests per second at load 1.0: what the pool can serve.
    pub capacity: f64,
    /// This process's share of the load (several processes can split a
    /// load between them).
    pub share: f64,
    /// Requests per arrival: more than 1 is a burst arriving at once.
    pub burst: u32,
}

impl Arrivals {
    /// All of the load at `capacity` requests per second, one request per
    /// arrival.
    pub fn of_capacity(capacity: f64) -> Arrivals {
        Arrivals {
            capacity,
            share: 1.0,
            burst: 1,
        }
    }

    /// Arrivals per second during a phase of `load`.
    fn rate(&self, load: f64) -> f64 {
        load * self.capacity * self.share / f64::from(self.burst)
    }
}

/// One attempt of a request, as the work sees it.
#[derive(Debug)]
pub struct Attempt<C> {
    /// The attempt's number in the load, unique, counted from 0 in the
    /// order attempts start.
    pub id: u64,
    /// The request's number in the load, counted from 0.
    pub request: u64,
    /// 0 for the first attempt, then 1, 2, ... for the retries.
    pub retry: u32,
    /// What the request's client carries (its priority, its key, ...).
    pub client: C,
    /// When the client abandons the attempt.
    pub deadline: Instant,
    /// Where the work reports the moment the pool hands it a connection.
    pub grant: Grant,
}

/// How an attempt ended, as its client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended<E> {
    /// The work finished in time.
    Completed,
    /// The client gave up at the deadline.
    Abandoned,
    /// The work returned an error in time.
    Failed(E),
}

impl<E> Ended<E> {
    /// Whether the work finished in time.
    pub fn is_completed(&self) -> bool {
        matches!(self, Ended::Completed)
    }
}

/// What one attempt saw.
#[derive(Clone, Debug)]
pub struct Record<C, E> {
    /// The attempt's number ([`Attempt::id`]).
    pub id: u64,
    /// Its request's number.
    pub request: u64,
    /// 0 for the first attempt, then 1, 2, ... for the retries.
    pub retry: u32,
    /// What its client carried.
    pub client: C,
    /// When it started.
    pub start: Instant,
    /// When its client gives up.
    pub deadline: Instant,
    /// When it ended for its client.
    pub end: Instant,
    /// How it ended.
    pub ended: Ended<E>,
    grant: Grant,
}

impl<C, E> Record<C, E> {
    /// When the pool handed the attempt a connection, if it has by now:
    /// read when asked, since a pool may hand one over after the client
    /// gave up.
    pub fn granted_at(&self) -> Option<Instant> {
        self.grant.granted_at()
    }
}

/// The moment a pool hands an attempt its connection.
///
/// A grant made by the load also counts its attempt as waiting (see
/// [`OpenLoop::waiting`]) until it is granted or ends.
#[derive(Clone, Debug, Default)]
pub struct Grant(Arc<GrantState>);

#[derive(Debug, Default)]
struct GrantState {
    at: OnceLock<Instant>,
    /// Whether the attempt was already taken off the waiting count.
    left: AtomicBool,
    waiting: Option<Arc<AtomicUsize>>,
}

impl Grant {
    /// A grant counted nowhere, for work done outside a load (a warm-up, a
    /// job without a deadline).
    pub fn new() -> Grant {
        Grant::default()
    }

    /// A grant counted in `waiting` until it is granted or left.
    fn counted(waiting: Arc<AtomicUsize>) -> Grant {
        // Relaxed: the count is a gauge for whoever samples it, nothing more.
        waiting.fetch_add(1, Ordering::Relaxed);
        Grant(Arc::new(GrantState {
            waiting: Some(waiting),
            ..GrantState::default()
        }))
    }

    /// The pool hands the attempt its connection now (the first call counts).
    pub fn granted(&self) {
        let _ = self.0.at.set(Instant::now());
        self.leave();
    }

    /// When the pool handed the attempt its connection, if it has.
    pub fn granted_at(&self) -> Option<Instant> {
        self.0.at.get().copied()
    }

    /// Takes the attempt off the waiting count, once.
    fn leave(&self) {
        if !self.0.left.swap(true, Ordering::Relaxed) {
            if let Some(waiting) = &self.0.waiting {
                waiting.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

type Work<C, E> =
    dyn Fn(Attempt<C>) -> Pin<Box<dyn Future<Output = Result<(), E>> + Send>> + Send + Sync;

/// A load following a [`Plan`]: start its arrival processes with
/// [`arrivals`](OpenLoop::arrivals) (or single requests with
/// [`spawn`](OpenLoop::spawn)), then read what its attempts saw. A cheap
/// handle: clones share the load.
pub struct OpenLoop<C, E> {
    shared: Arc<Shared<C, E>>,
}

impl<C, E> Clone for OpenLoop<C, E> {
    fn clone(&self) -> Self {
        OpenLoop {
            shared: self.shared.clone(),
        }
    }
}

struct Shared<C, E> {
    plan: Plan,
    end: Instant,
    work: Box<Work<C, E>>,
    next_request: AtomicU64,
    next_attempt: AtomicU64,
    /// Attempts started and neither granted nor ended.
    waiting: Arc<AtomicUsize>,
    /// Request tasks not ended yet; `idle` is notified when it falls to 0.
    active: AtomicUsize,
    idle: Notify,
    /// # Invariant
    /// Held only to push or take; never across an `.await`.
    records: Mutex<Vec<Record<C, E>>>,
}

impl<C, E> OpenLoop<C, E>
where
    C: Clone + Send + Sync + 'static,
    E: Send + 'static,
{
    /// A load following `plan`, each attempt doing `work`: get a connection
    /// (reporting the hand-off on [`Attempt::grant`]), use it, say how it
    /// went. Nothing starts before [`arrivals`](OpenLoop::arrivals) or
    /// [`spawn`](OpenLoop::spawn).
    pub fn new<W, F>(plan: Plan, work: W) -> OpenLoop<C, E>
    where
        W: Fn(Attempt<C>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let end = plan.end();
        OpenLoop {
            shared: Arc::new(Shared {
                plan,
                end,
                work: Box::new(move |attempt| Box::pin(work(attempt))),
                next_request: AtomicU64::new(0),
                next_attempt: AtomicU64::new(0),
                waiting: Arc::new(AtomicUsize::new(0)),
                active: AtomicUsize::new(0),
                idle: Notify::new(),
                records: Mutex::new(Vec::new()),
            }),
        }
    }

    /// One Poisson arrival process over the plan's phases: each arrival
    /// starts `arrivals.burst` requests, each carrying `client(rng)`. The
    /// future ends with the last phase; await it, or spawn it to run
    /// several processes side by side.
    pub fn arrivals(
        &self,
        arrivals: Arrivals,
        mut rng: Rng,
        mut client: impl FnMut(&mut Rng) -> C + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let load = self.clone();
        async move {
            let start = load.shared.plan.start;
            // Seconds from the start, as a float: the arrival instants are
            // a function of the seed alone, whatever the phases' lengths.
            let mut phase_start = 0.0;
            for phase in &load.shared.plan.phases {
                let rate = arrivals.rate(phase.load);
                let phase_end = phase_start + phase.duration.as_secs_f64();
                let mut t = phase_start;
                while rate > 0.0 && t < phase_end {
                    // Exponential inter-arrival time; a gap crossing the
                    // phase's end is drawn again from there at the next
                    // phase's rate, which is exact for a Poisson process
                    // (it has no memory).
                    t += -(1.0 - rng.next_f64()).ln() / rate;
                    if t >= phase_end {
                        continue;
                    }
                    sleep_until(start + Duration::from_secs_f64(t)).await;
                    for _ in 0..arrivals.burst {
                        load.spawn(client(&mut rng));
                    }
                }
                phase_start = phase_end;
            }
        }
    }

    /// Starts one request now, carrying `client`.
    pub fn spawn(&self, client: C) {
        // Counted before the task exists, so that `ended` waits for it.
        self.shared.active.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(request(self.shared.clone(), client));
    }

    /// Requests started so far.
    pub fn requests(&self) -> u64 {
        self.shared.next_request.load(Ordering::Relaxed)
    }

    /// Attempts started and neither handed a connection nor ended, now.
    pub fn waiting(&self) -> usize {
        self.shared.waiting.load(Ordering::Relaxed)
    }

    /// When the load's last phase ends.
    pub fn end(&self) -> Instant {
        self.shared.end
    }

    /// The records of the attempts that ended since the last call, in the
    /// order they ended.
    pub fn take_records(&self) -> Vec<Record<C, E>> {
        std::mem::take(
            &mut *self
                .shared
                .records
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// Waits until every request started so far has ended.
    pub async fn ended(&self) {
        loop {
            let mut idle = pin!(self.shared.idle.notified());
            // Registered before the check, so a last request ending in
            // between is not missed.
            idle.as_mut().enable();
            if self.shared.active.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// One request: its attempts, retried at once while the load lasts.
async fn request<C: Clone, E>(shared: Arc<Shared<C, E>>, client: C) {
    let _active = Active(&shared);
    let request = shared.next_request.fetch_add(1, Ordering::Relaxed);
    for retry in 0..=shared.plan.retries {
        let start = Instant::now();
        let deadline = start + shared.plan.deadline;
        let id = shared.next_attempt.fetch_add(1, Ordering::Relaxed);
        let grant = Grant::counted(shared.waiting.clone());
        let attempt = Attempt {
            id,
            request,
            retry,
            client: client.clone(),
            deadline,
            grant: grant.clone(),
        };
        // The client gives up at the deadline, whatever the pool does: the
        // work's future is dropped then.
        let ended = match timeout_at(deadline, (shared.work)(attempt)).await {
            Ok(Ok(())) => Ended::Completed,
            Ok(Err(e)) => Ended::Failed(e),
            Err(_) => Ended::Abandoned,
        };
        grant.leave();
        let end = Instant::now();
        let done = ended.is_completed() || end >= shared.end;
        shared
            .records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Record {
                id,
                request,
                retry,
                client: client.clone(),
                start,
                deadline,
                end,
                ended,
                grant,
            });
        if done {
            break;
        }
    }
}

/// Counts a request task as ended when dropped, even by a panic.
struct Active<'a, C, E>(&'a Shared<C, E>);

impl<C, E> Drop for Active<'_, C, E> {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(phases: Vec<Phase>, retries: u32) -> Plan {
        Plan {
            start: Instant::now(),
            phases,
            deadline: Duration::from_millis(50),
            retries,
        }
    }

    fn phase(load: f64, millis: u64) -> Phase {
        Phase {
            load,
            duration: Duration::from_millis(millis),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn arrivals_follow_the_phases() {
        let load = OpenLoop::new(
            plan(
                vec![phase(1.0, 2_000), phase(0.0, 1_000), phase(3.0, 1_000)],
                0,
            ),
            |a: Attempt<()>| async move {
                a.grant.granted();
                Ok::<(), ()>(())
            },
        );
        let start = load.shared.plan.start;
        load.arrivals(Arrivals::of_capacity(1_000.0), Rng::with_seed(1), |_| ())
            .await;
        load.ended().await;
        let records = load.take_records();
        let between = |from: u64, to: u64| {
            let (from, to) = (
                start + Duration::from_millis(from),
                start + Duration::from_millis(to),
            );
            records
                .iter()
                .filter(|r| r.start >= from && r.start < to)
                .count()
        };
        assert!(
            (1_800..2_200).contains(&between(0, 2_000)),
            "{}",
            between(0, 2_000)
        );
        assert_eq!(between(2_000, 3_000), 0);
        assert!(
            (2_700..3_300).contains(&between(3_000, 4_000)),
            "{}",
            between(3_000, 4_000)
        );
        assert_eq!(load.requests(), records.len() as u64);
        assert_eq!(load.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_split_the_rate_and_share_a_seed() {
        let run = || async {
            let load = OpenLoop::new(plan(vec![phase(1.0, 1_000)], 0), |_: Attempt<u64>| async {
                Ok::<(), ()>(())
            });
            let arrivals = Arrivals {
                capacity: 1_000.0,
                share: 0.5,
                burst: 10,
            };
            load.arrivals(arrivals, Rng::with_seed(3), |rng| rng.next_u64() % 4)
                .await;
            load.ended().await;
            let records = load.take_records();
            records
                .iter()
                .map(|r| (r.start, r.client))
                .collect::<Vec<_>>()
        };
        let first = run().await;
        // Half the load, in bursts of 10: about 50 arrivals of 10 requests.
        assert!((300..700).contains(&first.len()), "{}", first.len());
        assert_eq!(first.len() % 10, 0);
        let again = run().await;
        let shift = again[0].0 - first[0].0;
        let shifted: Vec<_> = first.iter().map(|&(t, c)| (t + shift, c)).collect();
        assert_eq!(shifted, again, "the same seed gives the same arrivals");
    }

    #[tokio::test(start_paused = true)]
    async fn abandoned_attempts_are_retried_while_the_load_lasts() {
        // A pool that never hands anything over: every attempt is abandoned.
        let load = OpenLoop::new(plan(vec![phase(1.0, 200)], 10), |_: Attempt<()>| {
            std::future::pending::<Result<(), ()>>()
        });
        load.spawn(());
        assert_eq!(load.waiting(), 0, "the attempt starts with its task");
        tokio::task::yield_now().await;
        assert_eq!(load.waiting(), 1);
        load.ended().await;
        let records = load.take_records();
        // 50 ms deadlines: attempts end at 50, 100, 150 and 200 ms; the
        // last one ends with the load, so it is not retried, although
        // retries are left.
        let retries: Vec<u32> = records.iter().map(|r| r.retry).collect();
        assert_eq!(retries, [0, 1, 2, 3]);
        assert!(records.iter().all(|r| r.ended == Ended::Abandoned));
        assert!(records.iter().all(|r| r.granted_at().is_none()));
        assert_eq!(load.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_grant_after_the_deadline_is_still_seen() {
        // The work goes on in its own task after its client gave up, as a
        // request's server-side work may.
        let load = OpenLoop::new(
            plan(vec![phase(1.0, 100)], 0),
            |a: Attempt<()>| async move {
                let grant = a.grant.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(80)).await;
                    grant.granted();
                })
                .await
                .map_err(|_| ())
            },
        );
        load.spawn(());
        load.ended().await;
        let records = load.take_records();
        assert_eq!(records[0].ended, Ended::Abandoned);
        assert_eq!(records[0].granted_at(), None);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let granted = records[0].granted_at().expect("granted later");
        assert!(granted > records[0].deadline);
    }
}
