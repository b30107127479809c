//! The live MySQL backend (`--mysql-url`, MariaDB): every request waits
//! for the service time on the server, `SELECT GET_LOCK('stormlab_sleep',
//! <service>) /* stormlab req=N */`, for a lock a connection of the lab's
//! holds for the whole run; the process list is sampled from a side
//! connection.
//!
//! # Why not `SLEEP()`
//!
//! MariaDB's `SLEEP()` waits on one server-wide mutex shared by every
//! sleeping statement, and stopping a statement (`KILL QUERY`, or the
//! server's own `max_statement_time` timer) try-locks its wait mutex for up
//! to 2 s (`THD::awake`). With a dozen statements sleeping at once the
//! mutex is nearly always taken: measured here, `KILL QUERY` then took
//! 2.0 s and the victim stayed "Killed" as long, where it takes 1.3 ms
//! alone. No real query waits on that mutex, so a `SLEEP()` workload would
//! measure the server's `SLEEP()`. `GET_LOCK` waits on a mutex of its own
//! per session: stopped, it returns NULL at once (not an error), which the
//! lab counts as a statement the server stopped.
//!
//! The pools:
//!
//! * **stormpool**: stormpool-mysql with its defaults except `max_size`
//!   (and the hold limit where the scenario has one); tracked statements,
//!   bounded on the server by the request's deadline (`max_statement_time`);
//! * **stormpool-noprop**: the same with `propagate_deadline` off;
//! * **mysql_async**: the driver's own pool, at most `connections`
//!   connections, its defaults otherwise (a connection is reset when it
//!   comes back). No deadpool or bb8 manager for mysql_async is part of the
//!   workspace; the driver's pool is what most of its users run.
//!
//! The server keeps no application name, so the lab's statements are found
//! by their tag alone.

use std::sync::Arc;
use std::time::Duration;

use stormpool::Pool;
use stormpool_mysql::mysql_async::prelude::Queryable;
use stormpool_mysql::mysql_async::{self, Opts, OptsBuilder, PoolConstraints, PoolOpts};
use stormpool_mysql::{Classify, MySqlManager};
use tokio::time::Instant;

use super::{live_run, stormpool_note, tagged, Observer, Workload};
use crate::backend::DbUrl;
use crate::config::Clock;
use crate::driver::{self, Run};
use crate::error::LabError;
use crate::metrics::RawRun;
use crate::pools::stormpool::{build, checkout};
use crate::pools::{LabPool, PoolError, PoolKind, PoolSetup, Request};

const DATABASE: &str = "MySQL";

/// How long the lab's own connections may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// `ER_STATEMENT_TIMEOUT` (a propagated deadline) and
/// `ER_QUERY_INTERRUPTED` (`KILL QUERY`).
const STOPPED: [u16; 2] = [1969, 1317];

/// The user lock the lab holds, and every statement waits for.
const LOCK: &str = "stormlab_sleep";

/// The statement that waits `seconds` on the server.
fn sleep(seconds: f64) -> String {
    format!("SELECT GET_LOCK('{LOCK}', {seconds})")
}

/// Takes the lock every statement waits for, on `holder`, for as long as
/// it stays open.
async fn hold_lock(holder: &mut mysql_async::Conn) -> Result<(), LabError> {
    let got: Option<Option<i64>> = holder
        .query_first(format!("SELECT GET_LOCK('{LOCK}', 10)"))
        .await
        .map_err(failed("taking the lab's lock"))?;
    match got {
        Some(Some(1)) => Ok(()),
        _ => Err(LabError::Database {
            database: DATABASE,
            doing: "taking the lab's lock",
            reason: format!("`{LOCK}` is held elsewhere"),
        }),
    }
}

/// How a statement of the lab failed.
enum Failure {
    /// The driver's error.
    Driver(stormpool_mysql::Error),
    /// The server stopped the wait: `GET_LOCK` returned NULL.
    Stopped,
}

/// What `SELECT GET_LOCK(..)` answered: 0 (the wait ran its time) is a
/// success.
fn waited<E: Into<stormpool_mysql::Error>>(
    result: Result<Option<Option<i64>>, E>,
) -> Result<(), Failure> {
    match result {
        Ok(Some(Some(_))) => Ok(()),
        Ok(_) => Err(Failure::Stopped),
        Err(e) => Err(Failure::Driver(e.into())),
    }
}

fn stopped(failure: &Failure) -> bool {
    match failure {
        Failure::Stopped => true,
        Failure::Driver(e) => {
            e.is_timeout() || e.server_code().is_some_and(|code| STOPPED.contains(&code))
        }
    }
}

fn failed(doing: &'static str) -> impl FnOnce(mysql_async::Error) -> LabError {
    move |e| LabError::Database {
        database: DATABASE,
        doing,
        reason: e.to_string(),
    }
}

fn opts(url: &DbUrl) -> Result<Opts, LabError> {
    Opts::from_url(&url.url).map_err(|e| failed("reading --mysql-url")(e.into()))
}

/// A connection of the lab's own, within [`CONNECT_TIMEOUT`].
async fn side(url: &DbUrl) -> Result<mysql_async::Conn, LabError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, mysql_async::Conn::new(opts(url)?)).await {
        Ok(conn) => conn.map_err(failed("connecting")),
        Err(_) => Err(LabError::Database {
            database: DATABASE,
            doing: "connecting",
            reason: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        }),
    }
}

