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

use stormpool::statements::StatementStats;
use stormpool_mysql::mysql_async::prelude::Queryable;
use stormpool_mysql::mysql_async::{self, Conn, Opts, OptsBuilder, PoolConstraints, PoolOpts};
use stormpool_mysql::{Classify, MySqlConnection, MySqlManager};

use super::server::{failed, unsupported, within, LabConnection, Server};
use super::workload::{tagged, Statement, Workload};
use crate::base::{DbUrl, LabError, PoolError, PoolKind};
use crate::pools::{LabPool, PoolSetup, Request, ServeFuture, SharedPool};

/// `ER_STATEMENT_TIMEOUT` (a propagated deadline) and
/// `ER_QUERY_INTERRUPTED` (`KILL QUERY`).
const STOPPED: [u16; 2] = [1969, 1317];

/// The user lock the lab holds, and every statement waits for.
const LOCK: &str = "stormlab_sleep";

/// A live MySQL (MariaDB) server: the options of the pools' sessions.
pub struct MySql {
    opts: Opts,
    work: Workload,
}

impl Server for MySql {
    const NAME: &'static str = "MySQL";
    const STOPPED: &'static str = " with an error (a stopped GET_LOCK returns NULL instead: \
                                    see server.cancelled in the JSON)";
    const BOUND: &'static str = "max_statement_time";

    type Conn = Conn;
    type Manager = MySqlManager;

    fn new(url: &DbUrl, work: Workload) -> Result<Self, LabError> {
        Ok(MySql {
            opts: opts(url)?,
            work,
        })
    }

    fn sleep(seconds: f64) -> String {
        format!("SELECT GET_LOCK('{LOCK}', {seconds})")
    }

    fn manager(&self) -> MySqlManager {
        MySqlManager::new(self.opts.clone())
    }

    fn statement_stats(manager: &MySqlManager) -> StatementStats {
        manager.stats()
    }

    async fn query(conn: &mut MySqlConnection, sql: String) -> Statement {
        statement(conn.query_first(sql).await)
    }

    fn build_peer(&self, kind: PoolKind, setup: &PoolSetup) -> Result<SharedPool, LabError> {
        match kind {
            PoolKind::MysqlAsync => {
                let pool = DriverPool::new(self.opts.clone(), setup, self.work.clone())?;
                Ok(Arc::new(pool))
            }
            _ => Err(unsupported(kind, Self::NAME)),
        }
    }
}

/// mysql_async's connection. The server keeps no session names, so the
/// lab's statements are found by their tag alone.
impl LabConnection for Conn {
    async fn connect(url: &DbUrl, _role: &'static str) -> Result<Conn, LabError> {
        within(MySql::NAME, Conn::new(opts(url)?))
            .await?
            .map_err(error("connecting"))
    }

    async fn close(self) {
        let _ = self.disconnect().await;
    }

    /// Takes the lock every statement waits for, for as long as the
    /// connection stays open.
    async fn prepare(&mut self) -> Result<(), LabError> {
        let got: Option<Option<i64>> = self
            .query_first(format!("SELECT GET_LOCK('{LOCK}', 10)"))
            .await
            .map_err(error("taking the lab's lock"))?;
        match got {
            Some(Some(1)) => Ok(()),
            _ => Err(failed(
                MySql::NAME,
                "taking the lab's lock",
                format!("`{LOCK}` is held elsewhere"),
            )),
        }
    }

    /// Kills every session running a statement of the lab's.
    async fn end_lab_sessions(&mut self) -> Result<usize, LabError> {
        let ids: Vec<u64> = self
            .query(
                "SELECT id FROM information_schema.processlist \
                 WHERE id <> CONNECTION_ID() AND info LIKE '%stormlab req=%'",
            )
            .await
            .map_err(error("listing the lab's sessions"))?;
        for &id in &ids {
            // A session may end by itself meanwhile: "unknown thread".
            let _ = self.query_drop(format!("KILL CONNECTION {id}")).await;
        }
        Ok(ids.len())
    }

    async fn run_statement(&mut self, sql: &str) -> Result<(), LabError> {
        self.query_drop(sql)
            .await
            .map_err(error("timing a statement"))
    }

    /// Reads the process list for the statements of the lab's pools.
    async fn running(&mut self) -> Option<Vec<u64>> {
        let infos: Vec<Option<String>> = self
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

fn error(doing: &'static str) -> impl FnOnce(mysql_async::Error) -> LabError {
    move |e| failed(MySql::NAME, doing, e.to_string())
}

fn opts(url: &DbUrl) -> Result<Opts, LabError> {
    Opts::from_url(&url.url).map_err(|e| error("reading --mysql-url")(e.into()))
}

/// How `SELECT GET_LOCK(..)` ended: 0 (the wait ran its time) is a
/// success; NULL, a wait the server stopped (it returns at once, without
/// an error); an error with [`STOPPED`]'s codes, the same.
/// A tracked statement that ran out of time on the client (a server that
/// did not answer in time) counts as stopped too.
fn statement<E: Into<stormpool_mysql::Error>>(result: Result<Option<Option<i64>>, E>) -> Statement {
    match result.map_err(Into::into) {
        Ok(Some(Some(_))) => Statement::Completed,
        Ok(_) => Statement::Stopped,
        Err(e) if e.is_timeout() || e.server_code().is_some_and(|c| STOPPED.contains(&c)) => {
            Statement::Stopped
        }
        Err(_) => Statement::Failed,
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
    fn serve<'a>(&'a self, req: &'a Request) -> ServeFuture<'a> {
        Box::pin(async move {
            let mut conn = self.pool.get_conn().await.map_err(|_| PoolError::Connect)?;
            req.granted();
            let sql = self.work.statement(req);
            self.work.ended(statement(conn.query_first(sql).await))
        })
    }
}
