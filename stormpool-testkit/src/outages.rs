//! Outage scenarios shared by the database adapters' tests, with the pool's
//! defaults: stuck leases the watchdog must stop on the server, a restart
//! under load, and a server that accepts connections and never answers.
//!
//! Like [`scenarios`](crate::scenarios), each builds its own pool, injects
//! one fault, undoes it through drop guards (also when it panics), prints
//! its measurements on `measured:` lines and asserts. Time bounds are
//! generous multiples of what the pool promises; the figures themselves are
//! printed. Run them one at a time ([`serial`](crate::serial)).

use std::sync::Arc;
use std::time::{Duration, Instant};

use stormpool::{AcquireError, AcquireOptions, Conn, Health, Pool, Reason};

use crate::load::{chain, Load, LoadConfig, Outcome, Step};
use crate::proxy::{Fault, FaultProxy};
use crate::scenarios::{acquire_error, Harness};
use crate::statements::StatementHarness;

/// The pool's default maintenance tick.
const TICK: Duration = Duration::from_millis(10);

/// How late past its deadline a request may end in these tests. The pool
/// promises its deadline (plus the adapters' 25 ms client-side grace for a
/// statement); the rest is room for a shared 2-core machine that does not
/// schedule a task for tens of milliseconds now and then. The measured
/// figures are printed.
const LATE: Duration = Duration::from_millis(250);

