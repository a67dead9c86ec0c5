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
//! | `asyncio.run(main())` | [`run`]`(main)`, [`run_try`]`(main)` when `main` returns a `Result` / [`Runtime::builder`]`()...build()?.run(main)`; [`run_task`]`(main)` runs a `Send + 'static` main as a task, as asyncio does (`#[taskweave::main]` picks it by itself); Ctrl-C: [`OnInterrupt`] |
//! | `asyncio.run(main(), debug=True)`, `PYTHONASYNCIODEBUG=1` | `#[taskweave::main(debug)]`, `Runtime::builder().debug(true)`, `TASKWEAVE_DEBUG=1`; in a `#[tokio::main]` app [`debug::enable`]`()` |
//! | `asyncio.create_task(coro, name=...)` | [`create_task`]`(fut)`, [`create_task_named`]`(name, fut)` -> [`Task<T>`] |
//! | `await task`, `task.cancel(msg)`, `done()`, `cancelled()`, `add_done_callback` | `task.await`, [`Task::cancel_with`], [`Promise::done`], [`Promise::cancelled`], [`Promise::add_done_callback`] |
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
//! | `loop.run_in_executor(ProcessPoolExecutor(), f)` | [`run_in_executor`]`(&pool, f)` or `pool.call(f)`, with `f` a plain function (a `fn` item or a closure that captures nothing) |
//! | Dask's `Client(...).submit(f, x)` / `map` (a cluster) | [`NatsExecutor`](https://docs.rs/taskweave-nats/latest/taskweave_nats/struct.NatsExecutor.html) on NATS (feature `nats`), functions marked [`#[taskweave::remote]`](remote) |
//!
//! # Coming from tokio
//!
//! taskweave runs on tokio: a tokio future, channel or I/O type works inside [`run`], and a
//! taskweave [`Task`] is a tokio task underneath. What changes is the shape of the results.
//!
//! | tokio | taskweave | what differs |
//! |---|---|---|
//! | `tokio::spawn(fut)` -> `JoinHandle<T>` | [`create_task`]`(fut)` -> [`Task<T>`] | awaiting gives `Result<T, Error>`; a panic is [`ErrorKind::Panicked`] with the task's name and creation site; dropping the future that awaits a task cancels it (as in asyncio), and a handle dropped unawaited is reported in debug mode unless [`Task::detach`] said so |
//! | `tokio::task::spawn_blocking(f)` | [`to_thread`]`(f)`, [`run_in_executor`]`(&pool, f)` | runs on taskweave's own thread pool (one per runtime, [`default_executor`]) or the pool you name, and hands back the same [`Promise<T>`] as every other kind of work |
//! | `tokio::task::JoinSet` | [`TaskGroup`], [`as_completed`] | the first failure cancels the siblings and `join` reports every failure ([`ErrorKind::Group`]); [`as_completed`] yields outcomes in finishing order |
//! | `tokio::join!(a, b)` / `try_join!` | [`gather!`]`(a, b)`, [`gather()`] over an iterator | like `try_join!`: fails fast and cancels the rest; [`gather_settled()`] keeps every outcome |
//! | `tokio::select!` | [`wait`]`(promises, `[`ReturnWhen::FirstCompleted`]`, timeout)`, or `tokio::select!` itself | [`wait`] returns `(done, pending)` and cancels nothing; `tokio::select!` works on taskweave's tasks too, and since dropping the future that awaits a task cancels it, the branches that lose are cancelled (wrap one in [`shield`] to keep it running) |
//! | `tokio::time::timeout(d, fut)` | [`timeout`]`(d, fut)`, [`wait_for`]`(task, d)` | gives [`ErrorKind::TimedOut`] and cancels the work; [`shield`] opts out |
//!
//! ```
//! use std::time::Duration;
//! use taskweave::{create_task, run, sleep};
//! # use std::sync::Arc;
//! # use std::sync::atomic::{AtomicBool, Ordering};
//! # struct OnDrop(Arc<AtomicBool>);
//! # impl Drop for OnDrop {
//! #     fn drop(&mut self) {
//! #         self.0.store(true, Ordering::SeqCst);
//! #     }
//! # }
//! # let dropped = Arc::new(AtomicBool::new(false));
//! # // Made outside the task: a task cancelled before its first poll never runs its body.
//! # let guard = OnDrop(dropped.clone());
//!
//! let first = run(async {
//!     let slow = create_task(async move {
//! #       let _guard = guard;
//!         sleep(Duration::from_secs(10)).await;
//!         "slow"
//!     });
//!     let fast = create_task(async { "fast" });
//!     // The losing branch's task is cancelled when select! drops it.
//!     let out = tokio::select! {
//!         out = slow => out,
//!         out = fast => out,
//!     };
//! #   for _ in 0..200 {
//! #       if dropped.load(Ordering::SeqCst) {
//! #           break;
//! #       }
//! #       sleep(Duration::from_millis(5)).await;
//! #   }
//! #   assert!(dropped.load(Ordering::SeqCst), "the losing task was not cancelled");
//!     out
//! });
//! assert_eq!(first.unwrap().unwrap(), "fast");
//! ```
//!
//! # Coming from rayon
//!
//! Keep rayon for data parallelism: [`spawn_rayon`]`(f)` runs a closure on rayon's pool and
//! [`par_map`]`(items, f)` is `par_iter().map(f).collect()`, each awaitable from async code as a
//! [`Promise`]; [`RayonExecutor`] puts a rayon pool behind the same [`Executor`] trait as the
//! thread and process pools.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `debug` | on | debug mode: the [`debug`](mod@debug) module, `Runtime::builder().debug(true)`, `TASKWEAVE_DEBUG=1`, `#[taskweave::main(debug)]`. Off, taskweave-debug and tracing-subscriber are not built, and asking for debug mode is an [`ErrorKind::Refused`] saying so |
//! | `progress` | off | an indicatif progress bar for maps on any executor, `MapOptions::progress_bar()` (tqdm's `thread_map`) |
//! | `nats` | off | the executor on NATS: the `nats` module ([taskweave-nats](https://docs.rs/taskweave-nats)) and `NatsExecutor`, workers and their launcher. Off, async-nats (and its TLS stack) is not built; [`#[taskweave::remote]`](remote) and [`registry`] stay |
//!
//! Debug mode is on by default because it is what a program reaches for when something hangs or
//! an error goes missing, and it costs nothing while switched off (one branch per poll); turn the
//! feature off (`default-features = false`) to drop its dependencies.
//!
//! The general future is called [`Promise`] rather than `Future` so that it never shadows
//! [`std::future::Future`]; the [`prelude`] follows the same rule.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub use taskweave_core::*;
pub use taskweave_macros::{main, remote, test};

