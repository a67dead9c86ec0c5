//! [`Promise<T>`], the general future of taskweave, and [`Resolver<T>`], its producer side.
//!
//! A promise is Python's `concurrent.futures.Future`: the result, maybe not yet there, of a
//! coroutine, of a function in a thread, or of one in another process. It is awaited from async
//! code, waited on from plain threads with [`Promise::result`], cancelled while it is pending, and
//! calls done-callbacks exactly once. [`Task<T>`](crate::Task) is its coroutine-only kind.
//!
//! # The state machine
//!
//! All state sits in one `Mutex` shared by the promise and its resolver; there are no hand-written
//! atomics. The phases are
//!
//! ```text
//! Pending --set_running--> Running --resolve--> Completing --> Done
//!    |                                              ^
//!    +------------------cancel----------------------+
//! ```
//!
//! `Completing` exists so user callbacks run *outside* the lock (a callback may call back into the
//! promise without deadlocking) and still run before the result becomes visible: a consumer that
//! sees `Done` knows every callback registered before then has run. Callbacks added while
//! `Completing` are picked up by the resolving thread before it publishes `Done`; callbacks added
//! after `Done` run at once on the adding thread. Either way each runs exactly once.
//!
//! The result is taken by the single consumer (`await` or `result`); the borrow checker guarantees
//! no callback can be added through `&self` while the consumer holds `&mut self` to take it.
//!
//! A callback added after `Done` runs outside the lock too. For an error it gets a clone, so any
//! number run at once and `exception` still sees the error. A value may not be `Sync`, so only
//! one thread at a time may look at it: the first such callback moves the value out
//! (`lending`), and callbacks added meanwhile, from any thread, are queued and run by that
//! thread before it puts the value back, so every one of them sees it.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::info::{TaskInfo, WorkKind};
use crate::instrument;
use crate::sync::{Arc, AtomicBool, Condvar, Mutex, MutexGuard, Ordering, lock};

/// The state of a [`Promise`], as in Python's `concurrent.futures`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Created, not started; [`Promise::cancel`] succeeds.
    Pending,
    /// Running; a plain promise can no longer be cancelled (a task still can).
    Running,
    /// Ended by cancellation.
    Cancelled,
    /// Ended with a value or an error.
    Finished,
}

type Callback<T> = Box<dyn FnOnce(&Result<T, Error>) + Send + 'static>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Running,
    Completing,
    Done,
}

struct Inner<T> {
    phase: Phase,
    /// Set when the outcome is a cancellation (known from `Completing` on).
    cancelled: bool,
    result: Option<Result<T, Error>>,
    /// A done-callback added after completion is running with the value, moved out of `result`
    /// for it; callbacks added meanwhile wait in the queue for that thread to run them.
    lending: bool,
    /// The result was handed to the consumer (or its error was looked at through `exception`).
    retrieved: bool,
    /// The consumer's waker (`await`).
    waker: Option<Waker>,
    /// Wakers of combinators that watch for completion without taking the result.
    /// What only some promises need, allocated on first use to keep the common case small.
    extras: Option<Box<Extras<T>>>,
    /// Threads blocked in `result`; the condvar is only signalled when there are some.
    sleepers: u32,
    /// For tasks: aborts the tokio task, so a running task can be cancelled.
    abort: Option<tokio::task::AbortHandle>,
    consumer_alive: bool,
    detached: bool,
}

struct Extras<T> {
    /// Wakers of combinators that watch for completion without taking the result.
    watchers: Vec<Waker>,
    callbacks: Vec<Callback<T>>,
    cancel_message: Option<String>,
}

impl<T> Inner<T> {
    fn extras(&mut self) -> &mut Extras<T> {
        self.extras.get_or_insert_with(|| {
            Box::new(Extras {
                watchers: Vec::new(),
                callbacks: Vec::new(),
                cancel_message: None,
            })
        })
    }

    fn set_cancel_message(&mut self, message: Option<String>) {
        if message.is_some() {
            let extras = self.extras();
            if extras.cancel_message.is_none() {
                extras.cancel_message = message;
            }
        }
    }
}