/// `n` holders without a deadline each run a 30 s statement (blocked on
/// what the observer holds, where the adapter can) and never give up (a job
/// stuck behind a lock). With the defaults (no `min_idle`, nobody
/// waiting) plus `max_hold` and room for `n` orphans, the watchdog revokes
/// every lease and its cancel stops every statement on the server: all `n`
/// are gone from the server within `max_hold` and a tick of their acquire
/// (asserted within a generous multiple), and each holder learns that its
/// lease was revoked.
pub async fn stuck_leases_are_cancelled<H: StatementHarness>(url: &str, n: usize) {
    let max_hold = Duration::from_millis(500);
    let tag = "stormpool_stuck";
    let pool = Pool::builder(H::manager(url, tag))
        .max_size(n)
        .max_hold(Some(max_hold))
        .max_orphans(n)
        .build()
        .expect("pool config");
    let mut observer = H::observer(url).await;
    H::hold_for(&mut observer).await;
    let mut holders = Vec::new();
    let mut sessions = Vec::new();
    for i in 0..n {
        let mut conn = pool.get().await.unwrap_or_else(|e| {
            panic!("acquire: {}", acquire_error(&e));
        });
        let acquired = Instant::now();
        let session = H::session(&mut conn).await.expect("session query");
        let marker = format!("stormpool_stuck_{i}");
        sessions.push((session, marker.clone(), acquired));
        holders.push(tokio::spawn(async move {
            // Stopped by the cancel: an error, or an early answer (a lock
            // wait cancelled returns NULL).
            let _ = H::block(&mut conn, 30.0, &marker).await;
            (
                acquired.elapsed() < Duration::from_secs(20),
                Conn::is_revoked(&conn),
            )
        }));
    }
    let mut gone_after = Vec::new();
    for (session, marker, acquired) in &sessions {
        let until = *acquired + Duration::from_secs(10);
        loop {
            if !H::is_running(&mut observer, *session, marker).await {
                gone_after.push(acquired.elapsed());
                break;
            }
            assert!(
                Instant::now() < until,
                "a stuck statement ran on for 10 s past its acquire: {:?}",
                pool.status()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let mut revoked = 0;
    for holder in holders {
        let (stopped, was_revoked) = holder.await.expect("holder");
        assert!(stopped, "a stuck statement ran its course");
        revoked += usize::from(was_revoked);
    }
    let slowest = gone_after.iter().max().copied().unwrap_or_default();
    let status = pool.status();
    eprintln!(
        "measured: {n} stuck statements, max_hold {max_hold:?}: all gone from the server, the \
         last {slowest:?} after its acquire; {} revoked, {revoked} holders saw it",
        status.counters.revoked
    );
    assert_eq!(status.counters.revoked, n as u64, "{status:?}");
    assert_eq!(revoked, n);
    if n == 1 {
        assert!(
            slowest <= 2 * (max_hold + TICK),
            "the stuck statement ran on for {slowest:?}"
        );
    }
}

/// A server that accepts connections and never answers (the fault proxy
/// blackholes them): requests with 50 ms deadlines arriving every 5 ms are
/// neither shed nor called overload: each fails with
/// `AcquireError::ConnectTimeout` by its deadline, health is
/// not healthy two maintenance ticks after the first request and unhealthy
/// (`DatabaseNotResponding`) a few detector intervals later.
pub async fn silent_server<H: Harness>(url: &str) {
    let upstream = crate::db::server_addr(url, 0).expect("server address");
    let proxy = FaultProxy::start(upstream).await.expect("proxy");
    proxy.set_fault(Fault::Blackhole);
    let silent = crate::db::with_addr(url, proxy.local_addr());
    let pool = Pool::builder(H::manager(&silent, "stormpool_silent"))
        .build()
        .expect("pool config");
    let deadline = Duration::from_millis(50);
    let start = Instant::now();
    let requests: Vec<_> = (0..40u32)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until((start + Duration::from_millis(5) * i).into()).await;
                let asked = Instant::now();
                let result = pool
                    .get_with(AcquireOptions::new().deadline((asked + deadline).into()))
                    .await
                    .map(drop);
                (asked.elapsed(), result)
            })
        })
        .collect();
    // Health as a probe sees it, from the first request on.
    let mut after_two_ticks = None;
    let mut after_window = None;
    while start.elapsed() < Duration::from_millis(400) {
        let at = start.elapsed();
        let health = pool.health();
        if at >= 2 * TICK && after_two_ticks.is_none() {
            after_two_ticks = Some((at, health.clone()));
        }
        if at >= Duration::from_millis(300) + TICK && after_window.is_none() {
            after_window = Some((at, health));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut errors = std::collections::BTreeMap::<String, usize>::new();
    let mut slowest = Duration::ZERO;
    for request in requests {
        let (took, result) = request.await.expect("request");
        slowest = slowest.max(took);
        match result {
            Ok(()) => panic!("a silent server served a request"),
            Err(e) => {
                assert!(!e.is_overload(), "called overload: {}", acquire_error(&e));
                assert!(
                    matches!(e, AcquireError::ConnectTimeout),
                    "not a connect timeout: {}",
                    acquire_error(&e)
                );
                *errors.entry(chain(&e)).or_default() += 1;
            }
        }
    }
    let (t1, early) = after_two_ticks.expect("sampled");
    let (t2, late) = after_window.expect("sampled");
    eprintln!(
        "measured: silent server: {errors:?}, slowest {slowest:?}; health at {t1:?}: {early}; \
         at {t2:?}: {late}"
    );
    assert!(slowest <= deadline + LATE, "{slowest:?}");
    assert!(!early.is_healthy(), "{early}");
    assert!(
        matches!(&late, Health::Unhealthy(r) if r.iter().any(|r| matches!(r, Reason::DatabaseNotResponding { .. }))),
        "{late}"
    );
    let counters = pool.status().counters;
    assert_eq!((counters.shed, counters.wedged), (0, 0));
}

/// What one restart under load measured.
#[derive(Clone, Copy, Debug)]
pub struct RestartRun {
    /// From the server accepting connections again to the first success.
    pub first_success: Duration,
    /// `AcquireError::Connect` returned to requests that started after the
    /// first success.
    pub connect_errors_after: usize,
    /// The latest any request finished after its deadline.
    pub max_overshoot: Duration,
}

/// A restart under 1.5x load with the pool's defaults: 16 connections, 24
/// workers in a closed loop running a 2 ms statement with a 50 ms deadline,
/// the server stopped and started `runs` times. Returns each run's figures
/// after asserting, per run, that no `Connect` error reached a request
/// started after the first success and that no request finished long past
/// its deadline (250 ms), and that the median time to the first success
/// after the server accepts is within a generous multiple of
/// `connect_backoff_min` (50 ms).
pub async fn restart_under_storm<H: StatementHarness>(url: &str, runs: usize) -> Vec<RestartRun> {
    let _restore = H::SERVER.guard();
    let mut measured = Vec::new();
    for run in 0..runs {
        let pool = Pool::builder(H::manager(url, "stormpool_restart_storm"))
            .max_size(16)
            .build()
            .expect("pool config");
        let deadline = Duration::from_millis(50);
        let config = LoadConfig {
            tasks: 24,
            acquire_timeout: deadline,
            think: Duration::ZERO,
            after_failure: Duration::from_millis(1),
        };
        let load = {
            let pool = Arc::new(pool.clone());
            Load::start(config, move |_, deadline| {
                let pool = pool.clone();
                async move { statement::<H>(&pool, deadline).await }
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let restart = tokio::task::spawn_blocking(move || H::SERVER.restart())
            .await
            .expect("restart task")
            .expect("restart");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let report = load.stop().await;
        let first = report
            .first_success_after(restart.down)
            .expect("no success after the restart");
        let first_success = first.ended.saturating_duration_since(restart.up);
        let connect_errors_after = report
            .acquire_failures()
            .filter(|e| e.started >= first.ended)
            .filter(|e| matches!(&e.outcome, Outcome::AcquireFailed { error } if error.starts_with("Connect")))
            .count();
        let max_overshoot = report
            .events
            .iter()
            .map(|e| e.ended.saturating_duration_since(e.deadline))
            .max()
            .unwrap_or_default();
        let figures = RestartRun {
            first_success,
            connect_errors_after,
            max_overshoot,
        };
        eprintln!(
            "measured: restart {run}: {:?} down {:?}, up {:?} later; {figures:?}; {}",
            H::SERVER,
            restart.down - restart.requested,
            restart.up - restart.down,
            report.summary()
        );
        assert_eq!(connect_errors_after, 0, "stale connect errors");
        assert!(
            max_overshoot <= LATE,
            "a request finished {max_overshoot:?} past its deadline"
        );
        measured.push(figures);
    }
    let mut firsts: Vec<_> = measured.iter().map(|r| r.first_success).collect();
    firsts.sort();
    let median = firsts[firsts.len() / 2];
    eprintln!("measured: first success after the server accepts: median {median:?} of {firsts:?}");
    assert!(
        median <= Duration::from_millis(500),
        "median first success {median:?}"
    );
    measured
}

/// One request of the storm: acquire by `deadline`, run a 2 ms statement.
/// A failed acquire is recorded with its variant first (`Connect: ...`).
async fn statement<H: StatementHarness>(pool: &Pool<H::M>, deadline: Instant) -> Step {
    let options = AcquireOptions::new().deadline(deadline.into());
    let mut conn = match pool.get_with(options).await {
        Ok(conn) => conn,
        Err(e) => {
            let kind = match &e {
                AcquireError::Connect(_) => "Connect",
                AcquireError::ConnectTimeout => "ConnectTimeout",
                AcquireError::Timeout => "Timeout",
                _ => "Other",
            };
            return Step {
                acquired: None,
                outcome: Outcome::AcquireFailed {
                    error: format!("{kind}: {}", acquire_error(&e)),
                },
            };
        }
    };
    let acquired = Some(Instant::now());
    let outcome = match H::sleep(&mut conn, 0.002, "stormpool_storm").await {
        Ok(()) => Outcome::Ok { session: 0 },
        Err(e) => Outcome::QueryFailed {
            error: e.message,
            connection_error: !e.timed_out,
        },
    };
    Step { acquired, outcome }
}

/// A cancellation storm with taints, detaches and stuck leases: 32 tasks
/// for 3 s on a pool of 8 with `max_hold` 200 ms and `max_orphans` 2, each
/// request doing one of: a short statement; a long one given up after 5 ms
/// (the pool cancels and drains it); the same, then tainting the
/// connection (closed, its statement cancelled); taking the connection out
/// with `Conn::detach` (kept open to the end, as the caller's); holding a
/// long statement past `max_hold` (revoked, an orphan until let go). The
/// server's sessions of the pool, sampled every 5 ms, never exceed
/// `max_size + max_orphans` plus the detached connections still open and
/// the adapter's side sessions (cancels).
pub async fn sessions_stay_within_bound<H: StatementHarness>(url: &str) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const MAX_SIZE: usize = 8;
    const MAX_ORPHANS: usize = 2;
    let tag = "stormpool_bound";
    let pool = Pool::builder(H::manager(url, tag))
        .max_size(MAX_SIZE)
        .max_hold(Some(Duration::from_millis(200)))
        .max_orphans(MAX_ORPHANS)
        .build()
        .expect("pool config");
    let mut observer = H::observer(url).await;
    H::hold_for(&mut observer).await;
    let detached = Arc::new(std::sync::Mutex::new(Vec::new()));
    let detached_count = Arc::new(AtomicUsize::new(0));
    let end = Instant::now() + Duration::from_secs(3);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..32u64 {
        let (pool, detached, detached_count) =
            (pool.clone(), detached.clone(), detached_count.clone());
        tasks.spawn(async move {
            let mut actions = [0u32; 5];
            let mut rng = stormpool::clock::Rng::with_seed(task + 1);
            while Instant::now() < end {
                let options = AcquireOptions::new()
                    .deadline((Instant::now() + Duration::from_millis(500)).into());
                let Ok(mut conn) = pool.get_with(options).await else {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                };
                let action = (rng.next_u64() % 100) as u32;
                let marker = "stormpool_bound_storm";
                match action {
                    0..=39 => {
                        let _ = H::sleep(&mut conn, 0.001, marker).await;
                        actions[0] += 1;
                    }
                    40..=74 => {
                        let sleeping = H::block(&mut conn, 1.0, marker);
                        let _ = tokio::time::timeout(Duration::from_millis(5), sleeping).await;
                        if action >= 60 {
                            Conn::taint(conn);
                            actions[2] += 1;
                        } else {
                            actions[1] += 1;
                        }
                    }
                    75..=79 => {
                        // The caller's own from now on; counted apart.
                        detached_count.fetch_add(1, Ordering::SeqCst);
                        let own = Conn::detach(conn);
                        detached.lock().unwrap_or_else(|p| p.into_inner()).push(own);
                        actions[3] += 1;
                    }
                    _ => {
                        // Stuck past max_hold: revoked, its statement
                        // cancelled, an orphan until this lets go.
                        let _ = H::block(&mut conn, 1.0, marker).await;
                        actions[4] += 1;
                    }
                }
            }
            actions
        });
    }
    let bound = MAX_SIZE + MAX_ORPHANS + H::SIDE_SESSIONS;
    let (mut samples, mut worst, mut worst_status) = (0, 0usize, None);
    while Instant::now() < end {
        // Read before the count: a detach between the two only lowers it.
        let own = detached_count.load(Ordering::SeqCst);
        let sessions = H::sessions(&mut observer, tag).await;
        let pools = sessions.saturating_sub(own);
        samples += 1;
        if pools > worst {
            worst = pools;
            worst_status = Some(pool.status());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut actions = [0u32; 5];
    while let Some(done) = tasks.join_next().await {
        for (total, n) in actions.iter_mut().zip(done.expect("storm task")) {
            *total += n;
        }
    }
    let c = pool.status().counters;
    eprintln!(
        "measured: {samples} samples, at most {worst} of the pool's sessions on the server \
         (bound {bound}); actions [short, abandoned, tainted, detached, stuck] {actions:?}; \
         cancelled on return {}, revoked {}, closed tainted {}, detached {}",
        c.cancelled_on_return, c.revoked, c.closed_tainted, c.detached
    );
    assert!(
        worst <= bound,
        "{worst} sessions above the bound {bound}: {worst_status:?}"
    );
    assert!(
        actions.iter().all(|n| *n > 0),
        "every action ran: {actions:?}"
    );
    assert!(c.revoked > 0 && c.cancelled_on_return > 0 && c.closed_tainted > 0);
    drop(detached);
}

/// Every backend of a warm pool frozen (SIGSTOP) for 3 s under 1.5x load,
/// with the pool's defaults: 16 connections, 24 workers in a closed loop
/// running a 2 ms statement with a 50 ms deadline. Every request is done or
/// failed by its deadline plus the grace (a statement on a frozen session is
/// bounded on the client too), and no connection of a frozen session is
/// handed out once the freeze has begun. Where sessions share one server
/// process (MariaDB), the whole server is frozen.
pub async fn frozen_under_load<H: StatementHarness>(url: &str) {
    let _restore = H::SERVER.guard();
    let pool = Pool::builder(H::manager(url, "stormpool_frozen_load"))
        .max_size(16)
        .build()
        .expect("pool config");
    // Sixteen sessions, and which pool connection each one is.
    let mut warm = Vec::new();
    let mut frozen_ids = std::collections::BTreeSet::new();
    let mut pids = std::collections::BTreeSet::new();
    for _ in 0..16 {
        let mut conn = pool.get().await.unwrap_or_else(|e| {
            panic!("warming the pool failed: {}", acquire_error(&e));
        });
        let session = H::session(&mut conn).await.expect("warm-up query");
        frozen_ids.insert(Conn::id(&conn));
        pids.extend(H::freeze_target(session));
        warm.push(conn);
    }
    drop(warm);
    let handed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let load = {
        let (pool, handed) = (Arc::new(pool.clone()), handed.clone());
        let config = LoadConfig {
            tasks: 24,
            acquire_timeout: Duration::from_millis(50),
            think: Duration::ZERO,
            after_failure: Duration::from_millis(1),
        };
        Load::start(config, move |_, deadline| {
            let (pool, handed) = (pool.clone(), handed.clone());
            async move {
                let options = AcquireOptions::new().deadline(deadline.into());
                let mut conn = match pool.get_with(options).await {
                    Ok(conn) => conn,
                    Err(e) => {
                        return Step {
                            acquired: None,
                            outcome: Outcome::AcquireFailed {
                                error: acquire_error(&e),
                            },
                        }
                    }
                };
                let acquired = Instant::now();
                handed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((acquired, Conn::id(&conn)));
                let outcome = match H::sleep(&mut conn, 0.002, "stormpool_frozen_load").await {
                    Ok(()) => Outcome::Ok { session: 0 },
                    Err(e) => Outcome::QueryFailed {
                        error: e.message,
                        connection_error: !e.timed_out,
                    },
                };
                Step {
                    acquired: Some(acquired),
                    outcome,
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (froze, thawed) = {
        let _frozen: Vec<_> = pids
            .iter()
            .map(|&pid| crate::server::freeze(pid).expect("SIGSTOP"))
            .collect();
        // One `kill` each: the last process is stopped now.
        let froze = Instant::now();
        tokio::time::sleep(Duration::from_secs(3)).await;
        (froze, Instant::now())
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = load.stop().await;
    let late = report
        .events
        .iter()
        .map(|e| e.ended.saturating_duration_since(e.deadline))
        .max()
        .unwrap_or_default();
    // Replies the server sent before it stopped still come in: a
    // connection whose statement they complete goes back in good order and
    // on to the next request within a few milliseconds; only a probe could
    // tell, and the window is shorter than the default `check_interval`.
    let settle = froze + Duration::from_millis(5);
    let frozen_after: Vec<Duration> = handed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(at, id)| *at >= froze && *at < thawed && frozen_ids.contains(id))
        .map(|(at, _)| *at - froze)
        .collect();
    eprintln!("frozen hand-offs after the freeze began: {frozen_after:?}");
    let frozen_handed = frozen_after
        .iter()
        .filter(|after| froze + **after >= settle)
        .count();
    let during = report
        .events
        .iter()
        .filter(|e| e.started >= froze && e.started < thawed)
        .count();
    eprintln!(
        "measured: {} processes frozen for 3 s under load: latest end {late:?} past a \
         deadline; {frozen_handed} frozen connections handed out; {during} requests during \
         the freeze; {}",
        pids.len(),
        report.summary()
    );
    assert!(late <= LATE, "a request ended {late:?} past its deadline");
    assert_eq!(frozen_handed, 0, "frozen connections were handed out");
}
