//! [`DebugObserver`]: the observer core calls at each spawn, poll, completion, dropped handle
//! and executor event, turning what it sees into reports, debug logs and the timeline.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use taskweave_core::instrument::{ExecutorEvent, HandleDrop, Observer, Outcome};
use taskweave_core::{Error, TaskInfo, WorkKind};
use tracing::Level;

use crate::clock::{self, nanos, secs_between};
use crate::config::Debug;
use crate::registry::{Dump, Registry};
use crate::report::{Report, TARGET};
use crate::threads;
use crate::timeline::Timeline;

const SLOW_HINT: &str = "a poll must return quickly so the other tasks can run: move blocking \
    calls to to_thread / run_in_executor and CPU-heavy work to a process pool, or add .await points";
const NEVER_AWAITED_HINT: &str = "await the task (or gather it, or spawn it in a TaskGroup); if \
    it is meant to run in the background, call .detach() on its handle. Otherwise its result and \
    any error are lost";
const NOT_RETRIEVED_HINT: &str = "await it, or call result() on it (exception() on a promise); \
    a background task should handle its own errors";
const HANG_HINT: &str = "it waits for something that does not happen: a lock held elsewhere, a \
    channel nobody sends on, another task that hangs, a lost wake-up, or a timer longer than the \
    hang threshold (raise it with Debug::hang_after)";
const BLOCKED_HINT: &str = "a blocking call (std::thread::sleep, a std mutex, file or network \
    I/O, Promise::result) or a long computation runs inside an async task; move it to to_thread / \
    run_in_executor or to a process pool";
const SHUTDOWN_HINT: &str = "await every task before main returns (gather, TaskGroup) or cancel \
    it explicitly; detached background tasks end here too";
const LEFT_RUNNING_HINT: &str = "a task was inside a poll that never returned when the runtime \
    gave up waiting (shutdown_timeout); its thread is still blocked";
const EXECUTOR_DROPPED_HINT: &str = "call shutdown(true, false) before dropping the pool, or \
    await every submission first; the pending work is lost";
const BLOCKING_WAIT_HINT: &str = "`.await` the future instead, or call the blocking wait from a \
    plain thread (inside to_thread / spawn_blocking)";
const CALLBACK_HINT: &str = "a done-callback must not panic; the other callbacks still ran";

/// How many pending tasks the shutdown report names one by one before summing up.
const SHUTDOWN_LIST_LIMIT: usize = 50;

/// Every debug observer built, newest last, for [`current`]; dead ones are pruned as new ones
/// come.
static BUILT: Mutex<Vec<Weak<DebugObserver>>> = Mutex::new(Vec::new());

/// The debug-mode observer: reports what it sees as tracing events, keeps the table of live
/// tasks for dumps and the watchdog, and records the timeline when asked to.
///
/// Made by [`Debug::build`]; hand a clone to the runtime and keep one to call
/// [`dump`](Self::dump) or [`write_trace`](Self::write_trace).
///
/// # Examples
///
/// ```
/// let debug = taskweave_debug::Debug::new().timeline(true).build();
/// let rt = taskweave_core::Runtime::builder().observer(debug.clone()).build().unwrap();
/// rt.run(async {
///     let task = taskweave_core::create_task_named("answer", async { 42 });
///     assert_eq!(task.await.unwrap(), 42);
/// }).unwrap();
/// assert!(debug.trace_json().unwrap().contains("\"answer\""));
/// ```
pub struct DebugObserver {
    slow_poll_ns: u64,
    blocked_after_ns: Option<u64>,
    hang_after_ns: Option<u64>,
    trace_file: Option<std::path::PathBuf>,
    registry: Registry,
    timeline: Option<Timeline>,
    watchdog: Mutex<Option<std::thread::Thread>>,
    /// The watchdog's interval, by which coarse times may lag.
    tick_ns: std::sync::atomic::AtomicU64,
    /// The configured trace file was written (at shutdown, or when detached from a runtime).
    trace_written: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for DebugObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebugObserver")
            .field("slow_poll", &Duration::from_nanos(self.slow_poll_ns))
            .field(
                "blocked_after",
                &self.blocked_after_ns.map(Duration::from_nanos),
            )
            .field("hang_after", &self.hang_after_ns.map(Duration::from_nanos))
            .field("timeline", &self.timeline.is_some())
            .finish_non_exhaustive()
    }
}

