//! Python's asyncio and concurrent.futures model for Rust: tasks, one future type for results
//! from coroutines, threads and processes, executors and a debug mode, on tokio and rayon.
//!
//! This facade re-exports the taskweave crates; depend on it, or on a single crate
//! (`taskweave-core`, `taskweave-executor`, `taskweave-bridge`, `taskweave-process`,
//! `taskweave-debug`) when you need
//! only that part.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use taskweave::{create_task, gather, run_try, sleep};
//!
//! async fn compute(x: u64) -> u64 {
//!     sleep(Duration::from_millis(10)).await;
//!     x * x
//! }
//!
//! let squares = run_try(async { gather((0..5).map(|x| create_task(compute(x)))).await });
//! assert_eq!(squares.unwrap(), vec![0, 1, 4, 9, 16]);
//! ```
//!
//! The same with the attribute, asyncio's `asyncio.run(main())` spelled as in tokio
//! (`#[taskweave::main(debug)]` switches debug mode on):
//!
//! ```
//! #[taskweave::main]
//! async fn main() {
//!     let task = taskweave::create_task(async { 6 * 7 });
//!     assert_eq!(task.await.unwrap(), 42);
//! }
//! ```
//!
//! # From Python to taskweave
//!
//! | Python | taskweave |
//! |---|---|
//! | `asyncio.run(main())` | [`run`]`(main)`, [`run_try`]`(main)` when `main` returns a `Result` / [`Runtime::builder`]`()...build()?.run(main)`; Ctrl-C: [`OnInterrupt`] |
//! | `asyncio.run(main(), debug=True)`, `PYTHONASYNCIODEBUG=1` | `#[taskweave::main(debug)]`, `Runtime::builder().debug(true)`, `TASKWEAVE_DEBUG=1` |
//! | `asyncio.create_task(coro, name=...)` | [`create_task`]`(fut)`, [`create_task_named`]`(name, fut)` -> [`Task<T>`] |
//! | `await task`, `task.cancel(msg)`, `done()`, `cancelled()`, `add_done_callback` | `task.await`, [`Task::cancel`], [`Promise::done`], [`Promise::cancelled`], [`Promise::add_done_callback`] |
//! | `concurrent.futures.Future` (`result(timeout)`, `cancel()`, states) | [`Promise<T>`] ([`Promise::result`], [`Promise::cancel`], [`State`]) |
//! | `asyncio.gather(*aws)` / `return_exceptions=True` | [`gather()`] / [`gather_settled()`]; [`gather!`] for mixed types |
//! | `asyncio.wait(aws, return_when=...)` | [`wait`]`(promises, `[`ReturnWhen`]`, timeout)` |
//! | `asyncio.as_completed(aws)` | [`as_completed`] |
//! | `asyncio.wait_for(aw, t)`, `asyncio.timeout(t)` | [`wait_for`], [`timeout`], [`timeout_at`] |
//! | `asyncio.shield(aw)` | [`shield`] |
//! | `asyncio.TaskGroup` | [`TaskGroup`] |
//! | `asyncio.sleep(t)` | [`sleep`] |
//! | `asyncio.to_thread(f)`, `loop.run_in_executor(pool, f)` | [`to_thread`]`(f)`, [`run_in_executor`]`(&pool, f)` |
//! | `ThreadPoolExecutor(max_workers, thread_name_prefix, initializer)` | [`ThreadPoolExecutor`] (`submit`, `map`, `shutdown(wait, cancel_futures)`) |
//! | `asyncio.run_coroutine_threadsafe(coro, loop)` | [`run_coroutine_threadsafe`]`(&handle, fut)` |
//! | `ProcessPoolExecutor(max_workers, initializer, max_tasks_per_child)` | [`ProcessPoolExecutor`] (`submit(f, arg)`, `map(f, inputs)`, `map_with(f, inputs, MapOptions::new().chunksize(n))`, `map_unordered`, `shutdown`, `terminate_workers`, `kill_workers`) |
//! | `loop.run_in_executor(ProcessPoolExecutor(), f)` | [`run_in_executor`]`(&pool, f as fn() -> R)` or `pool.call(f)` |
//! | (rayon, no Python twin) | [`spawn_rayon`], [`par_map`], [`RayonExecutor`] |
//! | Dask's `Client(...).submit(f, x)` / `map` (a cluster) | [`NatsExecutor`] on NATS, functions marked [`#[taskweave::remote]`](remote) |
//!
//! The general future is called [`Promise`] rather than `Future` so that it never shadows
//! [`std::future::Future`]; the [`prelude`] follows the same rule.

pub use taskweave_core::*;
pub use taskweave_macros::{main, remote, test};

/// Functions by name (`#[taskweave::remote]`): the whole `taskweave-registry` crate.
pub use taskweave_registry as registry;

/// The executor on NATS: the whole `taskweave-nats` crate.
pub use taskweave_nats as nats;
pub use taskweave_nats::NatsExecutor;

