//! The one error type of taskweave: every way a task, a thread-pool call or a process-pool call can
//! end without a value.
//!
//! [`Error`] is opaque, like [`std::io::Error`] or tokio's `JoinError`: ask it its
//! [`kind`](Error::kind) (a `#[non_exhaustive]` [`ErrorKind`]) or one of the `is_*` helpers, and
//! read the details through typed accessors ([`Error::panic`], [`Error::worker`],
//! [`Error::cancel_message`], [`Error::errors`], [`Error::get_ref`], ...). New kinds and new
//! details can therefore be added without breaking callers. It is cheap to clone (one `Arc`), which
//! lets a future hand out its error to several observers (`Promise::exception`) without taking it.
//!
//! `Display` is always one line; the alternate form (`{:#}`) and `Debug` add what does not fit on
//! a line: a panic's backtrace (the worker's, for a process pool) and every error of a group.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

/// A boxed error of the user's own function, as carried by an error of kind
/// [`ErrorKind::Failed`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of failure an [`Error`] is; returned by [`Error::kind`].
///
/// `#[non_exhaustive]`: match with a wildcard arm, later versions may add kinds.
///
/// ```
/// use taskweave_core::{Error, ErrorKind};
///
/// let err = Error::cancelled(Some("shutting down".into()));
/// assert_eq!(err.kind(), ErrorKind::Cancelled);
/// assert_eq!(err.cancel_message(), Some("shutting down"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The work was cancelled before it produced a value ([`Error::cancel_message`] gives the
    /// message passed to `cancel`).
    Cancelled,
    /// A deadline passed (`wait_for`, `timeout`, `Promise::result` with a timeout);
    /// [`Error::timed_out_after`] gives how long was waited.
    TimedOut,
    /// The task or function panicked; [`Error::panic`] gives the message and where it ran.
    Panicked,
    /// The function returned its own error; [`Error::get_ref`] gives it.
    Failed,
    /// The worker process running the work died (killed by a signal, aborted or exited);
    /// [`Error::worker`] gives its pid, signal or status and what it ran.
    WorkerDied,
    /// The executor was shut down before the work could run, or it refuses new work;
    /// [`Error::reason`] says what was shut down.
    Shutdown,
    /// The executor is broken (its initializer failed, or workers cannot be started);
    /// [`Error::reason`] says what broke.
    Broken,
    /// An argument or result could not be serialised, deserialised or carried across a process
    /// boundary; [`Error::wire_error`] gives what and why.
    Wire,
    /// Several tasks of a [`TaskGroup`](crate::TaskGroup) failed (Python's `ExceptionGroup`);
    /// [`Error::errors`] lists every failure in the order they happened.
    Group,
    /// A misuse the library refuses at run time, such as a blocking wait on a runtime thread;
    /// [`Error::reason`] says what to do instead.
    Refused,
    /// The producer side of a future was dropped without setting a result.
    Abandoned,
    /// Ctrl-C (SIGINT) cancelled `run`'s main future (Python's `KeyboardInterrupt`); returned
    /// only under [`OnInterrupt::ReturnError`](crate::OnInterrupt::ReturnError).
    Interrupted,
}

