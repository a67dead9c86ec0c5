//! Tasks: coroutines started on the current runtime with [`create_task`], awaited through a
//! [`Task<T>`] handle.
//!
//! A task is a tokio task whose future is wrapped in [`TaskFuture`]. The wrapper catches a panic
//! and turns it into [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) with the task's name and
//! creation site, marks the thread as polling a task (for the strict blocking-wait check) and tells
//! the instrumentation seam about each poll when debug mode is on.
//!
//! # Where a task's result lives
//!
//! A plain task keeps its result in tokio's own task cell, as a [`TaskOutput`], and the handle
//! reads it through the tokio `JoinHandle`: creating and awaiting a task allocates nothing beyond
//! what tokio allocates. A `TaskOutput` whose error was never taken reports it when tokio drops
//! it (the handle was dropped or detached), so no error is lost. Only when a task must act as the
//! general [`Promise`] (`Promise::from(task)`, `add_done_callback`, `wait`, task groups) does it
//! get a promise: group tasks are spawned with one, other tasks are upgraded by a small
//! forwarding task that moves the result across.

use std::fmt;
use std::future::IntoFuture;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::task::{JoinError, JoinHandle};

use crate::error::Error;
use crate::info::{TaskId, TaskInfo};
use crate::instrument::{self, Observer};
use crate::promise::{Awaiting, Promise, Resolver, State};

/// A handle to a coroutine running as a task: asyncio's `Task`.
///
/// Awaiting it gives `Result<T, Error>`. It is the coroutine-only kind of the general future:
/// `Promise::from(task)` (or [`Task::into_promise`]) turns it into a [`Promise<T>`] for APIs that
/// take promises, and every combinator takes tasks directly.
///
/// Dropping the handle does not stop the task: it keeps running, detached, as in asyncio. Debug
/// mode reports a handle dropped while its task is still pending; call [`Task::detach`] to say
/// that this is intended. An error of a task whose handle is gone is reported, never lost.
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
    // Behind a lock because `cancel` and `add_done_callback` take `&self`, as on a promise, and
    // the first callback moves the result's route from tokio's cell to a promise. Awaiting and
    // dropping own the handle and never lock.
    slot: Mutex<Slot<T>>,
    info: TaskInfo,
}

struct Slot<T> {
    repr: Repr<T>,
    /// Set once a cancellation of a task still in tokio's cell was requested, with its message.
    /// Boxed: it is rare, and every live handle would otherwise carry room for it.
    cancel: Option<Box<Option<String>>>,
    detached: bool,
}

impl<T> Slot<T> {
    fn new(repr: Repr<T>, cancel: Option<Box<Option<String>>>) -> Mutex<Slot<T>> {
        Mutex::new(Slot {
            repr,
            cancel,
            detached: false,
        })
    }
}

enum Repr<T> {
    /// The result is in tokio's task cell.
    Join(JoinHandle<TaskOutput<T>>),
    /// The result goes to a promise (group tasks, upgraded tasks).
    Promise(Promise<T>),
    /// The result was taken by `result()`.
    Taken,
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
///     taskweave_core::sleep(Duration::from_millis(10)).await;
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
    spawn(TaskInfo::task(None), future, Ok, false)
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
    spawn(TaskInfo::task(Some(name.into())), future, Ok, false)
}

/// Starts `future`, which returns `Result<T, E>`, as a task whose own outcome is that result:
/// awaiting it gives `Result<T, Error>` with `E` carried as
/// [`ErrorKind::Failed`](crate::ErrorKind::Failed) (or passed through when `E` is already
/// [`Error`]). Use this when the task's failure should count as a failure for
/// [`gather`](crate::gather()), [`wait`](crate::wait) and [`TaskGroup`](crate::TaskGroup).
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
/// assert!(task.await.is_err_and(|e| e.is_failed()));
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
    spawn(TaskInfo::task(None), future, flatten, false)
}

fn flatten<T, E>(r: Result<T, E>) -> Result<T, Error>
where
    E: std::error::Error + Send + Sync + 'static,
{
    r.map_err(crate::error::into_error)
}

/// Spawns a task that completes a promise from the start (for task groups, which need
/// done-callbacks on every member).
#[track_caller]
pub(crate) fn spawn_supervised<F, T, E>(name: Option<Arc<str>>, future: F) -> Task<T>
where
    F: std::future::Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    spawn(TaskInfo::task(name), future, flatten, true)
}