/// The debug observer in charge of the calling code (the one of its runtime, task or thread,
/// see `taskweave_core::instrument::current`), else the most recently built one that is still
/// alive: what a program uses for a dump on demand without holding the observer.
///
/// ```
/// let debug = taskweave_debug::Debug::new().build();
/// assert!(taskweave_debug::current().is_some());
/// # drop(debug);
/// ```
pub fn current() -> Option<Arc<DebugObserver>> {
    let in_charge = taskweave_core::instrument::current();
    let in_charge = in_charge.observer().map(|o| Arc::as_ptr(o).cast::<()>());
    let built = lock(&BUILT);
    let mut live = built.iter().rev().filter_map(Weak::upgrade);
    match in_charge {
        Some(ptr) => {
            let all: Vec<_> = live.collect();
            let found = all
                .iter()
                .find(|d| Arc::as_ptr(d).cast::<()>() == ptr)
                .cloned();
            found.or_else(|| all.into_iter().next())
        }
        None => live.next(),
    }
}

/// A dump of every live task of the current debug observer (see [`current`]); `None` when no
/// debug observer is alive.
///
/// ```
/// let debug = taskweave_debug::Debug::new().build();
/// let dump = taskweave_debug::dump().unwrap();
/// assert!(dump.to_string().starts_with("0 live task(s)"));
/// # drop(debug);
/// ```
pub fn dump() -> Option<Dump> {
    current().map(|d| d.dump())
}

impl DebugObserver {
    pub(crate) fn start(config: Debug) -> Arc<DebugObserver> {
        clock::epoch();
        let observer = Arc::new(DebugObserver {
            slow_poll_ns: nanos(config.slow_poll),
            blocked_after_ns: config.blocked_threshold().map(nanos),
            hang_after_ns: config.hang_after.map(nanos),
            trace_file: config.trace_file.clone(),
            registry: Registry::new(),
            timeline: config.timeline.then(Timeline::new),
            watchdog: Mutex::new(None),
            tick_ns: std::sync::atomic::AtomicU64::new(0),
            trace_written: std::sync::atomic::AtomicBool::new(false),
        });
        clock::tick();
        // The watchdog always runs: its tick is the coarse clock. It ticks at least every
        // TICK_MAX, and eight times per shortest threshold so a report comes at most a quarter
        // of the threshold late.
        let thresholds = [config.blocked_threshold(), config.hang_after];
        let shortest = thresholds.iter().flatten().min().copied();
        let interval = shortest.map_or(clock::TICK_MAX, |s| {
            (s / 8).clamp(Duration::from_millis(2), clock::TICK_MAX)
        });
        observer
            .tick_ns
            .store(nanos(interval), std::sync::atomic::Ordering::Relaxed);
        {
            let weak = Arc::downgrade(&observer);
            let spawned = std::thread::Builder::new()
                .name("taskweave-watchdog".to_owned())
                .spawn(move || watchdog(weak, interval));
            match spawned {
                Ok(handle) => *lock(&observer.watchdog) = Some(handle.thread().clone()),
                Err(e) => Report::new(
                    Level::ERROR,
                    "watchdog_unavailable",
                    format!(
                        "cannot start the debug-mode watchdog thread: {e}; hangs and blocked \
                         workers are not reported, and ages are measured from the start"
                    ),
                )
                .emit(),
            }
        }
        {
            let mut built = lock(&BUILT);
            built.retain(|w| w.strong_count() > 0);
            built.push(Arc::downgrade(&observer));
        }
        observer
    }

    /// Every live task and piece of executor work: name, state, age, polls, creation site.
    /// Its `Display` is the table the watchdog prints.
    ///
    /// ```
    /// let debug = taskweave_debug::Debug::new().build();
    /// let rt = taskweave_core::Runtime::builder().observer(debug.clone()).build().unwrap();
    /// let seen = rt.run({
    ///     let debug = debug.clone();
    ///     async move {
    ///         let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    ///         let task = taskweave_core::create_task_named("waiter", async move { rx.await.ok() });
    ///         tokio::task::yield_now().await;
    ///         let dump = debug.dump();
    ///         tx.send(()).unwrap();
    ///         task.await.unwrap();
    ///         dump
    ///     }
    /// }).unwrap();
    /// assert!(seen.tasks.iter().any(|t| t.name == "waiter"));
    /// ```
    pub fn dump(&self) -> Dump {
        self.registry.dump()
    }