impl ErrorKind {
    /// The kind's name, as written in this enum (`"Cancelled"`, `"TimedOut"`, ...).
    ///
    /// ```
    /// assert_eq!(taskweave_core::ErrorKind::WorkerDied.as_str(), "WorkerDied");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Cancelled => "Cancelled",
            ErrorKind::TimedOut => "TimedOut",
            ErrorKind::Panicked => "Panicked",
            ErrorKind::Failed => "Failed",
            ErrorKind::WorkerDied => "WorkerDied",
            ErrorKind::Shutdown => "Shutdown",
            ErrorKind::Broken => "Broken",
            ErrorKind::Wire => "Wire",
            ErrorKind::Group => "Group",
            ErrorKind::Refused => "Refused",
            ErrorKind::Abandoned => "Abandoned",
            ErrorKind::Interrupted => "Interrupted",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a task, a future or an executor call ended without a value.
///
/// Opaque: [`kind`](Error::kind) says what happened, the accessors give the details. Cloning
/// copies one `Arc`, whatever the error holds (a group's errors are not copied).
///
/// `Display` is one line for every kind. The alternate form `{:#}` and `Debug` add a panic's
/// backtrace (for a process pool, the worker's) and, for a group, every error on its own line.
///
/// # Differences from Python
///
/// Python raises a different exception class per kind (`CancelledError`, `TimeoutError`,
/// `BrokenProcessPool`, `ExceptionGroup`, the function's own exception); here they are kinds of
/// one value, and the function's own error is reached with [`get_ref`](Error::get_ref) or
/// [`downcast_ref`](Error::downcast_ref).
///
/// # Examples
///
/// ```
/// use taskweave_core::{Error, ErrorKind};
///
/// let err = Error::cancelled(Some("shutting down".into()));
/// match err.kind() {
///     ErrorKind::Cancelled => assert_eq!(err.cancel_message(), Some("shutting down")),
///     other => panic!("unexpected {other}"),
/// }
/// assert!(err.is_cancelled());
/// assert_eq!(err.to_string(), "cancelled: shutting down");
/// ```
#[derive(Clone)]
pub struct Error {
    inner: Arc<Repr>,
}

enum Repr {
    Cancelled(Option<String>),
    TimedOut(Option<Duration>),
    Panicked(PanicError),
    Failed(Arc<dyn std::error::Error + Send + Sync + 'static>),
    WorkerDied(WorkerDied),
    Shutdown(String),
    Broken(String),
    Wire(WireError),
    Group(Box<[Error]>),
    Refused(String),
    Abandoned,
    Interrupted,
}

/// The details of a panic caught inside a task or a pool worker; from [`Error::panic`].
///
/// ```
/// let err = taskweave_core::Error::panicked("boom".into(), Some("worker".into()), None, None);
/// let p = err.panic().unwrap();
/// assert_eq!((p.message(), p.task()), ("boom", Some("worker")));
/// ```
#[derive(Debug, Clone)]
pub struct PanicError {
    message: String,
    task: Option<String>,
    site: Option<&'static Location<'static>>,
    backtrace: Option<String>,
}

impl PanicError {
    /// The panic message (the `&str` or `String` payload, or a placeholder for other payloads).
    ///
    /// ```
    /// let err = taskweave_core::Error::panicked("boom".into(), None, None, None);
    /// assert_eq!(err.panic().unwrap().message(), "boom");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The name of the task (or a description of the pool work) that panicked, if known.
    ///
    /// ```
    /// let err = taskweave_core::Error::panicked("boom".into(), Some("loader".into()), None, None);
    /// assert_eq!(err.panic().unwrap().task(), Some("loader"));
    /// ```
    pub fn task(&self) -> Option<&str> {
        self.task.as_deref()
    }

    /// Where the task was created or the work submitted, if known.
    ///
    /// ```
    /// let here = std::panic::Location::caller();
    /// let err = taskweave_core::Error::panicked("boom".into(), None, Some(here), None);
    /// assert_eq!(err.panic().unwrap().site(), Some(here));
    /// ```
    pub fn site(&self) -> Option<&'static Location<'static>> {
        self.site
    }