/// A task that never starts: its handle reports
/// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled) with `message` (for a task group that
/// already failed).
#[track_caller]
pub(crate) fn never_started<T>(name: Option<Arc<str>>, message: &str) -> Task<T> {
    let info = TaskInfo::task(name);
    let (promise, resolver) = Promise::new_running(info.clone());
    resolver.resolve(Err(Error::cancelled(Some(message.to_owned()))));
    Task {
        slot: Slot::new(
            Repr::Promise(promise),
            Some(Box::new(Some(message.to_owned()))),
        ),
        info,
    }
}

fn spawn<F, T, M>(info: TaskInfo, future: F, map: M, with_promise: bool) -> Task<T>
where
    F: std::future::Future + Send + 'static,
    T: Send + 'static,
    M: Fn(F::Output) -> Result<T, Error> + Send + 'static,
{
    let observer = instrument::current().into_observer();
    if let Some(obs) = &observer {
        obs.on_spawn(&info);
    }
    let (promise, sink) = if with_promise {
        let (p, r) = Promise::new_running(info.clone());
        (Some(p), Some(r))
    } else {
        (None, None)
    };
    // A plain task's cell keeps the id and site only; a name lives with the hooks, so that the
    // cell of an unnamed task stays in tokio's smallest size class where tokio's own does.
    let meta = if sink.is_some() || observer.is_some() || info.is_named() {
        Meta::hooked(Hooks {
            sink,
            observer,
            info: info.clone(),
        })
    } else {
        Meta::plain(info.id_kind())
    };
    let join = tokio::spawn(TaskFuture {
        future: Some(future),
        meta,
        map,
        site: info.site(),
    });
    let repr = match promise {
        Some(p) => {
            p.set_abort(join.abort_handle());
            Repr::Promise(p)
        }
        None => Repr::Join(join),
    };
    Task {
        slot: Slot::new(repr, None),
        info,
    }
}

