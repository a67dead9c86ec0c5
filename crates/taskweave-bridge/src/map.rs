//! Lazy, windowed `map` over an executor: [`Map`] (input order) and [`MapUnordered`]
//! (completion order), with [`MapOptions`].
//!
//! # How it works
//!
//! The consumer pulls inputs only while fewer than `window` items are in flight, so memory stays
//! bounded even for an endless iterator. Each item is one job on the executor; it posts its
//! result into a ring of `window` slots (index modulo window: at most `window` indices are ever
//! in flight, so they never collide) or, unordered, onto a completion queue. Items do not get a
//! promise each: one mutex and one condvar per map carry every result, and a worker wakes the
//! consumer only for the item it is waiting for.
//!
//! **Invariant:** a slot is written once per index and read once, by the consumer, in index
//! order; after the map is closed (dropped, timed out) late results are discarded.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use taskweave_core::{Error, TaskInfo};

use crate::job::{self, Job, Run};
use crate::poison;
use crate::progress::{Progress, ProgressHook, ProgressStream};

/// Where a map sends its jobs: the executor's queue.
pub(crate) trait Dispatch: Send + Sync {
    /// Queues the jobs (draining `jobs`), or completes them at once with [`Run::Skip`] when
    /// the executor refuses work.
    fn dispatch(self: Arc<Self>, jobs: &mut Vec<Job>);
    /// How many jobs the executor runs at once (sizes the default window).
    fn parallelism(&self) -> usize;
}

/// Options for a map: how many items in flight, a timeout, progress reporting.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use taskweave_bridge::MapOptions;
///
/// let options = MapOptions::new()
///     .window(64)
///     .timeout(Duration::from_secs(30))
///     .on_progress(|p| eprintln!("{} of {:?}", p.done(), p.total()));
/// # drop(options);
/// ```
#[derive(Clone, Default)]
#[must_use = "options do nothing until passed to a map"]
pub struct MapOptions {
    window: Option<usize>,
    timeout: Option<Duration>,
    total: Option<u64>,
    pub(crate) progress: ProgressHook,
}

impl MapOptions {
    /// The defaults: a window of eight items per worker (at least 64), no timeout, no progress.
    ///
    /// ```
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// let options = taskweave_bridge::MapOptions::new();
    /// assert_eq!(pool.map_with(|x: u8| x, 0..3, options).count(), 3);
    /// ```
    pub fn new() -> MapOptions {
        MapOptions::default()
    }

    /// At most `n` items in flight (submitted and not yet taken); at least 1.
    ///
    /// A larger window keeps workers busy when items vary in cost; a smaller one bounds memory
    /// and how far the map reads ahead of its consumer.
    ///
    /// ```
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// let options = taskweave_bridge::MapOptions::new().window(2);
    /// let firsts: Vec<u64> = pool.map_with(|x: u64| x, 0.., options).take(3).map(Result::unwrap).collect();
    /// assert_eq!(firsts, [0, 1, 2]);
    /// ```
    pub fn window(mut self, n: usize) -> MapOptions {
        self.window = Some(n.max(1));
        self
    }

    /// Gives up when the whole map takes longer than `timeout`, counted from the call to `map`
    /// as in Python: the next item then is [`Error::TimedOut`], the items not started are
    /// cancelled, and the map ends.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskweave_bridge::{MapOptions, ThreadPoolExecutor};
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let options = MapOptions::new().timeout(Duration::from_millis(20));
    /// let mut slow = pool.map_with(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), [200], options);
    /// assert!(slow.next().unwrap().unwrap_err().is_timeout());
    /// assert!(slow.next().is_none());
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> MapOptions {
        self.timeout = Some(timeout);
        self
    }