pub(crate) struct Shared<T> {
    inner: Mutex<Inner<T>>,
    /// Mirrors `inner.phase == Phase::Done` (set under the lock, never cleared), so that
    /// [`Promise::done`] takes no lock: a thread polling it in a loop (a brief wait for a
    /// result) must not hold up the worker that is about to complete the promise.
    done: AtomicBool,
    cond: Condvar,
    info: Option<TaskInfo>,
    /// The observer in charge where the promise was created (where executor work was
    /// submitted): its reports go there, from whichever thread completes it.
    observer: instrument::ObserverRef,
}

/// The general future: the eventual result of a coroutine, a thread-pool call or a process-pool
/// call.
///
/// Await it from async code, or block on it from a plain thread with [`result`](Self::result). It
/// is `Send + Sync`, cancellable while pending, and runs done-callbacks exactly once. Executors
/// create one with [`Promise::pending`] and complete it through the [`Resolver`].
///
/// It is named `Promise` rather than `Future` so that it never shadows [`std::future::Future`];
/// it plays the part of Python's `concurrent.futures.Future` and `asyncio.Future`.
///
/// # Examples
///
/// ```
/// use taskweave_core::Promise;
///
/// let (mut promise, resolver) = Promise::<u32>::pending();
/// std::thread::spawn(move || resolver.set_result(42));
/// assert_eq!(promise.result(None).unwrap(), 42);
/// ```
#[must_use = "a promise does nothing useful unless its result is awaited or waited for"]
pub struct Promise<T> {
    shared: Arc<Shared<T>>,
    /// This handle took the result, so dropping it has nothing to report and needs no lock.
    taken: bool,
}

/// The producer side of a [`Promise`]: the executor running the work holds it and sets the
/// result exactly once.
///
/// Dropping a resolver without setting a result completes the promise with
/// [`ErrorKind::Abandoned`](crate::ErrorKind::Abandoned), so a consumer never waits forever.
///
/// # Examples
///
/// ```
/// use taskweave_core::{Error, Promise};
///
/// let (mut promise, resolver) = Promise::<u32>::pending();
/// drop(resolver);
/// assert!(promise.result(None).as_ref().is_err_and(|e| e.is_abandoned()));
/// ```
pub struct Resolver<T> {
    shared: Option<Arc<Shared<T>>>,
}

impl<T> Promise<T> {
    /// Creates a pending promise and the resolver that completes it.
    ///
    /// ```
    /// use taskweave_core::{Promise, State};
    /// let (promise, _resolver) = Promise::<()>::pending();
    /// assert_eq!(promise.state(), State::Pending);
    /// ```
    pub fn pending() -> (Promise<T>, Resolver<T>) {
        Promise::with_info(None, Phase::Pending)
    }

    /// Creates a promise already in [`State::Running`] that describes `info` (used for tasks
    /// and for executor work that records where it was submitted).
    pub(crate) fn new_running(info: TaskInfo) -> (Promise<T>, Resolver<T>) {
        Promise::with_info(Some(info), Phase::Running)
    }

    /// Creates a pending promise that carries `info` (executor work with a name and a submit site).
    ///
    /// ```
    /// use taskweave_core::{Promise, TaskInfo};
    /// let (promise, _resolver) = Promise::<()>::pending_with(TaskInfo::executor("square"));
    /// assert_eq!(promise.info().unwrap().name(), "square");
    /// ```
    pub fn pending_with(info: TaskInfo) -> (Promise<T>, Resolver<T>) {
        Promise::with_info(Some(info), Phase::Pending)
    }

