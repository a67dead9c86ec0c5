//! The one error type of taskweave: every way a task, a thread-pool call or a process-pool call can
//! end without a value.
//!
//! [`Error`] is an enum users match on. It is `#[non_exhaustive]` so later kinds can be added without
//! breaking callers, and it is cheap to clone (large payloads sit behind an `Arc`), which lets a
//! future hand out its error to several observers (`Promise::exception`) without taking it.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

/// A boxed error of the user's own function, as carried by [`Error::Failed`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a task, a future or an executor call ended without a value.
///
/// # Examples
///
/// ```
/// use taskweave_core::Error;
///
/// let err = Error::cancelled(Some("shutting down".into()));
/// match &err {
///     Error::Cancelled { message } => assert_eq!(message.as_deref(), Some("shutting down")),
///     other => panic!("unexpected {other}"),
/// }
/// assert!(err.is_cancelled());
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum Error {
    /// The work was cancelled before it produced a value; `message` is the one given to `cancel`.
    Cancelled {
        /// The message passed to `Task::cancel`, if any.
        message: Option<String>,
    },
    /// A deadline passed (`wait_for`, `timeout`, `Promise::result` with a timeout).
    TimedOut {
        /// How long was waited, when known.
        after: Option<Duration>,
    },
    /// The task or function panicked; the payload carries the message and where it ran.
    Panicked(Arc<PanicError>),
    /// The function returned its own error.
    ///
    /// A transparent wrapper: it displays as the inner error and its
    /// [`source`](std::error::Error::source) is the inner error's source, so a printer that
    /// walks the chain (anyhow, eyre) shows each cause once. Match on the variant to reach the
    /// inner error itself (`downcast_ref` on it).
    Failed(Arc<dyn std::error::Error + Send + Sync + 'static>),
    /// The worker process running the work died (killed by a signal, aborted or exited).
    WorkerDied(Arc<WorkerDied>),
    /// The executor was shut down before the work could run, or it refuses new work.
    Shutdown {
        /// What was shut down and why the work did not run.
        reason: String,
    },
    /// The executor is broken (its initializer failed, or workers cannot be started).
    Broken {
        /// What broke, with the underlying error's text.
        reason: String,
    },
    /// An argument or result could not be serialised, deserialised or carried across a process
    /// boundary.
    Wire(Arc<WireError>),
    /// Several tasks of a [`TaskGroup`](crate::TaskGroup) failed; every failure is listed, in the
    /// order they happened (Python's `ExceptionGroup`).
    Group {
        /// The failures.
        errors: Vec<Error>,
    },
    /// A misuse the library refuses at run time, such as a blocking wait on a runtime thread.
    Refused {
        /// What was refused and what to do instead.
        reason: String,
    },
    /// The producer side of a future was dropped without setting a result.
    Abandoned,
    /// Ctrl-C (SIGINT) cancelled `run`'s main future (Python's `KeyboardInterrupt`); returned
    /// only under [`OnInterrupt::ReturnError`](crate::OnInterrupt::ReturnError).
    Interrupted,
}

/// The details of a panic caught inside a task or a pool worker.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PanicError {
    /// The panic message (the `&str` or `String` payload, or a placeholder for other payloads).
    pub message: String,
    /// The name of the task (or a description of the pool work) that panicked.
    pub task: Option<String>,
    /// Where the task was created (`create_task` call site), if known.
    pub site: Option<&'static Location<'static>>,
    /// A captured backtrace, when one was captured (for example from a worker process).
    pub backtrace: Option<String>,
}

/// What could not cross a process boundary, and why.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WireError {
    /// What was being carried (for example "argument of task 17").
    pub what: String,
    /// The underlying failure.
    pub detail: String,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot carry {}: {}", self.what, self.detail)
    }
}

/// The details of a worker process that died while it held work.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerDied {
    /// The worker's process id.
    pub pid: u32,
    /// The exit status, if the process exited.
    pub exit_code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// What the worker was running (function name and task id).
    pub task: String,
}

impl Error {
    /// A cancellation with an optional message.
    ///
    /// ```
    /// assert!(taskweave_core::Error::cancelled(None).is_cancelled());
    /// ```
    pub fn cancelled(message: Option<String>) -> Error {
        Error::Cancelled { message }
    }

    /// A timeout after `after`.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(taskweave_core::Error::timed_out(Duration::from_secs(1)).is_timeout());
    /// ```
    pub fn timed_out(after: Duration) -> Error {
        Error::TimedOut { after: Some(after) }
    }

