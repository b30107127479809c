//! The storm lab: does your pool survive a timeout storm?
//!
//! `cargo run --release -p stormlab` offers the same open-loop load to
//! stormpool, deadpool, bb8 and a model of the pre-fix Vitess smartconnpool
//! waitlist (the one that stalled in production under a timeout storm), over
//! the same simulated database, in a series of scenarios (steady, near
//! capacity, a closed loop of workers, overload, retry storm, spike, wedged,
//! priority mix, key fan-out), and shows side by side what each pool does
//! with it: goodput as a percentage of the database's capacity, connections
//! handed to requests that had already given up, latency, the wait for a
//! connection, errors, waiting requests and the time to recover. It prints
//! a table per scenario and writes a self-contained HTML report with SVG
//! charts and the results as JSON.
//!
//! By default the runs follow tokio's paused clock: deterministic, and free
//! of the machine's noise. `--clock real` runs them on the wall clock, on a
//! multi-thread runtime, after measuring the effective capacity
//! ([`calibration`]): what a pool can serve on this machine, where a query
//! costs more than its service time.
//!
//! # Layers
//!
//! Imports go one way, from the top of this list to the bottom:
//!
//! * [`cli`], [`suite`], [`report`], [`config`]: the options, the whole
//!   suite (several runs at once, with [`progress`]), the tables, charts,
//!   HTML page and JSON, and the [`machine`] it ran on.
//! * [`calibration`]: the effective capacity, measured in real time by a
//!   saturated closed loop through every pool and a semaphore floor.
//! * [`driver`]: one pool through one scenario on one database, on its own
//!   runtime (by default tokio's paused clock: deterministic and fast; or
//!   the wall clock on a multi-thread runtime), the load made by the test
//!   kit's open-loop generator or by closed-loop workers, every request
//!   abandoned by its client at its deadline whatever the pool does.
//! * [`database`]: the databases behind the one trait the driver calls,
//!   [`database::Database`]: the embedded simulation, and live PostgreSQL
//!   and MariaDB servers with the database adapters as pools and the
//!   server's dead work sampled.
//! * [`pools`]: the pools behind one small trait, [`pools::LabPool`].
//! * [`metrics`]: attempts to results; the definitions of every measure.
//! * [`scenario`]: the load shapes, as phases of Poisson arrivals.
//! * [`base`]: the vocabulary every layer shares: the pools and scenarios
//!   by name, the database chosen, the parameters and clock, the errors,
//!   the units.

pub mod base;
pub mod calibration;
pub mod cli;
pub mod config;
pub mod database;
pub mod driver;
pub mod machine;
pub mod metrics;
pub mod pools;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod suite;

pub use base::{Backend, Clock, LabError, LabParams, PoolKind, ScenarioKind};
pub use config::{LabConfig, Outputs};
pub use suite::run;
