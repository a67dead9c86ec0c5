//! Tasks: coroutines started on the current runtime with [`create_task`], awaited through a
//! [`Task<T>`] handle.
//!
//! A task is a tokio task whose future is wrapped in [`TaskFuture`]. The wrapper catches a panic
//! and turns it into [`Error::Panicked`] with the task's name and creation site, completes the
//! task's [`Promise`], marks the thread as polling a task (for the strict blocking-wait check) and
//! tells the instrumentation seam about each poll when debug mode is on. Dropping the wrapper
//! before it finished (an abort or a runtime shutdown) completes the promise as cancelled.

use std::fmt;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use crate::error::Error;
use crate::instrument::{self, Observer};
use crate::promise::{Promise, Resolver, State};

/// A process-wide unique task id, increasing in creation order on each thread.
///
/// ```
/// let a = taskweave_core::TaskId::next();
/// let b = taskweave_core::TaskId::next();
/// assert!(b.as_u64() > a.as_u64());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(u64);

impl TaskId {
    /// Allocates the next id.
    pub fn next() -> TaskId {
        // Ids are handed out to each thread in blocks, so spawning on several threads does not
        // contend on one counter. Ids stay unique; they are in creation order per thread.
        const BLOCK: u64 = 1024;
        static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
        thread_local! {
            static RANGE: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
        }
        RANGE.with(|range| {
            let (mut next, mut end) = range.get();
            if next == end {
                next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
                end = next + BLOCK;
            }
            range.set((next + 1, end));
            TaskId(next)
        })
    }

    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What runs a piece of work: a coroutine, a thread-pool thread, a worker process, rayon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WorkKind {
    /// A coroutine run as a task.
    Task,
    /// A function run by an executor (thread pool, process pool, rayon).
    Executor,
}

/// Who a task or a piece of executor work is: id, name, kind and creation site.
///
/// Cheap to clone (the name is shared).
///
/// ```
/// let info = taskweave_core::TaskInfo::executor("resize images");
/// assert_eq!(info.name(), "resize images");
/// ```
#[derive(Clone)]
pub struct TaskInfo {
    id: TaskId,
    name: Option<Arc<str>>,
    kind: WorkKind,
    site: &'static Location<'static>,
}

impl TaskInfo {
    #[track_caller]
    fn task(name: Option<Arc<str>>) -> TaskInfo {
        TaskInfo {
            id: TaskId::next(),
            name,
            kind: WorkKind::Task,
            site: Location::caller(),
        }
    }

    /// Describes executor work named `name`, submitted from the caller's location.
    #[track_caller]
    pub fn executor(name: impl Into<Arc<str>>) -> TaskInfo {
        TaskInfo {
            id: TaskId::next(),
            name: Some(name.into()),
            kind: WorkKind::Executor,
            site: Location::caller(),
        }
    }

    /// The id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The name given at creation, or `Task-<id>` as asyncio names unnamed tasks.
    pub fn name(&self) -> String {
        match &self.name {
            Some(n) => n.to_string(),
            None => format!("Task-{}", self.id),
        }
    }

    /// What runs the work.
    pub fn kind(&self) -> WorkKind {
        self.kind
    }

    /// Where the task was created or the work submitted.
    pub fn site(&self) -> &'static Location<'static> {
        self.site
    }
}

impl fmt::Debug for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskInfo")
            .field("id", &self.id.0)
            .field("name", &self.name())
            .field("site", &format_args!("{}", self.site))
            .finish()
    }
}

impl fmt::Display for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<Task name='{}' id={} created at {}>",
            self.name(),
            self.id,
            self.site
        )
    }
}

/// A handle to a coroutine running as a task: asyncio's `Task`.
///
/// Awaiting it gives `Result<T, Error>`. It dereferences to [`Promise<T>`], so every query of
/// the general future works on it (`done`, `cancelled`, `result`, `add_done_callback`, ...), and
/// `Promise::from(task)` turns it into one for APIs that take promises.
///
/// Dropping the handle does not stop the task: it keeps running, detached, as in asyncio. Debug
/// mode reports a handle dropped while its task is still pending; call [`Task::detach`] to say
/// that this is intended.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// let task = taskweave_core::create_task(async { 6 * 7 });
/// assert_eq!(task.await.unwrap(), 42);
/// # });
/// ```
pub struct Task<T> {
    promise: Promise<T>,
    join: tokio::task::JoinHandle<()>,
}

