//! Strict checks: misuse the library can see at run time is refused with an error instead of a
//! deadlock.
//!
//! The one check today is a blocking wait ([`Promise::result`](crate::Promise::result)) on a
//! thread that is in the middle of polling a task: the wait would hold a runtime worker, and if
//! the awaited work needs that worker the program deadlocks. Task polls mark their thread through
//! a thread-local flag, which costs two plain thread-local writes per poll.

use std::cell::Cell;

use crate::error::Error;

thread_local! {
    static POLLING: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as polling a task until dropped.
pub(crate) struct PollingTask {
    was: bool,
}

impl PollingTask {
    pub(crate) fn enter() -> PollingTask {
        PollingTask {
            was: POLLING.with(|p| p.replace(true)),
        }
    }
}

impl Drop for PollingTask {
    fn drop(&mut self) {
        let was = self.was;
        POLLING.with(|p| p.set(was));
    }
}

/// `true` when the current thread is polling a taskweave task (or `run`'s main future).
///
/// ```
/// assert!(!taskweave_core::strict::in_task_poll());
/// taskweave_core::run(async { assert!(taskweave_core::strict::in_task_poll()) });
/// ```
pub fn in_task_poll() -> bool {
    POLLING.with(Cell::get)
}

/// Refuses a blocking wait named `what` when called from inside a task poll.
///
/// Executors that offer their own blocking waits call this too, so the rule is the same
/// everywhere.
///
/// # Errors
///
/// [`ErrorKind::Refused`](crate::ErrorKind::Refused) naming `what` and saying to `.await` instead.
///
/// ```
/// assert!(taskweave_core::strict::check_blocking_wait("my wait").is_ok());
/// ```
pub fn check_blocking_wait(what: &str) -> Result<(), Error> {
    if in_task_poll() {
        crate::instrument::blocking_wait_refused(what);
        return Err(Error::refused(format!(
            "{what} would block a runtime worker thread inside an async task, which can deadlock \
             the runtime; `.await` the future instead, or call {what} from a plain thread \
             (for example inside to_thread / spawn_blocking)"
        )));
    }
    Ok(())
}
