//! The live PostgreSQL backend (`--pg-url`): every request runs
//! `SELECT pg_sleep(<service>) /* stormlab req=N */` on a pooled
//! connection; `pg_stat_activity` is sampled from a side connection.
//!
//! The pools, each as its users would set it up:
//!
//! * **stormpool**: stormpool-postgres with its defaults except `max_size`
//!   (and the hold limit where the scenario has one); each request passes
//!   its deadline, priority and key, and its statement is tracked (so an
//!   abandoned one is cancelled and drained) and bounded on the server by
//!   the deadline;
//! * **stormpool-noprop**: the same with `propagate_deadline` off;
//! * **deadpool**: deadpool-postgres, `RecyclingMethod::Fast` (its
//!   default: `is_closed` only), the request's remaining time as the wait
//!   timeout;
//! * **bb8**: bb8-postgres, `connection_timeout` = the deadline, its
//!   default `test_on_check_out` (an empty query at every checkout).
//!
//! # Through PgBouncer
//!
//! Point `--pg-url` at a pooler in transaction mode and add `pooler=transaction`
//! to its parameters (`postgres://app@127.0.0.1:6432/app?pooler=transaction`):
//! stormpool-postgres then runs in its pooler mode
//! ([`Pooler::Transaction`]: settings and deadline bounds set per
//! transaction, statements unnamed), beside deadpool-postgres and
//! bb8-postgres as they are. Without it the lab warns when the server looks
//! like a pooler (the adapter's detection), and stormpool's session-level
//! bounds would reach the other pools' server sessions.

use std::sync::Arc;

use bb8_postgres::PostgresConnectionManager;
use stormpool::statements::StatementStats;
use stormpool_postgres::tokio_postgres::error::SqlState;
use stormpool_postgres::tokio_postgres::types::Type;
use stormpool_postgres::tokio_postgres::{self, Client, NoTls};
use stormpool_postgres::{ManagerConfig, PgConnection, PgManager, Pooler};
use stormpool_testkit::load::chain;

use super::server::{
    failed, unsupported, within, LabConnection, Server, APPLICATION, CONNECT_TIMEOUT,
};
use super::workload::{tagged, Statement, Workload};
use crate::base::PoolError;
use crate::base::{DbUrl, LabError, PoolKind};
use crate::pools::bb8::{builder, checkout_error};
use crate::pools::deadpool::wait_timeout;
use crate::pools::{LabPool, PoolSetup, Request, ServeFuture, SharedPool};

/// A live PostgreSQL server: the configuration of the pools' sessions,
/// named after the lab.
pub struct Postgres {
    config: tokio_postgres::Config,
    work: Workload,
    /// What stands in front of the server (`pooler=` in the URL).
    pooler: Pooler,
}

impl Server for Postgres {
    const NAME: &'static str = "PostgreSQL";
    const STOPPED: &'static str = "";
    const BOUND: &'static str = "statement_timeout";

    type Conn = PgSide;
    type Manager = PgManager;

    fn new(url: &DbUrl, work: Workload) -> Result<Self, LabError> {
        let config = pg_config(url, APPLICATION)?;
        let pooler = pooler(&url.url)?;
        Ok(Postgres {
            config,
            work,
            pooler,
        })
    }

    fn sleep(seconds: f64) -> String {
        format!("SELECT pg_sleep({seconds})")
    }

    fn manager(&self) -> PgManager {
        let mut options = ManagerConfig::default();
        options.pooler = self.pooler;
        PgManager::new(self.config.clone()).options(options)
    }

    fn statement_stats(manager: &PgManager) -> StatementStats {
        manager.stats()
    }

    async fn query(conn: &mut PgConnection, sql: String) -> Statement {
        statement(conn.simple_query(&sql).await)
    }

