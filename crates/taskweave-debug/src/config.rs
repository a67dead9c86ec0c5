//! [`Debug`](struct@Debug): the configuration of debug mode (thresholds, timeline) and how it is switched on.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::observer::DebugObserver;

/// The configuration of debug mode: asyncio's `slow_callback_duration` and what taskweave adds.
///
/// Build an observer from it with [`build`](Self::build) and hand it to a runtime, switch debug
/// mode on for a tokio runtime with [`attach`](Self::attach), or make it the configuration that
/// `Runtime::builder().debug(true)` and `TASKWEAVE_DEBUG=1` use with
/// [`enable_on_request`](Self::enable_on_request).
///
/// | setting | default | what it does |
/// |---|---|---|
/// | [`slow_poll`](Self::slow_poll) | 100 ms | a poll holding its thread this long is reported when it returns |
/// | [`blocked_after`](Self::blocked_after) | 10 × slow poll | a poll still running after this is reported while it runs (blocked worker) |
/// | [`hang_after`](Self::hang_after) | 10 s | a task not polled for this long is reported while it hangs |
/// | [`trace_file`](Self::trace_file) | `TASKWEAVE_TRACE` | the timeline is written there at shutdown |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use taskweave_debug::Debug;
///
/// let debug = Debug::new()
///     .slow_poll(Duration::from_millis(50))
///     .hang_after(Some(Duration::from_secs(30)))
///     .build();
/// let rt = taskweave_core::Runtime::builder().observer(debug.clone()).build().unwrap();
/// rt.run(async { taskweave_core::create_task(async { 1 }).await.unwrap() }).unwrap();
/// assert!(debug.dump().tasks.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct Debug {
    pub(crate) slow_poll: Duration,
    /// `None`: derived from `slow_poll`; `Some(None)`: off.
    pub(crate) blocked_after: Option<Option<Duration>>,
    pub(crate) hang_after: Option<Duration>,
    pub(crate) timeline: bool,
    pub(crate) trace_file: Option<PathBuf>,
}

impl Default for Debug {
    fn default() -> Debug {
        Debug::new()
    }
}

static REGISTERED: OnceLock<Debug> = OnceLock::new();

impl Debug {
    /// The defaults, with the timeline file taken from `TASKWEAVE_TRACE` when it is set.
    ///
    /// ```
    /// let observer = taskweave_debug::Debug::new()
    ///     .slow_poll(std::time::Duration::from_millis(50))
    ///     .build();
    /// assert!(observer.dump().to_string().contains("0 live task"));
    /// ```
    pub fn new() -> Debug {
        let trace_file = std::env::var_os("TASKWEAVE_TRACE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Debug {
            slow_poll: Duration::from_millis(100),
            blocked_after: None,
            hang_after: Some(Duration::from_secs(10)),
            timeline: trace_file.is_some(),
            trace_file,
        }
    }

    /// Reports a poll that held its thread at least `threshold` (asyncio's
    /// `slow_callback_duration`, default 100 ms).
    ///
    /// ```
    /// let debug = taskweave_debug::Debug::new().slow_poll(std::time::Duration::from_millis(20));
    /// # drop(debug);
    /// ```
    pub fn slow_poll(mut self, threshold: std::time::Duration) -> Debug {
        self.slow_poll = threshold;
        self
    }

    /// Reports, while it runs, a poll that has held its thread for `threshold` (a blocked worker
    /// thread); `None` switches this off. Default: ten times the slow-poll threshold.
    ///
    /// ```
    /// let debug = taskweave_debug::Debug::new().blocked_after(Some(std::time::Duration::from_secs(2)));
    /// # drop(debug);
    /// ```
    pub fn blocked_after(mut self, threshold: Option<Duration>) -> Debug {
        self.blocked_after = Some(threshold);
        self
    }

    /// Reports, while it hangs, a task that has not been polled for `threshold`; `None`
    /// switches this off. Default: 10 s.
    ///
    /// A task waiting on a timer longer than this counts as hanging too: the watchdog cannot
    /// tell a long sleep from a wait that never ends, so pick a threshold above the longest
    /// wait the program means to do.
    ///
    /// ```
    /// let debug = taskweave_debug::Debug::new().hang_after(None);
    /// # drop(debug);
    /// ```
    pub fn hang_after(mut self, threshold: Option<Duration>) -> Debug {
        self.hang_after = threshold;
        self
    }

    /// Records the timeline in memory (read it with
    /// [`DebugObserver::trace_json`](crate::DebugObserver::trace_json)). On by default when
    /// `TASKWEAVE_TRACE` is set.
    ///
    /// ```
    /// let debug = taskweave_debug::Debug::new().timeline(true).build();
    /// assert!(debug.trace_json().is_some());
    /// ```
    pub fn timeline(mut self, on: bool) -> Debug {
        self.timeline = on;
        self
    }