    fn with_info(info: Option<TaskInfo>, phase: Phase) -> (Promise<T>, Resolver<T>) {
        // Looked up first, so the shared state is built in one piece rather than around a call.
        let observer = instrument::current();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                phase,
                cancelled: false,
                result: None,
                lending: false,
                retrieved: false,
                waker: None,
                extras: None,
                sleepers: 0,
                abort: None,
                consumer_alive: true,
                detached: false,
            }),
            cond: Condvar::new(),
            done: AtomicBool::new(false),
            info,
            observer,
        });
        let resolver = Resolver {
            shared: Some(shared.clone()),
        };
        (
            Promise {
                shared,
                taken: false,
            },
            resolver,
        )
    }

    /// A promise that is already finished with `result`.
    ///
    /// ```
    /// let mut p = taskweave_core::Promise::ready(Ok(7));
    /// assert!(p.done());
    /// assert_eq!(p.result(None).unwrap(), 7);
    /// ```
    pub fn ready(result: Result<T, Error>) -> Promise<T> {
        let (promise, resolver) = Promise::pending();
        resolver.resolve(result);
        promise
    }

    /// The task or work this promise describes, if it was created with one.
    ///
    /// ```
    /// let (p, _r) = taskweave_core::Promise::<()>::pending();
    /// assert!(p.info().is_none());
    /// ```
    pub fn info(&self) -> Option<&TaskInfo> {
        self.shared.info.as_ref()
    }

    /// The current state.
    ///
    /// ```
    /// use taskweave_core::{Promise, State};
    /// let (p, r) = Promise::<u8>::pending();
    /// assert!(r.set_running());
    /// assert_eq!(p.state(), State::Running);
    /// r.set_result(1);
    /// assert_eq!(p.state(), State::Finished);
    /// ```
    pub fn state(&self) -> State {
        let inner = lock(&self.shared.inner);
        match inner.phase {
            Phase::Pending => State::Pending,
            Phase::Running | Phase::Completing => State::Running,
            Phase::Done if inner.cancelled => State::Cancelled,
            Phase::Done => State::Finished,
        }
    }

    /// `true` once the promise has a result (value, error or cancellation).
    ///
    /// ```
    /// let (p, r) = taskweave_core::Promise::<u8>::pending();
    /// assert!(!p.done());
    /// r.set_result(1);
    /// assert!(p.done());
    /// ```
    pub fn done(&self) -> bool {
        self.shared.done.load(Ordering::Acquire)
    }

    /// `true` if the promise ended by cancellation.
    ///
    /// ```
    /// let (p, _r) = taskweave_core::Promise::<u8>::pending();
    /// assert!(p.cancel());
    /// assert!(p.cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        let inner = lock(&self.shared.inner);
        inner.phase == Phase::Done && inner.cancelled
    }

    /// `true` while the work is running.
    ///
    /// ```
    /// let (p, r) = taskweave_core::Promise::<u8>::pending();
    /// assert!(!p.running());
    /// r.set_running();
    /// assert!(p.running());
    /// ```
    pub fn running(&self) -> bool {
        self.state() == State::Running
    }

    /// Cancels the work (`Future.cancel()`).
    ///
    /// A pending promise is cancelled at once and its executor will not run the work. A running
    /// task is aborted at its next suspension point (asyncio's `Task.cancel`); running thread or
    /// process work cannot be stopped, and `cancel` returns `false` for it, as in Python.
    ///
    /// Returns `true` if the promise is now cancelled or a cancellation was requested, `false` if
    /// it had finished or cannot be cancelled. [`Task::cancel`](crate::Task::cancel) has the
    /// same signature and meaning.
    ///
    /// ```
    /// let (p, r) = taskweave_core::Promise::<u8>::pending();
    /// assert!(p.cancel());
    /// assert!(!r.set_running()); // the executor sees it and skips the work
    /// ```
    pub fn cancel(&self) -> bool {
        self.request_cancel(None)
    }

    /// Cancels with a message that the consumer sees in [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled) (asyncio's
    /// `cancel(msg)`); returns as [`cancel`](Self::cancel) does.
    /// [`Task::cancel_with`](crate::Task::cancel_with) has the same signature and meaning.
    ///
    /// ```
    /// use taskweave_core::Promise;
    /// let (mut p, _r) = Promise::<u8>::pending();
    /// assert!(p.cancel_with("not needed"));
    /// assert!(p.result(None).is_err_and(|e| e.cancel_message() == Some("not needed")));
    /// ```
    pub fn cancel_with(&self, message: impl Into<String>) -> bool {
        self.request_cancel(Some(message.into()))
    }

    /// Cancels with an optional message, as [`cancel`](Self::cancel) and
    /// [`cancel_with`](Self::cancel_with) do.
    pub(crate) fn request_cancel(&self, message: Option<String>) -> bool {
        cancel_shared(&self.shared, message)
    }

    /// Blocks the calling thread until the result is there, or until `timeout` passes, and
    /// returns it.
    ///
    /// # Errors
    ///
    /// The work's own error, cancellation or panic;
    /// [`ErrorKind::TimedOut`](crate::ErrorKind::TimedOut) if `timeout` passed first (the work goes
    /// on and `result` may be called again); [`ErrorKind::Refused`](crate::ErrorKind::Refused) when
    /// called on a thread that is polling a taskweave task (blocking there would stall the runtime:
    /// `.await` the promise instead); [`ErrorKind::Refused`](crate::ErrorKind::Refused) if the
    /// result was already taken.
    ///
    /// A timeout too large for the clock (such as `Duration::MAX`) means no timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskweave_core::Promise;
    ///
    /// let (mut p, r) = Promise::<u8>::pending();
    /// assert!(p.result(Some(Duration::from_millis(10))).unwrap_err().is_timeout());
    /// r.set_result(5);
    /// assert_eq!(p.result(Some(Duration::from_millis(10))).unwrap(), 5);
    /// ```
    pub fn result(&mut self, timeout: Option<Duration>) -> Result<T, Error> {
        crate::strict::check_blocking_wait("Promise::result")?;
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut inner = lock(&self.shared.inner);
        while inner.phase != Phase::Done {
            inner.sleepers += 1;
            inner = match deadline {
                None => match self.shared.cond.wait(inner) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                },
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        inner.sleepers -= 1;
                        return Err(Error::timed_out(timeout.unwrap_or_default()));
                    }
                    match self.shared.cond.wait_timeout(inner, deadline - now) {
                        Ok((g, _)) => g,
                        Err(p) => p.into_inner().0,
                    }
                }
            };
            inner.sleepers -= 1;
        }
        self.taken = true;
        take_result(&mut inner)
    }

    /// The error the work ended with, without taking it; `None` while not done or on success.
    ///
    /// Looking at the error counts as retrieving it (no "never retrieved" report).
    ///
    /// ```
    /// use taskweave_core::{Error, Promise};
    /// let p = Promise::<u8>::ready(Err(Error::abandoned()));
    /// assert!(p.exception().as_ref().is_some_and(|e| e.is_abandoned()));
    /// ```
    pub fn exception(&self) -> Option<Error> {
        let mut inner = lock(&self.shared.inner);
        match &inner.result {
            Some(Err(e)) => {
                let e = e.clone();
                inner.retrieved = true;
                Some(e)
            }
            _ => None,
        }
    }

    /// Adds a callback that runs exactly once with the outcome: at once if the promise is done,
    /// otherwise on the thread that completes it.
    ///
    /// A callback that panics is caught and reported as a tracing error event; other callbacks
    /// still run. If the result was already taken by `await` or [`result`](Self::result), the
    /// callback sees an [`ErrorKind::Refused`](crate::ErrorKind::Refused) explaining so.
    ///
    /// Callbacks added after completion from several threads at once all see the outcome.
    ///
    /// # Differences from Python
    ///
    /// A callback added to a promise that is already done runs on the adding thread, as in
    /// Python, except while another thread is running a callback with the same value: the value
    /// need not be `Sync`, so that thread runs the new callback right after its own, and this
    /// call returns at once.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use taskweave_core::Promise;
    ///
    /// let seen = Arc::new(AtomicU32::new(0));
    /// let (p, r) = Promise::<u32>::pending();
    /// let s = seen.clone();
    /// p.add_done_callback(move |res| s.store(*res.as_ref().unwrap(), Ordering::SeqCst));
    /// r.set_result(9);
    /// assert_eq!(seen.load(Ordering::SeqCst), 9);
    /// ```
    pub fn add_done_callback<F>(&self, callback: F)
    where
        F: FnOnce(&Result<T, Error>) + Send + 'static,
    {
        add_done_callback(&self.shared, callback);
    }

    /// The state this promise shares with its resolver, for a task that adds callbacks to it
    /// outside its own lock.
    pub(crate) fn shared(&self) -> Arc<Shared<T>> {
        self.shared.clone()
    }
    /// Marks the work as deliberately not awaited: dropping this handle afterwards is not
    /// reported by debug mode, and the work runs to completion on its own.
    ///
    /// An error the work ends with is still reported (nobody can retrieve it any more).
    ///
    /// ```
    /// let (p, r) = taskweave_core::Promise::<u8>::pending();
    /// p.detach();
    /// r.set_result(1);
    /// ```
    pub fn detach(self) {
        lock(&self.shared.inner).detached = true;
    }

    /// Polls for completion without taking the result: registers `cx`'s waker to be woken when the
    /// promise is done. Used by combinators such as `wait` and `as_completed`.
    pub(crate) fn poll_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = lock(&self.shared.inner);
        if inner.phase == Phase::Done {
            return Poll::Ready(());
        }
        let watchers = &mut inner.extras().watchers;
        if !watchers.iter().any(|w| w.will_wake(cx.waker())) {
            watchers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Records a cancellation request with `message` for a task that its owner aborts itself;
    /// `false` when the task already finished.
    pub(crate) fn note_cancel(&self, message: Option<String>) -> bool {
        let mut inner = lock(&self.shared.inner);
        match inner.phase {
            Phase::Pending | Phase::Running => {
                inner.set_cancel_message(message);
                true
            }
            Phase::Completing | Phase::Done => false,
        }
    }

    /// Attaches the tokio abort handle of the task computing this promise.
    pub(crate) fn set_abort(&self, abort: tokio::task::AbortHandle) {
        let mut inner = lock(&self.shared.inner);
        if inner.phase == Phase::Running {
            inner.abort = Some(abort);
        }
    }

    /// Marks the work as owned by a structure that awaits it and reports its errors (a task
    /// group): no "never awaited" or "never retrieved" report for this handle.
    pub(crate) fn mark_supervised(&self) {
        let mut inner = lock(&self.shared.inner);
        inner.detached = true;
        inner.retrieved = true;
    }

    /// `true` when done with an error other than cancellation (without taking or marking it):
    /// what Python calls raising an exception.
    pub(crate) fn raised(&self) -> bool {
        let inner = lock(&self.shared.inner);
        inner.phase == Phase::Done && matches!(&inner.result, Some(Err(e)) if !e.is_cancelled())
    }

    pub(crate) fn canceller(&self) -> Canceller
    where
        T: Send + 'static,
    {
        let shared = self.shared.clone();
        Canceller(std::sync::Arc::new(move |message| {
            cancel_shared(&shared, message)
        }))
    }
}