/// Functions by name (`#[taskweave::remote]`): the whole `taskweave-registry` crate.
pub use taskweave_registry as registry;

/// The executor on NATS (feature `nats`): the whole `taskweave-nats` crate.
#[cfg(feature = "nats")]
pub use taskweave_nats as nats;
#[cfg(feature = "nats")]
pub use taskweave_nats::NatsExecutor;

/// Debug mode: slow polls, never-awaited tasks, unretrieved errors, the hang watchdog, the
/// timeline: the whole `taskweave-debug` crate. An existing tokio application switches it on
/// with `let _debug = taskweave::debug::enable()?;` or `TASKWEAVE_DEBUG=1`.
#[cfg(feature = "debug")]
pub use taskweave_debug as debug;

/// Runs `main` to completion on a new runtime, then cancels leftover tasks and shuts down
/// (asyncio's `run`). Unlike `taskweave_core::run`, it knows debug mode (with the `debug`
/// feature, on by default): `TASKWEAVE_DEBUG=1` switches it on on every platform, and in a
/// process started as a process-pool worker it runs the worker loop instead (on Linux that
/// already happened before `main`). Ctrl-C cancels `main` and exits with status 130 after the
/// clean-up ([`OnInterrupt`]); [`run_try`] is the flat form for a `main` that returns a `Result`.
///
/// # Errors
///
/// [`ErrorKind::Refused`] when called from inside a runtime; [`ErrorKind::Broken`] when the runtime
/// cannot be built; [`ErrorKind::Panicked`] when `main` panics.
///
/// ```
/// let out = taskweave::run(async { taskweave::gather((1..=3).map(|x| async move { x * 2 })).await });
/// assert_eq!(out.unwrap(), vec![2, 4, 6]);
/// ```
pub fn run<F: std::future::Future>(main: F) -> Result<F::Output, Error> {
    __private::enter_main();
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
    __private::enter_main();
    taskweave_core::run_try(main)
}