    /// Wraps the function's own error.
    ///
    /// ```
    /// let err = taskweave_core::Error::failed(std::io::Error::other("disk full"));
    /// assert_eq!(err.to_string(), "disk full");
    /// ```
    pub fn failed<E>(error: E) -> Error
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::Failed(Arc::new(error))
    }

    /// Wraps an already boxed error of the user's function.
    ///
    /// ```
    /// let boxed: taskweave_core::BoxError = "bad input".into();
    /// assert_eq!(taskweave_core::Error::from_boxed(boxed).to_string(), "bad input");
    /// ```
    pub fn from_boxed(error: BoxError) -> Error {
        Error::Failed(Arc::from(error))
    }

    /// A panic with its message, the task's name and creation site.
    ///
    /// ```
    /// let err = taskweave_core::Error::panicked("boom".into(), Some("worker".into()), None, None);
    /// assert!(err.is_panic());
    /// ```
    pub fn panicked(
        message: String,
        task: Option<String>,
        site: Option<&'static Location<'static>>,
        backtrace: Option<String>,
    ) -> Error {
        Error::Panicked(Arc::new(PanicError {
            message,
            task,
            site,
            backtrace,
        }))
    }

    /// A worker process that died while running `task`.
    ///
    /// ```
    /// let err = taskweave_core::Error::worker_died(41, None, Some(9), "square (task 3)".into());
    /// assert!(err.to_string().contains("signal 9"));
    /// ```
    pub fn worker_died(
        pid: u32,
        exit_code: Option<i32>,
        signal: Option<i32>,
        task: String,
    ) -> Error {
        Error::WorkerDied(Arc::new(WorkerDied {
            pid,
            exit_code,
            signal,
            task,
        }))
    }

    /// Work refused because its executor is shut down.
    ///
    /// ```
    /// let err = taskweave_core::Error::shutdown("thread pool is shut down");
    /// assert!(err.to_string().contains("shut down"));
    /// ```
    pub fn shutdown(reason: impl Into<String>) -> Error {
        Error::Shutdown {
            reason: reason.into(),
        }
    }

    /// An executor that is broken.
    ///
    /// ```
    /// let err = taskweave_core::Error::broken("initializer failed: no config");
    /// assert!(err.to_string().contains("initializer failed"));
    /// ```
    pub fn broken(reason: impl Into<String>) -> Error {
        Error::Broken {
            reason: reason.into(),
        }
    }

    /// A value that could not cross a process boundary.
    ///
    /// ```
    /// let err = taskweave_core::Error::wire("result of task 3", "unexpected end of frame");
    /// assert!(err.to_string().contains("task 3"));
    /// ```
    pub fn wire(what: impl Into<String>, detail: impl Into<String>) -> Error {
        Error::Wire(Arc::new(WireError {
            what: what.into(),
            detail: detail.into(),
        }))
    }

    /// A misuse that the library refuses.
    ///
    /// ```
    /// let err = taskweave_core::Error::refused("blocking wait on a runtime thread");
    /// assert!(matches!(err, taskweave_core::Error::Refused { .. }));
    /// ```
    pub fn refused(reason: impl Into<String>) -> Error {
        Error::Refused {
            reason: reason.into(),
        }
    }

    /// `true` for [`Error::Cancelled`].
    ///
    /// ```
    /// assert!(!taskweave_core::Error::Abandoned.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled { .. })
    }

    /// `true` for [`Error::Interrupted`] (Ctrl-C ended `run`).
    ///
    /// ```
    /// assert!(taskweave_core::Error::Interrupted.is_interrupted());
    /// assert!(!taskweave_core::Error::Interrupted.is_cancelled());
    /// ```
    pub fn is_interrupted(&self) -> bool {
        matches!(self, Error::Interrupted)
    }

    /// `true` for [`Error::TimedOut`].
    ///
    /// ```
    /// assert!(!taskweave_core::Error::Abandoned.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::TimedOut { .. })
    }

    /// `true` for [`Error::Panicked`].
    ///
    /// ```
    /// assert!(!taskweave_core::Error::Abandoned.is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, Error::Panicked(_))
    }

    /// Builds the panic error for a caught panic payload.
    pub(crate) fn from_panic(
        payload: &(dyn std::any::Any + Send),
        task: Option<String>,
        site: Option<&'static Location<'static>>,
    ) -> Error {
        let message = panic_message(payload);
        let at_panic = PANIC_BACKTRACE.with(|b| b.borrow_mut().take());
        let backtrace = match at_panic {
            Some((for_message, bt)) if for_message == message => Some(bt),
            _ if backtrace_wanted() => Some(std::backtrace::Backtrace::force_capture().to_string()),
            _ => None,
        };
        Error::panicked(message, task, site, backtrace)
    }
}

thread_local! {
    /// The message and backtrace of the last panic inside a task poll on this thread, kept by
    /// the hook of [`install_backtrace_hook`] until the panic is caught and turned into an error.
    static PANIC_BACKTRACE: std::cell::RefCell<Option<(String, String)>> =
        const { std::cell::RefCell::new(None) };
}

fn backtrace_wanted() -> bool {
    std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0")
}

/// When `RUST_BACKTRACE` asks for backtraces, installs (once, chained before the previous hook)
/// a panic hook that keeps the backtrace of a panic inside a task poll. By the time the task
/// wrapper catches the panic the stack has unwound, so a backtrace taken there would show where
/// the panic was caught, not where it happened.
pub(crate) fn install_backtrace_hook() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    if !backtrace_wanted() {
        return;
    }
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if crate::strict::in_task_poll() {
                let message = panic_message(info.payload());
                let bt = std::backtrace::Backtrace::force_capture().to_string();
                PANIC_BACKTRACE.with(|b| *b.borrow_mut() = Some((message, bt)));
            }
            previous(info);
        }));
    });
}