    /// The captured backtrace (for a process pool, the worker's), when one was captured.
    ///
    /// ```
    /// let err = taskweave_core::Error::panicked("boom".into(), None, None, Some("0: f".into()));
    /// assert_eq!(err.panic().unwrap().backtrace(), Some("0: f"));
    /// ```
    pub fn backtrace(&self) -> Option<&str> {
        self.backtrace.as_deref()
    }
}

/// What could not cross a process boundary, and why; from [`Error::wire_error`].
///
/// ```
/// let err = taskweave_core::Error::wire("argument of task 3", "too long");
/// let w = err.wire_error().unwrap();
/// assert_eq!((w.what(), w.detail()), ("argument of task 3", "too long"));
/// ```
#[derive(Debug, Clone)]
pub struct WireError {
    what: String,
    detail: String,
}

impl WireError {
    /// What was being carried (for example "argument of task 17").
    ///
    /// ```
    /// let err = taskweave_core::Error::wire("result of task 1", "eof");
    /// assert_eq!(err.wire_error().unwrap().what(), "result of task 1");
    /// ```
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The underlying failure.
    ///
    /// ```
    /// let err = taskweave_core::Error::wire("result of task 1", "eof");
    /// assert_eq!(err.wire_error().unwrap().detail(), "eof");
    /// ```
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot carry {}: {}", self.what, self.detail)
    }
}

/// The details of a worker process that died while it held work; from [`Error::worker`].
///
/// ```
/// let err = taskweave_core::Error::worker_died(41, None, Some(9), "square (task 3)".into());
/// let w = err.worker().unwrap();
/// assert_eq!((w.pid(), w.signal(), w.exit_code()), (41, Some(9), None));
/// ```
#[derive(Debug, Clone)]
pub struct WorkerDied {
    pid: u32,
    exit_code: Option<i32>,
    signal: Option<i32>,
    task: String,
}

impl WorkerDied {
    /// The worker's process id.
    ///
    /// ```
    /// let err = taskweave_core::Error::worker_died(41, Some(3), None, "f".into());
    /// assert_eq!(err.worker().unwrap().pid(), 41);
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status, if the process exited.
    ///
    /// ```
    /// let err = taskweave_core::Error::worker_died(41, Some(3), None, "f".into());
    /// assert_eq!(err.worker().unwrap().exit_code(), Some(3));
    /// ```
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_code
    }

    /// The signal that killed it, if one did.
    ///
    /// ```
    /// let err = taskweave_core::Error::worker_died(41, None, Some(9), "f".into());
    /// assert_eq!(err.worker().unwrap().signal(), Some(9));
    /// ```
    pub fn signal(&self) -> Option<i32> {
        self.signal
    }

    /// What the worker was running (function name and task id).
    ///
    /// ```
    /// let err = taskweave_core::Error::worker_died(41, None, Some(9), "square (task 3)".into());
    /// assert_eq!(err.worker().unwrap().task(), "square (task 3)");
    /// ```
    pub fn task(&self) -> &str {
        &self.task
    }
}

impl Error {
    fn new(repr: Repr) -> Error {
        Error {
            inner: Arc::new(repr),
        }
    }

    /// A cancellation with an optional message.
    ///
    /// ```
    /// assert!(taskweave_core::Error::cancelled(None).is_cancelled());
    /// ```
    pub fn cancelled(message: Option<String>) -> Error {
        Error::new(Repr::Cancelled(message))
    }

    /// A timeout after `after`.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(taskweave_core::Error::timed_out(Duration::from_secs(1)).is_timeout());
    /// ```
    pub fn timed_out(after: Duration) -> Error {
        Error::new(Repr::TimedOut(Some(after)))
    }