impl<T> Task<T> {
    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        // Nothing panics while the lock is held, so a poisoned lock still guards a whole slot.
        self.slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn slot_mut(&mut self) -> &mut Slot<T> {
        self.slot
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The task's name (`Task-<id>` when unnamed).
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let t = taskweave_core::create_task_named("n", async {});
    /// assert_eq!(t.name(), "n");
    /// t.await.unwrap();
    /// # }).unwrap();
    /// ```
    pub fn name(&self) -> String {
        self.info.name()
    }

    /// The task's id.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let t = taskweave_core::create_task(async {});
    /// assert_eq!(t.name(), format!("Task-{}", t.id()));
    /// t.await.unwrap();
    /// # }).unwrap();
    /// ```
    pub fn id(&self) -> TaskId {
        self.info.id()
    }

    /// Where the task was created.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let t = taskweave_core::create_task(async {});
    /// assert_eq!(t.site().line(), line!() - 1);
    /// t.await.unwrap();
    /// # }).unwrap();
    /// ```
    pub fn site(&self) -> &'static Location<'static> {
        self.info.site()
    }

    /// The task's id, name and creation site.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let t = taskweave_core::create_task(async {});
    /// assert_eq!(t.info().id(), t.id());
    /// t.await.unwrap();
    /// # }).unwrap();
    /// ```
    pub fn info(&self) -> &TaskInfo {
        &self.info
    }

    /// Requests cancellation (asyncio's `Task.cancel()`).
    ///
    /// The task stops at its next suspension point; awaiting it then gives
    /// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled) without a message. Returns `true` if the cancellation was requested,
    /// `false` if the task had already finished. [`Promise::cancel`] has the same signature and
    /// meaning.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let task = taskweave_core::create_task(std::future::pending::<()>());
    /// assert!(task.cancel());
    /// assert!(task.await.unwrap_err().is_cancelled());
    /// # });
    /// ```
    pub fn cancel(&self) -> bool {
        self.request_cancel(None)
    }

    /// Requests cancellation with a message (asyncio's `Task.cancel(msg)`); returns as
    /// [`Task::cancel`] does.
    ///
    /// Awaiting the task then gives [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled) carrying `message`.
    /// [`Promise::cancel_with`] has the same signature and meaning.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// use std::time::Duration;
    /// let task = taskweave_core::create_task(taskweave_core::sleep(Duration::from_secs(60)));
    /// assert!(task.cancel_with("no longer needed"));
    /// let err = task.await.unwrap_err();
    /// assert_eq!(err.to_string(), "cancelled: no longer needed");
    /// # });
    /// ```
    pub fn cancel_with(&self, message: impl Into<String>) -> bool {
        self.request_cancel(Some(message.into()))
    }

    fn request_cancel(&self, message: Option<String>) -> bool {
        let mut slot = self.lock();
        match &slot.repr {
            Repr::Join(join) => {
                if join.is_finished() {
                    return false;
                }
                join.abort();
                if slot.cancel.is_none() {
                    slot.cancel = Some(Box::new(message));
                }
                true
            }
            Repr::Promise(p) => p.request_cancel(message),
            Repr::Taken => false,
        }
    }

    /// `true` once the task has finished (with a value, an error or by cancellation).
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let task = taskweave_core::create_task(async { 1 });
    /// while !task.done() {
    ///     tokio::task::yield_now().await;
    /// }
    /// assert_eq!(task.await.unwrap(), 1);
    /// # });
    /// ```
    pub fn done(&self) -> bool {
        match &self.lock().repr {
            Repr::Join(join) => join.is_finished(),
            Repr::Promise(p) => p.done(),
            Repr::Taken => true,
        }
    }

    /// `true` when the task is done after a cancellation was requested.
    ///
    /// A task that finished in the same instant as the request still hands out its value when
    /// awaited; the outcome of the await is authoritative.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let t = taskweave_core::create_task(std::future::pending::<()>());
    /// t.cancel_with("stop");
    /// while !t.done() { tokio::task::yield_now().await; }
    /// assert!(t.cancelled());
    /// # }).unwrap();
    /// ```
    pub fn cancelled(&self) -> bool {
        let slot = self.lock();
        match &slot.repr {
            Repr::Join(join) => slot.cancel.is_some() && join.is_finished(),
            Repr::Promise(p) => p.cancelled(),
            Repr::Taken => slot.cancel.is_some(),
        }
    }

    /// The task's state: [`State::Running`] until it is done, then [`State::Cancelled`] or
    /// [`State::Finished`] (with the caveat of [`Task::cancelled`]).
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// use taskweave_core::State;
    /// let task = taskweave_core::create_task(std::future::pending::<()>());
    /// assert_eq!(task.state(), State::Running);
    /// task.cancel_with("stop");
    /// # });
    /// ```
    pub fn state(&self) -> State {
        let slot = self.lock();
        match &slot.repr {
            Repr::Promise(p) => p.state(),
            Repr::Join(join) if !join.is_finished() => State::Running,
            Repr::Join(_) | Repr::Taken if slot.cancel.is_some() => State::Cancelled,
            Repr::Join(_) | Repr::Taken => State::Finished,
        }
    }

    /// Blocks the calling thread until the task finished, or until `timeout` passes, and returns
    /// its result (`concurrent.futures.Future.result`).
    ///
    /// # Errors
    ///
    /// The task's error, cancellation or panic; [`ErrorKind::TimedOut`](crate::ErrorKind::TimedOut)
    /// when `timeout` passed first (the task goes on; call again);
    /// [`ErrorKind::Refused`](crate::ErrorKind::Refused) when called inside a task poll (await
    /// instead) or when the result was already taken.
    ///
    /// A timeout too large for the clock (such as `Duration::MAX`) means no timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = taskweave_core::Runtime::builder().build().unwrap();
    /// let mut task = {
    ///     let _enter = rt.handle().enter();
    ///     taskweave_core::create_task(async { 5 })
    /// };
    /// assert_eq!(task.result(Some(Duration::from_secs(5))).unwrap(), 5);
    /// ```
    pub fn result(&mut self, timeout: Option<Duration>) -> Result<T, Error> {
        crate::strict::check_blocking_wait("Task::result")?;
        let slot = self.slot_mut();
        match &mut slot.repr {
            Repr::Promise(p) => p.result(timeout),
            Repr::Taken => Err(Error::refused("the result was already taken")),
            Repr::Join(join) => {
                let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
                match crate::blocking::wait_until(join, deadline) {
                    None => Err(Error::timed_out(timeout.unwrap_or_default())),
                    Some(out) => {
                        slot.repr = Repr::Taken;
                        from_join(out, slot.cancel.as_deref())
                    }
                }
            }
        }
    }

    /// Adds a callback that runs exactly once with the task's outcome (asyncio's
    /// `add_done_callback`); at once if the task is already done. It behaves as
    /// [`Promise::add_done_callback`] does: same receiver, same argument.
    ///
    /// The first callback turns the task into a promise-backed one (a small forwarding task moves
    /// the result across), so plain tasks pay nothing for callbacks they do not use.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let task = taskweave_core::create_task(async { 3 });
    /// task.add_done_callback(move |r| tx.send(*r.as_ref().unwrap()).unwrap());
    /// assert_eq!(task.await.unwrap(), 3);
    /// assert_eq!(rx.recv().unwrap(), 3);
    /// # });
    /// ```
    pub fn add_done_callback<C>(&self, callback: C)
    where
        C: FnOnce(&Result<T, Error>) + Send + 'static,
        T: Send + 'static,
    {
        // The callback runs outside the lock: it may call back into this task.
        let promise = {
            let mut slot = self.lock();
            upgrade(&mut slot, &self.info).shared()
        };
        crate::promise::add_done_callback(&promise, callback);
    }

    /// Lets the task run on its own: the handle is dropped without a "never awaited" report.
    /// An error the task ends with is still reported, since nobody can retrieve it.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// taskweave_core::create_task(async { /* background work */ }).detach();
    /// # });
    /// ```
    pub fn detach(mut self) {
        let slot = self.slot_mut();
        slot.detached = true;
        if let Repr::Promise(p) = std::mem::replace(&mut slot.repr, Repr::Taken) {
            p.detach();
        }
    }

    /// Turns the task into the general future type (also `Promise::from(task)`); cancelling the
    /// promise still cancels the task.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let p: taskweave_core::Promise<u8> = taskweave_core::create_task(async { 1 }).into_promise();
    /// assert_eq!(p.await.unwrap(), 1);
    /// # });
    /// ```
    pub fn into_promise(mut self) -> Promise<T>
    where
        T: Send + 'static,
    {
        let info = self.info.clone();
        let slot = self.slot_mut();
        upgrade(slot, &info);
        match std::mem::replace(&mut slot.repr, Repr::Taken) {
            Repr::Promise(p) => p,
            _ => Promise::ready(Err(Error::refused("the result was already taken"))),
        }
    }

    /// A type-erased canceller for the task (task groups hold tasks of many types).
    pub(crate) fn canceller(&mut self) -> crate::promise::Canceller
    where
        T: Send + 'static,
    {
        let info = self.info.clone();
        upgrade(self.slot_mut(), &info).canceller()
    }

    /// Marks a promise-backed task as owned by a structure that reports its errors.
    pub(crate) fn mark_supervised(&self) {
        if let Repr::Promise(p) = &self.lock().repr {
            p.mark_supervised();
        }
    }
}

/// Moves the result into a promise if it is still in tokio's task cell.
fn upgrade<'s, T>(slot: &'s mut Slot<T>, info: &TaskInfo) -> &'s Promise<T>
where
    T: Send + 'static,
{
    if let Repr::Join(_) = slot.repr {
        let Repr::Join(join) = std::mem::replace(&mut slot.repr, Repr::Taken) else {
            unreachable!("checked just above")
        };
        let (promise, resolver) = Promise::new_running(info.clone());
        promise.set_abort(join.abort_handle());
        if let Some(message) = slot.cancel.as_deref() {
            promise.note_cancel(message.clone());
        }
        forward(join, resolver);
        slot.repr = Repr::Promise(promise);
    }
    if !matches!(slot.repr, Repr::Promise(_)) {
        slot.repr = Repr::Promise(Promise::ready(Err(Error::refused(
            "the result was already taken",
        ))));
    }
    match &slot.repr {
        Repr::Promise(p) => p,
        _ => unreachable!("set to a promise just above"),
    }
}

