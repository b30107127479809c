//! The storm lab: does your pool survive a timeout storm?
//!
//! `cargo run --release -p stormlab` offers the same open-loop load to
//! stormpool, deadpool, bb8 and a model of the pre-fix Vitess smartconnpool
//! waitlist (seeds 000/001), over the same simulated database, in a series
//! of scenarios (steady, overload, retry storm, spike, wedged, priority mix,
//! key fan-out), and shows side by side what each pool does with it: goodput
//! as a percentage of the database's capacity, connections handed to
//! requests that had already given up, latency, waiting requests and the
//! time to recover. It prints a table per scenario and writes a
//! self-contained HTML report with SVG charts and the results as JSON.
//!
//! # How a run works
//!
//! * [`scenario`]: the load shapes, as phases of Poisson arrivals.
//! * [`pools`]: the pools behind one small trait, [`pools::LabPool`].
//! * [`live`]: the same against a live PostgreSQL server (`--pg-url`), with
//!   the database adapters as pools and the server's dead work measured.
//! * [`driver`]: one pool through one scenario, on its own runtime (by
//!   default tokio's paused clock: deterministic and fast), with every
//!   request abandoned by its client at its deadline whatever the pool does.
//! * [`metrics`]: attempts to results; the definitions of every measure.
//! * [`report`]: tables, charts, the HTML page and the JSON.
//! * [`suite`]: the whole suite, several runs at once, with progress.
//! * [`cli`], [`config`], [`backend`], [`error`], [`units`]: options, their
//!   checks and their units.

pub mod backend;
pub mod cli;
pub mod config;
pub mod driver;
pub mod error;
pub mod live;
pub mod metrics;
pub mod pools;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod suite;
pub mod units;

pub use config::{Clock, LabConfig, LabParams, Outputs};
pub use error::LabError;
pub use suite::run;