impl<T> Promise<T> {
    /// Cancels as [`cancel_with`](Self::cancel_with) does; `true` only when that aborted a
    /// running task, which then ends at its next poll.
    pub(crate) fn cancel_aborting(&self, message: Option<&str>) -> bool {
        let aborting = {
            let inner = lock(&self.shared.inner);
            inner.phase == Phase::Running && inner.abort.is_some()
        };
        let requested = cancel_shared(&self.shared, message.map(str::to_owned));
        aborting && requested
    }
}

/// Adds `callback` to the promise state `shared`, as [`Promise::add_done_callback`] describes.
pub(crate) fn add_done_callback<T, F>(shared: &Shared<T>, callback: F)
where
    F: FnOnce(&Result<T, Error>) + Send + 'static,
{
    let mut inner = lock(&shared.inner);
    if inner.phase != Phase::Done {
        inner.extras().callbacks.push(Box::new(callback));
        return;
    }
    if inner.lending {
        // Another thread is running a callback with the value: it runs this one next.
        inner.extras().callbacks.push(Box::new(callback));
        return;
    }
    match &inner.result {
        Some(Err(e)) => {
            // An error is shared by cloning it: nothing needs to be moved out.
            let outcome = Err(e.clone());
            drop(inner);
            run_callback(Box::new(callback), &outcome, shared);
        }
        Some(Ok(_)) => {
            let outcome = inner.result.take();
            inner.lending = true;
            let mut queue: Vec<Callback<T>> = vec![Box::new(callback)];
            loop {
                drop(inner);
                if let Some(outcome) = &outcome {
                    for cb in queue {
                        run_callback(cb, outcome, shared);
                    }
                }
                inner = lock(&shared.inner);
                queue = inner
                    .extras
                    .as_mut()
                    .map(|e| std::mem::take(&mut e.callbacks))
                    .unwrap_or_default();
                if queue.is_empty() {
                    break;
                }
            }
            inner.result = outcome;
            inner.lending = false;
        }
        None => {
            drop(inner);
            run_callback(
                Box::new(callback),
                &Err(Error::refused("the result was already taken")),
                shared,
            );
        }
    }
}

