//! [`run`] and the [`Runtime`] builder: asyncio's `asyncio.run`.
//!
//! A runtime is a tokio runtime plus what taskweave adds around the main future: the observer
//! (debug mode) installed for its life, the main future marked as a task poll (so blocking waits
//! inside it are refused), a panic in main turned into an error value, Ctrl-C handling (see
//! [`OnInterrupt`]), and a shutdown that cancels leftover tasks (their promises complete as
//! cancelled) and waits for blocking work.

use std::future::IntoFuture;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::error::Error;
use crate::instrument::{self, Observer};
use crate::interrupt::{self, OnInterrupt};

/// Runs `main` to completion on a new multi-threaded runtime, then cancels the tasks still
/// running and shuts the runtime down (asyncio's `run`).
///
/// Debug mode is switched on when `TASKWEAVE_DEBUG=1` is set and a debug layer registered
/// itself with [`register_debug`] (the `taskweave` facade does); without one it warns once and
/// runs without debug mode.
///
/// Ctrl-C cancels `main` and, after the clean-up, ends the process with status 130; a second
/// Ctrl-C ends it at once (see [`OnInterrupt`], and [`Builder::on_interrupt`] to change it).
///
/// When `main` itself returns a `Result`, [`run_try`] gives one flat `Result` instead of a
/// `Result` inside a `Result`.
///
/// # Errors
///
/// [`ErrorKind::Refused`](crate::ErrorKind::Refused) when called from inside a runtime;
/// [`ErrorKind::Broken`](crate::ErrorKind::Broken) when the runtime cannot be built;
/// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) when `main` panics.
///
/// # Examples
///
/// ```
/// let answer = taskweave_core::run(async {
///     let task = taskweave_core::create_task(async { 40 + 2 });
///     task.await.unwrap()
/// });
/// assert_eq!(answer.unwrap(), 42);
/// ```
pub fn run<F: std::future::Future>(main: F) -> Result<F::Output, Error> {
    refuse_nested()?;
    Runtime::builder().build()?.run(main)
}

/// [`run`] for a `main` that returns `Result<T, E>`: `run`'s own errors are converted into `E`,
/// so the caller gets one `Result<T, E>`. A `fn main() -> Result<(), Error>` ends in
/// `run_try(async { ...; Ok(()) })` with no `?` outside and no `.unwrap().unwrap()`.
///
/// `E` is anything an [`Error`] converts into: `Error` itself, `Box<dyn std::error::Error +
/// Send + Sync>`, `anyhow::Error`, or an error type of the program's own with a
/// `From<taskweave::Error>`.
///
/// # Why a second function
///
/// `run` cannot flatten by itself: Rust has no way to treat "an output that is a `Result`"
/// apart from "any other output" in one generic function, and `run(async { 42 })` must keep
/// working. The `_try` suffix matches [`create_task_try`](crate::create_task_try), which
/// flattens the same way.
///
/// # Errors
///
/// The error `main` returned, or one of [`run`]'s errors converted into `E`.
///
/// # Examples
///
/// ```
/// use taskweave_core::{create_task, run_try, Error};
///
/// fn main() -> Result<(), Error> {
///     run_try(async {
///         let answer = create_task(async { 6 * 7 }).await?;
///         assert_eq!(answer, 42);
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
    run(main)?
}

/// [`run`] for a `main` that is `Send + 'static`: `main` runs as a task on the runtime, named
/// "main", as asyncio runs its main coroutine, instead of being polled by the calling thread.
///
/// Everything else is [`run`]'s: the same Ctrl-C handling, shutdown and errors. What changes is
/// where `main` runs. Under `run`, each `.await` in `main` on a task that a worker finishes is a
/// hop between the calling thread and that worker (a wake-up of a parked thread, some
/// microseconds); as a task, `main` is woken on the worker that finished the task, as every
/// other task is. A loop of `create_task(..).await` in `main` costs about what it costs inside a
/// task. The main task shows up in debug mode's reports (slow polls, live tasks) as "main".
///
/// Use `run` when `main` borrows locals or holds something that is not `Send` (an `Rc`, a
/// `RefCell` borrow) across an `.await`; `#[taskweave::main]` picks between the two by itself.
///
/// # Errors
///
/// As [`run`]: [`ErrorKind::Refused`](crate::ErrorKind::Refused) inside a runtime,
/// [`ErrorKind::Broken`](crate::ErrorKind::Broken) when the runtime cannot be built,
/// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) (task "main") when `main` panics.
///
/// # Examples
///
/// ```
/// let answer = taskweave_core::run_task(async {
///     let mut sum = 0;
///     for i in 0..100 {
///         sum += taskweave_core::create_task(async move { i }).await.unwrap();
///     }
///     sum
/// });
/// assert_eq!(answer.unwrap(), 4950);
/// ```
#[track_caller]
pub fn run_task<F>(main: F) -> Result<F::Output, Error>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    refuse_nested()?;
    Runtime::builder().build()?.run_task(main)
}

