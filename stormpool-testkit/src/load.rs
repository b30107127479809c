//! A closed-loop load: N tasks, each acquiring, querying and releasing in a
//! loop, recording what every request saw, so a fault test can tell the
//! requests caught by the fault from those served after it.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// What one request ended with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The query succeeded on this server session (backend pid, connection id).
    Ok {
        /// The server's id of the session that ran the query.
        session: u64,
    },
    /// The pool did not hand the request a connection.
    AcquireFailed {
        /// The error, as displayed with its sources.
        error: String,
    },
    /// The request got a connection, and the query on it failed.
    QueryFailed {
        /// The error, as displayed with its sources.
        error: String,
        /// Whether the adapter's classifier calls it a connection error.
        connection_error: bool,
    },
}

/// What the work closure reports for one request.
#[derive(Clone, Debug)]
pub struct Step {
    /// When the pool handed the request its connection.
    pub acquired: Option<Instant>,
    /// How it ended.
    pub outcome: Outcome,
}

/// One request of the load.
#[derive(Clone, Debug)]
pub struct Event {
    /// The task that made it.
    pub task: usize,
    /// When it started (called the pool).
    pub started: Instant,
    /// Its acquire deadline.
    pub deadline: Instant,
    /// When the pool handed it a connection, if it did.
    pub acquired: Option<Instant>,
    /// When it finished.
    pub ended: Instant,
    /// How it ended.
    pub outcome: Outcome,
}

impl Event {
    /// Whether the query succeeded.
    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, Outcome::Ok { .. })
    }

    /// How long after its deadline the acquire returned (zero when on time):
    /// the hand-off instant, or the end of a failed acquire.
    pub fn acquire_overshoot(&self) -> Duration {
        let returned = match self.outcome {
            Outcome::AcquireFailed { .. } => self.ended,
            _ => self.acquired.unwrap_or(self.ended),
        };
        returned.saturating_duration_since(self.deadline)
    }
}

/// How the load behaves.
#[derive(Clone, Copy, Debug)]
pub struct LoadConfig {
    /// Concurrent tasks. Default: 32.
    pub tasks: usize,
    /// Each request's acquire timeout. Default: 1 s.
    pub acquire_timeout: Duration,
    /// A pause after each success, so the load is not a busy loop. Default: 1 ms.
    pub think: Duration,
    /// A pause after each failure, so a test does not hammer a server that
    /// is down. Default: 10 ms.
    pub after_failure: Duration,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            tasks: 32,
            acquire_timeout: Duration::from_secs(1),
            think: Duration::from_millis(1),
            after_failure: Duration::from_millis(10),
        }
    }
}

/// A running load; [`stop`](Load::stop) ends it and returns its events.
pub struct Load {
    stop: Arc<AtomicBool>,
    events: Arc<Mutex<Vec<Event>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `config.tasks` tasks, each calling `work(task, deadline)` in a
    /// loop until stopped. `work` acquires (with the given deadline), queries,
    /// releases, and says how it went.
    pub fn start<F, Fut>(config: LoadConfig, work: F) -> Load
    where
        F: Fn(usize, Instant) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Step> + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let events = Arc::new(Mutex::new(Vec::new()));
        let work = Arc::new(work);
        let tasks = (0..config.tasks)
            .map(|task| {
                let (stop, events, work) = (stop.clone(), events.clone(), work.clone());
                tokio::spawn(async move {
                    // Relaxed: a stop flag; lateness by one iteration is fine.
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let deadline = started + config.acquire_timeout;
                        let step = work(task, deadline).await;
                        let ok = matches!(step.outcome, Outcome::Ok { .. });
                        let event = Event {
                            task,
                            started,
                            deadline,
                            acquired: step.acquired,
                            ended: Instant::now(),
                            outcome: step.outcome,
                        };
                        events.lock().unwrap_or_else(|p| p.into_inner()).push(event);
                        let pause = if ok {
                            config.think
                        } else {
                            config.after_failure
                        };
                        tokio::time::sleep(pause).await;
                    }
                })
            })
            .collect();
        Load {
            stop,
            events,
            tasks,
        }
    }

    /// The number of requests finished so far.
    pub fn finished(&self) -> usize {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The events so far, while the load goes on.
    pub fn report_so_far(&self) -> Report {
        let events = self
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Report { events }
    }

    /// Stops the tasks (each finishes its current request) and returns every
    /// request's event, in the order they finished.
    pub async fn stop(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        let events = std::mem::take(&mut *self.events.lock().unwrap_or_else(|p| p.into_inner()));
        Report { events }
    }
}

/// The events of a load, with the questions fault tests ask of them.
#[derive(Debug)]
pub struct Report {
    /// Every request, in the order they finished.
    pub events: Vec<Event>,
}

impl Report {
    /// The requests that got a connection and whose query failed.
    pub fn query_failures(&self) -> impl Iterator<Item = &Event> {
        self.events
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::QueryFailed { .. }))
    }

    /// The requests the pool handed no connection.
    pub fn acquire_failures(&self) -> impl Iterator<Item = &Event> {
        self.events
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::AcquireFailed { .. }))
    }

    /// The successful requests.
    pub fn successes(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| e.is_ok())
    }

    /// The latest any acquire returned after its deadline.
    pub fn max_acquire_overshoot(&self) -> Duration {
        self.events
            .iter()
            .map(Event::acquire_overshoot)
            .max()
            .unwrap_or_default()
    }

    /// The first success that ended after `t`.
    pub fn first_success_after(&self, t: Instant) -> Option<&Event> {
        self.successes()
            .filter(|e| e.ended > t)
            .min_by_key(|e| e.ended)
    }

    /// The server sessions of the successful requests that started after `t`.
    pub fn sessions_after(&self, t: Instant) -> BTreeSet<u64> {
        self.successes()
            .filter(|e| e.started > t)
            .filter_map(|e| match e.outcome {
                Outcome::Ok { session } => Some(session),
                _ => None,
            })
            .collect()
    }

    /// Requests that held a connection at some point of `[from, to]`.
    pub fn holding_during(&self, from: Instant, to: Instant) -> usize {
        self.events
            .iter()
            .filter(|e| e.acquired.is_some_and(|a| a <= to) && e.ended >= from)
            .count()
    }

    /// A one-line summary for the test's output.
    pub fn summary(&self) -> String {
        format!(
            "{} requests: {} ok, {} acquire failures, {} query failures, max acquire overshoot {:?}",
            self.events.len(),
            self.successes().count(),
            self.acquire_failures().count(),
            self.query_failures().count(),
            self.max_acquire_overshoot()
        )
    }
}

/// Polls `cond` every 5 ms until it holds (the instant it did) or `timeout`
/// passes (`None`).
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Instant> {
    let until = Instant::now() + timeout;
    loop {
        if cond() {
            return Some(Instant::now());
        }
        if Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Displays an error with its chain of sources, `a: b: c`.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