fn cancel_shared<T>(shared: &Shared<T>, message: Option<String>) -> bool {
    let mut inner = lock(&shared.inner);
    match inner.phase {
        Phase::Pending => {
            // Completed under the same lock that saw Pending, so a concurrent `set_running`
            // cannot start the work in between.
            finish(shared, inner, Err(Error::cancelled(message)));
            true
        }
        Phase::Running => match inner.abort.clone() {
            Some(abort) => {
                inner.set_cancel_message(message);
                drop(inner);
                abort.abort();
                true
            }
            None => false,
        },
        Phase::Completing | Phase::Done => inner.cancelled,
    }
}

/// A type-erased way to cancel a promise, for groups that hold promises of different types.
/// A std `Arc` around a closure, because loom's `Arc` cannot hold unsized values.
#[derive(Clone)]
pub(crate) struct Canceller(std::sync::Arc<dyn Fn(Option<String>) -> bool + Send + Sync>);

impl Canceller {
    pub(crate) fn cancel(&self, message: Option<String>) -> bool {
        (self.0)(message)
    }
}

fn take_result<T>(inner: &mut Inner<T>) -> Result<T, Error> {
    match inner.result.take() {
        Some(r) => {
            inner.retrieved = true;
            r
        }
        None => Err(Error::refused(
            "the result was already taken by an earlier await or result()",
        )),
    }
}

