//! stormpool, driven through its public API with the request's deadline,
//! priority class and fairness key.

use stormpool::sim::SimManager;
use stormpool::{AcquireError, AcquireOptions, Pool};

use super::{LabPool, PoolError, PoolSetup, Request};
use crate::error::LabError;

/// stormpool over the simulated database, with its defaults except
/// `max_size`.
pub struct StormpoolLab {
    pool: Pool<SimManager>,
    notes: Vec<String>,
}

impl StormpoolLab {
    /// Builds the pool (no connection is opened before the first request).
    pub fn new(manager: SimManager, setup: &PoolSetup) -> Result<Self, LabError> {
        let builder = Pool::builder(manager).max_size(setup.max_size);
        let mut notes = Vec::new();
        if let Some(max_hold) = setup.max_hold {
            // wire max_hold here once Builder::max_hold exists (issue 4):
            // `builder = builder.max_hold(max_hold);` and drop this note.
            notes.push(format!(
                "max_hold ({} ms) not applied: stormpool has no lease watchdog yet (issue 4)",
                max_hold.as_millis()
            ));
        }
        let pool = builder.build().map_err(|e| LabError::PoolConfig {
            pool: "stormpool",
            reason: e.to_string(),
        })?;
        Ok(StormpoolLab { pool, notes })
    }
}

impl LabPool for StormpoolLab {
    async fn serve(&self, req: &Request) -> Result<(), PoolError> {
        let mut options = AcquireOptions::new()
            .deadline(req.deadline)
            .priority(req.priority);
        if let Some(key) = req.key {
            options = options.key(key);
        }
        let mut conn = self.pool.get_with(options).await.map_err(acquire_error)?;
        req.granted();
        conn.query().await.map_err(|_| PoolError::Query)
    }

    fn waiting(&self) -> Option<usize> {
        Some(self.pool.status().waiting)
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
}

fn acquire_error<E>(e: AcquireError<E>) -> PoolError {
    match e {
        AcquireError::Timeout => PoolError::Timeout,
        AcquireError::TooManyWaiters => PoolError::TooManyWaiters,
        AcquireError::Closed => PoolError::Closed,
        AcquireError::Shed { .. } => PoolError::Shed,
        AcquireError::KeyQueueFull => PoolError::KeyQueueFull,
        // Connect, ConnectTimeout, Apply, and whatever the enum grows.
        _ => PoolError::Connect,
    }
}
