//! Integration tests of taskweave-core, one module per area.

mod cancel;
mod combinators;
mod deadlines;
mod errors;
mod gather_values;
mod group;
mod promise;
mod properties;
mod runtime;
mod stress;
mod task;

use std::future::Future;

/// Runs `f` on a fresh two-worker runtime, failing the test if the runtime itself fails.
pub(crate) fn rt<F: Future>(f: F) -> F::Output {
    taskweave_core::Runtime::builder()
        .worker_threads(2)
        .build()
        .expect("runtime builds")
        .run(f)
        .expect("main future completes")
}