/// [`run_task`] for a `main` that returns `Result<T, E>`, flattened as [`run_try`] does.
///
/// # Errors
///
/// The error `main` returned, or one of [`run_task`]'s errors converted into `E`.
///
/// # Examples
///
/// ```
/// use taskweave_core::{create_task, run_task_try, Error};
///
/// fn main() -> Result<(), Error> {
///     run_task_try(async {
///         assert_eq!(create_task(async { 6 * 7 }).await?, 42);
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
    run_task(main)?
}

/// Builds a [`Runtime`]: worker threads, flavour, debug mode, thread names.
///
/// # Examples
///
/// ```
/// let rt = taskweave_core::Runtime::builder().current_thread().build().unwrap();
/// assert_eq!(rt.run(async { 1 + 1 }).unwrap(), 2);
/// ```
#[derive(Clone)]
pub struct Builder {
    current_thread: bool,
    worker_threads: Option<usize>,
    thread_name: Option<String>,
    debug: Option<bool>,
    observer: Option<Arc<dyn Observer>>,
    shutdown_timeout: Option<Duration>,
    on_interrupt: OnInterrupt,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("current_thread", &self.current_thread)
            .field("worker_threads", &self.worker_threads)
            .field("debug", &self.debug)
            .field("on_interrupt", &self.on_interrupt)
            .finish_non_exhaustive()
    }
}