impl<T> Promise<T> {
    pub(crate) fn poll_take(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, Error>> {
        let mut inner = lock(&self.shared.inner);
        if inner.phase == Phase::Done {
            self.taken = true;
            return Poll::Ready(take_result(&mut inner));
        }
        match &inner.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => inner.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> std::future::IntoFuture for Promise<T> {
    type Output = Result<T, Error>;
    type IntoFuture = Awaiting<T>;

    fn into_future(self) -> Awaiting<T> {
        Awaiting {
            promise: Some(self),
        }
    }
}

/// The future that awaits a [`Promise`] or a [`Task`](crate::Task) (what `.await` on them uses).
///
/// Dropping it before the result arrived cancels the work, as cancelling an asyncio coroutine
/// cancels the task it awaits: a pending promise is cancelled, a running task is aborted, running
/// thread or process work is left to finish. [`shield`](crate::shield) opts out.
#[must_use = "futures do nothing unless awaited"]
pub struct Awaiting<T> {
    promise: Option<Promise<T>>,
}

impl<T> Awaiting<T> {
    /// Gives the promise back without cancelling it.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let (p, r) = taskweave_core::Promise::<u8>::pending();
    /// let awaiting = std::future::IntoFuture::into_future(p);
    /// let p = awaiting.into_promise(); // not cancelled
    /// r.set_result(1);
    /// assert_eq!(p.await.unwrap(), 1);
    /// # }).unwrap();
    /// ```
    pub fn into_promise(mut self) -> Promise<T> {
        match self.promise.take() {
            Some(p) => p,
            None => Promise::ready(Err(Error::refused("the result was already taken"))),
        }
    }
}

impl<T> std::future::Future for Awaiting<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(promise) = self.promise.as_mut() else {
            return Poll::Ready(Err(Error::refused("the result was already taken")));
        };
        let out = promise.poll_take(cx);
        if out.is_ready() {
            self.promise = None;
        }
        out
    }
}

impl<T> Drop for Awaiting<T> {
    fn drop(&mut self) {
        if let Some(promise) = self.promise.take()
            && !promise.done()
        {
            let aborted = promise.cancel_aborting(Some("the awaiting future was dropped"));
            // The awaiter is gone on purpose: what the work does now is not a leak.
            promise.mark_supervised();
            if aborted && crate::ending::collecting() {
                // A deadline dropped this await of a task: it reports the timeout once the
                // task has finished, which the latch (a completion watcher) tells it.
                let (latch, waker) = crate::ending::Latch::new();
                if promise
                    .poll_done(&mut Context::from_waker(&waker))
                    .is_pending()
                {
                    crate::ending::hand_over_future(latch.opened());
                }
            }
        }
    }
}

impl<T> fmt::Debug for Awaiting<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Awaiting")
            .field("promise", &self.promise)
            .finish()
    }
}

