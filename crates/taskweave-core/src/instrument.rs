//! The instrumentation seam: how a debug layer observes tasks and executor work without core
//! depending on it.
//!
//! # Which observer is in charge
//!
//! An [`Observer`] belongs to a runtime, not to the process. It is put in charge in one of three
//! ways, each returning a guard that, when dropped, brings back whatever was in charge before:
//!
//! - [`attach`]`(handle, observer)`: for the runtime of `handle`. `Runtime::run` does this when
//!   debug mode is on; an existing tokio application does it itself (through
//!   `taskweave_debug::attach`).
//! - [`enter`]`(observer)`: for the code that runs on this thread until the guard is dropped.
//! - `TASKWEAVE_DEBUG=1`: the first taskweave call on a runtime nobody attached anything to
//!   checks the variable (once per process) and, when it asks for debug mode and a debug layer
//!   is registered ([`register_debug`](crate::register_debug)), attaches a fresh debug observer
//!   to that runtime for the runtime's life.
//!
//! Work then reports to the observer of the code that started it. A task captures the observer
//! in charge where it is spawned ([`current`]) and makes it the one in charge of its own polls,
//! so the tasks it spawns report there too. A promise captures it where it is created, which for
//! executor work is where it is submitted: the thread and process pools send their events to
//! [`Resolver::observer`](crate::Resolver::observer), on whatever thread they run. Two runtimes
//! with different observers in one process therefore never see each other's work, and dropping
//! one runtime's guard leaves the other's observer in charge.
//!
//! Work started after every guard of its observer is gone is not observed, even from inside
//! work that is: the guard, not the observer, decides how long an observer is in charge.
//!
//! **Cost when off.** [`current`] is one relaxed atomic load and a compare while no observer is
//! in charge anywhere in the process: `create_task` and `Promise::pending` do nothing more, each
//! poll does one branch on an `Option` held in the task, nothing allocates, no clock is read and
//! no lock is taken. While some observer is in charge, `current` reads a thread-local and, for
//! code outside observed work, looks the runtime up in a short table behind a read lock.
//!
//! **Invariant:** core never depends on `tracing-subscriber`; it only emits plain `tracing` events
//! for the reports that must never be lost (an error nobody retrieved) when no observer is
//! installed, and falls back to stderr when no subscriber is set, like Python's last-resort
//! logging handler.

use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::info::TaskInfo;

/// How a task ended, as told to [`Observer::on_complete`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Outcome<'a> {
    /// The task returned a value.
    Finished,
    /// The task ended with an error (a panic).
    Failed(&'a Error),
    /// The task was aborted or dropped by its runtime before it finished.
    Cancelled,
}

/// Why a dropped handle is worth a report.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HandleDrop {
    /// The handle was dropped while the work was still pending, neither awaited nor detached
    /// (asyncio's "Task was destroyed but it is pending!").
    Pending,
    /// The work failed and nobody looked at the error (asyncio's "Task exception was never
    /// retrieved").
    ErrorNotRetrieved(Error),
}

/// Something an executor did, reported through [`executor_event`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ExecutorEvent<'a> {
    /// Work was submitted to `executor`.
    Submitted {
        /// The executor's name (for example "ThreadPoolExecutor").
        executor: &'a str,
        /// The work.
        work: &'a TaskInfo,
    },
    /// Work started on a worker (`worker`: thread name or process id).
    Started {
        /// The executor's name.
        executor: &'a str,
        /// The work.
        work: &'a TaskInfo,
        /// The thread name or process id running it.
        worker: &'a str,
    },
    /// Work ended after `duration`, successfully or not.
    Finished {
        /// The executor's name.
        executor: &'a str,
        /// The work.
        work: &'a TaskInfo,
        /// How long it ran.
        duration: Duration,
        /// Whether it produced a value.
        ok: bool,
    },
    /// An executor was dropped without `shutdown` while work was still queued or running.
    DroppedWithPending {
        /// The executor's name.
        executor: &'a str,
        /// How many submissions were not finished.
        pending: usize,
    },
}