    /// The number of inputs, for progress reports when the iterator does not know its length.
    ///
    /// ```
    /// use taskweave_bridge::MapOptions;
    /// let lines = "a\nb\nc".lines(); // no exact length
    /// let options = MapOptions::new().total(3).on_progress(|p| assert_eq!(p.total(), Some(3)));
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// assert_eq!(pool.map_with(str::len, lines, options).count(), 3);
    /// ```
    pub fn total(mut self, total: u64) -> MapOptions {
        self.total = Some(total);
        self
    }

    /// Calls `callback` each time an item finishes, on the thread that ran it, with how many
    /// are done and the total when known. Keep it cheap; a panic in it is caught and ignored.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use taskweave_bridge::{MapOptions, ThreadPoolExecutor};
    ///
    /// let done = Arc::new(AtomicU64::new(0));
    /// let d = done.clone();
    /// let options = MapOptions::new().on_progress(move |p| { d.fetch_max(p.done(), Ordering::SeqCst); });
    /// let pool = ThreadPoolExecutor::new();
    /// assert_eq!(pool.map_with(|x: u32| x, 0..10, options).count(), 10);
    /// assert_eq!(done.load(Ordering::SeqCst), 10);
    /// ```
    pub fn on_progress<F>(mut self, callback: F) -> MapOptions
    where
        F: Fn(Progress) + Send + Sync + 'static,
    {
        self.progress.add_callback(Arc::new(callback));
        self
    }

    /// Reports progress on an async stream as well; returns the options and the stream.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// use taskweave_bridge::{MapOptions, ThreadPoolExecutor};
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let (options, mut progress) = MapOptions::new().progress_stream();
    /// let map = pool.map_with(|x: u32| x, 0..10, options);
    /// let watcher = taskweave_core::create_task(async move {
    ///     let mut last = 0;
    ///     while let Some(p) = progress.next().await {
    ///         last = p.done();
    ///     }
    ///     last
    /// });
    /// assert_eq!(taskweave_bridge::to_thread(move || map.count()).await.unwrap(), 10);
    /// assert_eq!(watcher.await.unwrap(), 10);
    /// # });
    /// ```
    pub fn progress_stream(mut self) -> (MapOptions, ProgressStream) {
        let stream = self.progress.add_stream();
        (self, stream)
    }

    /// Draws an [`indicatif`](https://docs.rs/indicatif) progress bar on stderr while the map runs (like tqdm's
    /// `thread_map`). Needs the `progress` feature.
    ///
    /// ```
    /// use taskweave_bridge::{MapOptions, ThreadPoolExecutor};
    /// let pool = ThreadPoolExecutor::new();
    /// let n = pool.map_with(|x: u32| x, 0..100, MapOptions::new().progress_bar()).count();
    /// assert_eq!(n, 100);
    /// ```
    #[cfg(feature = "progress")]
    pub fn progress_bar(mut self) -> MapOptions {
        self.progress.want_bar();
        self
    }
}

impl fmt::Debug for MapOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapOptions")
            .field("window", &self.window)
            .field("timeout", &self.timeout)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

/// The results of a map in input order: a blocking [`Iterator`] for plain threads and an async
/// stream ([`next_async`](Map::next_async), `futures::Stream`) for async code.
///
/// Each item is the outcome of one call: `Ok(value)`, or the error of that call (a panic,
/// shutdown of the executor); later items still follow. After a timeout the map yields one
/// [`Error::TimedOut`] and ends. Dropping it cancels the items not yet started.
///
/// Iterating blocks the thread; inside an async task the first item is [`Error::Refused`]
/// (use [`next_async`](Map::next_async) there).
///
/// # Examples
///
/// ```
/// let pool = taskweave_bridge::ThreadPoolExecutor::new();
/// let mut words = pool.map(|w: &str| w.to_uppercase(), ["tick", "tock"]);
/// assert_eq!(words.next().unwrap().unwrap(), "TICK");
/// assert_eq!(words.next().unwrap().unwrap(), "TOCK");
/// assert!(words.next().is_none());
/// ```
#[must_use = "a map pulls its inputs only as its results are taken"]
pub struct Map<R> {
    engine: Engine<R>,
}

