//! The lab's vocabulary, below every other module: the pools and scenarios
//! it knows by name, the database it runs against, the shared parameters
//! and clock, its errors and its units. Nothing here imports another module
//! of the lab; every other module may import from here.

mod backend;
mod error;
mod kinds;
mod params;
pub mod units;

pub use backend::{Backend, DbUrl};
pub use error::{LabError, PoolError};
pub use kinds::{PoolKind, ScenarioKind};
pub use params::{Clock, LabParams};
