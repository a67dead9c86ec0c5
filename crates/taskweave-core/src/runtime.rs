//! [`run`] and the [`Runtime`] builder: asyncio's `asyncio.run`.
//!
//! A runtime is a tokio runtime plus what taskweave adds around the main future: the observer
//! (debug mode) installed for its life, the main future marked as a task poll (so blocking waits
//! inside it are refused), a panic in main turned into an error value, and a shutdown that cancels
//! leftover tasks (their promises complete as cancelled) and waits for blocking work.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::error::Error;
use crate::instrument::{self, Observer};

/// Runs `main` to completion on a new multi-threaded runtime, then cancels the tasks still
/// running and shuts the runtime down (asyncio's `run`).
///
/// Debug mode is switched on when `TASKWEAVE_DEBUG=1` is set and a debug layer registered
/// itself with [`register_debug`] (the `taskweave` facade does).
///
/// # Errors
///
/// [`Error::Refused`] when called from inside a runtime; [`Error::Broken`] when the runtime
/// cannot be built; [`Error::Panicked`] when `main` panics.
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
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("current_thread", &self.current_thread)
            .field("worker_threads", &self.worker_threads)
            .field("debug", &self.debug)
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
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("debug", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

static DEBUG_FACTORY: OnceLock<fn() -> Arc<dyn Observer>> = OnceLock::new();

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
    /// # Errors
    ///
    /// [`Error::Refused`] when called from inside a runtime; [`Error::Panicked`] when `main`
    /// panics (leftover tasks are still cancelled first).
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
        let guard = self.observer.clone().map(instrument::install);
        let outcome = catch_unwind(AssertUnwindSafe(|| self.rt.block_on(MainFuture { main })));
        instrument::shutdown_started();
        match self.shutdown_timeout {
            Some(t) => self.rt.shutdown_timeout(t),
            None => drop(self.rt),
        }
        if let Some(obs) = &self.observer {
            obs.on_shutdown_complete();
        }
        drop(guard);
        outcome.map_err(|payload| Error::from_panic(&*payload, Some("main".to_owned()), None))
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
    /// layer ([`register_debug`]); without one, `build` says so with an error.
    ///
    /// ```
    /// // Without a registered debug layer, asking for debug mode is a clear error.
    /// let err = taskweave_core::Runtime::builder().debug(true).build().unwrap_err();
    /// assert!(err.to_string().contains("debug"));
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

    /// Builds the runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Broken`] when tokio cannot start the runtime (threads refused by the OS), or when
    /// debug mode was asked for with no debug layer registered.
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
        let debug = self.debug.unwrap_or_else(debug_requested_by_env);
        let observer = match (self.observer, debug) {
            (Some(obs), _) => Some(obs),
            (None, false) => None,
            (None, true) => match DEBUG_FACTORY.get() {
                Some(factory) => Some(factory()),
                None => {
                    return Err(Error::broken(
                        "debug mode was requested but no debug layer is registered: depend on \
                         the `taskweave` facade with its `debug` feature (on by default) or \
                         call taskweave_debug::register()",
                    ));
                }
            },
        };
        Ok(Runtime {
            rt,
            observer,
            shutdown_timeout: self.shutdown_timeout,
        })
    }
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