    /// Emits the dump as an INFO event (`kind = "dump"`), for a program that wants it in its log.
    ///
    /// ```
    /// taskweave_debug::Debug::new().build().log_dump();
    /// ```
    pub fn log_dump(&self) {
        let dump = self.dump();
        let mut r = Report::new(
            Level::INFO,
            "dump",
            format!("{} live task(s), as asked", dump.tasks.len()),
        );
        r.dump = Some(dump.to_string());
        self.emit(&r);
    }

    /// The timeline so far as Chrome / Perfetto trace JSON; `None` when the timeline is not
    /// recorded ([`Debug::timeline`], `TASKWEAVE_TRACE`).
    ///
    /// ```
    /// assert!(taskweave_debug::Debug::new().timeline(false).build().trace_json().is_none());
    /// ```
    pub fn trace_json(&self) -> Option<String> {
        self.timeline.as_ref().map(Timeline::to_json)
    }

    /// Writes the timeline so far to `path` (the runtime's shutdown writes it to the configured
    /// trace file by itself).
    ///
    /// # Errors
    ///
    /// The I/O error of writing the file; [`io::ErrorKind::Unsupported`] when the timeline is
    /// not recorded.
    ///
    /// ```no_run
    /// let debug = taskweave_debug::Debug::new().timeline(true).build();
    /// debug.write_trace(std::path::Path::new("run.json")).unwrap();
    /// ```
    pub fn write_trace(&self, path: &Path) -> io::Result<()> {
        match &self.timeline {
            Some(t) => t.write(path),
            None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the timeline is not recorded: switch it on with Debug::timeline(true) or TASKWEAVE_TRACE",
            )),
        }
    }

    fn emit(&self, report: &Report<'_>) {
        report.emit();
        if report.level <= Level::WARN
            && let Some(t) = &self.timeline
        {
            t.instant(report.kind, &report.message);
        }
    }

    fn watchdog_tick(&self) {
        let now = clock::tick();
        // Coarse start times lag by up to a tick: wait that much longer so that no report
        // comes before its threshold.
        let lag = self.tick_ns.load(std::sync::atomic::Ordering::Relaxed);
        let busy = threads::busy();
        let mut dump: Option<String> = None;
        if let Some(limit) = self.blocked_after_ns {
            for b in &busy {
                let running = now.saturating_sub(b.since_ns);
                if running < limit + lag || !b.slot.mark_reported(b.seq) {
                    continue;
                }
                let Some(record) = self.registry.get(b.task) else {
                    continue;
                };
                let mut r = Report::new(
                    Level::WARN,
                    "blocked_worker",
                    format!(
                        "Executing {} has taken {:.3} seconds so far: worker thread '{}' is blocked",
                        record.info,
                        running as f64 / 1e9,
                        b.thread
                    ),
                )
                .task(Some(&record.info))
                .hint(BLOCKED_HINT);
                r.duration_s = Some(running as f64 / 1e9);
                r.age_s = Some(secs_between(record.created_ns, now));
                r.polls = Some(record.polls);
                r.dump = Some(dump.get_or_insert_with(|| self.dump().to_string()).clone());
                self.emit(&r);
            }
        }
        if let Some(limit) = self.hang_after_ns {
            let polling: Vec<u64> = busy.iter().map(|b| b.task).collect();
            let stalled = self
                .registry
                .take_stalled(now.saturating_sub(limit + lag), &polling);
            for record in &stalled {
                let idle = secs_between(record.last_progress_ns, now);
                let mut r = Report::new(
                    Level::WARN,
                    "hang",
                    format!(
                        "Task is hanging: {} has made no progress for {:.3} seconds",
                        record.info, idle
                    ),
                )
                .task(Some(&record.info))
                .hint(HANG_HINT);
                r.duration_s = Some(idle);
                r.age_s = Some(secs_between(record.created_ns, now));
                r.polls = Some(record.polls);
                r.dump = Some(dump.get_or_insert_with(|| self.dump().to_string()).clone());
                self.emit(&r);
            }
        }
    }

    /// Executor work whose promise completed. Work that ran was already taken off the table by
    /// its `Finished` event; what is left here never ran (cancelled while queued, refused by a
    /// pool shutting down).
    fn work_ended(&self, work: &TaskInfo, outcome: Outcome<'_>) {
        let id = work.id().as_u64();
        let Some(record) = self.registry.remove(id) else {
            return;
        };
        let executor = record
            .executor
            .as_ref()
            .map_or_else(|| "executor".to_owned(), |w| w.executor.clone());
        let word = match outcome {
            Outcome::Finished => "finished",
            Outcome::Failed(_) => "failed",
            _ => "cancelled",
        };
        if let Some(t) = &self.timeline {
            t.end(
                "executor",
                id,
                format!("{executor}: {}", work.name()),
                clock::now_ns(),
                vec![("outcome", word.to_owned())],
            );
        }
        if Self::debug_enabled() {
            let mut message = format!(
                "{} ended in {executor} without running: {word}",
                describe(Some(work), "")
            );
            if let Outcome::Failed(e) = outcome {
                message.push_str(&format!(" ({e})"));
            }
            let mut r = Report::new(Level::DEBUG, "work_ended", message).task(Some(work));
            r.executor = Some(&executor);
            r.emit();
        }
    }

    /// Reports every task still registered as pending, `when` saying at what moment.
    fn report_pending(&self, when: &str) {
        let now = clock::now_ns();
        let pending: Vec<_> = self
            .registry
            .records()
            .into_iter()
            .filter(|r| r.executor.is_none())
            .collect();
        for record in pending.iter().take(SHUTDOWN_LIST_LIMIT) {
            let age = secs_between(record.created_ns, now);
            let mut r = Report::new(
                Level::WARN,
                "pending_at_shutdown",
                format!(
                    "Task was still pending {when}: {}, age {age:.3} seconds, {} poll(s)",
                    record.info, record.polls
                ),
            )
            .task(Some(&record.info))
            .hint(SHUTDOWN_HINT);
            r.age_s = Some(age);
            r.polls = Some(record.polls);
            self.emit(&r);
        }
        if pending.len() > SHUTDOWN_LIST_LIMIT {
            let mut r = Report::new(
                Level::WARN,
                "pending_at_shutdown",
                format!(
                    "... and {} more task(s) were still pending {when}",
                    pending.len() - SHUTDOWN_LIST_LIMIT
                ),
            )
            .hint(SHUTDOWN_HINT);
            r.pending = Some((pending.len() - SHUTDOWN_LIST_LIMIT) as u64);
            self.emit(&r);
        }
    }

    /// Writes the configured trace file, once.
    fn write_trace_file(&self) {
        let Some(path) = &self.trace_file else {
            return;
        };
        if self
            .trace_written
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        match self.write_trace(path) {
            Ok(()) => Report::new(
                Level::INFO,
                "timeline_written",
                format!(
                    "timeline written to {}: open it in ui.perfetto.dev or chrome://tracing",
                    path.display()
                ),
            )
            .emit(),
            Err(e) => Report::new(
                Level::ERROR,
                "timeline_not_written",
                format!("cannot write the timeline to {}: {e}", path.display()),
            )
            .emit(),
        }
    }

    /// Debug mode was switched off for the runtime this observer was attached to (its
    /// [`DebugGuard`](crate::DebugGuard) was dropped): the runtime lives on, so its tasks are
    /// reported as pending, not as cancelled.
    pub(crate) fn detached(&self) {
        self.report_pending("when debug mode was switched off for its runtime");
        self.write_trace_file();
    }

    fn debug_enabled() -> bool {
        tracing::enabled!(target: TARGET, Level::DEBUG)
    }

    fn task_name(&self, task: &TaskInfo) -> Option<String> {
        self.timeline.as_ref().map(|_| task.name())
    }
}