/// [`run`] for a `main` that is `Send + 'static`: `main` runs as a task of the runtime, named
/// "main", as asyncio runs its main coroutine. Each `.await` in `main` on a task a worker
/// finishes then costs what it costs inside a task, instead of a wake-up of the calling thread;
/// `#[taskweave::main]` and `#[taskweave::test]` pick this form by themselves when the body
/// allows it. Debug mode, Ctrl-C and shutdown behave as under [`run`].
///
/// # Errors
///
/// As [`run`]: [`ErrorKind::Refused`] inside a runtime, [`ErrorKind::Broken`] when the runtime
/// cannot be built, [`ErrorKind::Panicked`] (task "main") when `main` panics.
///
/// ```
/// let sum = taskweave::run_task(async {
///     let mut sum = 0;
///     for i in 0..10 {
///         sum += taskweave::create_task(async move { i }).await.unwrap();
///     }
///     sum
/// });
/// assert_eq!(sum.unwrap(), 45);
/// ```
#[track_caller]
pub fn run_task<F>(main: F) -> Result<F::Output, Error>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    __private::enter_main();
    taskweave_core::run_task(main)
}

/// [`run_task`] for a `main` that returns `Result<T, E>`, flattened as [`run_try`] does.
///
/// # Errors
///
/// The error `main` returned, or one of [`run_task`]'s errors converted into `E`.
///
/// ```
/// fn main() -> Result<(), taskweave::Error> {
///     taskweave::run_task_try(async {
///         assert_eq!(taskweave::create_task(async { 2 }).await?, 2);
///         Ok(())
///     })
/// }
/// # main().unwrap();
/// ```
#[track_caller]
pub fn run_task_try<F, T, E>(main: F) -> Result<T, E>
where
    F: std::future::Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<Error> + Send + 'static,
{
    __private::enter_main();
    taskweave_core::run_task_try(main)
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
    Executor, MapOptions, Queued, RayonExecutor, ThreadPoolExecutor, default_executor, par_map,
    run_coroutine_threadsafe, run_in_executor, spawn_rayon, to_thread,
};

#[doc(hidden)]
pub mod __private {
    //! What the `#[taskweave::main]` and `#[taskweave::test]` expansions call.

    /// Runs first in an attributed `main`: a process started as a pool worker becomes one, and
    /// requests for debug mode are answered, also where no loader constructor did both already.
    pub fn enter_main() {
        taskweave_process::become_worker_if_spawned();
        #[cfg(feature = "nats")]
        taskweave_nats::main_if_worker();
        #[cfg(feature = "debug")]
        taskweave_debug::enable_on_request();
    }

