//! stormpool over a database adapter on a live server (stormpool-postgres,
//! stormpool-mysql): the lab's setup of stormpool, each request's deadline,
//! priority and key passed on, and its statement tracked by the adapter (so
//! an abandoned one is cancelled and its connection drained) and bounded on
//! the server by the deadline unless propagation is off.

use stormpool::Pool;

use super::server::Server;
use super::workload::Workload;
use crate::base::LabError;
use crate::pools::stormpool::{build, checkout};
use crate::pools::{LabPool, PoolSetup, Request, ServeFuture};

/// stormpool over `S`'s adapter.
pub struct AdapterPool<S: Server> {
    pool: Pool<S::Manager>,
    work: Workload,
}

impl<S: Server> AdapterPool<S> {
    /// Builds the pool; `propagate`: whether deadlines bound the statements
    /// on the server.
    pub fn new(
        manager: S::Manager,
        setup: &PoolSetup,
        propagate: bool,
        work: Workload,
    ) -> Result<Self, LabError> {
        Ok(AdapterPool {
            pool: build(manager, setup, propagate)?,
            work,
        })
    }
}

impl<S: Server> LabPool for AdapterPool<S> {
    fn serve<'a>(&'a self, req: &'a Request) -> ServeFuture<'a> {
        Box::pin(async move {
            let mut conn = checkout(&self.pool, req).await?;
            let sql = self.work.statement(req);
            self.work.ended(S::query(&mut conn, sql).await)
        })
    }

    fn waiting(&self) -> Option<usize> {
        Some(self.pool.status().waiting)
    }

    fn revoked(&self) -> Option<u64> {
        Some(self.pool.status().counters.revoked)
    }

    /// What the pool and the adapter counted.
    fn notes(&self) -> Vec<String> {
        let counters = self.pool.status().counters;
        let stats = S::statement_stats(self.pool.manager());
        vec![format!(
            "statements stopped by the propagated deadline{} {}; \
             abandoned statements stopped on return {}, connections drained {}, closed after a \
             failed drain {}; {} changes {}",
            S::STOPPED,
            stats.stopped_by_deadline,
            counters.cancelled_on_return,
            counters.drained,
            counters.closed_drain_failed,
            S::BOUND,
            stats.bound_changes,
        )]
    }
}