/// A tokio runtime with taskweave's start-up and shutdown around the main future.
///
/// # Examples
///
/// ```
/// let rt = taskweave_core::Runtime::builder().worker_threads(2).build().unwrap();
/// let out = rt.run(async { taskweave_core::create_task(async { "done" }).await.unwrap() });
/// assert_eq!(out.unwrap(), "done");
/// ```
pub struct Runtime {
    rt: tokio::runtime::Runtime,
    observer: Option<Arc<dyn Observer>>,
    shutdown_timeout: Option<Duration>,
    on_interrupt: OnInterrupt,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("debug", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

pub(crate) static DEBUG_FACTORY: OnceLock<fn() -> Arc<dyn Observer>> = OnceLock::new();

/// Registers the function that makes the debug-mode observer. The debug layer calls this so
/// that `Builder::debug(true)` and `TASKWEAVE_DEBUG=1` can switch it on without core depending on
/// it. The first registration wins.
///
/// ```
/// use std::sync::Arc;
/// struct Quiet;
/// impl taskweave_core::instrument::Observer for Quiet {}
/// taskweave_core::register_debug(|| Arc::new(Quiet));
/// ```
pub fn register_debug(factory: fn() -> Arc<dyn Observer>) {
    let _ = DEBUG_FACTORY.set(factory);
}

/// `true` when the environment asks for debug mode (`TASKWEAVE_DEBUG` set to anything but
/// `0` or empty, like `PYTHONASYNCIODEBUG`).
///
/// ```
/// let _ = taskweave_core::debug_requested_by_env();
/// ```
pub fn debug_requested_by_env() -> bool {
    std::env::var_os("TASKWEAVE_DEBUG").is_some_and(|v| !v.is_empty() && v != "0")
}

impl Runtime {
    /// A builder with the defaults: multi-threaded, one worker per core, debug mode from the
    /// environment.
    ///
    /// ```
    /// let rt = taskweave_core::Runtime::builder().build().unwrap();
    /// assert!(!rt.debug());
    /// ```
    pub fn builder() -> Builder {
        Builder {
            current_thread: false,
            worker_threads: None,
            thread_name: None,
            debug: None,
            observer: None,
            shutdown_timeout: None,
            on_interrupt: OnInterrupt::default(),
        }
    }

    /// The tokio handle, to spawn or enter from other threads.
    ///
    /// ```
    /// let rt = taskweave_core::Runtime::builder().build().unwrap();
    /// let h = rt.handle().clone();
    /// assert_eq!(h.block_on(async { 3 }), 3);
    /// ```
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.rt.handle()
    }

    /// `true` when debug mode (an observer) is on for this runtime.
    ///
    /// ```
    /// let rt = taskweave_core::Runtime::builder().debug(false).build().unwrap();
    /// assert!(!rt.debug());
    /// ```
    pub fn debug(&self) -> bool {
        self.observer.is_some()
    }

    /// Runs `main` to completion, then cancels leftover tasks and shuts down.
    ///
    /// On Ctrl-C (SIGINT) `main` is cancelled: it is dropped on the calling thread, outside any
    /// task poll but inside the runtime, so its destructors may wait for what they own (a pool
    /// joins its workers); then the leftover tasks are cancelled and the runtime shuts down as
    /// after a normal end. What follows depends on [`Builder::on_interrupt`]: by default the
    /// process exits with status 130; a second Ctrl-C during the clean-up exits at once.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Refused`](crate::ErrorKind::Refused) when called from inside a runtime;
    /// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) when `main` panics (leftover tasks are
    /// still cancelled first); [`ErrorKind::Interrupted`](crate::ErrorKind::Interrupted) after
    /// Ctrl-C under [`OnInterrupt::ReturnError`].
    ///
    /// ```
    /// let rt = taskweave_core::Runtime::builder().build().unwrap();
    /// let err = rt.run(async { panic!("bad main") }).unwrap_err();
    /// assert!(err.to_string().contains("bad main"));
    /// ```
    pub fn run<F: std::future::Future>(self, main: F) -> Result<F::Output, Error> {
        if let Err(e) = refuse_nested() {
            // Dropping a runtime inside another one panics; this way of dropping does not.
            self.rt.shutdown_background();
            return Err(e);
        }
        let scope = instrument::RunScope::new(self.rt.handle(), self.observer.clone());
        let watch = interrupt::Watch::start(self.on_interrupt);
        // Boxed so that, after a Ctrl-C, it can be dropped outside `block_on`.
        let mut main = Box::pin(MainFuture { main });
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.rt.block_on(async {
                let mut interrupted = std::pin::pin!(watch.interrupted());
                std::future::poll_fn(|cx| {
                    if let Poll::Ready(out) = main.as_mut().poll(cx) {
                        return Poll::Ready(Some(out));
                    }
                    interrupted.as_mut().poll(cx).map(|()| None)
                })
                .await
            })
        }));
        // A main that ended during the Ctrl-C (say, with an error because the terminal's
        // SIGINT also ended its pool's workers) was interrupted all the same.
        let interrupted = matches!(outcome, Ok(None)) || watch.received();
        let outcome =
            outcome.map_err(|payload| Error::from_panic(&*payload, Some("main".to_owned()), None));
        self.finish(scope, watch, interrupted, outcome, Some(main))
    }

    /// [`Runtime::run`] for a `main` that is `Send + 'static`: `main` runs as a task of this
    /// runtime named "main" (see [`run_task`] for why), with `run`'s Ctrl-C handling, shutdown
    /// and errors.
    ///
    /// On Ctrl-C the main task is told to stop: at its next wake-up (at once when it is waiting)
    /// it hands its future back instead of polling it, and the future is dropped on the calling
    /// thread outside any task poll, as `run` drops it. On a current-thread runtime the main task
    /// runs on the calling thread, as every task does there.
    ///
    /// # Errors
    ///
    /// As [`Runtime::run`]; a panic in `main` is
    /// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) with task "main" and the site that
    /// called `run_task`.
    ///
    /// ```
    /// let rt = taskweave_core::Runtime::builder().worker_threads(2).build().unwrap();
    /// let out = rt.run_task(async {
    ///     taskweave_core::create_task(async { 1 }).await.unwrap() + 1
    /// });
    /// assert_eq!(out.unwrap(), 2);
    /// ```
    #[track_caller]
    pub fn run_task<F>(self, main: F) -> Result<F::Output, Error>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if let Err(e) = refuse_nested() {
            self.rt.shutdown_background();
            return Err(e);
        }
        let scope = instrument::RunScope::new(self.rt.handle(), self.observer.clone());
        let watch = interrupt::Watch::start(self.on_interrupt);
        let stop = Arc::new(Stop::default());
        let task = {
            // Spawned here rather than inside `block_on` so that the task's creation site is
            // the caller's (`#[track_caller]` does not reach into a closure).
            let _in_runtime = self.rt.enter();
            crate::create_task_named(
                "main",
                MainTask {
                    main: Some(Box::pin(main)),
                    stop: stop.clone(),
                },
            )
        };
        let mut saw_interrupt = false;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.rt.block_on(async {
                let mut task = std::pin::pin!(task.into_future());
                let mut interrupted = std::pin::pin!(watch.interrupted());
                let first = std::future::poll_fn(|cx| {
                    if let Poll::Ready(out) = task.as_mut().poll(cx) {
                        return Poll::Ready(Some(out));
                    }
                    interrupted.as_mut().poll(cx).map(|()| None)
                })
                .await;
                match first {
                    Some(out) => out,
                    None => {
                        saw_interrupt = true;
                        stop.request();
                        task.await
                    }
                }
            })
        }));
        let interrupted = saw_interrupt || watch.received();
        let (outcome, main) = match outcome {
            Ok(Ok(MainEnd::Done(out))) => (Ok(Some(out)), None),
            Ok(Ok(MainEnd::Stopped(main))) => (Ok(None), Some(main)),
            // The task caught a panic of `main` and named it "main".
            Ok(Err(e)) => (Err(e), None),
            Err(payload) => (
                Err(Error::from_panic(&*payload, Some("main".to_owned()), None)),
                None,
            ),
        };
        self.finish(scope, watch, interrupted, outcome, main)
    }

    /// What `run` and `run_task` share after `main` ended or was stopped: `main` dropped on the
    /// calling thread, leftover tasks cancelled, the runtime shut down, the Ctrl-C rule applied.
    fn finish<T, M>(
        self,
        scope: instrument::RunScope,
        watch: interrupt::Watch,
        interrupted: bool,
        outcome: Result<Option<T>, Error>,
        main: Option<M>,
    ) -> Result<T, Error> {
        if let Some(main) = main {
            let _in_runtime = self.rt.enter();
            // A panic in a destructor has been printed by the panic hook; the run's outcome
            // stays the one it had.
            let _ = catch_unwind(AssertUnwindSafe(|| drop(main)));
        }
        scope.shutdown_started();
        match self.shutdown_timeout {
            Some(t) => self.rt.shutdown_timeout(t),
            None => drop(self.rt),
        }
        if let Some(obs) = &self.observer {
            obs.on_shutdown_complete();
        }
        drop(scope);
        // Only now: a second Ctrl-C during the shutdown above must still end the process.
        drop(watch);
        if interrupted && self.on_interrupt == OnInterrupt::Exit {
            exit_interrupted();
        }
        match outcome {
            Err(e) => Err(e),
            Ok(Some(out)) if !interrupted => Ok(out),
            Ok(_) => Err(Error::interrupted()),
        }
    }

    /// [`Runtime::run`] for a `main` that returns `Result<T, E>`, flattened as [`run_try`]
    /// does.
    ///
    /// # Errors
    ///
    /// The error `main` returned, or one of [`Runtime::run`]'s errors converted into `E`.
    ///
    /// ```
    /// use taskweave_core::{Error, Runtime};
    /// let rt = Runtime::builder().current_thread().build().unwrap();
    /// let out: Result<u8, Error> = rt.run_try(async { Err(Error::abandoned()) });
    /// assert!(out.as_ref().is_err_and(|e| e.is_abandoned()));
    /// ```
    pub fn run_try<F, T, E>(self, main: F) -> Result<T, E>
    where
        F: std::future::Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        self.run(main)?
    }

    /// [`Runtime::run_task`] for a `main` that returns `Result<T, E>`, flattened as [`run_try`]
    /// does.
    ///
    /// # Errors
    ///
    /// The error `main` returned, or one of [`Runtime::run_task`]'s errors converted into `E`.
    ///
    /// ```
    /// use taskweave_core::{Error, Runtime};
    /// let rt = Runtime::builder().current_thread().build().unwrap();
    /// let out: Result<u8, Error> = rt.run_task_try(async { Err(Error::abandoned()) });
    /// assert!(out.as_ref().is_err_and(|e| e.is_abandoned()));
    /// ```
    #[track_caller]
    pub fn run_task_try<F, T, E>(self, main: F) -> Result<T, E>
    where
        F: std::future::Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        self.run_task(main)?
    }
}

