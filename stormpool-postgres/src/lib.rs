//! A stormpool [`Manager`](stormpool::Manager) for tokio-postgres.