/// Starts `future` as a task on the current runtime and returns its handle at once
/// (asyncio's `create_task`). The task's creation site is recorded for errors and debug reports.
///
/// # Panics
///
/// Panics if called outside a tokio runtime, as `tokio::spawn` does.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// use std::time::Duration;
///
/// async fn compute() -> u32 {
///     tokio::time::sleep(Duration::from_millis(10)).await;
///     42
/// }
/// let task = taskweave_core::create_task(compute());
/// // ... the caller goes on while `compute` runs ...
/// assert_eq!(task.await.unwrap(), 42);
/// # });
/// ```
#[track_caller]
#[must_use = "a task handle should be awaited, cancelled or detached"]
pub fn create_task<F>(future: F) -> Task<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_with(TaskInfo::task(None), future)
}

/// Starts `future` as a task named `name` (asyncio's `create_task(coro, name=...)`).
///
/// # Panics
///
/// Panics if called outside a tokio runtime.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// let task = taskweave_core::create_task_named("fetch", async { "page" });
/// assert_eq!(task.name(), "fetch");
/// assert_eq!(task.await.unwrap(), "page");
/// # });
/// ```
#[track_caller]
#[must_use = "a task handle should be awaited, cancelled or detached"]
pub fn create_task_named<F>(name: impl Into<Arc<str>>, future: F) -> Task<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_with(TaskInfo::task(Some(name.into())), future)
}

/// Starts `future`, which returns `Result<T, E>`, as a task whose own outcome is that result:
/// awaiting it gives `Result<T, Error>` with `E` carried as [`Error::Failed`] (or passed through
/// when `E` is already [`Error`]). Use this when the task's failure should count as a failure
/// for [`gather()`](crate::gather()), [`wait`](crate::wait) and [`TaskGroup`](crate::TaskGroup).
///
/// # Panics
///
/// Panics if called outside a tokio runtime.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// let task = taskweave_core::create_task_try(async {
///     "x1".parse::<u32>()
/// });
/// assert!(matches!(task.await, Err(taskweave_core::Error::Failed(_))));
/// # });
/// ```
#[track_caller]
#[must_use = "a task handle should be awaited, cancelled or detached"]
pub fn create_task_try<F, T, E>(future: F) -> Task<T>
where
    F: std::future::Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    spawn_mapped(TaskInfo::task(None), future, |r| {
        r.map_err(crate::error::into_error)
    })
}

fn spawn_with<F>(info: TaskInfo, future: F) -> Task<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_mapped(info, future, Ok)
}

#[track_caller]
pub(crate) fn spawn_named_try<F, T, E>(name: Option<Arc<str>>, future: F) -> Task<T>
where
    F: std::future::Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    spawn_mapped(TaskInfo::task(name), future, |r| {
        r.map_err(crate::error::into_error)
    })
}

fn spawn_mapped<F, T, M>(info: TaskInfo, future: F, map: M) -> Task<T>
where
    F: std::future::Future + Send + 'static,
    T: Send + 'static,
    M: Fn(F::Output) -> Result<T, Error> + Send + 'static,
{
    let observer = instrument::current_observer();
    if let Some(obs) = &observer {
        obs.on_spawn(&info);
    }
    let (promise, resolver) = Promise::new_running(info);
    let wrapped = TaskFuture {
        future: Some(future),
        resolver: Some(resolver),
        map,
        observer,
    };
    let join = tokio::spawn(wrapped);
    Task { promise, join }
}

impl<T> Task<T> {
    /// The task's name (`Task-<id>` when unnamed).
    pub fn name(&self) -> String {
        self.info().name()
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.info().id()
    }

    /// Where the task was created.
    pub fn site(&self) -> &'static Location<'static> {
        self.info().site()
    }

    /// The task's id, name and creation site.
    pub fn info(&self) -> &TaskInfo {
        match self.promise.info() {
            Some(info) => info,
            None => unreachable!("every task promise carries its TaskInfo"),
        }
    }

    /// Requests cancellation with a message (asyncio's `Task.cancel(msg)`).
    ///
    /// The task stops at its next suspension point; awaiting it then gives
    /// [`Error::Cancelled`] with `message`. Returns `false` if the task had already finished.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// use std::time::Duration;
    /// let task = taskweave_core::create_task(tokio::time::sleep(Duration::from_secs(60)));
    /// assert!(task.cancel("no longer needed"));
    /// let err = task.await.unwrap_err();
    /// assert_eq!(err.to_string(), "cancelled: no longer needed");
    /// # });
    /// ```
    pub fn cancel(&self, message: impl Into<String>) -> bool {
        self.cancel_with(Some(message.into()))
    }

    /// Requests cancellation with an optional message; returns as [`Task::cancel`] does.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let task = taskweave_core::create_task(std::future::pending::<()>());
    /// assert!(task.cancel_with(None));
    /// assert!(task.await.unwrap_err().is_cancelled());
    /// # });
    /// ```
    pub fn cancel_with(&self, message: Option<String>) -> bool {
        if self.promise.note_cancel(message) {
            self.join.abort();
            true
        } else {
            self.promise.cancelled()
        }
    }