/// Moves a task's result from its join handle into `resolver`: on the current runtime when
/// there is one, otherwise on a short-lived thread that blocks on the handle.
fn forward<T: Send + 'static>(join: JoinHandle<TaskOutput<T>>, resolver: Resolver<T>) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            let mut guard = ForwardGuard(Some(resolver));
            let _detached = handle.spawn(async move {
                let out = join.await;
                let Some(resolver) = guard.0.take() else {
                    return;
                };
                match out {
                    Ok(mut out) => resolver.resolve(out.take()),
                    Err(e) if e.is_cancelled() => {
                        resolver.resolve_aborted("the task was cancelled")
                    }
                    Err(e) => resolver.resolve(Err(join_panic(e))),
                }
            });
        }
        Err(_) => {
            let spawned = std::thread::Builder::new()
                .name("taskweave-forward".into())
                .spawn(move || {
                    let mut join = join;
                    match crate::blocking::wait_until(&mut join, None) {
                        Some(Ok(mut out)) => resolver.resolve(out.take()),
                        Some(Err(e)) if e.is_cancelled() => {
                            resolver.resolve_aborted("the task was cancelled")
                        }
                        Some(Err(e)) => resolver.resolve(Err(join_panic(e))),
                        None => resolver.resolve(Err(Error::abandoned())),
                    }
                });
            if let Err(e) = spawned {
                // The closure (and with it the resolver) is dropped, completing the promise as
                // abandoned; say why as well.
                instrument::callback_panicked(None, &format!("cannot start a thread: {e}"));
            }
        }
    }
}

