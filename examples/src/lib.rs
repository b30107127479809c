//! Runnable examples of stormpool, kept as a library so that their tests
//! drive the same code the examples run.
//!
//! - [`peer_sync`]: push a route table to many peers over one shared pooled
//!   HTTP client, with a bounded [`FanOut`](stormpool_retry::fanout::FanOut), a
//!   budgeted [`RetryPolicy`](stormpool_retry::RetryPolicy) and a deadline
//!   over each peer's whole attempt sequence (`cargo run -p
//!   stormpool-examples --example peer-sync`).
//! - [`peer_server`]: the loopback peers it pushes to, which count the
//!   connections they accept and can be healthy, slow, or answer
//!   `409 Conflict`.
//! - [`service`]: an HTTP service whose readiness reads the pool's health,
//!   with Prometheus metrics and a query endpoint that takes its deadline
//!   and priority from request headers behind a load-shedding gate
//!   (`cargo run -p stormpool-examples --example service`).

pub mod peer_server;
pub mod peer_sync;
pub mod service;

/// The repository's README, its examples compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The migration guide (`docs/migrating.md`), its examples compiled as
/// doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/migrating.md")]
pub struct MigratingDoctests;