/// The latency of one statement on an idle server: the median of 40 in a
/// row on one connection of the lab's.
pub(crate) fn unloaded_latency(url: &DbUrl, service: Duration) -> Result<Duration, LabError> {
    let runtime = driver::runtime(Clock::Real)?;
    runtime.block_on(async {
        let mut holder = side(url).await?;
        hold_lock(&mut holder).await?;
        let mut conn = side(url).await?;
        let sql = sleep(service.as_secs_f64());
        let mut latencies = Vec::new();
        for _ in 0..40 {
            let start = Instant::now();
            conn.query_drop(&sql)
                .await
                .map_err(failed("timing a statement"))?;
            latencies.push(start.elapsed());
        }
        let _ = conn.disconnect().await;
        let _ = holder.disconnect().await;
        latencies.sort_unstable();
        Ok(latencies[latencies.len() / 2])
    })
}

/// Runs `kind` through the scenario of `run` against the server at `url`.
pub(crate) fn run(run: &Run<'_>, kind: PoolKind, url: &DbUrl) -> Result<RawRun, LabError> {
    let runtime = driver::runtime(Clock::Real)?;
    runtime.block_on(async {
        let mut admin = side(url).await?;
        end_lab_statements(&mut admin).await?;
        hold_lock(&mut admin).await?;
        let work = Workload::new(sleep, run.params.service);
        let setup = run.setup();
        let observer = MyObserver(side(url).await?);
        let result = match kind {
            PoolKind::Stormpool | PoolKind::StormpoolNoPropagation => {
                let manager = MySqlManager::new(opts(url)?);
                let pool = build(manager, &setup, kind == PoolKind::Stormpool)?;
                let lab = StormpoolMy {
                    pool,
                    work: work.clone(),
                };
                Ok(live_run(run, kind, Arc::new(lab), observer, &work).await)
            }
            PoolKind::MysqlAsync => {
                let lab = DriverPool::new(opts(url)?, &setup, work.clone())?;
                Ok(live_run(run, kind, Arc::new(lab), observer, &work).await)
            }
            PoolKind::Deadpool | PoolKind::Bb8 | PoolKind::Prefix => {
                Err(LabError::PoolUnsupported {
                    pool: kind.name(),
                    database: DATABASE,
                })
            }
        };
        // Whatever happened, leave no statement of the run behind.
        end_lab_statements(&mut admin).await?;
        let _ = admin.disconnect().await;
        result
    })
}

/// Ends every session still running a statement of the lab's and waits
/// until none is left (at most 10 s).
async fn end_lab_statements(admin: &mut mysql_async::Conn) -> Result<(), LabError> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let ids: Vec<u64> = admin
            .query(
                "SELECT id FROM information_schema.processlist \
                 WHERE id <> CONNECTION_ID() AND info LIKE '%stormlab req=%'",
            )
            .await
            .map_err(failed("listing the lab's sessions"))?;
        if ids.is_empty() || Instant::now() >= until {
            return Ok(());
        }
        for id in ids {
            // A session may end by itself meanwhile: "unknown thread".
            let _ = admin.query_drop(format!("KILL CONNECTION {id}")).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// stormpool-mysql (see the module docs).
struct StormpoolMy {
    pool: Pool<MySqlManager>,
    work: Workload,
}

impl LabPool for StormpoolMy {
    async fn serve(&self, req: &Request) -> Result<(), PoolError> {
        let mut conn = checkout(&self.pool, req).await?;
        let sql = self.work.statement(req);
        self.work
            .ended(waited(conn.query_first(sql).await), stopped)
    }

    fn waiting(&self) -> Option<usize> {
        Some(self.pool.status().waiting)
    }

    fn revoked(&self) -> Option<u64> {
        Some(self.pool.status().counters.revoked)
    }

    fn notes(&self) -> Vec<String> {
        let stats = self.pool.manager().stats();
        vec![stormpool_note(
            &self.pool.status().counters,
            stats.stopped_by_deadline,
            stats.bound_changes,
            " with an error (a stopped GET_LOCK returns NULL instead: see server.cancelled \
             in the JSON)",
            "max_statement_time",
        )]
    }
}

/// mysql_async's own pool (see the module docs).
struct DriverPool {
    pool: mysql_async::Pool,
    work: Workload,
}

impl DriverPool {
    fn new(opts: Opts, setup: &PoolSetup, work: Workload) -> Result<Self, LabError> {
        let constraints =
            PoolConstraints::new(0, setup.max_size).ok_or_else(|| LabError::PoolConfig {
                pool: "mysql_async",
                reason: "max_size must be at least 1".into(),
            })?;
        let opts = OptsBuilder::from_opts(opts)
            .pool_opts(PoolOpts::default().with_constraints(constraints));
        Ok(DriverPool {
            pool: mysql_async::Pool::new(opts),
            work,
        })
    }
}

impl LabPool for DriverPool {
    async fn serve(&self, req: &Request) -> Result<(), PoolError> {
        let mut conn = self.pool.get_conn().await.map_err(|_| PoolError::Connect)?;
        req.granted();
        let sql = self.work.statement(req);
        self.work
            .ended(waited(conn.query_first(sql).await), stopped)
    }
}

/// Reads the process list for the statements of the lab's pools.
struct MyObserver(mysql_async::Conn);

impl Observer for MyObserver {
    async fn running(&mut self) -> Option<Vec<u64>> {
        let infos: Vec<Option<String>> = self
            .0
            .query(
                "SELECT info FROM information_schema.processlist \
                 WHERE id <> CONNECTION_ID() AND command = 'Query' \
                 AND info LIKE '%stormlab req=%'",
            )
            .await
            .ok()?;
        Some(infos.iter().flatten().filter_map(|i| tagged(i)).collect())
    }
}
