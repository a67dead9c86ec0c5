//! The instrumentation seam: how a debug layer observes tasks and executor work without core
//! depending on it.
//!
//! An [`Observer`] is installed process-wide with [`install`] (the runtime builder does this when
//! debug mode is on). Core then calls it at task spawn, around each poll, at completion, when a
//! handle is dropped unawaited, when an error is never retrieved, and for executor events that
//! the thread and process pools report through [`executor_event`].
//!
//! **Cost when off.** `create_task` does one relaxed atomic load; each poll does one branch on an
//! `Option` held in the task; nothing allocates and no clock is read. The observer is captured at
//! spawn, so a task spawned while debug mode was off stays uninstrumented for its whole life.
//!
//! **Invariant:** core never depends on `tracing-subscriber`; it only emits plain `tracing` events
//! for the reports that must never be lost (an error nobody retrieved) when no observer is
//! installed, and falls back to stderr when no subscriber is set, like Python's last-resort
//! logging handler.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
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
    /// A worker process was still alive after its pool was gone.
    WorkerLeftBehind {
        /// The executor's name.
        executor: &'a str,
        /// The process id.
        pid: u32,
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
    /// as alive now is one whose poll never returned. Called once per runtime, by the runtime
    /// that installed this observer, before the observer is uninstalled.
    fn on_shutdown_complete(&self) {}
}

static ACTIVE: AtomicBool = AtomicBool::new(false);
static OBSERVER: RwLock<Option<Arc<dyn Observer>>> = RwLock::new(None);

/// Keeps an observer installed; dropping it uninstalls the observer.
#[derive(Debug)]
#[must_use = "the observer is uninstalled when the guard is dropped"]
pub struct ObserverGuard {
    _private: (),
}

/// Installs `observer` process-wide, replacing any other, until the guard is dropped.
///
/// ```
/// use std::sync::Arc;
/// struct Quiet;
/// impl taskweave_core::instrument::Observer for Quiet {}
/// let guard = taskweave_core::instrument::install(Arc::new(Quiet));
/// assert!(taskweave_core::instrument::active());
/// drop(guard);
/// assert!(!taskweave_core::instrument::active());
/// ```
pub fn install(observer: Arc<dyn Observer>) -> ObserverGuard {
    *write_slot() = Some(observer);
    ACTIVE.store(true, Ordering::Release);
    ObserverGuard { _private: () }
}

impl Drop for ObserverGuard {
    fn drop(&mut self) {
        ACTIVE.store(false, Ordering::Release);
        *write_slot() = None;
    }
}

fn write_slot() -> std::sync::RwLockWriteGuard<'static, Option<Arc<dyn Observer>>> {
    match OBSERVER.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// `true` while an observer is installed.
///
/// ```
/// // Nothing is installed in a fresh program.
/// assert!(!taskweave_core::instrument::active());
/// ```
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// The installed observer, if any.
///
/// ```
/// assert!(taskweave_core::instrument::current_observer().is_none());
/// ```
pub fn current_observer() -> Option<Arc<dyn Observer>> {
    if !active() {
        return None;
    }
    match OBSERVER.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

/// Reports an executor event to the installed observer; does nothing when none is installed.
///
/// ```
/// use taskweave_core::instrument::{executor_event, ExecutorEvent};
/// executor_event(&ExecutorEvent::DroppedWithPending { executor: "ThreadPoolExecutor", pending: 2 });
/// ```
pub fn executor_event(event: &ExecutorEvent<'_>) {
    if let Some(obs) = current_observer() {
        obs.on_executor(event);
    }
}

pub(crate) fn handle_dropped(task: Option<&TaskInfo>, report: HandleDrop) {
    if let Some(obs) = current_observer() {
        obs.on_handle_drop(task, &report);
    }
}

pub(crate) fn work_ended(work: &TaskInfo, error: Option<&Error>) {
    if let Some(obs) = current_observer() {
        let outcome = match error {
            None => Outcome::Finished,
            Some(e) if e.is_cancelled() => Outcome::Cancelled,
            Some(e) => Outcome::Failed(e),
        };
        obs.on_complete(work, outcome);
    }
}

pub(crate) fn blocking_wait_refused(what: &str) {
    if let Some(obs) = current_observer() {
        obs.on_blocking_wait_refused(what);
    }
}

pub(crate) fn shutdown_started() {
    if let Some(obs) = current_observer() {
        obs.on_shutdown();
    }
}

/// An error nobody can retrieve any more is always reported: to the observer when debug mode is
/// on, otherwise as a tracing error event, or on stderr when no tracing subscriber is set.
pub(crate) fn error_not_retrieved(task: Option<&TaskInfo>, error: &Error) {
    if let Some(obs) = current_observer() {
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

pub(crate) fn callback_panicked(task: Option<&TaskInfo>, message: &str) {
    if let Some(obs) = current_observer() {
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
