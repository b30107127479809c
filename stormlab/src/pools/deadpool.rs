//! deadpool 0.12 (managed), with a manager around the simulated database.
//!
//! The wait timeout is passed per call (`timeout_get`) as the request's
//! remaining budget, as a careful user does. Recycling checks only
//! `is_broken`, like deadpool-postgres' default `RecyclingMethod::Fast`.

use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult, Timeouts};
use deadpool::Runtime;
use stormpool::sim::{SimConnection, SimError, SimManager};

use super::{LabPool, PoolSetup, Request, ServeFuture};
use crate::base::{LabError, PoolError};

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
    fn serve<'a>(&'a self, req: &'a Request) -> ServeFuture<'a> {
        Box::pin(async move {
            let wait = wait_timeout(req)?;
            let timeouts = Timeouts {
                wait,
                create: wait,
                recycle: wait,
            };
            let mut conn = self
                .pool
                .timeout_get(&timeouts)
                .await
                .map_err(checkout_error)?;
            req.granted();
            conn.query().await.map_err(|_| PoolError::Query)
        })
    }

    fn waiting(&self) -> Option<usize> {
        Some(self.pool.status().waiting)
    }
}

/// The request's remaining time, as deadpool's per-call timeouts: `None`
/// without a deadline; a timeout once the deadline passed, since deadpool
/// reads a zero wait as "do not wait" (the client has given up by then
/// anyway). deadpool-postgres takes the same, from its own deadpool.
pub fn wait_timeout(req: &Request) -> Result<Option<Duration>, PoolError> {
    match req.remaining() {
        Some(left) if left.is_zero() => Err(PoolError::Timeout),
        remaining => Ok(remaining),
    }
}

/// The lab's name for a deadpool checkout error.
fn checkout_error<E>(e: managed::PoolError<E>) -> PoolError {
    match e {
        managed::PoolError::Timeout(_) => PoolError::Timeout,
        managed::PoolError::Closed => PoolError::Closed,
        _ => PoolError::Connect,
    }
}
