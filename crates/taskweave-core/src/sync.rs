//! The synchronisation primitives the promise state machine is built on, swapped for loom's model
//! checked versions under `cfg(taskweave_loom)` so `cargo xtask loom` can explore every
//! interleaving.
//!
//! The switch is taskweave's own cfg, not the bare `loom` that tokio and other crates also read:
//! a program that builds with `--cfg loom` to model-check its own code keeps taskweave's real
//! primitives, and taskweave's models keep tokio's.

#[cfg(taskweave_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, Ordering};
#[cfg(taskweave_loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

#[cfg(not(taskweave_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(taskweave_loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning: no code path panics while holding a promise lock (user
/// callbacks run outside it), so a poisoned lock still guards consistent data.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