/// Receives what happens to tasks and executor work. Every method has an empty default.
///
/// Implementations must be cheap and must not block: they run on runtime threads, inside polls.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use taskweave_core::instrument::{self, Observer};
/// use taskweave_core::TaskInfo;
///
/// #[derive(Default)]
/// struct Count(AtomicUsize);
/// impl Observer for Count {
///     fn on_spawn(&self, _task: &TaskInfo) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let count = Arc::new(Count::default());
/// let rt = taskweave_core::Runtime::builder().observer(count.clone()).build().unwrap();
/// rt.run(async { taskweave_core::create_task(async {}).await.unwrap() });
/// assert!(count.0.load(Ordering::Relaxed) >= 1);
/// ```
pub trait Observer: Send + Sync + 'static {
    /// A task was created.
    fn on_spawn(&self, _task: &TaskInfo) {}
    /// A poll of the task begins.
    fn on_poll_start(&self, _task: &TaskInfo) {}
    /// A poll ended after `duration`; `ready` when the task finished in it.
    fn on_poll_end(&self, _task: &TaskInfo, _duration: Duration, _ready: bool) {}
    /// The task ended; for executor work (a `TaskInfo` of kind `WorkKind::Executor`), its
    /// promise completed, whether or not the work ran.
    fn on_complete(&self, _task: &TaskInfo, _outcome: Outcome<'_>) {}
    /// A handle was dropped in a state worth reporting.
    fn on_handle_drop(&self, _task: Option<&TaskInfo>, _report: &HandleDrop) {}
    /// Work failed after its only handle was dropped, so nobody can retrieve the error.
    fn on_error_not_retrieved(&self, _task: Option<&TaskInfo>, _error: &Error) {}
    /// A done-callback panicked (the panic was caught).
    fn on_callback_panic(&self, _task: Option<&TaskInfo>, _message: &str) {}
    /// A blocking wait named `what` was refused on a runtime thread.
    fn on_blocking_wait_refused(&self, _what: &str) {}
    /// An executor reported an event.
    fn on_executor(&self, _event: &ExecutorEvent<'_>) {}
    /// The runtime's main future returned; leftover tasks are about to be cancelled.
    fn on_shutdown(&self) {}
    /// The runtime has shut down: leftover tasks were cancelled and dropped, and blocking work
    /// finished or was left behind after the shutdown timeout. A task the observer still counts
    /// as alive now is one whose poll never returned. Called once per runtime, by the
    /// `Runtime` that attached this observer, before it is detached.
    fn on_shutdown_complete(&self) {}
}

mod scope;

pub use scope::{EnterGuard, ObserverGuard, attach, enter};
pub(crate) use scope::{PollScope, RunScope};

/// The observer in charge of some code, or none: what [`current`] returns and what a
/// [`Resolver`](crate::Resolver) carries for its work. Cheap to clone (an `Option` of an `Arc`).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use taskweave_core::instrument::{self, ExecutorEvent, ObserverRef};
///
/// struct Quiet;
/// impl instrument::Observer for Quiet {}
///
/// assert!(!instrument::current().is_active());
/// let observer = ObserverRef::from(Arc::new(Quiet) as Arc<dyn instrument::Observer>);
/// assert!(observer.is_active());
/// observer.executor_event(&ExecutorEvent::DroppedWithPending { executor: "pool", pending: 1 });
/// ```
#[derive(Clone, Default)]
pub struct ObserverRef(Option<Arc<dyn Observer>>);

/// The empty [`ObserverRef`], for what has nothing to report to.
pub(crate) static NO_OBSERVER: ObserverRef = ObserverRef(None);

impl std::fmt::Debug for ObserverRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserverRef")
            .field("active", &self.is_active())
            .finish()
    }
}

impl From<Arc<dyn Observer>> for ObserverRef {
    fn from(observer: Arc<dyn Observer>) -> ObserverRef {
        ObserverRef(Some(observer))
    }
}

impl From<Option<Arc<dyn Observer>>> for ObserverRef {
    fn from(observer: Option<Arc<dyn Observer>>) -> ObserverRef {
        ObserverRef(observer)
    }
}

impl ObserverRef {
    /// `true` when there is an observer to report to.
    ///
    /// ```
    /// assert!(!taskweave_core::instrument::ObserverRef::default().is_active());
    /// ```
    #[inline]
    pub fn is_active(&self) -> bool {
        self.0.is_some()
    }

    /// The observer, if any.
    ///
    /// ```
    /// assert!(taskweave_core::instrument::ObserverRef::default().observer().is_none());
    /// ```
    pub fn observer(&self) -> Option<&Arc<dyn Observer>> {
        self.0.as_ref()
    }

    /// The observer, if any, by value (no second reference count to take and drop).
    pub(crate) fn into_observer(self) -> Option<Arc<dyn Observer>> {
        self.0
    }

