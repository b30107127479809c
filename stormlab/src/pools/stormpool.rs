//! stormpool, driven through its public API with the request's deadline,
//! priority class and fairness key.

use stormpool::sim::SimManager;
use stormpool::{AcquireError, AcquireOptions, Conn, Pool};

use super::{LabPool, PoolSetup, Request, ServeFuture};
use crate::base::{LabError, PoolError};

/// stormpool over the simulated database, with its defaults except
/// `max_size`, the hold limit and its `max_orphans` and, for the variant,
/// `propagate_deadline`.
pub struct StormpoolLab {
    pool: Pool<SimManager>,
}

impl StormpoolLab {
    /// Builds the pool (no connection is opened before the first request).
    pub fn new(manager: SimManager, setup: &PoolSetup, propagate: bool) -> Result<Self, LabError> {
        Ok(StormpoolLab {
            pool: build(manager, setup, propagate)?,
        })
    }
}

/// A stormpool over `manager` as the lab sets every one up, on the
/// simulated database and on a live server alike.
pub fn build<M: stormpool::Manager>(
    manager: M,
    setup: &PoolSetup,
    propagate: bool,
) -> Result<Pool<M>, LabError> {
    Pool::builder(manager)
        .max_size(setup.max_size)
        .max_hold(setup.max_hold)
        .max_orphans(setup.max_orphans)
        .propagate_deadline(propagate)
        .build()
        .map_err(|e| LabError::PoolConfig {
            pool: "stormpool",
            reason: e.to_string(),
        })
}

/// The request's deadline, priority and key, as stormpool takes them. A
/// request without a deadline waits as long as the pool's `acquire_timeout`,
/// as a plain `get` does.
fn options(req: &Request) -> AcquireOptions {
    let mut options = AcquireOptions::new().priority(req.priority);
    if let Some(deadline) = req.deadline {
        options = options.deadline(deadline);
    }
    match req.key {
        Some(key) => options.key(key),
        None => options,
    }
}

/// Gets a connection for `req` as stormpool takes it (deadline, priority
/// and key) and reports the grant.
pub async fn checkout<M: stormpool::Manager>(
    pool: &Pool<M>,
    req: &Request,
) -> Result<Conn<M>, PoolError> {
    let conn = pool.get_with(options(req)).await.map_err(acquire_error)?;
    req.granted();
    Ok(conn)
}

impl LabPool for StormpoolLab {
    fn serve<'a>(&'a self, req: &'a Request) -> ServeFuture<'a> {
        Box::pin(async move {
            let mut conn = checkout(&self.pool, req).await?;
            conn.query().await.map_err(|_| PoolError::Query)
        })
    }

    fn waiting(&self) -> Option<usize> {
        Some(self.pool.status().waiting)
    }

    fn revoked(&self) -> Option<u64> {
        Some(self.pool.status().counters.revoked)
    }
}

/// The lab's name for a stormpool acquire error.
fn acquire_error<E>(e: AcquireError<E>) -> PoolError {
    match e {
        AcquireError::Timeout => PoolError::Timeout,
        AcquireError::TooManyWaiters => PoolError::TooManyWaiters,
        AcquireError::Closed => PoolError::Closed,
        AcquireError::Shed { .. } => PoolError::Shed,
        AcquireError::Wedged { .. } => PoolError::Wedged,
        AcquireError::KeyQueueFull => PoolError::KeyQueueFull,
        // Connect, ConnectTimeout, Apply, and whatever the enum grows.
        _ => PoolError::Connect,
    }
}
