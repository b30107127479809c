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
use std::time::Duration;

use bb8_postgres::PostgresConnectionManager;
use stormpool::Pool;
use stormpool_postgres::tokio_postgres::error::SqlState;
use stormpool_postgres::tokio_postgres::{self, NoTls};
use stormpool_postgres::PgManager;
use tokio::time::Instant;

use super::{live_run, stormpool_note, tagged, Observer, Workload, APPLICATION};
use crate::backend::DbUrl;
use crate::config::Clock;
use crate::driver::{self, Run};
use crate::error::LabError;
use crate::metrics::RawRun;
use crate::pools::stormpool::{build, checkout};
use crate::pools::{LabPool, PoolError, PoolKind, PoolSetup, Request};

/// How long the lab's own connections may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

const DATABASE: &str = "PostgreSQL";

fn failed(doing: &'static str) -> impl FnOnce(tokio_postgres::Error) -> LabError {
    move |e| LabError::Database {
        database: DATABASE,
        doing,
        reason: chain(&e),
    }
}

/// An error with its sources, on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text += &format!(": {cause}");
        source = cause.source();
    }
    text
}

/// `url`'s configuration, with the sessions named `application`.
fn pg_config(url: &DbUrl, application: &str) -> Result<tokio_postgres::Config, LabError> {
    let mut config: tokio_postgres::Config = url.url.parse().map_err(failed("reading --pg-url"))?;
    config.application_name(application);
    config.connect_timeout(CONNECT_TIMEOUT);
    Ok(config)
}

/// A connection of the lab's own, within [`CONNECT_TIMEOUT`] (the driver's
/// own limit covers the TCP connect only, not a server that never answers).
async fn side(url: &DbUrl, application: &str) -> Result<tokio_postgres::Client, LabError> {
    let config = pg_config(url, application)?;
    let connect = config.connect(NoTls);
    let (client, connection) = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(connected) => connected.map_err(failed("connecting"))?,
        Err(_) => {
            return Err(LabError::Database {
                database: DATABASE,
                doing: "connecting",
                reason: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            })
        }
    };
    tokio::spawn(connection);
    Ok(client)
}

/// The latency of one statement on an idle server: the median of 40
/// `SELECT pg_sleep(<service>)` in a row on one connection of the lab's.
pub(crate) fn unloaded_latency(url: &DbUrl, service: Duration) -> Result<Duration, LabError> {
    let runtime = driver::runtime(Clock::Real)?;
    runtime.block_on(async {
        let client = side(url, "stormlab-calibration").await?;
        let sql = sleep(service.as_secs_f64());
        let mut latencies = Vec::new();
        for _ in 0..40 {
            let start = Instant::now();
            client
                .simple_query(&sql)
                .await
                .map_err(failed("timing a statement"))?;
            latencies.push(start.elapsed());
        }
        latencies.sort_unstable();
        Ok(latencies[latencies.len() / 2])
    })
}

/// The statement that sleeps `seconds` on the server.
fn sleep(seconds: f64) -> String {
    format!("SELECT pg_sleep({seconds})")
}

/// Runs `kind` through the scenario of `run` against the server at `url`.
pub(crate) fn run(run: &Run<'_>, kind: PoolKind, url: &DbUrl) -> Result<RawRun, LabError> {
    let runtime = driver::runtime(Clock::Real)?;
    runtime.block_on(async {
        let admin = side(url, "stormlab-admin").await?;
        end_lab_sessions(&admin).await?;
        let config = pg_config(url, APPLICATION)?;
        let work = Workload::new(sleep, run.params.service);
        let setup = run.setup();
        let observer = PgObserver(side(url, "stormlab-sampler").await?);
        let result = match kind {
            PoolKind::Stormpool | PoolKind::StormpoolNoPropagation => {
                let manager = PgManager::new(config);
                let pool = build(manager, &setup, kind == PoolKind::Stormpool)?;
                let lab = StormpoolPg {
                    pool,
                    work: work.clone(),
                };
                Ok(live_run(run, kind, Arc::new(lab), observer, &work).await)
            }
            PoolKind::Deadpool => {
                let lab = DeadpoolPg::new(config, &setup, work.clone())?;
                Ok(live_run(run, kind, Arc::new(lab), observer, &work).await)
            }
            PoolKind::Bb8 => {
                let lab = Bb8Pg::new(config, &setup, work.clone())?;
                Ok(live_run(run, kind, Arc::new(lab), observer, &work).await)
            }
            PoolKind::Prefix | PoolKind::MysqlAsync => Err(LabError::PoolUnsupported {
                pool: kind.name(),
                database: DATABASE,
            }),
        };
        // Whatever happened, leave no session of the run behind.
        end_lab_sessions(&admin).await?;
        result
    })
}

/// Terminates every session of the lab's pools and waits until they are
/// gone (at most 10 s).
async fn end_lab_sessions(admin: &tokio_postgres::Client) -> Result<(), LabError> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let left = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = $1",
                &[&APPLICATION],
            )
            .await
            .map_err(failed("ending the lab's sessions"))?
            .len();
        if left == 0 || Instant::now() >= until {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// stormpool-postgres (see the module docs).
struct StormpoolPg {
    pool: Pool<PgManager>,
    work: Workload,
}

impl LabPool for StormpoolPg {
    async fn serve(&self, req: &Request) -> Result<(), PoolError> {
        let conn = checkout(&self.pool, req).await?;
        let sql = self.work.statement(req);
        self.work.ended(conn.simple_query(&sql).await, |e| {
            e.code() == Some(&SqlState::QUERY_CANCELED) || e.is_timeout()
        })
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
            "",
            "statement_timeout",
        )]
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
    async fn serve(&self, req: &Request) -> Result<(), PoolError> {
        // No deadline: no wait timeout either.
        let remaining = req.remaining();
        if remaining.is_some_and(|r| r.is_zero()) {
            // deadpool reads a zero wait as "do not wait".
            return Err(PoolError::Timeout);
        }
        let timeouts = deadpool_postgres::Timeouts {
            wait: remaining,
            create: remaining,
            recycle: remaining,
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
        self.work.ended(conn.simple_query(&sql).await, canceled)
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
        let refuse = |reason: &str| LabError::PoolConfig {
            pool: "bb8-postgres",
            reason: reason.to_string(),
        };
        let max_size = u32::try_from(setup.max_size)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| refuse("max_size must be between 1 and 2^32 - 1"))?;
        let pool = bb8::Pool::builder()
            .max_size(max_size)
            .connection_timeout(setup.deadline)
            .build_unchecked(PostgresConnectionManager::new(config, NoTls));
        Ok(Bb8Pg { pool, work })
    }
}

impl LabPool for Bb8Pg {
    async fn serve(&self, req: &Request) -> Result<(), PoolError> {
        let conn = self.pool.get().await.map_err(|e| match e {
            bb8::RunError::TimedOut => PoolError::Timeout,
            bb8::RunError::User(_) => PoolError::Connect,
        })?;
        req.granted();
        let sql = self.work.statement(req);
        self.work.ended(conn.simple_query(&sql).await, canceled)
    }
}

/// Whether the server stopped the statement: its time bound, or a cancel.
fn canceled(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::QUERY_CANCELED)
}

/// Reads `pg_stat_activity` for the statements of the lab's pools.
struct PgObserver(tokio_postgres::Client);

impl Observer for PgObserver {
    async fn running(&mut self) -> Option<Vec<u64>> {
        let rows = self
            .0
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