    /// Reports an executor event to this observer; does nothing when there is none.
    ///
    /// ```
    /// use taskweave_core::instrument::{ExecutorEvent, ObserverRef};
    /// ObserverRef::default()
    ///     .executor_event(&ExecutorEvent::DroppedWithPending { executor: "pool", pending: 2 });
    /// ```
    pub fn executor_event(&self, event: &ExecutorEvent<'_>) {
        if let Some(obs) = &self.0 {
            obs.on_executor(event);
        }
    }

    pub(crate) fn handle_dropped(&self, task: Option<&TaskInfo>, report: HandleDrop) {
        if let Some(obs) = &self.0 {
            obs.on_handle_drop(task, &report);
        }
    }

    pub(crate) fn work_ended(&self, work: &TaskInfo, error: Option<&Error>) {
        if let Some(obs) = &self.0 {
            let outcome = match error {
                None => Outcome::Finished,
                Some(e) if e.is_cancelled() => Outcome::Cancelled,
                Some(e) => Outcome::Failed(e),
            };
            obs.on_complete(work, outcome);
        }
    }

    /// An error nobody can retrieve any more is always reported: to the observer when there is
    /// one, otherwise as a tracing error event, or on stderr when no tracing subscriber is set.
    pub(crate) fn error_not_retrieved(&self, task: Option<&TaskInfo>, error: &Error) {
        if let Some(obs) = &self.0 {
            obs.on_error_not_retrieved(task, error);
            return;
        }
        let who = task.map_or_else(|| "future".to_owned(), |t| t.to_string());
        if tracing::dispatcher::has_been_set() {
            tracing::error!(target: "taskweave", task = %who, error = %error, "exception was never retrieved");
        } else {
            eprintln!("taskweave: {who}: exception was never retrieved: {error}");
        }
    }

    pub(crate) fn callback_panicked(&self, task: Option<&TaskInfo>, message: &str) {
        if let Some(obs) = &self.0 {
            obs.on_callback_panic(task, message);
            return;
        }
        let who = task.map_or_else(|| "future".to_owned(), |t| t.to_string());
        if tracing::dispatcher::has_been_set() {
            tracing::error!(target: "taskweave", task = %who, panic = message, "done-callback panicked");
        } else {
            eprintln!("taskweave: {who}: done-callback panicked: {message}");
        }
    }
}

/// `true` when an observer may be in charge somewhere in this process: one relaxed atomic load.
/// A cheap test before building an event; [`current`] says which observer, if any, is in charge
/// of the calling code.
///
/// ```
/// // Nothing is in charge in a fresh program.
/// assert!(!taskweave_core::instrument::active());
/// ```
#[inline]
pub fn active() -> bool {
    scope::anything_attached()
}

/// The observer in charge of the calling code: the one of the observed task being polled, else
/// the one [`enter`]ed on this thread, else the one attached to the current tokio runtime
/// (attaching one first when `TASKWEAVE_DEBUG` asks for it and nothing was attached to this
/// runtime yet). Empty when none is.
///
/// ```
/// use std::sync::Arc;
/// use taskweave_core::instrument;
///
/// struct Quiet;
/// impl instrument::Observer for Quiet {}
///
/// assert!(!instrument::current().is_active());
/// let guard = instrument::enter(Arc::new(Quiet));
/// assert!(instrument::current().is_active());
/// drop(guard);
/// assert!(!instrument::current().is_active());
/// ```
#[inline]
pub fn current() -> ObserverRef {
    scope::current()
}

/// Reports an executor event to the observer in charge of the calling code ([`current`]); does
/// nothing when none is. Events about submitted work go to the work's own observer instead
/// ([`Resolver::observer`](crate::Resolver::observer)).
///
/// ```
/// use taskweave_core::instrument::{executor_event, ExecutorEvent};
/// executor_event(&ExecutorEvent::DroppedWithPending { executor: "ThreadPoolExecutor", pending: 2 });
/// ```
pub fn executor_event(event: &ExecutorEvent<'_>) {
    if active() {
        current().executor_event(event);
    }
}

pub(crate) fn blocking_wait_refused(what: &str) {
    if let Some(obs) = current().observer() {
        obs.on_blocking_wait_refused(what);
    }
}

/// Reports an error nobody can retrieve to the observer in charge of the calling code, or as a
/// tracing event or on stderr when none is.
pub(crate) fn error_not_retrieved(task: Option<&TaskInfo>, error: &Error) {
    current().error_not_retrieved(task, error);
}

pub(crate) fn callback_panicked(task: Option<&TaskInfo>, message: &str) {
    current().callback_panicked(task, message);
}
