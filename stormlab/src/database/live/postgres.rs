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

use std::sync::Arc;

use bb8_postgres::PostgresConnectionManager;
use stormpool::statements::StatementStats;
use stormpool_postgres::tokio_postgres::error::SqlState;
use stormpool_postgres::tokio_postgres::{self, Client, NoTls};
use stormpool_postgres::{PgConnection, PgManager};
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
}

impl Server for Postgres {
    const NAME: &'static str = "PostgreSQL";
    const STOPPED: &'static str = "";
    const BOUND: &'static str = "statement_timeout";

    type Conn = Client;
    type Manager = PgManager;

    fn new(url: &DbUrl, work: Workload) -> Result<Self, LabError> {
        let config = pg_config(url, APPLICATION)?;
        Ok(Postgres { config, work })
    }

    fn sleep(seconds: f64) -> String {
        format!("SELECT pg_sleep({seconds})")
    }

    fn manager(&self) -> PgManager {
        PgManager::new(self.config.clone())
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

/// tokio-postgres' client: its sessions are named, and the lab's pools'
/// found by their name.
impl LabConnection for Client {
    async fn connect(url: &DbUrl, role: &'static str) -> Result<Client, LabError> {
        let config = pg_config(url, role)?;
        let (client, connection) = within(Postgres::NAME, config.connect(NoTls))
            .await?
            .map_err(error("connecting"))?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// Dropping the client ends its connection's task.
    async fn close(self) {}

    /// Nothing to prepare: `pg_sleep` waits on nothing of the lab's.
    async fn prepare(&mut self) -> Result<(), LabError> {
        Ok(())
    }

    /// Terminates the sessions named after the lab's pools.
    async fn end_lab_sessions(&mut self) -> Result<usize, LabError> {
        let ended = self
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = $1",
                &[&APPLICATION],
            )
            .await
            .map_err(error("ending the lab's sessions"))?;
        Ok(ended.len())
    }

    async fn run_statement(&mut self, sql: &str) -> Result<(), LabError> {
        let answer = self.simple_query(sql).await;
        answer.map(drop).map_err(error("timing a statement"))
    }

    /// Reads `pg_stat_activity` for the statements of the lab's pools.
    async fn running(&mut self) -> Option<Vec<u64>> {
        let rows = self
            .query(
                "SELECT query FROM pg_stat_activity \
                 WHERE application_name = $1 AND state = 'active'",
                &[&APPLICATION],
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
    let mut config: tokio_postgres::Config = url.url.parse().map_err(error("reading --pg-url"))?;
    config.application_name(application);
    config.connect_timeout(CONNECT_TIMEOUT);
    Ok(config)
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
