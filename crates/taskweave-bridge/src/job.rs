//! One unit of work as every executor in this crate carries it: a boxed closure that is told
//! either to run or to give up with an error.
//!
//! Giving up is not the same as dropping: a job dropped unrun would complete its promise with
//! [`Error::Abandoned`], while a job told to skip completes it with the reason (shut down,
//! cancelled, broken), which is what the caller needs to see.

use std::any::type_name;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use taskweave_core::instrument::{self, ExecutorEvent};
use taskweave_core::{Error, Promise, TaskInfo};

use crate::pool::CallEnd;

/// What an executor tells a job.
pub(crate) enum Run {
    /// Run the work now, on this thread.
    Go,
    /// Do not run it; complete it with this error.
    Skip(Error),
}

/// A unit of work queued on an executor.
pub(crate) type Job = Box<dyn FnOnce(Run) + Send + 'static>;

/// Calls `f`, turning a panic into [`Error::Panicked`] that names the work and where it was
/// submitted. A payload whose own `Drop` panics still gives `Panicked`: nothing unwinds out of
/// here into the worker.
pub(crate) fn call<F, T>(f: F, info: Option<&TaskInfo>) -> Result<T, Error>
where
    F: FnOnce() -> T,
{
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = taskweave_core::error::panic_message(&*payload);
        taskweave_core::error::drop_panic_payload(payload);
        Error::panicked(
            message,
            info.map(TaskInfo::name),
            info.map(TaskInfo::site),
            None,
        )
    })
}

/// Runs `job` on an executor's thread. The job catches the work's panics; this catches what
/// escapes anyway (an observer hook, a drop of user data), so the thread lives on: a pool worker
/// takes its next job, a rayon thread does not abort the process. The job's resolver, dropped
/// while unwinding, has completed its promise with [`Error::Abandoned`].
pub(crate) fn run_contained(job: Job) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| job(Run::Go))) {
        taskweave_core::error::drop_panic_payload(payload);
    }
}

/// The error for work submitted to `executor` after it was shut down.
pub(crate) fn refused_after_shutdown(executor: &str) -> Error {
    Error::shutdown(format!(
        "cannot schedule new work after the {executor} was shut down"
    ))
}

/// The error for queued work that `shutdown(cancel_futures = true)` on `executor` skipped.
pub(crate) fn cancelled_by_shutdown(executor: &str) -> Error {
    Error::cancelled(Some(format!(
        "the {executor} was shut down with cancel_futures"
    )))
}

/// Describes work of closure type `F`, submitted from the caller's location.
#[track_caller]
pub(crate) fn describe<F>() -> TaskInfo {
    TaskInfo::executor(type_name::<F>())
}

/// Builds the promise and the job for running `f` on `executor`, reporting the executor events
/// when debug mode is on.
pub(crate) fn promise_job<F, T>(executor: &'static str, info: TaskInfo, f: F) -> (Promise<T>, Job)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (promise, resolver) = Promise::pending_with(info);
    if instrument::active() {
        if let Some(work) = resolver.info() {
            instrument::executor_event(&ExecutorEvent::Submitted { executor, work });
        }
    }
    // The work runs in the submitter's span, as Python runs it in a copy of the contextvars.
    let span = tracing::Span::current();
    let job: Job = Box::new(move |run| match run {
        Run::Go => {
            // A promise cancelled while queued is skipped (Python's set_running_or_notify_cancel).
            if !resolver.set_running() {
                return;
            }
            let end = CallEnd::claim();
            let result = span.in_scope(|| call_observed(executor, resolver.info(), f));
            // A pool worker counts as idle before the promise wakes its awaiter, who may
            // submit again at once.
            drop(end);
            resolver.resolve(result);
        }
        Run::Skip(error) => resolver.set_error(error),
    });
    (promise, job)
}

/// Runs `f` and reports `Started` and `Finished` around it.
fn observed<F, T>(executor: &str, info: Option<&TaskInfo>, f: F) -> Result<T, Error>
where
    F: FnOnce() -> T,
{
    let Some(work) = info else {
        return call(f, info);
    };
    let thread = std::thread::current();
    let worker = thread.name().unwrap_or("unnamed thread");
    instrument::executor_event(&ExecutorEvent::Started {
        executor,
        work,
        worker,
    });
    let started = Instant::now();
    let result = call(f, info);
    instrument::executor_event(&ExecutorEvent::Finished {
        executor,
        work,
        duration: started.elapsed(),
        ok: result.is_ok(),
    });
    result
}

/// [`call`], with `Started` and `Finished` reported when debug mode is on.
pub(crate) fn call_observed<F, T>(
    executor: &'static str,
    info: Option<&TaskInfo>,
    f: F,
) -> Result<T, Error>
where
    F: FnOnce() -> T,
{
    if instrument::active() {
        observed(executor, info, f)
    } else {
        call(f, info)
    }
}