    /// Builds the runtime and runs the body; panics with the error's text on failure, as an
    /// attributed `main` or test must.
    pub fn block_main<F: std::future::Future>(builder: crate::Builder, body: F) -> F::Output {
        let runtime = build(builder);
        match runtime.run(body) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        }
    }

    fn build(builder: crate::Builder) -> crate::Runtime {
        match builder.build() {
            Ok(rt) => rt,
            Err(e) => panic!("taskweave: cannot start the runtime: {e}"),
        }
    }

    /// An attributed body and its runtime, waiting to be run by [`MainAsTask::__run`] when the
    /// body is `Send + 'static` (as a task, `run_task`) or by [`MainOnCaller::__run`] otherwise
    /// (`run`). The expansion calls `(&Main::new(..)).__run()`: method lookup tries the receiver
    /// `&Main` first, which only `MainAsTask` takes and only for a sendable body, then `&&Main`,
    /// which `MainOnCaller` takes for every body. The body reaches here as the opaque future of
    /// an `async fn` of its own, whose `Send` the lookup can see from outside.
    pub struct Main<F>(std::cell::Cell<Option<(crate::Builder, F)>>);

    impl<F> Main<F> {
        pub fn new(builder: crate::Builder, body: F) -> Self {
            Main(std::cell::Cell::new(Some((builder, body))))
        }

        fn take(&self) -> (crate::Builder, F) {
            match self.0.take() {
                Some(parts) => parts,
                None => panic!("taskweave: an attributed body runs once"),
            }
        }
    }

    /// Runs a sendable body as the task "main" (see [`Main`]).
    pub trait MainAsTask {
        type Output;
        fn __run(&self) -> Self::Output;
    }

    impl<F> MainAsTask for Main<F>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        type Output = F::Output;

        #[track_caller]
        fn __run(&self) -> F::Output {
            let (builder, body) = self.take();
            match build(builder).run_task(body) {
                Ok(out) => out,
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// Runs any body on the calling thread, as `run` does (see [`Main`]).
    pub trait MainOnCaller {
        type Output;
        fn __run(&self) -> Self::Output;
    }

    impl<F: std::future::Future> MainOnCaller for &Main<F> {
        type Output = F::Output;

        fn __run(&self) -> F::Output {
            let (builder, body) = self.take();
            block_main(builder, body)
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
    pub use crate::{run, run_task, run_task_try, run_try};
    pub use taskweave_bridge::{Executor, ThreadPoolExecutor, run_in_executor, to_thread};
    pub use taskweave_core::{
        Error, ErrorKind, Promise, ReturnWhen, Task, TaskGroup, as_completed, create_task,
        create_task_named, gather, gather_settled, shield, sleep, timeout, wait, wait_for,
    };
    pub use taskweave_process::ProcessPoolExecutor;
}

/// The code of the READMEs (the repository's and each crate's) and of the guide, run as
/// doctests so that what a reader copies works.
#[cfg(doctest)]
mod readme_examples {
    #[doc = include_str!("../../../README.md")]
    struct Repository;
    #[doc = include_str!("../README.md")]
    struct Facade;
    #[doc = include_str!("../../taskweave-core/README.md")]
    struct Core;
    #[doc = include_str!("../../taskweave-executor/README.md")]
    struct ExecutorLayer;
    #[doc = include_str!("../../taskweave-bridge/README.md")]
    struct Bridge;
    #[doc = include_str!("../../taskweave-process/README.md")]
    struct Process;
    #[cfg(feature = "debug")]
    #[doc = include_str!("../../taskweave-debug/README.md")]
    struct Debug;
    #[doc = include_str!("../../taskweave-macros/README.md")]
    struct Macros;
    #[doc = include_str!("../../../docs/guide/coroutine.md")]
    struct GuideCoroutine;
    #[doc = include_str!("../../../docs/guide/gather.md")]
    struct GuideGather;
    #[doc = include_str!("../../../docs/guide/blocking.md")]
    struct GuideBlocking;
    #[doc = include_str!("../../../docs/guide/process.md")]
    struct GuideProcess;
    #[cfg(feature = "debug")]
    #[doc = include_str!("../../../docs/guide/debug.md")]
    struct GuideDebug;
    #[cfg(feature = "nats")]
    #[doc = include_str!("../../../docs/guide/distributed.md")]
    struct GuideDistributed;
    #[doc = include_str!("../../../docs/guide/README.md")]
    struct GuideReadme;
}