    /// Wraps the function's own error (kind [`ErrorKind::Failed`]).
    ///
    /// ```
    /// let err = taskweave_core::Error::failed(std::io::Error::other("disk full"));
    /// assert_eq!(err.to_string(), "disk full");
    /// ```
    pub fn failed<E>(error: E) -> Error
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::new(Repr::Failed(Arc::new(error)))
    }

    /// Wraps an already boxed error of the user's function.
    ///
    /// ```
    /// let boxed: taskweave_core::BoxError = "bad input".into();
    /// assert_eq!(taskweave_core::Error::from_boxed(boxed).to_string(), "bad input");
    /// ```
    pub fn from_boxed(error: BoxError) -> Error {
        Error::new(Repr::Failed(Arc::from(error)))
    }

    /// A panic with its message, the task's name, its creation site and a backtrace.
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
        Error::new(Repr::Panicked(PanicError {
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
        Error::new(Repr::WorkerDied(WorkerDied {
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
        Error::new(Repr::Shutdown(reason.into()))
    }

    /// An executor that is broken.
    ///
    /// ```
    /// let err = taskweave_core::Error::broken("initializer failed: no config");
    /// assert!(err.to_string().contains("initializer failed"));
    /// ```
    pub fn broken(reason: impl Into<String>) -> Error {
        Error::new(Repr::Broken(reason.into()))
    }

    /// A value that could not cross a process boundary.
    ///
    /// ```
    /// let err = taskweave_core::Error::wire("result of task 3", "unexpected end of frame");
    /// assert!(err.to_string().contains("task 3"));
    /// ```
    pub fn wire(what: impl Into<String>, detail: impl Into<String>) -> Error {
        Error::new(Repr::Wire(WireError {
            what: what.into(),
            detail: detail.into(),
        }))
    }

    /// A misuse that the library refuses.
    ///
    /// ```
    /// let err = taskweave_core::Error::refused("blocking wait on a runtime thread");
    /// assert_eq!(err.kind(), taskweave_core::ErrorKind::Refused);
    /// ```
    pub fn refused(reason: impl Into<String>) -> Error {
        Error::new(Repr::Refused(reason.into()))
    }

    /// Several failures of one group, in the order they happened (Python's `ExceptionGroup`).
    ///
    /// ```
    /// use taskweave_core::Error;
    /// let err = Error::group(vec![Error::abandoned(), Error::refused("no")]);
    /// assert_eq!(err.errors().map(<[Error]>::len), Some(2));
    /// ```
    pub fn group(errors: Vec<Error>) -> Error {
        Error::new(Repr::Group(errors.into_boxed_slice()))
    }

    /// A future whose producer was dropped without setting a result.
    ///
    /// ```
    /// assert!(taskweave_core::Error::abandoned().is_abandoned());
    /// ```
    pub fn abandoned() -> Error {
        Error::new(Repr::Abandoned)
    }

    /// Ctrl-C ended `run`'s main future.
    ///
    /// ```
    /// assert!(taskweave_core::Error::interrupted().is_interrupted());
    /// ```
    pub fn interrupted() -> Error {
        Error::new(Repr::Interrupted)
    }

    /// What kind of failure this is.
    ///
    /// ```
    /// use taskweave_core::{Error, ErrorKind};
    /// assert_eq!(Error::shutdown("pool").kind(), ErrorKind::Shutdown);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match &*self.inner {
            Repr::Cancelled(_) => ErrorKind::Cancelled,
            Repr::TimedOut(_) => ErrorKind::TimedOut,
            Repr::Panicked(_) => ErrorKind::Panicked,
            Repr::Failed(_) => ErrorKind::Failed,
            Repr::WorkerDied(_) => ErrorKind::WorkerDied,
            Repr::Shutdown(_) => ErrorKind::Shutdown,
            Repr::Broken(_) => ErrorKind::Broken,
            Repr::Wire(_) => ErrorKind::Wire,
            Repr::Group(_) => ErrorKind::Group,
            Repr::Refused(_) => ErrorKind::Refused,
            Repr::Abandoned => ErrorKind::Abandoned,
            Repr::Interrupted => ErrorKind::Interrupted,
        }
    }

    /// `true` for [`ErrorKind::Cancelled`].
    ///
    /// ```
    /// assert!(!taskweave_core::Error::abandoned().is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.kind() == ErrorKind::Cancelled
    }

    /// `true` for [`ErrorKind::Interrupted`] (Ctrl-C ended `run`).
    ///
    /// ```
    /// assert!(taskweave_core::Error::interrupted().is_interrupted());
    /// assert!(!taskweave_core::Error::interrupted().is_cancelled());
    /// ```
    pub fn is_interrupted(&self) -> bool {
        self.kind() == ErrorKind::Interrupted
    }

    /// `true` for [`ErrorKind::TimedOut`].
    ///
    /// ```
    /// assert!(!taskweave_core::Error::abandoned().is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.kind() == ErrorKind::TimedOut
    }

    /// `true` for [`ErrorKind::Panicked`].
    ///
    /// ```
    /// assert!(!taskweave_core::Error::abandoned().is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        self.kind() == ErrorKind::Panicked
    }

    /// `true` for [`ErrorKind::Failed`]: the function's own error.
    ///
    /// ```
    /// assert!(taskweave_core::Error::failed(std::fmt::Error).is_failed());
    /// ```
    pub fn is_failed(&self) -> bool {
        self.kind() == ErrorKind::Failed
    }

    /// `true` for [`ErrorKind::WorkerDied`].
    ///
    /// ```
    /// assert!(taskweave_core::Error::worker_died(7, Some(1), None, "f".into()).is_worker_died());
    /// ```
    pub fn is_worker_died(&self) -> bool {
        self.kind() == ErrorKind::WorkerDied
    }

    /// `true` for [`ErrorKind::Shutdown`].
    ///
    /// ```
    /// assert!(taskweave_core::Error::shutdown("pool").is_shutdown());
    /// ```
    pub fn is_shutdown(&self) -> bool {
        self.kind() == ErrorKind::Shutdown
    }

    /// `true` for [`ErrorKind::Broken`].
    ///
    /// ```
    /// assert!(taskweave_core::Error::broken("no threads").is_broken());
    /// ```
    pub fn is_broken(&self) -> bool {
        self.kind() == ErrorKind::Broken
    }

    /// `true` for [`ErrorKind::Wire`].
    ///
    /// ```
    /// assert!(taskweave_core::Error::wire("argument", "too long").is_wire());
    /// ```
    pub fn is_wire(&self) -> bool {
        self.kind() == ErrorKind::Wire
    }

    /// `true` for [`ErrorKind::Group`].
    ///
    /// ```
    /// assert!(taskweave_core::Error::group(Vec::new()).is_group());
    /// ```
    pub fn is_group(&self) -> bool {
        self.kind() == ErrorKind::Group
    }

    /// `true` for [`ErrorKind::Refused`].
    ///
    /// ```
    /// assert!(taskweave_core::Error::refused("no").is_refused());
    /// ```
    pub fn is_refused(&self) -> bool {
        self.kind() == ErrorKind::Refused
    }

    /// `true` for [`ErrorKind::Abandoned`].
    ///
    /// ```
    /// assert!(taskweave_core::Error::abandoned().is_abandoned());
    /// ```
    pub fn is_abandoned(&self) -> bool {
        self.kind() == ErrorKind::Abandoned
    }

    /// The panic's details (message, task, site, backtrace); `None` unless the kind is
    /// [`ErrorKind::Panicked`].
    ///
    /// ```
    /// let err = taskweave_core::Error::panicked("boom".into(), None, None, None);
    /// assert_eq!(err.panic().map(|p| p.message()), Some("boom"));
    /// assert!(taskweave_core::Error::abandoned().panic().is_none());
    /// ```
    pub fn panic(&self) -> Option<&PanicError> {
        match &*self.inner {
            Repr::Panicked(p) => Some(p),
            _ => None,
        }
    }

    /// The backtrace of a panic (for a process pool, the worker's, which is the remote
    /// traceback), when one was captured; `None` for every other kind.
    ///
    /// ```
    /// let err = taskweave_core::Error::panicked("boom".into(), None, None, Some("0: f".into()));
    /// assert_eq!(err.backtrace(), Some("0: f"));
    /// ```
    pub fn backtrace(&self) -> Option<&str> {
        self.panic().and_then(PanicError::backtrace)
    }

    /// The dead worker's details (pid, exit status or signal, what it ran); `None` unless the
    /// kind is [`ErrorKind::WorkerDied`].
    ///
    /// ```
    /// let err = taskweave_core::Error::worker_died(41, None, Some(9), "square (task 3)".into());
    /// assert_eq!(err.worker().map(|w| w.pid()), Some(41));
    /// ```
    pub fn worker(&self) -> Option<&WorkerDied> {
        match &*self.inner {
            Repr::WorkerDied(w) => Some(w),
            _ => None,
        }
    }

    /// The message given to `cancel`; `None` without one and for every other kind.
    ///
    /// ```
    /// let err = taskweave_core::Error::cancelled(Some("enough".into()));
    /// assert_eq!(err.cancel_message(), Some("enough"));
    /// ```
    pub fn cancel_message(&self) -> Option<&str> {
        match &*self.inner {
            Repr::Cancelled(message) => message.as_deref(),
            _ => None,
        }
    }

    /// How long was waited before a timeout, when known; `None` for every other kind.
    ///
    /// ```
    /// use std::time::Duration;
    /// let err = taskweave_core::Error::timed_out(Duration::from_millis(5));
    /// assert_eq!(err.timed_out_after(), Some(Duration::from_millis(5)));
    /// ```
    pub fn timed_out_after(&self) -> Option<Duration> {
        match &*self.inner {
            Repr::TimedOut(after) => *after,
            _ => None,
        }
    }

    /// Every error of a group, in the order they happened; `None` unless the kind is
    /// [`ErrorKind::Group`].
    ///
    /// ```
    /// use taskweave_core::Error;
    /// let err = Error::group(vec![Error::refused("a"), Error::refused("b")]);
    /// assert_eq!(err.errors().unwrap()[1].reason(), Some("b"));
    /// ```
    pub fn errors(&self) -> Option<&[Error]> {
        match &*self.inner {
            Repr::Group(errors) => Some(errors),
            _ => None,
        }
    }

    /// The reason text of [`ErrorKind::Shutdown`], [`ErrorKind::Broken`] and
    /// [`ErrorKind::Refused`]; `None` for every other kind.
    ///
    /// ```
    /// let err = taskweave_core::Error::broken("initializer failed: no config");
    /// assert_eq!(err.reason(), Some("initializer failed: no config"));
    /// ```
    pub fn reason(&self) -> Option<&str> {
        match &*self.inner {
            Repr::Shutdown(r) | Repr::Broken(r) | Repr::Refused(r) => Some(r),
            _ => None,
        }
    }

    /// What could not cross a process boundary and why; `None` unless the kind is
    /// [`ErrorKind::Wire`].
    ///
    /// ```
    /// let err = taskweave_core::Error::wire("result of task 3", "eof");
    /// assert_eq!(err.wire_error().map(|w| w.detail()), Some("eof"));
    /// ```
    pub fn wire_error(&self) -> Option<&WireError> {
        match &*self.inner {
            Repr::Wire(w) => Some(w),
            _ => None,
        }
    }

    /// The function's own error inside an [`ErrorKind::Failed`]; `None` for every other kind.
    ///
    /// ```
    /// let err = taskweave_core::Error::failed(std::io::Error::other("disk full"));
    /// assert_eq!(err.get_ref().unwrap().to_string(), "disk full");
    /// ```
    pub fn get_ref(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match &*self.inner {
            Repr::Failed(e) => Some(&**e),
            _ => None,
        }
    }

    /// The function's own error, shared with the clones of this error; `None` for every other
    /// kind.
    ///
    /// # Differences from Python
    ///
    /// Not a move out: a future may hand the same error to several observers, so the inner
    /// error is an `Arc` rather than a `Box` as in [`std::io::Error::into_inner`].
    ///
    /// ```
    /// let err = taskweave_core::Error::failed(std::io::Error::other("disk full"));
    /// let inner = err.into_inner().unwrap();
    /// assert!(inner.downcast_ref::<std::io::Error>().is_some());
    /// ```
    pub fn into_inner(self) -> Option<Arc<dyn std::error::Error + Send + Sync + 'static>> {
        match &*self.inner {
            Repr::Failed(e) => Some(Arc::clone(e)),
            _ => None,
        }
    }

    /// The function's own error as an `E`; `None` when the kind is not [`ErrorKind::Failed`] or
    /// the inner error is of another type.
    ///
    /// ```
    /// let err = taskweave_core::Error::failed(std::io::Error::other("disk full"));
    /// assert!(err.downcast_ref::<std::io::Error>().is_some());
    /// assert!(err.downcast_ref::<std::fmt::Error>().is_none());
    /// ```
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.get_ref().and_then(|e| e.downcast_ref::<E>())
    }

    /// `true` when `self` and `other` are clones of one error (the same allocation).
    ///
    /// ```
    /// let err = taskweave_core::Error::abandoned();
    /// assert!(err.ptr_eq(&err.clone()));
    /// assert!(!err.ptr_eq(&taskweave_core::Error::abandoned()));
    /// ```
    pub fn ptr_eq(&self, other: &Error) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
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
/// kind [`ErrorKind::Failed`].
///
/// ```
/// use taskweave_core::{error::into_error, Error, ErrorKind};
/// assert!(into_error(Error::abandoned()).to_string().contains("dropped"));
/// assert_eq!(into_error(std::fmt::Error).kind(), ErrorKind::Failed);
/// ```
pub fn into_error<E>(error: E) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    let mut slot = Some(error);
    if let Some(same) = (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<Error>>()
        && let Some(e) = same.take()
    {
        return e;
    }
    match slot {
        Some(e) => Error::failed(e),
        None => Error::abandoned(),
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
    /// One line; with `{:#}`, a panic adds its backtrace and a group every error, each on lines
    /// of their own.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.inner {
            Repr::Cancelled(Some(m)) => write!(f, "cancelled: {m}"),
            Repr::Cancelled(None) => f.write_str("cancelled"),
            Repr::TimedOut(Some(d)) => write!(f, "timed out after {d:?}"),
            Repr::TimedOut(None) => f.write_str("timed out"),
            Repr::Panicked(p) => {
                fmt::Display::fmt(p, f)?;
                if let (true, Some(bt)) = (f.alternate(), &p.backtrace) {
                    write!(f, "\nbacktrace:\n{bt}")?;
                }
                Ok(())
            }
            Repr::Failed(e) => fmt::Display::fmt(e, f),
            Repr::WorkerDied(w) => fmt::Display::fmt(w, f),
            Repr::Shutdown(reason) => write!(f, "shut down: {reason}"),
            Repr::Broken(reason) => write!(f, "executor is broken: {reason}"),
            Repr::Wire(w) => fmt::Display::fmt(w, f),
            Repr::Refused(reason) => write!(f, "refused: {reason}"),
            Repr::Group(errors) => {
                match errors.len() {
                    1 => f.write_str("1 task failed")?,
                    n => write!(f, "{n} tasks failed")?,
                }
                if f.alternate() {
                    for (i, e) in errors.iter().enumerate() {
                        write!(f, "\n[{}] {e:#}", i + 1)?;
                    }
                } else if let Some(first) = errors.first() {
                    if errors.len() == 1 {
                        write!(f, ": {first}")?;
                    } else {
                        write!(f, ": first: {first}")?;
                    }
                }
                Ok(())
            }
            Repr::Abandoned => f.write_str("the producer was dropped before it set a result"),
            Repr::Interrupted => f.write_str("interrupted by Ctrl-C (SIGINT)"),
        }
    }
}

