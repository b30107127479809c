//! bb8 0.9, with a manager around the simulated database.
//!
//! bb8 takes only a pool-wide `connection_timeout`, set to the requests'
//! deadline. Its default `test_on_check_out` is kept: `is_valid` is the
//! simulated probe, which, like bb8-postgres' empty query, waits behind a
//! statement still running on the session.

use bb8::{ManageConnection, RunError};
use stormpool::sim::{SimConnection, SimError, SimManager};

use super::{LabPool, PoolSetup, Request, ServeFuture};
use crate::base::{LabError, PoolError};

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
        let pool = builder(setup, "bb8")?.build_unchecked(Bb8Manager(manager));
        Ok(Bb8Lab { pool })
    }
}

/// A bb8 builder as the lab sets up every bb8 pool, here and over a live
/// server: at most `max_size` connections, `connection_timeout` = the
/// requests' deadline. `pool`: its name in errors.
pub fn builder<M: ManageConnection>(
    setup: &PoolSetup,
    pool: &'static str,
) -> Result<bb8::Builder<M>, LabError> {
    let refuse = |reason: &str| LabError::PoolConfig {
        pool,
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
    Ok(bb8::Pool::builder()
        .max_size(max_size)
        .connection_timeout(setup.deadline))
}

/// The lab's name for a bb8 checkout error.
pub fn checkout_error<E>(e: RunError<E>) -> PoolError {
    match e {
        RunError::TimedOut => PoolError::Timeout,
        RunError::User(_) => PoolError::Connect,
    }
}

impl LabPool for Bb8Lab {
    fn serve<'a>(&'a self, req: &'a Request) -> ServeFuture<'a> {
        Box::pin(async move {
            let mut conn = self.pool.get().await.map_err(checkout_error)?;
            req.granted();
            conn.query().await.map_err(|_| PoolError::Query)
        })
    }
}
