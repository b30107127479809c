//! stormpool: an async connection pool and admission-control toolkit that
//! keeps doing useful work under overload.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admission;
pub mod clock;
mod error;
pub mod fanout;
pub mod health;
mod manager;
pub mod pool;
pub mod retry;
mod settings;
#[cfg(feature = "sim")]
pub mod sim;
mod sync;

pub use error::{AcquireError, CloseError, ConfigError};
pub use health::{Health, Reason};
pub use manager::Manager;
pub use pool::{AcquireOptions, Builder, Config, Conn, Counters, Pool, Priority, Status};
pub use settings::{Settings, SettingsId};
