//! Locking that carries on past a poisoned mutex.
//!
//! Every lock in this crate guards bookkeeping that only this crate's code changes, and user
//! code that runs while one is held (progress callbacks) has its panics caught. A poisoned lock
//! therefore still guards consistent state; refusing it would turn one panic into a pool or a
//! map that fails for good.

use std::sync::{LockResult, Mutex, MutexGuard};

/// Locks `m`, taking the guard even when an earlier holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    recover(m.lock())
}

/// The guard (or guard and timeout flag) of a lock or condvar wait, poisoned or not.
pub(crate) fn recover<G>(r: LockResult<G>) -> G {
    r.unwrap_or_else(std::sync::PoisonError::into_inner)
}
