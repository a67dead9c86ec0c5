//! One unit of work as every executor in this crate carries it: a boxed closure that is told
//! either to run or to give up with an error.
//!
//! Giving up is not the same as dropping: a job dropped unrun would complete its promise with
//! [`ErrorKind::Abandoned`](taskweave_core::ErrorKind::Abandoned), while a job told to skip
//! completes it with the reason (shut down, cancelled, broken), which is what the caller needs to
//! see.

use std::any::type_name;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use taskweave_core::instrument::{ExecutorEvent, ObserverRef};
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

/// Calls `f`, turning a panic into [`ErrorKind::Panicked`](taskweave_core::ErrorKind::Panicked)
/// that names the work and where it was submitted. A payload whose own `Drop` panics still gives
/// `Panicked`: nothing unwinds out of here into the worker.
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

/// Runs `job` on an executor's thread. The job catches the work's panics; this catches what escapes
/// anyway (an observer hook, a drop of user data), so the thread lives on: a pool worker takes its
/// next job, a rayon thread does not abort the process. The job's resolver, dropped while
/// unwinding, has completed its promise with
/// [`ErrorKind::Abandoned`](taskweave_core::ErrorKind::Abandoned).
pub(crate) fn run_contained<J: FnOnce(Run)>(job: J) {
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
    TaskInfo::executor(cached_work_name(type_name::<F>()))
}

/// How many work names each thread keeps.
const NAME_SLOTS: usize = 8;

/// A work name and the address and length of the type name it was made from.
type CachedName = Option<(usize, usize, Arc<str>)>;

thread_local! {
    /// The names this thread made last: a direct-mapped cache, one name per slot.
    static NAMES: RefCell<[CachedName; NAME_SLOTS]> =
        const { RefCell::new([const { None }; NAME_SLOTS]) };
}

/// [`work_name`], shared. Making a name searches the type name and allocates, several hundred
/// instructions, more than the rest of a trivial call's round trip spends on naming; work is
/// usually submitted from a few places over and over, so a thread makes each name once and
/// hands out clones. Type names are static strings, so an address and a length name one
/// (equal strings merged by the linker give equal names anyway).
fn cached_work_name(type_name: &'static str) -> Arc<str> {
    let (addr, len) = (type_name.as_ptr() as usize, type_name.len());
    let slot = (addr ^ (addr >> 7)) % NAME_SLOTS;
    let cached = NAMES.try_with(|names| {
        let mut names = names.borrow_mut();
        match &names[slot] {
            Some((a, l, name)) if *a == addr && *l == len => name.clone(),
            _ => {
                let name: Arc<str> = work_name(type_name).into();
                names[slot] = Some((addr, len, name.clone()));
                name
            }
        }
    });
    // Without the thread-local (the thread is exiting), make the name afresh.
    cached.unwrap_or_else(|_| work_name(type_name).into())
}

/// The name of submitted work: a function item by its path (`app::resize`), a closure by the
/// function it is written in (`closure in app::main`). The compiler's own name for a closure
/// type (`app::main::{{closure}}::{{closure}}`) says little; the submit site, recorded next to
/// the name, says where exactly.
fn work_name(type_name: &str) -> String {
    match type_name.find("::{{closure}}") {
        Some(at) => format!("closure in {}", &type_name[..at]),
        None => type_name.to_owned(),
    }
}

/// Builds the promise and the job for running `f` on `executor`, reporting the executor events
/// when debug mode is on.
pub(crate) fn promise_job<F, T>(executor: &'static str, info: TaskInfo, f: F) -> (Promise<T>, Job)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (promise, work) = promise_work(executor, info, f);
    (promise, Box::new(work))
}

/// [`promise_job`] unboxed, for an executor that boxes the work itself (rayon does, so boxing it
/// here too would cost a second allocation per call).
pub(crate) fn promise_work<F, T>(
    executor: &'static str,
    info: TaskInfo,
    f: F,
) -> (Promise<T>, impl FnOnce(Run) + Send + 'static)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (promise, resolver) = Promise::pending_with(info);
    if let Some(work) = resolver.info() {
        (resolver.observer()).executor_event(&ExecutorEvent::Submitted { executor, work });
    }
    // The work runs in the submitter's span, as Python runs it in a copy of the contextvars.
    // Without any tracing dispatcher there is no span to carry, and asking for it is most of
    // what carrying costs.
    let span = if tracing::dispatcher::has_been_set() {
        tracing::Span::current()
    } else {
        tracing::Span::none()
    };
    let work = move |run| match run {
        Run::Go => {
            // A promise cancelled while queued is skipped (Python's set_running_or_notify_cancel).
            if !resolver.set_running() {
                return;
            }
            let end = CallEnd::claim();
            let result =
                span.in_scope(|| call_observed(executor, resolver.observer(), resolver.info(), f));
            // A pool worker counts as idle before the promise wakes its awaiter, who may
            // submit again at once.
            drop(end);
            resolver.resolve(result);
        }
        Run::Skip(error) => resolver.set_error(error),
    };
    (promise, work)
}

/// Runs `f` and reports `Started` and `Finished` around it to `observer`.
fn observed<F, T>(
    executor: &str,
    observer: &ObserverRef,
    info: Option<&TaskInfo>,
    f: F,
) -> Result<T, Error>
where
    F: FnOnce() -> T,
{
    let Some(work) = info else {
        return call(f, info);
    };
    let thread = std::thread::current();
    let worker = thread.name().unwrap_or("unnamed thread");
    observer.executor_event(&ExecutorEvent::Started {
        executor,
        work,
        worker,
    });
    let started = Instant::now();
    let result = call(f, info);
    observer.executor_event(&ExecutorEvent::Finished {
        executor,
        work,
        duration: started.elapsed(),
        ok: result.is_ok(),
    });
    result
}

/// [`call`], with `Started` and `Finished` reported to the observer of the code that submitted
/// the work, if any.
pub(crate) fn call_observed<F, T>(
    executor: &'static str,
    observer: &ObserverRef,
    info: Option<&TaskInfo>,
    f: F,
) -> Result<T, Error>
where
    F: FnOnce() -> T,
{
    if observer.is_active() {
        observed(executor, observer, info, f)
    } else {
        call(f, info)
    }
}