/// The results of an unordered map as `(input index, result)`, in completion order.
///
/// Like [`Map`] otherwise: blocking iterator, async stream, window, timeout, cancellation on
/// drop.
///
/// ```
/// # taskweave_core::run(async {
/// let pool = taskweave_bridge::ThreadPoolExecutor::new();
/// let mut results = pool.map_unordered(|x: u32| x + 1, vec![1, 2]);
/// let mut sum = 0;
/// while let Some((_index, r)) = results.next_async().await {
///     sum += r.unwrap();
/// }
/// assert_eq!(sum, 5);
/// # });
/// ```
#[must_use = "a map pulls its inputs only as its results are taken"]
pub struct MapUnordered<R> {
    engine: Engine<R>,
}

impl<R: Send + 'static> Map<R> {
    #[track_caller]
    pub(crate) fn new<F, A, I>(
        dispatch: Arc<dyn Dispatch>,
        f: F,
        inputs: I,
        options: MapOptions,
    ) -> Map<R>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        Map {
            engine: Engine::new(dispatch, f, inputs, options, true),
        }
    }

    /// The next result in input order, awaited without blocking the runtime; `None` at the end.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// let mut m = pool.map(|x: u8| x * 2, [1, 2]);
    /// assert_eq!(m.next_async().await.unwrap().unwrap(), 2);
    /// assert_eq!(m.next_async().await.unwrap().unwrap(), 4);
    /// assert!(m.next_async().await.is_none());
    /// # });
    /// ```
    pub async fn next_async(&mut self) -> Option<Result<R, Error>> {
        std::future::poll_fn(|cx| self.engine.poll_next(cx))
            .await
            .map(|(_, r)| r)
    }
}

impl<R: Send + 'static> MapUnordered<R> {
    #[track_caller]
    pub(crate) fn new<F, A, I>(
        dispatch: Arc<dyn Dispatch>,
        f: F,
        inputs: I,
        options: MapOptions,
    ) -> MapUnordered<R>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        MapUnordered {
            engine: Engine::new(dispatch, f, inputs, options, false),
        }
    }

    /// The next `(index, result)` to complete, awaited without blocking the runtime; `None` at
    /// the end.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// let mut m = pool.map_unordered(|x: u8| x, [7]);
    /// assert_eq!(m.next_async().await.map(|(i, r)| (i, r.unwrap())), Some((0, 7)));
    /// assert!(m.next_async().await.is_none());
    /// # });
    /// ```
    pub async fn next_async(&mut self) -> Option<(usize, Result<R, Error>)> {
        std::future::poll_fn(|cx| self.engine.poll_next(cx)).await
    }
}

impl<R: Send + 'static> Iterator for Map<R> {
    type Item = Result<R, Error>;

    fn next(&mut self) -> Option<Result<R, Error>> {
        self.engine.next_blocking().map(|(_, r)| r)
    }
}

impl<R: Send + 'static> Iterator for MapUnordered<R> {
    type Item = (usize, Result<R, Error>);

    fn next(&mut self) -> Option<(usize, Result<R, Error>)> {
        self.engine.next_blocking()
    }
}

impl<R: Send + 'static> futures_util::Stream for Map<R> {
    type Item = Result<R, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.engine.poll_next(cx).map(|o| o.map(|(_, r)| r))
    }
}

impl<R: Send + 'static> futures_util::Stream for MapUnordered<R> {
    type Item = (usize, Result<R, Error>);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.engine.poll_next(cx)
    }
}

impl<R> fmt::Debug for Map<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.engine.debug("Map", f)
    }
}

impl<R> fmt::Debug for MapUnordered<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.engine.debug("MapUnordered", f)
    }
}

type Feed = Box<dyn FnMut(usize) -> Option<Job> + Send>;

