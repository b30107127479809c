//! bb8 0.9, with a manager around the simulated database.
//!
//! bb8 takes only a pool-wide `connection_timeout`, set to the requests'
//! deadline. Its default `test_on_check_out` is kept: `is_valid` is the
//! simulated probe, which, like bb8-postgres' empty query, waits behind a
//! statement still running on the session.

use bb8::{ManageConnection, RunError};
use stormpool::sim::{SimConnection, SimError, SimManager};

use super::{LabPool, PoolError, PoolSetup, Request};
use crate::error::LabError;

/// bb8's manager for the simulated database.
pub struct Bb8Manager(SimManager);

impl ManageConnection for Bb8Manager {
    type Connection = SimConnection;
    type Error = SimError;

    async fn connect(&self) -> Result<SimConnection, SimError> {
        stormpool::Manager::connect(&self.0).await
    }

    async fn is_valid(&self, conn: &mut SimConnection) -> Result<(), SimError> {
        stormpool::Manager::check(&self.0, conn).await
    }

    fn has_broken(&self, conn: &mut SimConnection) -> bool {
        conn.is_broken()
    }
}

/// bb8 over the simulated database.
pub struct Bb8Lab {
    pool: bb8::Pool<Bb8Manager>,
}

impl Bb8Lab {
    /// Builds the pool; call it inside the run's runtime (bb8 spawns its
    /// reaper at once).
    pub fn new(manager: SimManager, setup: &PoolSetup) -> Result<Self, LabError> {
        let refuse = |reason: &str| LabError::PoolConfig {
            pool: "bb8",
            reason: reason.to_string(),
        };
        // bb8's builder asserts on these; refuse them here instead.
        let max_size = u32::try_from(setup.max_size)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| refuse("max_size must be between 1 and 2^32 - 1"))?;
        if setup.deadline.is_zero() {
            return Err(refuse("connection_timeout must be positive"));
        }
        let pool = bb8::Pool::builder()
            .max_size(max_size)
            .connection_timeout(setup.deadline)
            .build_unchecked(Bb8Manager(manager));
        Ok(Bb8Lab { pool })
    }
}

impl LabPool for Bb8Lab {
    async fn serve(&self, req: &Request) -> Result<(), PoolError> {
        let mut conn = self.pool.get().await.map_err(|e| match e {
            RunError::TimedOut => PoolError::Timeout,
            RunError::User(_) => PoolError::Connect,
        })?;
        req.granted();
        conn.query().await.map_err(|_| PoolError::Query)
    }
}
