//! Tasks and one thread-safe future type for results from coroutines, threads and processes,
//! with asyncio's combinators, on tokio.
//!
//! This is the core of taskweave: the types every other crate builds on.
//!
//! - [`create_task`] starts a coroutine as a [`Task<T>`] (asyncio's `create_task`), with a name
//!   and its creation site recorded; a panic inside becomes an [`ErrorKind::Panicked`] value.
//! - [`Promise<T>`] is the general future (Python's `concurrent.futures.Future`): the result of a
//!   coroutine, of a function in a thread, or of one in another process. Await it, or block on it
//!   from a plain thread with [`Promise::result`]. Executors complete it through a [`Resolver`].
//!   A task is the promise's coroutine-only kind: `Promise::from(task)` converts it, and every
//!   combinator takes tasks and promises alike.
//! - Combinators: [`gather()`], [`gather_settled()`], [`gather!`], [`wait`], [`as_completed`],
//!   [`wait_for`], [`timeout`], [`shield`], [`TaskGroup`].
//! - [`run`] and [`Runtime`]: asyncio's `run`, on a tokio runtime, with Ctrl-C cancelling the
//!   main future ([`OnInterrupt`]); [`run_try`] for a main future that returns a `Result`.
//! - [`instrument`]: the seam through which a debug layer observes tasks, at one branch per poll
//!   when nothing observes.
//!
//! What it is not: it has no thread pool, process pool or tracing output of its own; those live
//! in `taskweave-bridge`, `taskweave-process` and `taskweave-debug`, which build on this crate.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use taskweave_core::{create_task, gather, run_try};
//!
//! async fn compute(x: u64) -> u64 {
//!     tokio::time::sleep(Duration::from_millis(10)).await;
//!     x * x
//! }
//!
//! let squares = run_try(async {
//!     let tasks = (0..5).map(|x| create_task(compute(x)));
//!     gather(tasks).await
//! });
//! assert_eq!(squares.unwrap(), vec![0, 1, 4, 9, 16]);
//! ```
//!
//! # Cancellation
//!
//! Awaiting a task links cancellation, as in asyncio: when the future awaiting a task is dropped
//! (timed out, cancelled, or a sibling failed in [`gather()`]), the task is cancelled too. A task
//! handle that is simply dropped, never awaited, leaves the task running (detached).
//! [`shield`] awaits without linking.

mod blocking;
mod ending;
pub mod error;
mod gather;
mod group;
mod info;
pub mod instrument;
mod interrupt;
pub mod promise;
mod runtime;
mod shield;
pub mod strict;
mod sync;
mod task;
mod time;
mod wait;

pub use error::{BoxError, Error, ErrorKind, PanicError, WireError, WorkerDied};
pub use gather::{GatherOutput, GatherValue, Gathered, gather, gather_settled};
pub use group::TaskGroup;
pub use info::{TaskId, TaskInfo, WorkKind};
pub use interrupt::OnInterrupt;
pub use promise::{Promise, Resolver, State};
pub use runtime::{
    Builder, Runtime, debug_requested_by_env, register_debug, run, run_task, run_task_try, run_try,
};
pub use shield::{Shielded, shield};
pub use task::{Task, TaskAwait, create_task, create_task_named, create_task_try};
pub use time::{timeout, timeout_at, wait_for};
pub use wait::{AsCompleted, ReturnWhen, as_completed, wait};

/// Suspends the current task for a duration (asyncio's `sleep`); tokio's timer.
///
/// ```
/// # taskweave_core::run(async {
/// taskweave_core::sleep(std::time::Duration::from_millis(1)).await;
/// # });
/// ```
pub use tokio::time::sleep;

#[doc(hidden)]
pub mod __private {
    pub use tokio;
}
