//! The lab's errors: [`LabError`], every failure a user can cause or meet,
//! and [`PoolError`], why a pool did not serve a request.
//!
//! `Display` describes this layer only; `main` prints the error and its
//! `source()` chain joined on a single line.

use std::fmt;
use std::path::PathBuf;

use super::kinds::{PoolKind, ScenarioKind};

/// Why the lab could not run, or could not write its report.
#[derive(Debug)]
#[non_exhaustive]
pub enum LabError {
    /// A command-line option was malformed or out of range.
    Usage(String),
    /// `--pools` named a pool the lab does not know.
    UnknownPool(String),
    /// `--scenarios` named a scenario the lab does not know.
    UnknownScenario(String),
    /// A live database URL could not be reached.
    Unreachable {
        /// The database, as the option names it ("PostgreSQL", "MySQL").
        database: &'static str,
        /// The `host:port` that was tried.
        address: String,
        /// What the operating system answered.
        reason: String,
    },
    /// `--pools` named a pool that does not run on the chosen database.
    PoolUnsupported {
        /// The pool.
        pool: &'static str,
        /// The database ("simulated", "PostgreSQL", "MySQL").
        database: &'static str,
    },
    /// `--scenarios` named a scenario that does not run on the chosen
    /// database.
    ScenarioUnsupported {
        /// The scenario.
        scenario: &'static str,
        /// The database ("PostgreSQL", "MySQL").
        database: &'static str,
    },
    /// A live database refused the lab's own connection, or answered it
    /// with an error.
    Database {
        /// The database ("PostgreSQL", "MySQL").
        database: &'static str,
        /// What was being done.
        doing: &'static str,
        /// The driver's error, with its sources.
        reason: String,
    },
    /// A pool refused the lab's configuration.
    PoolConfig {
        /// The pool.
        pool: &'static str,
        /// What the pool said.
        reason: String,
    },
    /// The async runtime of a run could not be started.
    Runtime(std::io::Error),
    /// A chart could not be drawn.
    Chart(String),
    /// The results could not be serialized.
    Json(serde_json::Error),
    /// An output file could not be written.
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl LabError {
    /// The process exit code: 2 for bad options, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            LabError::Usage(_)
            | LabError::UnknownPool(_)
            | LabError::UnknownScenario(_)
            | LabError::PoolUnsupported { .. }
            | LabError::ScenarioUnsupported { .. } => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabError::Usage(msg) => f.write_str(msg),
            LabError::UnknownPool(name) => write!(
                f,
                "unknown pool `{name}` (expected one of: {}, or all)",
                PoolKind::names().join(", ")
            ),
            LabError::UnknownScenario(name) => write!(
                f,
                "unknown scenario `{name}` (expected one of: {}, or all)",
                ScenarioKind::names().join(", ")
            ),
            LabError::Unreachable {
                database,
                address,
                reason,
            } => write!(f, "cannot reach {database} at {address}: {reason}"),
            LabError::PoolUnsupported { pool, database } => {
                write!(f, "pool `{pool}` does not run on the {database} database")
            }
            LabError::ScenarioUnsupported { scenario, database } => write!(
                f,
                "scenario `{scenario}` does not run on the {database} database"
            ),
            LabError::Database {
                database,
                doing,
                reason,
            } => write!(f, "{database}: {doing}: {reason}"),
            LabError::PoolConfig { pool, reason } => {
                write!(f, "{pool} refused the configuration: {reason}")
            }
            LabError::Runtime(_) => f.write_str("cannot start the async runtime"),
            LabError::Chart(msg) => write!(f, "cannot draw a chart: {msg}"),
            LabError::Json(_) => f.write_str("cannot serialize the results"),
            LabError::Write { path, .. } => write!(f, "cannot write {}", path.display()),
        }
    }
}

impl std::error::Error for LabError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LabError::Runtime(e) => Some(e),
            LabError::Json(e) => Some(e),
            LabError::Write { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why a pool did not serve a request (the driver's own abandonment at the
/// deadline is not one of these: it drops the future instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolError {
    /// The pool's own wait timed out.
    Timeout,
    /// Rejected by load shedding.
    Shed,
    /// Rejected early: the pool was wedged (nothing served for an interval).
    Wedged,
    /// Rejected: too many requests already waiting.
    TooManyWaiters,
    /// Rejected: too many requests of this fairness key waiting.
    KeyQueueFull,
    /// The pool is closed.
    Closed,
    /// Connecting to the database failed.
    Connect,
    /// The query failed on the connection (broken, or cancelled on the server).
    Query,
}