/// The consumer side shared by both map kinds.
struct Engine<R> {
    shared: Arc<Shared<R>>,
    feed: Feed,
    dispatch: Arc<dyn Dispatch>,
    batch: Vec<Job>,
    next_index: usize,
    in_flight: usize,
    window: usize,
    exhausted: bool,
    finished: bool,
    timeout: Option<(Duration, Instant)>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

struct Shared<R> {
    inner: Mutex<Inner<R>>,
    ready: Condvar,
    /// Set when the consumer is gone: queued items skip the call.
    stop: AtomicBool,
    ordered: bool,
    info: TaskInfo,
    progress: ProgressHook,
}

struct Inner<R> {
    /// Ordered: results by `index % slots.len()`.
    slots: Vec<Option<Result<R, Error>>>,
    /// Ordered: the index the consumer takes next.
    base: usize,
    /// Unordered: results in completion order.
    completed: VecDeque<(usize, Result<R, Error>)>,
    /// The blocking consumer is waiting on the condvar.
    sleeping: bool,
    waker: Option<Waker>,
    done: u64,
    closed: bool,
}

impl<R: Send + 'static> Engine<R> {
    #[track_caller]
    fn new<F, A, I>(
        dispatch: Arc<dyn Dispatch>,
        f: F,
        inputs: I,
        options: MapOptions,
        ordered: bool,
    ) -> Engine<R>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        let info = job::describe::<F>();
        let mut inputs = inputs.into_iter();
        let window = options
            .window
            .unwrap_or_else(|| (dispatch.parallelism() * 8).max(64));
        let total = options.total.or_else(|| match inputs.size_hint() {
            (low, Some(high)) if low == high => u64::try_from(low).ok(),
            _ => None,
        });
        let mut progress = options.progress;
        progress.start(total);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                slots: if ordered {
                    (0..window).map(|_| None).collect()
                } else {
                    Vec::new()
                },
                base: 0,
                completed: VecDeque::new(),
                sleeping: false,
                waker: None,
                done: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            stop: AtomicBool::new(false),
            ordered,
            info,
            progress,
        });
        let f = Arc::new(f);
        let for_jobs = shared.clone();
        let feed: Feed = Box::new(move |index| {
            let arg = inputs.next()?;
            let f = f.clone();
            let shared = for_jobs.clone();
            Some(Box::new(move |run: Run| {
                let result = match run {
                    Run::Go if shared.stop.load(Ordering::Relaxed) => {
                        Err(Error::cancelled(Some("the map was dropped".to_owned())))
                    }
                    Run::Go => job::call_observed("map", Some(&shared.info), || f(arg)),
                    Run::Skip(e) => Err(e),
                };
                shared.post(index, result);
            }))
        });
        Engine {
            shared,
            feed,
            dispatch,
            batch: Vec::new(),
            next_index: 0,
            in_flight: 0,
            window,
            exhausted: false,
            finished: false,
            timeout: options.timeout.map(|t| (t, Instant::now() + t)),
            sleep: None,
        }
    }

    /// Submits inputs until the window is full or the input ends.
    ///
    /// Once started, it refills only when half the window has drained, so jobs go to the
    /// executor in batches under one lock and one round of wake-ups.
    fn fill(&mut self) {
        if self.exhausted || (self.next_index > 0 && self.in_flight > self.window / 2) {
            return;
        }
        while !self.exhausted && self.in_flight < self.window {
            match (self.feed)(self.next_index) {
                Some(job) => {
                    self.next_index += 1;
                    self.in_flight += 1;
                    self.batch.push(job);
                }
                None => self.exhausted = true,
            }
        }
        if !self.batch.is_empty() {
            self.dispatch.clone().dispatch(&mut self.batch);
        }
    }

    fn next_blocking(&mut self) -> Option<(usize, Result<R, Error>)> {
        if self.finished {
            return None;
        }
        if let Err(e) = taskweave_core::strict::check_blocking_wait("Map::next") {
            self.close();
            return Some((self.next_index, Err(e)));
        }
        self.fill();
        if self.in_flight == 0 {
            self.close();
            return None;
        }
        let mut inner = self.shared.lock();
        loop {
            if let Some(out) = self.shared.take_ready(&mut inner) {
                drop(inner);
                return Some(self.taken(out));
            }
            inner.sleeping = true;
            inner = match self.timeout {
                None => poison::recover(self.shared.ready.wait(inner)),
                Some((after, deadline)) => {
                    let now = Instant::now();
                    if now >= deadline {
                        inner.sleeping = false;
                        drop(inner);
                        return Some(self.timed_out(after));
                    }
                    poison::recover(self.shared.ready.wait_timeout(inner, deadline - now)).0
                }
            };
            inner.sleeping = false;
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, Result<R, Error>)>> {
        if self.finished {
            return Poll::Ready(None);
        }
        self.fill();
        if self.in_flight == 0 {
            self.close();
            return Poll::Ready(None);
        }
        {
            let mut inner = self.shared.lock();
            if let Some(out) = self.shared.take_ready(&mut inner) {
                drop(inner);
                return Poll::Ready(Some(self.taken(out)));
            }
            match &inner.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => inner.waker = Some(cx.waker().clone()),
            }
        }
        if let Some((after, deadline)) = self.timeout {
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.into())));
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Some(self.timed_out(after)));
            }
        }
        Poll::Pending
    }

    /// Accounts for a taken result and refills the window so workers stay busy while the
    /// consumer handles it.
    fn taken(&mut self, out: (usize, Result<R, Error>)) -> (usize, Result<R, Error>) {
        self.in_flight -= 1;
        self.fill();
        if self.in_flight == 0 && self.exhausted {
            self.close();
        }
        out
    }

    fn timed_out(&mut self, after: Duration) -> (usize, Result<R, Error>) {
        let index = self.shared.lock().base;
        self.close();
        (index, Err(Error::timed_out(after)))
    }
}

