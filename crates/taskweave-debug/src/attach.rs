//! Debug mode for a tokio runtime the program built itself (`#[tokio::main]`, a server
//! framework's runtime): [`attach`], [`enable`] and the [`DebugGuard`] that keeps it on.

use std::sync::Arc;

use taskweave_core::Error;
use taskweave_core::instrument::{self, ObserverGuard};

use crate::config::{self, Debug};
use crate::observer::DebugObserver;

/// Keeps debug mode on for one runtime ([`attach`], [`enable`]); dropping it switches it off.
///
/// When dropped it reports the tasks still pending (`pending_at_shutdown`), writes the timeline
/// when one is configured (`TASKWEAVE_TRACE`), and detaches its observer, bringing back what the
/// runtime had before. Tasks spawned while it lived keep reporting to its observer until they
/// end.
///
/// # Examples
///
/// ```
/// #[tokio::main]
/// async fn main() {
///     let debug = taskweave_debug::enable().expect("inside a tokio runtime");
///     taskweave_core::create_task(async { 1 }).await.unwrap();
///     assert!(debug.observer().dump().tasks.is_empty());
/// }
/// ```
#[must_use = "debug mode is switched off when the guard is dropped"]
#[derive(Debug)]
pub struct DebugGuard {
    observer: Arc<DebugObserver>,
    attached: Option<ObserverGuard>,
}

impl DebugGuard {
    /// The observer, for dumps on demand and the timeline.
    ///
    /// ```
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let debug = taskweave_debug::attach(rt.handle());
    /// assert!(debug.observer().dump().tasks.is_empty());
    /// ```
    pub fn observer(&self) -> &Arc<DebugObserver> {
        &self.observer
    }
}

impl Drop for DebugGuard {
    fn drop(&mut self) {
        drop(self.attached.take());
        self.observer.detached();
    }
}

pub(crate) fn attach_with(config: &Debug, handle: &tokio::runtime::Handle) -> DebugGuard {
    let observer = config.build();
    let attached = instrument::attach(handle, observer.clone());
    DebugGuard {
        observer,
        attached: Some(attached),
    }
}

/// Switches debug mode on for the runtime of `handle` until the guard is dropped, with the
/// configuration given to [`Debug::enable_on_request`] (else the defaults). This is the way in
/// for a program that builds its own tokio runtime: every taskweave task spawned on it, and
/// every promise and executor submission made from it, reports to debug mode, through the
/// program's own tracing subscriber.
///
/// A runtime gets debug mode by itself when `TASKWEAVE_DEBUG=1` is set; `attach` also works
/// without the variable, and its guard reports pending tasks and writes the timeline when it
/// is dropped.
///
/// # Examples
///
/// ```
/// let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
/// let debug = taskweave_debug::attach(rt.handle());
/// rt.block_on(async {
///     let task = taskweave_core::create_task_named("answer", async { 42 });
///     assert_eq!(task.await.unwrap(), 42);
/// });
/// drop(debug);
/// ```
pub fn attach(handle: &tokio::runtime::Handle) -> DebugGuard {
    attach_with(&config::registered(), handle)
}

/// [`attach`] for the runtime the caller runs on: the one line an existing `#[tokio::main]`
/// application adds to switch debug mode on (asyncio's `loop.set_debug(True)`).
///
/// # Differences from Python
///
/// `loop.set_debug(True)` stays on until `set_debug(False)`; here debug mode lasts as long as
/// the returned guard, whose drop switches it off and reports what is still pending. Tasks
/// created before the call stay unobserved, as tasks created before `set_debug` miss asyncio's
/// creation tracebacks.
///
/// # Errors
///
/// [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) when called outside a tokio runtime.
///
/// # Examples
///
/// ```
/// #[tokio::main]
/// async fn main() {
///     let _debug = taskweave_debug::enable().expect("inside a tokio runtime");
///     // ... the application, unchanged
/// }
/// ```
pub fn enable() -> Result<DebugGuard, Error> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => Ok(attach(&handle)),
        Err(_) => Err(Error::refused(
            "taskweave_debug::enable() must be called inside a tokio runtime; from outside, \
             use taskweave_debug::attach(runtime.handle())",
        )),
    }
}