impl<T> Drop for Promise<T> {
    fn drop(&mut self) {
        if self.taken {
            return;
        }
        let mut inner = lock(&self.shared.inner);
        inner.consumer_alive = false;
        if !self.shared.observer.is_active() {
            return;
        }
        let report = if inner.detached {
            None
        } else if inner.phase != Phase::Done {
            Some(instrument::HandleDrop::Pending)
        } else if !inner.retrieved && !inner.cancelled {
            match &inner.result {
                Some(Err(e)) => Some(instrument::HandleDrop::ErrorNotRetrieved(e.clone())),
                _ => None,
            }
        } else {
            None
        };
        drop(inner);
        if let Some(report) = report {
            (self.shared.observer).handle_dropped(self.shared.info.as_ref(), report);
        }
    }
}

impl<T> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Promise");
        if let Some(info) = &self.shared.info {
            d.field("name", &info.name());
        }
        d.field("state", &self.state()).finish()
    }
}

impl<T> Resolver<T> {
    /// Moves the promise from pending to running; returns `false` if it was cancelled, in which
    /// case the executor must not run the work (Python's `set_running_or_notify_cancel`).
    ///
    /// ```
    /// let (p, r) = taskweave_core::Promise::<u8>::pending();
    /// assert!(r.set_running());
    /// assert!(!p.cancel()); // running thread work cannot be cancelled
    /// ```
    pub fn set_running(&self) -> bool {
        let Some(shared) = &self.shared else {
            return false;
        };
        let mut inner = lock(&shared.inner);
        match inner.phase {
            Phase::Pending => {
                inner.phase = Phase::Running;
                true
            }
            Phase::Running => true,
            Phase::Completing | Phase::Done => false,
        }
    }

    /// `true` if the promise was cancelled (or otherwise completed) before the work set a result.
    ///
    /// ```
    /// let (p, r) = taskweave_core::Promise::<u8>::pending();
    /// p.cancel();
    /// assert!(r.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        match &self.shared {
            Some(shared) => {
                let inner = lock(&shared.inner);
                matches!(inner.phase, Phase::Completing | Phase::Done)
            }
            None => true,
        }
    }

    /// `true` while somebody still holds the promise to take the result. Executors may skip
    /// work whose promise was dropped undetached.
    ///
    /// ```
    /// let (p, r) = taskweave_core::Promise::<u8>::pending();
    /// drop(p);
    /// assert!(!r.has_consumer());
    /// ```
    pub fn has_consumer(&self) -> bool {
        match &self.shared {
            Some(shared) => lock(&shared.inner).consumer_alive,
            None => false,
        }
    }

    /// The task or work the promise describes, if any.
    ///
    /// ```
    /// let (_p, r) = taskweave_core::Promise::<()>::pending_with(taskweave_core::TaskInfo::executor("job"));
    /// assert_eq!(r.info().unwrap().name(), "job");
    /// ```
    pub fn info(&self) -> Option<&TaskInfo> {
        self.shared.as_ref().and_then(|s| s.info.as_ref())
    }

    /// The observer in charge where the promise was created ([`instrument::current`] then): for
    /// executor work, the observer of the code that submitted it. Executors report the work's
    /// events here, from whichever thread runs it. Empty once the promise is completed.
    ///
    /// ```
    /// let (_p, r) = taskweave_core::Promise::<()>::pending();
    /// assert!(!r.observer().is_active()); // debug mode is off
    /// ```
    pub fn observer(&self) -> &instrument::ObserverRef {
        match &self.shared {
            Some(s) => &s.observer,
            None => &instrument::NO_OBSERVER,
        }
    }

    /// Completes the promise with `result`. Ignored if it was already cancelled.
    ///
    /// ```
    /// let (mut p, r) = taskweave_core::Promise::<u8>::pending();
    /// r.resolve(Ok(3));
    /// assert_eq!(p.result(None).unwrap(), 3);
    /// ```
    pub fn resolve(mut self, result: Result<T, Error>) {
        if let Some(shared) = self.shared.take() {
            complete(&shared, result);
        }
    }

    /// Completes the promise with a value.
    ///
    /// ```
    /// let (mut p, r) = taskweave_core::Promise::<&str>::pending();
    /// r.set_result("hi");
    /// assert_eq!(p.result(None).unwrap(), "hi");
    /// ```
    pub fn set_result(self, value: T) {
        self.resolve(Ok(value));
    }

    /// Completes the promise with an error.
    ///
    /// ```
    /// let (mut p, r) = taskweave_core::Promise::<u8>::pending();
    /// r.set_error(taskweave_core::Error::shutdown("pool closed"));
    /// assert!(p.result(None).is_err());
    /// ```
    pub fn set_error(self, error: Error) {
        self.resolve(Err(error));
    }

    /// Completes a task's promise as cancelled, with the message given to `cancel` if any.
    pub(crate) fn resolve_aborted(mut self, fallback: &str) {
        if let Some(shared) = self.shared.take() {
            let message = lock(&shared.inner)
                .extras
                .as_mut()
                .and_then(|e| e.cancel_message.take())
                .or_else(|| Some(fallback.to_owned()));
            complete(&shared, Err(Error::cancelled(message)));
        }
    }
}

