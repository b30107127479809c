//! The pools under comparison, each around a connection that costs nothing,
//! so the benchmarks measure the pools and nothing else.

use std::convert::Infallible;

use stormpool::gate::PermitManager;

/// A deadpool manager of free connections.
#[derive(Debug, Default)]
pub struct FreeDeadpool;

impl deadpool::managed::Manager for FreeDeadpool {
    type Type = ();
    type Error = Infallible;

    async fn create(&self) -> Result<(), Infallible> {
        Ok(())
    }

    async fn recycle(
        &self,
        _: &mut (),
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

/// A bb8 manager of free connections.
#[derive(Debug, Default, Clone, Copy)]
pub struct FreeBb8;

impl bb8::ManageConnection for FreeBb8 {
    type Connection = ();
    type Error = Infallible;

    async fn connect(&self) -> Result<(), Infallible> {
        Ok(())
    }

    async fn is_valid(&self, _: &mut ()) -> Result<(), Infallible> {
        Ok(())
    }

    fn has_broken(&self, _: &mut ()) -> bool {
        false
    }
}

/// A stormpool of `size` free connections, opened before it is returned.
pub async fn stormpool(size: usize) -> stormpool::Pool<PermitManager> {
    stormpool_with(size, |b| b).await
}

/// The same, configured further by `configure`.
pub async fn stormpool_with(
    size: usize,
    configure: impl FnOnce(stormpool::Builder<PermitManager>) -> stormpool::Builder<PermitManager>,
) -> stormpool::Pool<PermitManager> {
    let builder = stormpool::Pool::builder(PermitManager)
        .max_size(size)
        .min_idle(size)
        .max_concurrent_connects(size)
        .max_waiters(100_000)
        .acquire_timeout(std::time::Duration::from_secs(60));
    let pool = configure(builder).build().expect("valid configuration");
    let held: Vec<_> = futures_all(size, || pool.get()).await;
    drop(held);
    pool
}

/// A deadpool of `size` free connections, opened before it is returned.
pub async fn deadpool(size: usize) -> deadpool::managed::Pool<FreeDeadpool> {
    let pool = deadpool::managed::Pool::builder(FreeDeadpool)
        .max_size(size)
        .build()
        .expect("valid configuration");
    let held: Vec<_> = futures_all(size, || pool.get()).await;
    drop(held);
    pool
}

/// A bb8 pool of `size` free connections, opened before it is returned.
pub async fn bb8(size: u32) -> bb8::Pool<FreeBb8> {
    let pool = bb8::Pool::builder()
        .max_size(size)
        .min_idle(Some(size))
        .connection_timeout(std::time::Duration::from_secs(60))
        .build(FreeBb8)
        .await
        .expect("valid configuration");
    let held: Vec<_> = futures_all(size as usize, || pool.get()).await;
    drop(held);
    pool
}

/// Runs `n` acquires one after another, keeping every connection.
async fn futures_all<F, T, E>(n: usize, mut acquire: impl FnMut() -> F) -> Vec<T>
where
    F: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Debug,
{
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(acquire().await.expect("acquire"));
    }
    held
}

/// The least a pool can be: a tokio semaphore in front of a stack of free
/// connections. The floor the pools are measured against.
#[derive(Clone, Debug)]
pub struct SemaphorePool {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    idle: std::sync::Arc<std::sync::Mutex<Vec<()>>>,
}

/// A connection of a [`SemaphorePool`], given back when dropped.
#[derive(Debug)]
pub struct SemaphoreConn {
    conn: Option<()>,
    idle: std::sync::Arc<std::sync::Mutex<Vec<()>>>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for SemaphoreConn {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
        }
    }
}

impl SemaphorePool {
    /// A pool of `size` free connections.
    pub fn new(size: usize) -> Self {
        SemaphorePool {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(size)),
            idle: std::sync::Arc::new(std::sync::Mutex::new(vec![(); size])),
        }
    }

    /// Waits for a permit, then takes a free connection.
    pub async fn get(&self) -> Result<SemaphoreConn, tokio::sync::AcquireError> {
        let permit = self.permits.clone().acquire_owned().await?;
        let conn = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        Ok(SemaphoreConn {
            conn,
            idle: self.idle.clone(),
            _permit: permit,
        })
    }
}