    /// Records the timeline and writes it to `path` when the runtime shuts down (what
    /// `TASKWEAVE_TRACE=path` does).
    ///
    /// ```
    /// let debug = taskweave_debug::Debug::new().trace_file("run.json");
    /// # drop(debug);
    /// ```
    pub fn trace_file(mut self, path: impl Into<PathBuf>) -> Debug {
        self.trace_file = Some(path.into());
        self.timeline = true;
        self
    }

    /// The effective blocked-worker threshold.
    pub(crate) fn blocked_threshold(&self) -> Option<Duration> {
        match self.blocked_after {
            Some(explicit) => explicit,
            None => Some(self.slow_poll.saturating_mul(10)),
        }
    }

    /// Builds an observer with this configuration; pass it to
    /// `Runtime::builder().observer(..)` and keep a clone to ask for dumps or the timeline.
    ///
    /// The watchdog thread starts here when a hang or blocked-worker threshold is set, and
    /// ends when the last clone of the observer is dropped.
    ///
    /// ```
    /// let debug = taskweave_debug::Debug::new().build();
    /// let rt = taskweave_core::Runtime::builder().observer(debug).build().unwrap();
    /// assert!(rt.debug());
    /// ```
    pub fn build(&self) -> Arc<DebugObserver> {
        DebugObserver::start(self.clone())
    }

    /// Makes this the configuration of debug mode when it is requested
    /// (`Runtime::builder().debug(true)`, `#[taskweave::main(debug)]`, `TASKWEAVE_DEBUG=1`),
    /// and makes this crate the one that answers those requests. The first configuration wins.
    ///
    /// ```
    /// use std::time::Duration;
    /// taskweave_debug::Debug::new().slow_poll(Duration::from_millis(250)).enable_on_request();
    /// let rt = taskweave_core::Runtime::builder().debug(true).build().unwrap();
    /// assert!(rt.debug());
    /// ```
    pub fn enable_on_request(self) {
        let _ = REGISTERED.set(self);
        taskweave_core::register_debug(registered_observer);
    }

    /// Switches debug mode on, with this configuration, for the runtime of `handle` until the
    /// guard is dropped: see [`attach`](crate::attach).
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let debug = taskweave_debug::Debug::new().slow_poll(Duration::from_millis(20)).attach(rt.handle());
    /// rt.block_on(async { taskweave_core::create_task(async { 1 }).await.unwrap() });
    /// assert!(debug.observer().dump().tasks.is_empty());
    /// ```
    pub fn attach(&self, handle: &tokio::runtime::Handle) -> crate::DebugGuard {
        crate::attach::attach_with(self, handle)
    }
}

/// The configuration registered with [`Debug::enable_on_request`], else the defaults.
pub(crate) fn registered() -> Debug {
    REGISTERED.get().cloned().unwrap_or_default()
}

fn registered_observer() -> Arc<dyn taskweave_core::instrument::Observer> {
    registered().build()
}

/// Makes this crate answer requests for debug mode (`Runtime::builder().debug(true)`,
/// `#[taskweave::main(debug)]`, `TASKWEAVE_DEBUG=1`, also inside a tokio runtime the program
/// built itself), with the default configuration.
///
/// On Linux, Android and FreeBSD this already happens before `main` in every program this crate
/// is linked into (through the `taskweave` facade, for example), so the call is only needed
/// elsewhere; `#[taskweave::main]` and `taskweave::run` make it anyway.
///
/// ```
/// taskweave_debug::enable_on_request();
/// let rt = taskweave_core::Runtime::builder().debug(true).build().unwrap();
/// assert!(rt.debug());
/// ```
pub fn enable_on_request() {
    taskweave_core::register_debug(registered_observer);
}

/// Lets `TASKWEAVE_DEBUG=1` work in a program that never calls into this crate: every ELF loader
/// runs the functions of `.init_array` before `main`.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
#[used]
// SAFETY: the loader calls each `.init_array` entry once, before `main`, as an
// `extern "C" fn()` with no arguments, which is this static's type; the function only stores a
// function pointer in a `OnceLock`, which needs nothing that `main` sets up and cannot unwind.
#[unsafe(link_section = ".init_array")]
static ENABLE_ON_REQUEST_BEFORE_MAIN: extern "C" fn() = enable_on_request_before_main;

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
extern "C" fn enable_on_request_before_main() {
    taskweave_core::register_debug(registered_observer);
}