    /// Lets the task run on its own: the handle is dropped without a "never awaited" report.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// taskweave_core::create_task(async { /* background work */ }).detach();
    /// # });
    /// ```
    pub fn detach(self) {
        self.promise.detach();
    }

    /// A type-erased canceller for the task (task groups hold tasks of many types).
    pub(crate) fn canceller(&self) -> crate::promise::Canceller
    where
        T: Send + 'static,
    {
        self.promise.set_abort(self.join.abort_handle());
        self.promise.canceller()
    }

    /// Turns the task into the general future type (also available as `Promise::from`);
    /// cancelling the promise still cancels the task.
    pub fn into_promise(self) -> Promise<T> {
        self.promise.set_abort(self.join.abort_handle());
        self.promise
    }
}

impl<T> Deref for Task<T> {
    type Target = Promise<T>;

    fn deref(&self) -> &Promise<T> {
        &self.promise
    }
}

impl<T> From<Task<T>> for Promise<T> {
    fn from(task: Task<T>) -> Promise<T> {
        task.into_promise()
    }
}

impl<T> std::future::IntoFuture for Task<T> {
    type Output = Result<T, Error>;
    type IntoFuture = crate::promise::Awaiting<T>;

    /// Awaiting a task links its cancellation to the awaiter's, as in asyncio: if the awaiting
    /// future is dropped before the task finished, the task is cancelled. Use
    /// [`shield`](crate::shield) to keep it running.
    fn into_future(self) -> Self::IntoFuture {
        crate::promise::Awaiting::for_task(self.promise, self.join)
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.promise.state() {
            State::Pending | State::Running => "pending",
            State::Cancelled => "cancelled",
            State::Finished => "finished",
        };
        write!(
            f,
            "<Task {} name='{}' created at {}>",
            state,
            self.name(),
            self.site()
        )
    }
}

pin_project_lite::pin_project! {
    /// The future tokio actually runs for a task: the user's future plus what taskweave adds
    /// (panic capture, promise completion, poll instrumentation).
    pub(crate) struct TaskFuture<F: std::future::Future, T, M> {
        // An Option so the future can be dropped in place before the promise completes: whoever
        // awaits the task sees its destructors as having run.
        #[pin]
        future: Option<F>,
        // Also where the task's TaskInfo lives (in the promise's shared state), so the tokio
        // task cell does not carry a second copy.
        resolver: Option<Resolver<T>>,
        // A function item (zero-sized), so the tokio task cell does not grow for it.
        map: M,
        observer: Option<Arc<dyn Observer>>,
    }

    impl<F: std::future::Future, T, M> PinnedDrop for TaskFuture<F, T, M> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            this.future.set(None);
            if let Some(resolver) = this.resolver.take() {
                if let (Some(obs), Some(info)) = (this.observer.as_ref(), resolver.info()) {
                    obs.on_complete(info, instrument::Outcome::Cancelled);
                }
                resolver.resolve_aborted("the task was dropped before it finished");
            }
        }
    }
}

impl<F, T, M> std::future::Future for TaskFuture<F, T, M>
where
    F: std::future::Future,
    M: Fn(F::Output) -> Result<T, Error>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            return Poll::Ready(());
        };
        let Some(resolver) = this.resolver.take() else {
            return Poll::Ready(());
        };
        let info = resolver.info();
        let _polling = crate::strict::PollingTask::enter();
        // One branch when debug mode is off: the observer is only cloned in at spawn when on.
        let started = match (this.observer.as_ref(), info) {
            (Some(obs), Some(info)) => {
                obs.on_poll_start(info);
                Some(Instant::now())
            }
            _ => None,
        };
        let polled = catch_unwind(AssertUnwindSafe(|| future.poll(cx)));
        if let (Some(obs), Some(info), Some(started)) = (this.observer.as_ref(), info, started) {
            let ready = !matches!(polled, Ok(Poll::Pending));
            obs.on_poll_end(info, started.elapsed(), ready);
        }
        let result = match polled {
            Ok(Poll::Pending) => {
                *this.resolver = Some(resolver);
                return Poll::Pending;
            }
            Ok(Poll::Ready(value)) => {
                this.future.set(None);
                (this.map)(value)
            }
            Err(payload) => {
                this.future.set(None);
                Err(Error::from_panic(
                    &*payload,
                    info.map(TaskInfo::name),
                    info.map(TaskInfo::site),
                ))
            }
        };
        if let (Some(obs), Some(info)) = (this.observer.as_ref(), info) {
            let outcome = match &result {
                Ok(_) => instrument::Outcome::Finished,
                Err(e) => instrument::Outcome::Failed(e),
            };
            obs.on_complete(info, outcome);
        }
        resolver.resolve(result);
        Poll::Ready(())
    }
}
