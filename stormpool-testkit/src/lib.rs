//! Test support for stormpool's database adapters: a loopback TCP
//! [`FaultProxy`] that resets, closes, freezes, slows or
//! cuts connections on demand; helpers that find the live test databases
//! ([`db`]) and control their servers ([`server`]); two load generators
//! that record what each request saw: a closed loop of tasks ([`load`])
//! and open-loop Poisson storms over phases of load ([`open_loop`], shared
//! by the core's storm tests and the storm lab); and the
//! scenarios the adapters share: faults ([`scenarios`]), outages with the
//! pool's defaults ([`outages`]), statement hygiene, checked against the
//! server's view of its sessions ([`statements`]), transaction hygiene
//! ([`transactions`]) and the adapters' typed errors ([`errors`]), all
//! asking the server through a connection of the test's own in SQL written
//! once per server ([`side`]); a PgBouncer of the tests' own in front of
//! the local PostgreSQL ([`pgbouncer`]). Beside them, a check that a
//! crate's modules import each other without cycles ([`module_graph`]),
//! and, with the feature `serde`, a service's configuration file
//! (`config_file`).
//!
//! Everything here talks to loopback addresses only, and every fault a test
//! injects into a server is undone by a drop guard, so a failing test still
//! leaves the servers running.

#[cfg(feature = "serde")]
pub mod config_file;
pub mod db;
pub mod errors;
pub mod load;
pub mod module_graph;
pub mod open_loop;
pub mod outages;
pub mod pgbouncer;
pub mod proxy;
pub mod scenarios;
pub mod server;
pub mod side;
pub mod statements;
pub mod transactions;

pub use proxy::{Fault, FaultProxy};

/// Serializes the tests of one test binary that inject faults into a shared
/// server (restarts, frozen processes, killed sessions): cargo runs the tests
/// of a binary in parallel, and two of them restarting the same server at once
/// would measure each other.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let _serial = stormpool_testkit::serial().await;
/// // ... inject a fault, measure, undo ...
/// # }
/// ```
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}