/// Completes the promise as cancelled if the forwarding task is dropped before the task it
/// forwards finished: that only happens when the runtime shuts down, which cancels both.
struct ForwardGuard<T>(Option<Resolver<T>>);

impl<T> Drop for ForwardGuard<T> {
    fn drop(&mut self) {
        if let Some(resolver) = self.0.take() {
            resolver.resolve_aborted("the runtime shut down before the task finished");
        }
    }
}

fn join_panic(e: JoinError) -> Error {
    match e.try_into_panic() {
        Ok(payload) => Error::from_panic(&*payload, None, None),
        Err(e) => Error::cancelled(Some(e.to_string())),
    }
}

fn from_join<T>(
    out: Result<TaskOutput<T>, JoinError>,
    cancel: Option<&Option<String>>,
) -> Result<T, Error> {
    match out {
        Ok(mut out) => out.take(),
        Err(e) if e.is_cancelled() => Err(Error::cancelled(Some(
            cancel
                .and_then(|m| m.clone())
                .unwrap_or_else(|| "the task was cancelled".to_owned()),
        ))),
        Err(e) => Err(join_panic(e)),
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        let slot = self.slot_mut();
        if slot.detached || !instrument::active() {
            return;
        }
        let pending = match &slot.repr {
            Repr::Join(join) => !join.is_finished(),
            Repr::Promise(_) | Repr::Taken => false,
        };
        if pending {
            instrument::current().handle_dropped(Some(&self.info), instrument::HandleDrop::Pending);
        }
    }
}

impl<T: Send + 'static> From<Task<T>> for Promise<T> {
    fn from(task: Task<T>) -> Promise<T> {
        task.into_promise()
    }
}

impl<T: Send + 'static> IntoFuture for Task<T> {
    type Output = Result<T, Error>;
    type IntoFuture = TaskAwait<T>;

    /// Awaiting a task links its cancellation to the awaiter's, as in asyncio: if the awaiting
    /// future is dropped before the task finished, the task is cancelled. Use
    /// [`shield`](crate::shield) to keep it running. A deadline that drops the await
    /// ([`wait_for`](crate::wait_for), [`timeout`](crate::timeout)) also waits for the task to
    /// have finished before it reports the timeout.
    fn into_future(self) -> TaskAwait<T> {
        // Taken apart rather than dropped: the handle's `Drop` has nothing to report for a task
        // that is being awaited, and skipping it keeps every await a little shorter.
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped after this line, so each field is read out
        // exactly once and owned (and dropped) by the locals from here on.
        let (slot, info) = unsafe { (std::ptr::read(&this.slot), std::ptr::read(&this.info)) };
        drop(info);
        let slot = slot
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let state = match slot.repr {
            Repr::Join(join) => AwaitState::Join(join),
            Repr::Promise(p) => AwaitState::Promise(p.into_future()),
            Repr::Taken => AwaitState::Done,
        };
        TaskAwait {
            state,
            cancel: slot.cancel,
        }
    }
}

/// The future that awaits a [`Task`] (what `task.await` uses).
///
/// Dropping it before the task finished cancels the task.
#[must_use = "futures do nothing unless awaited"]
pub struct TaskAwait<T: Send + 'static> {
    state: AwaitState<T>,
    cancel: Option<Box<Option<String>>>,
}