impl fmt::Debug for Error {
    /// The kind and every detail, the backtrace included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind());
        match &*self.inner {
            Repr::Cancelled(message) => d.field("message", message),
            Repr::TimedOut(after) => d.field("after", after),
            Repr::Panicked(p) => d
                .field("message", &p.message)
                .field("task", &p.task)
                .field("site", &p.site.map(|s| s.to_string()))
                .field("backtrace", &p.backtrace),
            Repr::Failed(e) => d.field("error", e),
            Repr::WorkerDied(w) => d
                .field("pid", &w.pid)
                .field("exit_code", &w.exit_code)
                .field("signal", &w.signal)
                .field("task", &w.task),
            Repr::Shutdown(reason) | Repr::Broken(reason) | Repr::Refused(reason) => {
                d.field("reason", reason)
            }
            Repr::Wire(w) => d.field("what", &w.what).field("detail", &w.detail),
            Repr::Group(errors) => d.field("errors", errors),
            Repr::Abandoned | Repr::Interrupted => &mut d,
        };
        d.finish()
    }
}

impl fmt::Display for PanicError {
    /// One line: the task, the message and the site; never the backtrace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.task {
            Some(task) => write!(f, "task '{task}' panicked: {}", self.message)?,
            None => write!(f, "panicked: {}", self.message)?,
        }
        if let Some(site) = self.site {
            write!(f, " (created at {site})")?;
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
    /// For [`ErrorKind::Failed`], the inner error's own source: the error is transparent
    /// (`Display` already shows the inner error), so a printer that walks the chain (anyhow,
    /// eyre) shows each cause once. For [`ErrorKind::Group`], the first error of the group, the
    /// one `Display` names. `None` for every other kind.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.inner {
            Repr::Failed(e) => e.source(),
            Repr::Group(errors) => errors
                .first()
                .map(|e| e as &(dyn std::error::Error + 'static)),
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
    /// [`ErrorKind::TimedOut`] becomes `std::io::ErrorKind::TimedOut`, [`ErrorKind::Cancelled`] and
    /// [`ErrorKind::Interrupted`] `Interrupted`, every other kind `Other`; the error itself is the
    /// io error's inner error.
    fn from(error: Error) -> std::io::Error {
        let kind = match error.kind() {
            ErrorKind::TimedOut => std::io::ErrorKind::TimedOut,
            ErrorKind::Cancelled | ErrorKind::Interrupted => std::io::ErrorKind::Interrupted,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, error)
    }
}