/// Ends the process as a program ended by Ctrl-C does, after flushing what it wrote.
pub(crate) fn exit_interrupted() -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(interrupt::EXIT_STATUS)
}

/// A configuration warning: a tracing event when a subscriber is set, else a line on stderr.
pub(crate) fn warn(message: &str) {
    if tracing::dispatcher::has_been_set() {
        tracing::warn!(target: "taskweave", "{message}");
    } else {
        eprintln!("taskweave: warning: {message}");
    }
}

fn refuse_nested() -> Result<(), Error> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::refused(
            "run() cannot be called from inside a running runtime; `.await` the future instead",
        ));
    }
    Ok(())
}

impl Builder {
    /// A single-threaded runtime: every task runs on the thread that calls `run` (asyncio's
    /// model).
    ///
    /// ```
    /// let rt = taskweave_core::Runtime::builder().current_thread().build().unwrap();
    /// assert_eq!(rt.run(async { 1 }).unwrap(), 1);
    /// ```
    pub fn current_thread(mut self) -> Builder {
        self.current_thread = true;
        self
    }

    /// A multi-threaded runtime (the default).
    ///
    /// ```
    /// let rt = taskweave_core::Runtime::builder().multi_thread().build().unwrap();
    /// assert_eq!(rt.run(async { 1 }).unwrap(), 1);
    /// ```
    pub fn multi_thread(mut self) -> Builder {
        self.current_thread = false;
        self
    }