enum AwaitState<T> {
    Join(JoinHandle<TaskOutput<T>>),
    Promise(Awaiting<T>),
    Done,
}

impl<T: Send + 'static> std::future::Future for TaskAwait<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let out = match &mut this.state {
            AwaitState::Join(join) => match Pin::new(join).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(out) => from_join(out, this.cancel.as_deref()),
            },
            AwaitState::Promise(p) => match Pin::new(p).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(out) => out,
            },
            AwaitState::Done => Err(Error::refused("the result was already taken")),
        };
        this.state = AwaitState::Done;
        Poll::Ready(out)
    }
}

impl<T: Send + 'static> Drop for TaskAwait<T> {
    fn drop(&mut self) {
        if let AwaitState::Join(join) = &self.state {
            // Only an await that never saw the result gets here: cancel the task, as dropping
            // an awaiting asyncio coroutine cancels the task it awaits.
            join.abort();
            if crate::ending::collecting()
                && let AwaitState::Join(join) = std::mem::replace(&mut self.state, AwaitState::Done)
            {
                // A deadline dropped this await: it reports the timeout once the task has
                // finished. The output is dropped unread, as it would have been here.
                crate::ending::hand_over_future(async move {
                    let _ = join.await;
                });
            }
        }
    }
}

impl<T: Send + 'static> fmt::Debug for TaskAwait<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskAwait").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if !self.done() {
            "pending"
        } else if self.cancelled() {
            "cancelled"
        } else {
            "finished"
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

/// A task's result as it sits in tokio's task cell until the handle takes it (`None` once taken,
/// or when it went to a promise). If it is dropped with an error still inside, nobody took the
/// error: report it.
///
/// An error comes boxed with the info of the task that failed, so that the cell of a task that
/// succeeds carries one word for it: for a task returning `()` the whole output is two words,
/// which keeps tokio's cell in its smallest size class.
pub(crate) struct TaskOutput<T>(Option<Result<T, Box<Failed>>>);

/// A failed task's error and who the task was.
pub(crate) struct Failed {
    error: Error,
    info: TaskInfo,
}

impl<T> TaskOutput<T> {
    fn take(&mut self) -> Result<T, Error> {
        match self.0.take() {
            Some(Ok(value)) => Ok(value),
            Some(Err(failed)) => Err(failed.error),
            None => Err(Error::refused("the result was already taken")),
        }
    }
}

impl<T> Drop for TaskOutput<T> {
    fn drop(&mut self) {
        if let Some(Err(failed)) = &self.0
            && !failed.error.is_cancelled()
        {
            instrument::error_not_retrieved(Some(&failed.info), &failed.error);
        }
    }
}

/// What a task needs beyond its future, id and site only in some cases.
struct Hooks<T> {
    /// Where the result goes when the task is promise-backed; otherwise it is returned to
    /// tokio's cell.
    sink: Option<Resolver<T>>,
    /// Debug mode's observer, captured at spawn.
    observer: Option<Arc<dyn Observer>>,
    /// The whole info, name included.
    info: TaskInfo,
}

pin_project_lite::pin_project! {
    /// The future tokio actually runs for a task: the user's future plus what taskweave adds
    /// (panic capture, result delivery, poll instrumentation).
    pub(crate) struct TaskFuture<F, T, M> {
        // An Option so the future can be dropped in place before the result is delivered:
        // whoever awaits the task sees its destructors as having run.
        #[pin]
        future: Option<F>,
        // The id, or the hooks that only group tasks, named tasks and debug mode need.
        meta: Meta<T>,
        // A function item (zero-sized), so the tokio task cell does not grow for it.
        map: M,
        site: &'static Location<'static>,
    }

    impl<F, T, M> PinnedDrop for TaskFuture<F, T, M> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            // The future is dropped in place as soon as the task finishes: one still here means
            // the task was dropped unfinished (aborted, or its runtime shut down).
            let finished = this.future.is_none();
            this.future.set(None);
            if !finished && let Some(h) = this.meta.hooks_mut() {
                if let Some(obs) = &h.observer {
                    obs.on_complete(&h.info, instrument::Outcome::Cancelled);
                }
                if let Some(resolver) = h.sink.take() {
                    resolver.resolve_aborted("the task was dropped before it finished");
                }
            }
        }
    }
}