/// Converts any error into [`Error`]: an `Error` passes through unchanged, anything else becomes
/// [`Error::Failed`].
///
/// ```
/// use taskweave_core::{error::into_error, Error};
/// assert!(into_error(Error::Abandoned).to_string().contains("dropped"));
/// assert!(matches!(into_error(std::fmt::Error), Error::Failed(_)));
/// ```
pub fn into_error<E>(error: E) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    let mut slot = Some(error);
    if let Some(same) = (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<Error>>() {
        if let Some(e) = same.take() {
            return e;
        }
    }
    match slot {
        Some(e) => Error::failed(e),
        None => Error::Abandoned,
    }
}

/// Drops a caught panic payload without letting a panic in its own `Drop` escape.
///
/// A payload is user data; its destructor may panic too. Dropping it plainly after
/// `catch_unwind` would then unwind out of the code that caught the first panic (a worker
/// loop, a callback runner) and take that code down with it. The second payload is leaked
/// rather than dropped, since its destructor may panic in turn.
///
/// ```
/// struct Grumpy;
/// impl Drop for Grumpy {
///     fn drop(&mut self) {
///         panic!("dropped");
///     }
/// }
/// let payload = std::panic::catch_unwind(|| std::panic::panic_any(Grumpy)).unwrap_err();
/// taskweave_core::error::drop_panic_payload(payload); // returns; nothing escapes
/// ```
pub fn drop_panic_payload(payload: Box<dyn std::any::Any + Send>) {
    if let Err(again) =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload)))
    {
        std::mem::forget(again);
    }
}

/// The text of a panic payload: the `&str` or `String` it carries, or a placeholder.
///
/// ```
/// let payload: Box<dyn std::any::Any + Send> = Box::new("boom");
/// assert_eq!(taskweave_core::error::panic_message(&*payload), "boom");
/// ```
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cancelled { message: Some(m) } => write!(f, "cancelled: {m}"),
            Error::Cancelled { message: None } => f.write_str("cancelled"),
            Error::TimedOut { after: Some(d) } => write!(f, "timed out after {d:?}"),
            Error::TimedOut { after: None } => f.write_str("timed out"),
            Error::Panicked(p) => fmt::Display::fmt(p, f),
            Error::Failed(e) => fmt::Display::fmt(e, f),
            Error::WorkerDied(w) => fmt::Display::fmt(w, f),
            Error::Shutdown { reason } => write!(f, "shut down: {reason}"),
            Error::Broken { reason } => write!(f, "executor is broken: {reason}"),
            Error::Wire(w) => fmt::Display::fmt(w, f),
            Error::Refused { reason } => write!(f, "refused: {reason}"),
            Error::Group { errors } => {
                write!(f, "{} task(s) failed", errors.len())?;
                for (i, e) in errors.iter().enumerate() {
                    write!(f, "\n  [{}] {e}", i + 1)?;
                }
                Ok(())
            }
            Error::Abandoned => f.write_str("the producer was dropped before it set a result"),
            Error::Interrupted => f.write_str("interrupted by Ctrl-C (SIGINT)"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Panicked(p) => f.debug_tuple("Panicked").field(p).finish(),
            Error::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
            Error::WorkerDied(w) => f.debug_tuple("WorkerDied").field(w).finish(),
            other => write!(f, "Error({other})"),
        }
    }
}

impl fmt::Display for PanicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.task {
            Some(task) => write!(f, "task '{task}' panicked: {}", self.message)?,
            None => write!(f, "panicked: {}", self.message)?,
        }
        if let Some(site) = self.site {
            write!(f, " (created at {site})")?;
        }
        if let Some(bt) = &self.backtrace {
            write!(f, "\nbacktrace:\n{bt}")?;
        }
        Ok(())
    }
}

impl fmt::Display for WorkerDied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "worker process {} died while running {}",
            self.pid, self.task
        )?;
        match (self.signal, self.exit_code) {
            (Some(sig), _) => write!(f, ": killed by signal {sig}"),
            (None, Some(code)) => write!(f, ": exited with status {code}"),
            (None, None) => Ok(()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Transparent: `Display` already shows the inner error, so the chain continues with
            // what caused it, not with the inner error a second time.
            Error::Failed(e) => e.source(),
            _ => None,
        }
    }
}

impl From<BoxError> for Error {
    fn from(error: BoxError) -> Error {
        Error::from_boxed(error)
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Error {
        Error::failed(error)
    }
}

impl From<Error> for std::io::Error {
    fn from(error: Error) -> std::io::Error {
        let kind = match &error {
            Error::TimedOut { .. } => std::io::ErrorKind::TimedOut,
            Error::Cancelled { .. } | Error::Interrupted => std::io::ErrorKind::Interrupted,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, error)
    }
}