/// Debug mode: slow polls, never-awaited tasks, unretrieved errors, the hang watchdog, the
/// timeline: the whole `taskweave-debug` crate.
pub use taskweave_debug as debug;

/// Sets taskweave up for this program; call it first in `main` (or use
/// [`#[taskweave::main]`](macro@main), which does).
///
/// In a process started as a process-pool worker it runs the worker loop instead of returning
/// (on Linux this already happens before `main`); started with `--taskweave-worker
/// nats://host:4222`, it serves this program's remote functions on NATS until SIGTERM and exits
/// ([`nats::main_if_worker`]). Otherwise it registers debug mode, so that `Runtime::builder().debug(true)` and `TASKWEAVE_DEBUG=1`
/// switch it on. Calling it more than once is harmless.
///
/// ```
/// taskweave::init();
/// let rt = taskweave::Runtime::builder().debug(true).build().unwrap();
/// assert!(rt.debug());
/// ```
pub fn init() {
    taskweave_process::init();
    taskweave_nats::main_if_worker();
    taskweave_debug::register();
}

/// Runs `main` to completion on a new runtime, then cancels leftover tasks and shuts down
/// (asyncio's `run`). Unlike `taskweave_core::run`, it knows debug mode: `TASKWEAVE_DEBUG=1`
/// switches it on. Ctrl-C cancels `main` and exits with status 130 after the clean-up
/// ([`OnInterrupt`]); [`run_try`] is the flat form for a `main` that returns a `Result`.
///
/// # Errors
///
/// [`Error::Refused`] when called from inside a runtime; [`Error::Broken`] when the runtime
/// cannot be built; [`Error::Panicked`] when `main` panics.
///
/// ```
/// let out = taskweave::run(async { taskweave::gather((1..=3).map(|x| async move { x * 2 })).await });
/// assert_eq!(out.unwrap(), vec![2, 4, 6]);
/// ```
pub fn run<F: std::future::Future>(main: F) -> Result<F::Output, Error> {
    init();
    taskweave_core::run(main)
}

/// [`run`] for a `main` that returns `Result<T, E>`: one flat `Result`, `run`'s own errors
/// converted into `E` (see `taskweave_core::run_try`).
///
/// # Errors
///
/// The error `main` returned, or one of [`run`]'s errors converted into `E`.
///
/// ```
/// fn main() -> Result<(), taskweave::Error> {
///     taskweave::run_try(async {
///         let n = taskweave::create_task(async { 2 }).await?;
///         assert_eq!(n, 2);
///         Ok(())
///     })
/// }
/// # main().unwrap();
/// ```
pub fn run_try<F, T, E>(main: F) -> Result<T, E>
where
    F: std::future::Future<Output = Result<T, E>>,
    E: From<Error>,
{
    init();
    taskweave_core::run_try(main)
}

/// The process pool: real worker processes, the wire format: the whole `taskweave-process`
/// crate.
pub use taskweave_process as process;
pub use taskweave_process::{Bytes, ProcessPoolExecutor};

/// The executor layer: the `Executor` trait, the map engine every executor shares and its
/// `Dispatch` trait for new executors: the whole `taskweave-executor` crate.
pub use taskweave_executor as executor;

/// Thread pools, `to_thread` / `run_in_executor`, the rayon bridge and sync-to-async calls: the
/// whole `taskweave-bridge` crate.
pub use taskweave_bridge as bridge;
pub use taskweave_bridge::{
    Executor, MapOptions, RayonExecutor, ThreadPoolExecutor, default_executor, par_map,
    run_coroutine_threadsafe, run_in_executor, spawn_rayon, to_thread,
};

#[doc(hidden)]
pub mod __private {
    //! What the `#[taskweave::main]` and `#[taskweave::test]` expansions call.

    /// Runs first in an attributed `main`: lets the other crates set themselves up.
    pub fn enter_main() {
        crate::init();
    }

    /// Builds the runtime and runs the body; panics with the error's text on failure, as an
    /// attributed `main` or test must.
    pub fn block_main<F: std::future::Future>(builder: crate::Builder, body: F) -> F::Output {
        let runtime = match builder.build() {
            Ok(rt) => rt,
            Err(e) => panic!("taskweave: cannot start the runtime: {e}"),
        };
        match runtime.run(body) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        }
    }
}

/// The names most programs use, safe to glob-import: nothing here shadows `std`.
///
/// ```
/// use taskweave::prelude::*;
/// let out = run_try(async { create_task(async { 1 }).await });
/// assert_eq!(out.unwrap(), 1);
/// ```
pub mod prelude {
    pub use crate::{run, run_try};
    pub use taskweave_bridge::{Executor, ThreadPoolExecutor, run_in_executor, to_thread};
    pub use taskweave_core::{
        Error, Promise, ReturnWhen, Task, TaskGroup, as_completed, create_task, create_task_named,
        gather, gather_settled, shield, sleep, timeout, wait, wait_for,
    };
    pub use taskweave_process::ProcessPoolExecutor;
}