/// The monotonic clock in nanoseconds, for timing an observed poll: the clock `Instant` reads,
/// without its checked conversions, which cost about as much again as reading it (two reads
/// per poll in debug mode).
#[cfg(unix)]
fn poll_clock_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write, and CLOCK_MONOTONIC exists on every unix
    // that std supports (std's `Instant` reads it).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(now.tv_nsec as u64)
}

#[cfg(not(unix))]
fn poll_clock_ns() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The whole info of a task from what its cell keeps.
fn info_of<T>(meta: &Meta<T>, site: &'static Location<'static>) -> TaskInfo {
    match meta.hooks() {
        Some(h) => h.info.clone(),
        None => TaskInfo::unnamed(meta.plain_id_kind(), site),
    }
}

/// A plain task's id (with its kind bit), or the hooks of a task that needs them, which hold
/// its whole info: one word in tokio's task cell. With the site beside it and a small future, a
/// task's cell then lands in tokio's smallest size class (128 bytes), as a raw tokio task's
/// does; two words would put it in the next (256), which costs the allocator twice as much.
///
/// The word is the hooks' address when even (a box of them is aligned to 8) and the id shifted
/// left with the low bit set when odd.
struct Meta<T> {
    bits: u64,
    // Owns the hooks when it holds them: sends, syncs and drops as a box of them would.
    _hooks: PhantomData<Box<Hooks<T>>>,
}

impl<T> Meta<T> {
    fn plain(id_kind: u64) -> Meta<T> {
        // Task ids count up from 1 and never reach the top bit (the executor bit, 0 for tasks).
        debug_assert_eq!(id_kind >> 63, 0, "a task's id has no executor bit");
        Meta {
            bits: (id_kind << 1) | 1,
            _hooks: PhantomData,
        }
    }

    fn hooked(hooks: Hooks<T>) -> Meta<T> {
        let ptr = match spare_hooks::take::<T>() {
            Some(spare) => {
                // SAFETY: `take` hands out memory allocated for a `Hooks<T>` (same layout) and
                // no longer used; writing makes it a live `Hooks<T>` owned by this `Meta`.
                unsafe { spare.write(hooks) };
                spare
            }
            None => Box::into_raw(Box::new(hooks)),
        };
        Meta {
            bits: ptr.expose_provenance() as u64,
            _hooks: PhantomData,
        }
    }

    fn hooks_ptr(&self) -> Option<*mut Hooks<T>> {
        (self.bits & 1 == 0).then(|| std::ptr::with_exposed_provenance_mut(self.bits as usize))
    }

    fn hooks(&self) -> Option<&Hooks<T>> {
        // SAFETY: an even word is the address `hooked` took from a box, owned by this `Meta`
        // until its drop; the shared borrow of `self` keeps it alive and unaliased by `&mut`.
        self.hooks_ptr().map(|p| unsafe { &*p })
    }

    fn hooks_mut(&mut self) -> Option<&mut Hooks<T>> {
        // SAFETY: as in `hooks`, and the exclusive borrow of `self` makes this the only borrow.
        self.hooks_ptr().map(|p| unsafe { &mut *p })
    }

    /// The id of a task without hooks (meaningless with them; their info has it).
    fn plain_id_kind(&self) -> u64 {
        self.bits >> 1
    }
}

/// The memory of finished tasks' hooks, kept per thread for the next tasks: in debug mode every
/// task has hooks, and one allocation and free per task (for a task that does nothing, a sixth of
/// its cost, more where the allocator's bins interact with the aligned task cells) then turn
/// into a pop and a push. A `Hooks<T>` has one layout whatever `T` (its sink is one pointer), so
/// any task's spare memory fits any other task's hooks; a type of another layout is not kept.
mod spare_hooks {
    use std::alloc::Layout;
    use std::cell::RefCell;

    use super::Hooks;

    /// How many spare blocks a thread keeps: enough for a burst of spawns and completions.
    const KEEP: usize = 64;

    fn layout() -> Layout {
        Layout::new::<Hooks<()>>()
    }

    struct Spares(Vec<*mut u8>);

    impl Drop for Spares {
        fn drop(&mut self) {
            for p in self.0.drain(..) {
                // SAFETY: every kept block was allocated by the global allocator with
                // `layout()` and holds nothing live.
                unsafe { std::alloc::dealloc(p, layout()) };
            }
        }
    }

