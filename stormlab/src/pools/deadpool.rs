//! deadpool 0.12 (managed), with a manager around the simulated database.
//!
//! The wait timeout is passed per call (`timeout_get`) as the request's
//! remaining budget, as a careful user does. Recycling checks only
//! `is_broken`, like deadpool-postgres' default `RecyclingMethod::Fast`.

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult, Timeouts};
use deadpool::Runtime;
use stormpool::sim::{SimConnection, SimError, SimManager};

use super::{LabPool, PoolError, PoolSetup, Request};
use crate::error::LabError;

/// deadpool's manager for the simulated database.
pub struct DeadpoolManager(SimManager);

impl managed::Manager for DeadpoolManager {
    type Type = SimConnection;
    type Error = SimError;

    async fn create(&self) -> Result<SimConnection, SimError> {
        stormpool::Manager::connect(&self.0).await
    }

    async fn recycle(&self, conn: &mut SimConnection, _: &Metrics) -> RecycleResult<SimError> {
        if conn.is_broken() {
            return Err(RecycleError::Backend(SimError::Broken));
        }
        Ok(())
    }
}

/// deadpool over the simulated database.
pub struct DeadpoolLab {
    pool: managed::Pool<DeadpoolManager>,
}

impl DeadpoolLab {
    /// Builds the pool.
    pub fn new(manager: SimManager, setup: &PoolSetup) -> Result<Self, LabError> {
        let pool = managed::Pool::builder(DeadpoolManager(manager))
            .max_size(setup.max_size)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| LabError::PoolConfig {
                pool: "deadpool",
                reason: e.to_string(),
            })?;
        Ok(DeadpoolLab { pool })
    }
}

impl LabPool for DeadpoolLab {
    async fn serve(&self, req: &Request) -> Result<(), PoolError> {
        // No deadline: no wait timeout either.
        let remaining = req.remaining();
        if remaining.is_some_and(|r| r.is_zero()) {
            // deadpool reads a zero wait as "do not wait"; the driver has
            // given up by now anyway.
            return Err(PoolError::Timeout);
        }
        let timeouts = Timeouts {
            wait: remaining,
            create: remaining,
            recycle: remaining,
        };
        let mut conn = self
            .pool
            .timeout_get(&timeouts)
            .await
            .map_err(|e| match e {
                managed::PoolError::Timeout(_) => PoolError::Timeout,
                managed::PoolError::Closed => PoolError::Closed,
                _ => PoolError::Connect,
            })?;
        req.granted();
        conn.query().await.map_err(|_| PoolError::Query)
    }

    fn waiting(&self) -> Option<usize> {
        Some(self.pool.status().waiting)
    }
}