    fn build_peer(&self, kind: PoolKind, setup: &PoolSetup) -> Result<SharedPool, LabError> {
        let (config, work) = (self.config.clone(), self.work.clone());
        match kind {
            PoolKind::Deadpool => Ok(Arc::new(DeadpoolPg::new(config, setup, work)?)),
            PoolKind::Bb8 => Ok(Arc::new(Bb8Pg::new(config, setup, work)?)),
            _ => Err(unsupported(kind, Self::NAME)),
        }
    }
}

/// The lab's own connections (admin, sampler): tokio-postgres' client. Its
/// sessions are named, and the lab's pools' found by their name.
pub struct PgSide {
    client: Client,
    /// A pooler in transaction mode stands in front of the server: the
    /// server sessions are the pooler's.
    behind_pooler: bool,
}

impl LabConnection for PgSide {
    async fn connect(url: &DbUrl, role: &'static str) -> Result<PgSide, LabError> {
        let config = pg_config(url, role)?;
        let (client, connection) = within(Postgres::NAME, config.connect(NoTls))
            .await?
            .map_err(error("connecting"))?;
        tokio::spawn(connection);
        let behind_pooler = pooler(&url.url)?.is_transaction();
        Ok(PgSide {
            client,
            behind_pooler,
        })
    }

    /// Dropping the client ends its connection's task.
    async fn close(self) {}

    /// Nothing to prepare: `pg_sleep` waits on nothing of the lab's.
    async fn prepare(&mut self) -> Result<(), LabError> {
        Ok(())
    }

    /// Terminates the sessions named after the lab's pools. Behind a
    /// pooler they are the pooler's server sessions, which carry the name
    /// of the client they last served: terminating them makes PgBouncer
    /// refuse every client for `server_login_retry` (15 s). The pools'
    /// own sessions to the pooler end when the pools are dropped.
    async fn end_lab_sessions(&mut self) -> Result<usize, LabError> {
        if self.behind_pooler {
            return Ok(0);
        }
        // Unnamed statements (`query_typed`), which a pooler in front of
        // the server passes through whole.
        let ended = self
            .client
            .query_typed(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = $1",
                &[(&APPLICATION, Type::TEXT)],
            )
            .await
            .map_err(error("ending the lab's sessions"))?;
        Ok(ended.len())
    }

    async fn run_statement(&mut self, sql: &str) -> Result<(), LabError> {
        let answer = self.client.simple_query(sql).await;
        answer.map(drop).map_err(error("timing a statement"))
    }

    /// Reads `pg_stat_activity` for the statements of the lab's pools.
    async fn running(&mut self) -> Option<Vec<u64>> {
        let rows = self
            .client
            .query_typed(
                "SELECT query FROM pg_stat_activity \
                 WHERE application_name = $1 AND state = 'active'",
                &[(&APPLICATION, Type::TEXT)],
            )
            .await
            .ok()?;
        Some(
            rows.iter()
                .filter_map(|row| row.get::<_, Option<&str>>(0).and_then(tagged))
                .collect(),
        )
    }
}

fn error(doing: &'static str) -> impl FnOnce(tokio_postgres::Error) -> LabError {
    move |e| failed(Postgres::NAME, doing, chain(&e))
}

/// `url`'s configuration, with the sessions named `application`.
fn pg_config(url: &DbUrl, application: &str) -> Result<tokio_postgres::Config, LabError> {
    let (url, _) = split_pooler(&url.url);
    let mut config: tokio_postgres::Config = url.parse().map_err(error("reading --pg-url"))?;
    config.application_name(application);
    config.connect_timeout(CONNECT_TIMEOUT);
    Ok(config)
}

/// The lab's own `pooler=` parameter, taken out of `url` (the driver
/// knows no such parameter), and its value.
fn split_pooler(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut pooler = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("pooler=") {
            Some(value) => {
                pooler = Some(value.to_owned());
                false
            }
            None => !pair.is_empty(),
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, pooler)
}