    thread_local! {
        static SPARES: RefCell<Spares> = const { RefCell::new(Spares(Vec::new())) };
    }

    /// A spare block for a `Hooks<T>`, if this thread has one.
    pub(super) fn take<T>() -> Option<*mut Hooks<T>> {
        if Layout::new::<Hooks<T>>() != layout() {
            return None;
        }
        SPARES
            .try_with(|s| s.borrow_mut().0.pop())
            .ok()
            .flatten()
            .map(|p| p.cast::<Hooks<T>>())
    }

    /// Keeps the block `p` for a later `take`, or frees it.
    ///
    /// # Safety
    ///
    /// `p` was allocated by the global allocator for a `Hooks<T>` (by `Box` or by `take`) and
    /// holds nothing live.
    pub(super) unsafe fn give<T>(p: *mut Hooks<T>) {
        let layout_t = Layout::new::<Hooks<T>>();
        let kept = layout_t == layout()
            && SPARES
                .try_with(|s| {
                    let mut s = s.borrow_mut();
                    let room = s.0.len() < KEEP;
                    if room {
                        s.0.push(p.cast::<u8>());
                    }
                    room
                })
                .unwrap_or(false);
        if !kept {
            // SAFETY: as the caller promises; the layout is the one it was allocated with.
            unsafe { std::alloc::dealloc(p.cast::<u8>(), layout_t) };
        }
    }
}

impl<T> Drop for Meta<T> {
    fn drop(&mut self) {
        if let Some(p) = self.hooks_ptr() {
            // SAFETY: the address holds the live `Hooks<T>` that `hooked` put there, owned by
            // this `Meta`, which is dropped once; after this it is only memory.
            unsafe { std::ptr::drop_in_place(p) };
            // SAFETY: the memory was allocated by the global allocator for a `Hooks<T>` and
            // holds nothing live any more.
            unsafe { spare_hooks::give::<T>(p) };
        }
    }
}

impl<F, T, M> std::future::Future for TaskFuture<F, T, M>
where
    F: std::future::Future,
    M: Fn(F::Output) -> Result<T, Error>,
{
    type Output = TaskOutput<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TaskOutput<T>> {
        let mut this = self.project();
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            return Poll::Ready(TaskOutput(None));
        };
        let _polling = crate::strict::PollingTask::enter();
        // One branch when debug mode is off: the observer is only captured at spawn when on.
        let observed = (this.meta.hooks()).and_then(|h| h.observer.as_ref().map(|o| (o, &h.info)));
        // While polled, the task's observer is in charge of what the task starts.
        let _scope = observed.map(|(obs, _)| instrument::PollScope::enter(obs));
        let started = observed.map(|(obs, info)| {
            obs.on_poll_start(info);
            poll_clock_ns()
        });
        let polled = catch_unwind(AssertUnwindSafe(|| future.poll(cx)));
        if let (Some((obs, info)), Some(started)) = (observed, started) {
            let ready = !matches!(polled, Ok(Poll::Pending));
            let took = Duration::from_nanos(poll_clock_ns().saturating_sub(started));
            obs.on_poll_end(info, took, ready);
        }
        let result = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(value)) => (this.map)(value),
            Err(payload) => {
                let info = info_of(this.meta, this.site);
                let error = Error::from_panic(&*payload, Some(info.name()), Some(info.site()));
                // The payload is user data whose own `Drop` may panic; that must not unwind out
                // of the task (tokio would report it as a second, anonymous panic).
                crate::error::drop_panic_payload(payload);
                Err(error)
            }
        };
        this.future.set(None);
        if let Some((obs, info)) = observed {
            let outcome = match &result {
                Ok(_) => instrument::Outcome::Finished,
                Err(e) => instrument::Outcome::Failed(e),
            };
            obs.on_complete(info, outcome);
        }
        match this.meta.hooks_mut().and_then(|h| h.sink.take()) {
            Some(resolver) => {
                resolver.resolve(result);
                Poll::Ready(TaskOutput(None))
            }
            None => Poll::Ready(TaskOutput(Some(result.map_err(|error| {
                Box::new(Failed {
                    error,
                    info: info_of(this.meta, this.site),
                })
            })))),
        }
    }
}