impl<T> Drop for Resolver<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            complete(&shared, Err(Error::abandoned()));
        }
    }
}

impl<T> fmt::Debug for Resolver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

/// Completes `shared` with `result` unless it is already completing or done.
fn complete<T>(shared: &Shared<T>, result: Result<T, Error>) {
    finish(shared, lock(&shared.inner), result);
}

/// Completes `shared` with `result` given its locked state, unless it is already completing or
/// done. Callbacks run with the lock released.
fn finish<'a, T>(
    shared: &'a Shared<T>,
    mut inner: MutexGuard<'a, Inner<T>>,
    result: Result<T, Error>,
) {
    if matches!(inner.phase, Phase::Completing | Phase::Done) {
        return;
    }
    inner.cancelled = result.as_ref().is_err_and(|e| e.is_cancelled());
    if inner
        .extras
        .as_ref()
        .is_some_and(|e| !e.callbacks.is_empty())
    {
        inner.phase = Phase::Completing;
        loop {
            let callbacks = std::mem::take(&mut inner.extras().callbacks);
            if callbacks.is_empty() {
                break;
            }
            drop(inner);
            for cb in callbacks {
                run_callback(cb, &result, shared);
            }
            inner = lock(&shared.inner);
        }
    }
    // Executor work: the observer learns that its promise completed, also when the work never
    // ran (cancelled while queued, refused at shutdown). Tasks report their own end.
    let work_ended = match &shared.info {
        Some(info) if info.kind() == WorkKind::Executor && shared.observer.is_active() => {
            Some((info, result.as_ref().err().cloned()))
        }
        _ => None,
    };
    let unretrieved =
        !inner.consumer_alive && !inner.retrieved && !inner.cancelled && result.is_err();
    let report = unretrieved.then(|| match &result {
        Err(e) => e.clone(),
        Ok(_) => Error::abandoned(),
    });
    inner.result = Some(result);
    inner.phase = Phase::Done;
    shared.done.store(true, Ordering::Release);
    inner.abort = None;
    let waker = inner.waker.take();
    let watchers = inner
        .extras
        .as_mut()
        .map(|e| std::mem::take(&mut e.watchers))
        .unwrap_or_default();
    let sleepers = inner.sleepers;
    drop(inner);
    // Told before anyone waiting is woken: an awaiter resumed by this completion finds the
    // observer already told.
    if let Some((info, error)) = work_ended {
        shared.observer.work_ended(info, error.as_ref());
    }
    if sleepers > 0 {
        shared.cond.notify_all();
    }
    if let Some(w) = waker {
        w.wake();
    }
    for w in watchers {
        w.wake();
    }
    if let Some(error) = report {
        (shared.observer).error_not_retrieved(shared.info.as_ref(), &error);
    }
}

fn run_callback<T>(cb: Callback<T>, result: &Result<T, Error>, shared: &Shared<T>) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| cb(result))) {
        let message = crate::error::panic_message(&*payload);
        crate::error::drop_panic_payload(payload);
        (shared.observer).callback_panicked(shared.info.as_ref(), &message);
    }
}