/// The pooler `url` says stands in front of the server.
fn pooler(url: &str) -> Result<Pooler, LabError> {
    match split_pooler(url).1.as_deref() {
        None | Some("none") | Some("session") => Ok(Pooler::None),
        Some("transaction") => Ok(Pooler::Transaction),
        Some(other) => Err(LabError::Usage(format!(
            "--pg-url: pooler={other}: expected transaction, session or none"
        ))),
    }
}

/// How a statement ended, from the driver's answer: the server stopped it
/// at its time bound, or on a cancel, with `QUERY_CANCELED`; or a tracked
/// statement ran out of time on the client (a server that did not answer).
fn statement<T, E: Into<stormpool_postgres::Error>>(result: Result<T, E>) -> Statement {
    match result.map_err(Into::into) {
        Ok(_) => Statement::Completed,
        Err(e) if e.is_timeout() || e.code() == Some(&SqlState::QUERY_CANCELED) => {
            Statement::Stopped
        }
        Err(_) => Statement::Failed,
    }
}

/// deadpool-postgres (see the module docs).
struct DeadpoolPg {
    pool: deadpool_postgres::Pool,
    work: Workload,
}

impl DeadpoolPg {
    fn new(
        config: tokio_postgres::Config,
        setup: &PoolSetup,
        work: Workload,
    ) -> Result<Self, LabError> {
        let manager = deadpool_postgres::Manager::from_config(
            config,
            NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(setup.max_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| LabError::PoolConfig {
                pool: "deadpool-postgres",
                reason: e.to_string(),
            })?;
        Ok(DeadpoolPg { pool, work })
    }
}

impl LabPool for DeadpoolPg {
    fn serve<'a>(&'a self, req: &'a Request) -> ServeFuture<'a> {
        Box::pin(async move {
            let wait = wait_timeout(req)?;
            let timeouts = deadpool_postgres::Timeouts {
                wait,
                create: wait,
                recycle: wait,
            };
            let conn = self
                .pool
                .timeout_get(&timeouts)
                .await
                .map_err(|e| match e {
                    deadpool_postgres::PoolError::Timeout(_) => PoolError::Timeout,
                    deadpool_postgres::PoolError::Closed => PoolError::Closed,
                    _ => PoolError::Connect,
                })?;
            req.granted();
            let sql = self.work.statement(req);
            self.work.ended(statement(conn.simple_query(&sql).await))
        })
    }

    fn waiting(&self) -> Option<usize> {
        Some(self.pool.status().waiting)
    }
}

/// bb8-postgres (see the module docs).
struct Bb8Pg {
    pool: bb8::Pool<PostgresConnectionManager<NoTls>>,
    work: Workload,
}

impl Bb8Pg {
    fn new(
        config: tokio_postgres::Config,
        setup: &PoolSetup,
        work: Workload,
    ) -> Result<Self, LabError> {
        let pool = builder(setup, "bb8-postgres")?
            .build_unchecked(PostgresConnectionManager::new(config, NoTls));
        Ok(Bb8Pg { pool, work })
    }
}

impl LabPool for Bb8Pg {
    fn serve<'a>(&'a self, req: &'a Request) -> ServeFuture<'a> {
        Box::pin(async move {
            let conn = self.pool.get().await.map_err(checkout_error)?;
            req.granted();
            let sql = self.work.statement(req);
            self.work.ended(statement(conn.simple_query(&sql).await))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pooler_parameter_is_the_labs() {
        let (url, mode) = split_pooler("postgres://u@h:6432/db?pooler=transaction&sslmode=disable");
        assert_eq!(url, "postgres://u@h:6432/db?sslmode=disable");
        assert_eq!(mode.as_deref(), Some("transaction"));
        assert_eq!(
            split_pooler("postgres://u@h/db?pooler=none").0,
            "postgres://u@h/db"
        );
        assert_eq!(split_pooler("postgres://u@h/db").1, None);
        assert!(matches!(
            pooler("postgres://u@h/db?pooler=transaction"),
            Ok(Pooler::Transaction)
        ));
        assert!(pooler("postgres://u@h/db?pooler=statement").is_err());
    }
}