    /// The number of worker threads of a multi-threaded runtime (default: one per core).
    ///
    /// ```
    /// let rt = taskweave_core::Runtime::builder().worker_threads(2).build().unwrap();
    /// assert_eq!(rt.run(async { 1 }).unwrap(), 1);
    /// ```
    pub fn worker_threads(mut self, n: usize) -> Builder {
        self.worker_threads = Some(n.max(1));
        self
    }

    /// The name of the runtime's threads.
    ///
    /// ```
    /// let rt = taskweave_core::Runtime::builder().thread_name("io").build().unwrap();
    /// let name = rt.run(async {
    ///     tokio::task::spawn(async { std::thread::current().name().map(str::to_owned) }).await.unwrap()
    /// });
    /// assert_eq!(name.unwrap().as_deref(), Some("io"));
    /// ```
    pub fn thread_name(mut self, name: impl Into<String>) -> Builder {
        self.thread_name = Some(name.into());
        self
    }

    /// Switches debug mode on or off, overriding `TASKWEAVE_DEBUG`. It needs a registered debug
    /// layer ([`register_debug`]); without one, `build` refuses `debug(true)` with an error
    /// that says how to register it. (`TASKWEAVE_DEBUG=1` without a layer only warns: a
    /// variable in the environment must not stop a program that never asked for debug mode.)
    ///
    /// ```
    /// // Without a registered debug layer, asking for debug mode is a clear error.
    /// let err = taskweave_core::Runtime::builder().debug(true).build().unwrap_err();
    /// assert!(err.is_refused());
    /// assert!(err.to_string().contains("debug layer"));
    /// ```
    pub fn debug(mut self, on: bool) -> Builder {
        self.debug = Some(on);
        self
    }

    /// Installs `observer` for the runtime's life (debug mode with a custom observer).
    ///
    /// ```
    /// use std::sync::Arc;
    /// struct Quiet;
    /// impl taskweave_core::instrument::Observer for Quiet {}
    /// let rt = taskweave_core::Runtime::builder().observer(Arc::new(Quiet)).build().unwrap();
    /// assert!(rt.debug());
    /// ```
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Builder {
        self.observer = Some(observer);
        self
    }

