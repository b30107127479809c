//! The synchronisation primitives of the hand-off core, behind one shim so the
//! loom models (`RUSTFLAGS="--cfg stormpool_loom"`) exercise the same code.
//!
//! A crate-specific cfg is used rather than `--cfg loom`, which would also switch
//! tokio into its own loom mode.

#[cfg(stormpool_loom)]
pub(crate) use loom::sync::{atomic::fence, Arc, Mutex, MutexGuard};

#[cfg(not(stormpool_loom))]
pub(crate) use std::sync::{atomic::fence, Arc, Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning.
///
/// The pool state is only mutated by code that cannot panic between two
/// consistent states (no user code runs under the lock), so a poisoned lock
/// still guards a consistent state; refusing it would turn one panic elsewhere
/// into a pool that can never be used again.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