impl<R> Engine<R> {
    /// Ends the map: queued items skip their call, late results are discarded, progress ends.
    fn close(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.shared.stop.store(true, Ordering::Relaxed);
        let leftovers = {
            let mut inner = self.shared.lock();
            inner.closed = true;
            inner.waker = None;
            (
                std::mem::take(&mut inner.slots),
                std::mem::take(&mut inner.completed),
            )
        };
        // Results are dropped outside the lock: their destructors are the user's code.
        drop(leftovers);
        self.shared.progress.finish();
    }

    fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("in_flight", &self.in_flight)
            .field("window", &self.window)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl<R> Drop for Engine<R> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<R> Shared<R> {
    fn lock(&self) -> MutexGuard<'_, Inner<R>> {
        poison::lock(&self.inner)
    }

    fn take_ready(&self, inner: &mut Inner<R>) -> Option<(usize, Result<R, Error>)> {
        if self.ordered {
            let len = inner.slots.len();
            let index = inner.base;
            let out = inner.slots.get_mut(index % len.max(1))?.take()?;
            inner.base += 1;
            Some((index, out))
        } else {
            inner.completed.pop_front()
        }
    }

    /// Called by the job that computed item `index`.
    fn post(&self, index: usize, result: Result<R, Error>) {
        let mut inner = self.lock();
        if inner.closed {
            drop(inner);
            drop(result);
            return;
        }
        let wanted = if self.ordered {
            let len = inner.slots.len();
            inner.slots[index % len] = Some(result);
            index == inner.base
        } else {
            inner.completed.push_back((index, result));
            true
        };
        inner.done += 1;
        let done = inner.done;
        let notify = wanted && inner.sleeping;
        let waker = if wanted { inner.waker.take() } else { None };
        // Reported under the lock, so the consumer cannot see the map end before the last
        // report went out.
        self.progress.report(done);
        drop(inner);
        if notify {
            self.ready.notify_one();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }
}
