//! Integration tests of debug mode: each report triggered for real on a real runtime and read
//! back through a capturing tracing subscriber.
//!
//! The observer is installed process-wide while a runtime runs, and the capturing subscriber is
//! global, so every test that runs a runtime holds [`capture::serial`] for its whole length.

mod capture;
mod clean;
mod executor;
mod handles;
mod layer;
mod logs;
mod pool_drop;
mod shutdown;
mod slow;
mod strict;
mod subprocess;
mod timeline;
mod watchdog;

use std::sync::Arc;

use taskweave_core::Runtime;
use taskweave_debug::DebugObserver;

/// A two-worker runtime observed by `debug`.
fn runtime(debug: &Arc<DebugObserver>) -> Runtime {
    Runtime::builder()
        .worker_threads(2)
        .observer(debug.clone())
        .build()
        .expect("the runtime starts")
}
