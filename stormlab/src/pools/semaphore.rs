//! The floor: a tokio semaphore in front of a stack of connections, the
//! least a pool can be. No deadline, priority or fairness key, no checks:
//! a request waits for a permit until its client gives up, takes the most
//! recently returned connection (or opens one), and gives it back when it
//! is done or dropped. What a pool costs beyond this is its own work.
//!
//! The effective-capacity calibration runs it beside the pools of the run;
//! `--pools semaphore` runs it through the scenarios too.

use std::sync::{Arc, Mutex, MutexGuard};

use stormpool::sim::{SimConnection, SimManager};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{LabPool, PoolSetup, Request, ServeFuture};
use crate::base::PoolError;

/// The semaphore floor over the simulated database.
pub struct SemaphoreLab {
    manager: SimManager,
    permits: Arc<Semaphore>,
    /// Idle connections, the most recently returned last.
    ///
    /// # Invariant
    /// Held to push or pop only; never across an `.await`.
    idle: Arc<Mutex<Vec<SimConnection>>>,
}

impl SemaphoreLab {
    /// A floor of at most `setup.max_size` connections, opened on demand.
    pub fn new(manager: SimManager, setup: &PoolSetup) -> Self {
        SemaphoreLab {
            manager,
            permits: Arc::new(Semaphore::new(setup.max_size)),
            idle: Arc::new(Mutex::new(Vec::with_capacity(setup.max_size))),
        }
    }
}

fn lock(idle: &Mutex<Vec<SimConnection>>) -> MutexGuard<'_, Vec<SimConnection>> {
    idle.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connection held with its permit: back on the stack when dropped (a
/// broken one is closed, its permit lets the next request open another).
struct Held {
    conn: Option<SimConnection>,
    idle: Arc<Mutex<Vec<SimConnection>>>,
    // Dropped after `drop` has put the connection back.
    _permit: OwnedSemaphorePermit,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take().filter(|c| !c.is_broken()) {
            lock(&self.idle).push(conn);
        }
    }
}

impl LabPool for SemaphoreLab {
    fn serve<'a>(&'a self, req: &'a Request) -> ServeFuture<'a> {
        Box::pin(async move {
            let permit =
                (self.permits.clone().acquire_owned().await).map_err(|_| PoolError::Closed)?;
            let idle = lock(&self.idle).pop();
            let conn = match idle {
                Some(conn) => conn,
                None => stormpool::Manager::connect(&self.manager)
                    .await
                    .map_err(|_| PoolError::Connect)?,
            };
            let mut held = Held {
                conn: Some(conn),
                idle: self.idle.clone(),
                _permit: permit,
            };
            req.granted();
            match held.conn.as_mut() {
                Some(conn) => conn.query().await.map_err(|_| PoolError::Query),
                None => Err(PoolError::Closed),
            }
        })
    }
}