    /// How long shutdown waits for blocking work before leaving it behind (default: waits).
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = taskweave_core::Runtime::builder()
    ///     .shutdown_timeout(Duration::from_secs(1))
    ///     .build()
    ///     .unwrap();
    /// rt.run(async {}).unwrap();
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Builder {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// What Ctrl-C (SIGINT) does while [`Runtime::run`] runs; the default is
    /// [`OnInterrupt::Exit`]. Use [`OnInterrupt::Off`] in a program that handles signals itself.
    ///
    /// ```
    /// use taskweave_core::{Error, OnInterrupt, Runtime};
    /// let rt = Runtime::builder().on_interrupt(OnInterrupt::ReturnError).build().unwrap();
    /// // Without a Ctrl-C, `run` returns `main`'s output as always.
    /// assert_eq!(rt.run(async { 5 }).unwrap(), 5);
    /// ```
    pub fn on_interrupt(mut self, on_interrupt: OnInterrupt) -> Builder {
        self.on_interrupt = on_interrupt;
        self
    }

    /// Builds the runtime.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Broken`](crate::ErrorKind::Broken) when tokio cannot start the runtime (threads
    /// refused by the OS); [`ErrorKind::Refused`](crate::ErrorKind::Refused) when
    /// [`Builder::debug`]`(true)` asked for debug mode with no debug layer registered.
    /// `TASKWEAVE_DEBUG` without a layer is no error: it warns once and the runtime runs without
    /// debug mode.
    ///
    /// ```
    /// let rt = taskweave_core::Runtime::builder().worker_threads(1).build();
    /// assert!(rt.is_ok());
    /// ```
    pub fn build(self) -> Result<Runtime, Error> {
        crate::error::install_backtrace_hook();
        let mut tb = if self.current_thread {
            tokio::runtime::Builder::new_current_thread()
        } else {
            tokio::runtime::Builder::new_multi_thread()
        };
        tb.enable_all();
        if let Some(n) = self.worker_threads {
            tb.worker_threads(n);
        }
        if let Some(name) = &self.thread_name {
            tb.thread_name(name);
        }
        let rt = tb
            .build()
            .map_err(|e| Error::broken(format!("cannot start the runtime: {e}")))?;
        let observer = match (self.observer, self.debug) {
            (Some(obs), _) => Some(obs),
            (None, Some(false)) => None,
            (None, Some(true)) => match DEBUG_FACTORY.get() {
                Some(factory) => Some(factory()),
                None => {
                    // Dropped here, the runtime is not inside another one (build is not async).
                    rt.shutdown_background();
                    return Err(Error::refused(format!(
                        "debug mode was asked for but no debug layer is registered: {NO_LAYER_HINT}"
                    )));
                }
            },
            (None, None) if debug_requested_by_env() => match DEBUG_FACTORY.get() {
                Some(factory) => Some(factory()),
                None => {
                    warn_env_without_layer();
                    None
                }
            },
            (None, None) => None,
        };
        Ok(Runtime {
            rt,
            observer,
            shutdown_timeout: self.shutdown_timeout,
            on_interrupt: self.on_interrupt,
        })
    }
}

const NO_LAYER_HINT: &str = "depend on the `taskweave` facade with its `debug` feature (on by default) or on `taskweave-debug`, or call taskweave_debug::enable_on_request() before building the runtime";

pub(crate) fn warn_env_without_layer() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        warn(&format!(
            "TASKWEAVE_DEBUG is set but no debug layer is registered, so debug mode stays off: \
             {NO_LAYER_HINT}"
        ));
    });
}

pin_project_lite::pin_project! {
    /// `run`'s main future, polled as a task poll so blocking waits inside it are refused.
    struct MainFuture<F> {
        #[pin]
        main: F,
    }
}

impl<F: std::future::Future> std::future::Future for MainFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _polling = crate::strict::PollingTask::enter();
        self.project().main.poll(cx)
    }
}

/// The request, made by `run_task` on Ctrl-C, that the main task stop and hand its future back.
#[derive(Default)]
struct Stop {
    requested: std::sync::atomic::AtomicBool,
    waker: futures_util::task::AtomicWaker,
}

impl Stop {
    fn request(&self) {
        self.requested
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.waker.wake();
    }

    fn is_requested(&self, cx: &Context<'_>) -> bool {
        // Registered before the flag is read, so a request between the two still wakes the task.
        self.waker.register(cx.waker());
        self.requested.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// How the main task of `run_task` ended: `main`'s output, or, after a stop request, `main`
/// itself, to be dropped by the calling thread.
enum MainEnd<F: std::future::Future> {
    Done(F::Output),
    Stopped(Pin<Box<F>>),
}

/// The main task's future: `main`, boxed so that it can leave the task unfinished.
struct MainTask<F> {
    main: Option<Pin<Box<F>>>,
    stop: Arc<Stop>,
}

impl<F: std::future::Future> std::future::Future for MainTask<F> {
    type Output = MainEnd<F>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<MainEnd<F>> {
        // `MainTask` is `Unpin` (its future is behind a `Pin<Box<_>>`).
        let this = &mut *self;
        if this.stop.is_requested(cx)
            && let Some(main) = this.main.take()
        {
            return Poll::Ready(MainEnd::Stopped(main));
        }
        match this.main.as_mut() {
            Some(main) => main.as_mut().poll(cx).map(MainEnd::Done),
            // Not polled again once it returned; pending is the harmless answer if it were.
            None => Poll::Pending,
        }
    }
}
