//! A stormpool [`Manager`](stormpool::Manager) for mysql_async.