impl Drop for DebugObserver {
    fn drop(&mut self) {
        if let Some(t) = lock(&self.watchdog).take() {
            t.unpark();
        }
        // A runtime switched to debug mode by TASKWEAVE_DEBUG has no shutdown hook: its
        // observer writes the timeline when the last task holding it is gone.
        self.write_trace_file();
    }
}

fn watchdog(observer: Weak<DebugObserver>, interval: Duration) {
    loop {
        std::thread::park_timeout(interval);
        match observer.upgrade() {
            Some(obs) => obs.watchdog_tick(),
            None => return,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn backtrace_of(error: &Error) -> Option<String> {
    error.backtrace().map(str::to_owned)
}

fn describe(task: Option<&TaskInfo>, what: &str) -> String {
    match task {
        Some(t) if t.kind() == WorkKind::Executor => {
            format!(
                "<Work name='{}' id={} submitted at {}>",
                t.name(),
                t.id(),
                t.site()
            )
        }
        Some(t) => t.to_string(),
        None => format!("a {what}"),
    }
}

impl Observer for DebugObserver {
    fn on_spawn(&self, task: &TaskInfo) {
        self.registry.insert(task, None);
        if let Some(t) = &self.timeline {
            t.begin("task", task.id().as_u64(), task.name(), clock::now_ns());
        }
        if Self::debug_enabled() {
            Report::new(Level::DEBUG, "spawn", format!("{task} created"))
                .task(Some(task))
                .emit();
        }
    }

    fn on_poll_start(&self, task: &TaskInfo) {
        threads::poll_start(task.id().as_u64(), self.timeline.is_some());
    }

    fn on_poll_end(&self, task: &TaskInfo, duration: Duration, ready: bool) {
        let id = task.id().as_u64();
        let dur_ns = nanos(duration);
        let (start, tid) = threads::poll_end(id);
        let start_ns = start.unwrap_or_else(|| clock::coarse_ns().saturating_sub(dur_ns));
        if !ready {
            self.registry.progressed(id, start_ns + dur_ns);
        }
        if let (Some(t), Some(name)) = (&self.timeline, self.task_name(task)) {
            t.poll(tid, id, name, start_ns, dur_ns);
        }
        if dur_ns >= self.slow_poll_ns {
            let mut r = Report::new(
                Level::WARN,
                "slow_poll",
                format!(
                    "Executing {task} took {:.3} seconds",
                    duration.as_secs_f64()
                ),
            )
            .task(Some(task))
            .hint(SLOW_HINT);
            r.duration_s = Some(duration.as_secs_f64());
            self.emit(&r);
        }
    }

    fn on_complete(&self, task: &TaskInfo, outcome: Outcome<'_>) {
        if task.kind() == WorkKind::Executor {
            self.work_ended(task, outcome);
            return;
        }
        let id = task.id().as_u64();
        let record = self.registry.remove(id);
        let logging = Self::debug_enabled();
        if self.timeline.is_none() && !logging {
            return;
        }
        let now = clock::now_ns();
        let (word, error) = match outcome {
            Outcome::Finished => ("finished", None),
            Outcome::Failed(e) => ("failed", Some(e)),
            Outcome::Cancelled => ("cancelled", None),
            _ => ("ended", None),
        };
        if let (Some(t), Some(name)) = (&self.timeline, self.task_name(task)) {
            t.end("task", id, name, now, vec![("outcome", word.to_owned())]);
        }
        if logging {
            let polls = record.as_ref().map_or(0, |r| r.polls)
                + u64::from(!matches!(outcome, Outcome::Cancelled));
            let age = record.as_ref().map(|r| secs_between(r.created_ns, now));
            let mut message = format!(
                "{task} {word} after {:.3} seconds and {polls} poll(s)",
                age.unwrap_or(0.0)
            );
            if let Some(e) = error {
                message.push_str(&format!(": {e}"));
            }
            let mut r = Report::new(Level::DEBUG, word, message).task(Some(task));
            r.age_s = age;
            r.polls = Some(polls);
            r.error = error.map(ToString::to_string);
            r.backtrace = error.and_then(backtrace_of);
            r.emit();
        }
    }

    fn on_handle_drop(&self, task: Option<&TaskInfo>, report: &HandleDrop) {
        match report {
            HandleDrop::Pending => {
                let who = describe(task, "future");
                let r = Report::new(
                    Level::WARN,
                    "never_awaited",
                    format!(
                        "{who} was never awaited: its handle was dropped while it was still pending"
                    ),
                )
                .task(task)
                .hint(NEVER_AWAITED_HINT);
                self.emit(&r);
            }
            HandleDrop::ErrorNotRetrieved(e) => self.on_error_not_retrieved(task, e),
            _ => {}
        }
    }

    fn on_error_not_retrieved(&self, task: Option<&TaskInfo>, error: &Error) {
        let (what, who) = match task {
            Some(t) if t.kind() == WorkKind::Task => ("Task", describe(task, "")),
            _ => ("Future", describe(task, "future")),
        };
        let mut r = Report::new(
            Level::ERROR,
            "error_not_retrieved",
            format!("{what} exception was never retrieved: {who} failed: {error}"),
        )
        .task(task)
        .hint(NOT_RETRIEVED_HINT);
        r.error = Some(error.to_string());
        r.backtrace = backtrace_of(error);
        self.emit(&r);
    }

    fn on_callback_panic(&self, task: Option<&TaskInfo>, message: &str) {
        let who = describe(task, "future");
        let mut r = Report::new(
            Level::ERROR,
            "callback_panicked",
            format!("Exception in done-callback of {who}: {message}"),
        )
        .task(task)
        .hint(CALLBACK_HINT);
        r.error = Some(message.to_owned());
        self.emit(&r);
    }

    fn on_blocking_wait_refused(&self, what: &str) {
        let current = threads::current_task();
        let record = (current != 0).then(|| self.registry.get(current)).flatten();
        let inside = match &record {
            Some(r) => r.info.to_string(),
            // Not a task this observer watches: run()'s main future, or a task spawned
            // before debug mode was on.
            None => "an async task (or run()'s main future)".to_owned(),
        };
        let r = Report::new(
            Level::ERROR,
            "blocking_wait_refused",
            format!("Blocking wait {what} refused inside {inside}: it would block a runtime worker thread and can deadlock the runtime"),
        )
        .task(record.as_ref().map(|r| &r.info))
        .hint(BLOCKING_WAIT_HINT);
        self.emit(&r);
    }

    fn on_executor(&self, event: &ExecutorEvent<'_>) {
        match event {
            ExecutorEvent::Submitted { executor, work } => {
                self.registry.insert(work, Some(executor));
                if let Some(t) = &self.timeline {
                    t.begin(
                        "executor",
                        work.id().as_u64(),
                        format!("{executor}: {}", work.name()),
                        clock::now_ns(),
                    );
                }
                if Self::debug_enabled() {
                    let mut r = Report::new(
                        Level::DEBUG,
                        "submitted",
                        format!("{} submitted to {executor}", describe(Some(work), "")),
                    )
                    .task(Some(work));
                    r.executor = Some(executor);
                    r.emit();
                }
            }
            ExecutorEvent::Started {
                executor,
                work,
                worker,
            } => {
                self.registry.started(work.id().as_u64(), worker);
                if Self::debug_enabled() {
                    let mut r = Report::new(
                        Level::DEBUG,
                        "started",
                        format!(
                            "{} started on {executor} worker {worker}",
                            describe(Some(work), "")
                        ),
                    )
                    .task(Some(work));
                    r.executor = Some(executor);
                    r.emit();
                }
            }
            ExecutorEvent::Finished {
                executor,
                work,
                duration,
                ok,
            } => {
                let id = work.id().as_u64();
                let record = self.registry.remove(id);
                let now = clock::now_ns();
                if let Some(t) = &self.timeline {
                    let name = format!("{executor}: {}", work.name());
                    let worker = record
                        .as_ref()
                        .and_then(|r| r.executor.as_ref())
                        .and_then(|w| w.worker.clone());
                    if let Some(worker) = worker {
                        let dur = nanos(*duration);
                        t.work(&worker, id, name.clone(), now.saturating_sub(dur), dur);
                    }
                    let outcome = if *ok { "finished" } else { "failed" };
                    t.end(
                        "executor",
                        id,
                        name,
                        now,
                        vec![("outcome", outcome.to_owned())],
                    );
                }
                if Self::debug_enabled() {
                    let mut r = Report::new(
                        Level::DEBUG,
                        "work_finished",
                        format!(
                            "{} {} on {executor} in {:.3} seconds",
                            describe(Some(work), ""),
                            if *ok { "finished" } else { "failed" },
                            duration.as_secs_f64()
                        ),
                    )
                    .task(Some(work));
                    r.executor = Some(executor);
                    r.duration_s = Some(duration.as_secs_f64());
                    r.emit();
                }
            }
            ExecutorEvent::DroppedWithPending { executor, pending } => {
                let mut r = Report::new(
                    Level::WARN,
                    "executor_dropped_with_pending",
                    format!("{executor} was dropped without shutdown() while {pending} submission(s) were still pending"),
                )
                .hint(EXECUTOR_DROPPED_HINT);
                r.executor = Some(executor);
                r.pending = Some(*pending as u64);
                self.emit(&r);
            }
            _ => {}
        }
    }

    fn on_shutdown(&self) {
        self.report_pending("when run() ended and is cancelled");
    }

    fn on_shutdown_complete(&self) {
        let left: Vec<_> = self
            .registry
            .records()
            .into_iter()
            .filter(|r| r.executor.is_none())
            .collect();
        if !left.is_empty() {
            let mut r = Report::new(
                Level::WARN,
                "runtime_dropped_with_tasks",
                format!(
                    "The runtime shut down with {} task(s) still registered",
                    left.len()
                ),
            )
            .hint(LEFT_RUNNING_HINT);
            r.pending = Some(left.len() as u64);
            r.dump = Some(self.dump().to_string());
            self.emit(&r);
        }
        self.write_trace_file();
    }
}
