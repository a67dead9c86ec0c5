//! [`ThreadPoolExecutor`]: Python's `concurrent.futures.ThreadPoolExecutor`, with closures.
//!
//! # How it works
//!
//! One mutex guards the queue and the bookkeeping; workers sleep on one condvar. A submit pushes
//! the job and then either wakes a sleeping worker that nobody has woken yet or, when there is
//! none and the pool is below `max_workers`, starts a new thread (threads start lazily, as in
//! Python). `sleeping` and `notified` together make sure a burst of submits wakes one worker per
//! job instead of the same one many times. Workers take jobs until the pool is shut down (or
//! broken) and the queue is empty, then exit; `shutdown(wait = true)` joins them, so no thread is
//! left running.
//!
//! One idle worker at a time polls the queue for a few microseconds before it sleeps (`spinning`,
//! with the queue length mirrored in an atomic so it polls without the lock); a submit that finds
//! it polling needs no wake-up. `submit_awaited` mirrors this on the caller's side for
//! `to_thread`: a lone call is waited for briefly, before the awaiting task parks its runtime
//! thread, and only while such waits keep paying off.
//!
//! A worker whose call has returned counts as idle (`finishing`) before it completes the
//! promise, since completing it may wake a caller who submits again at once: that submit must
//! find the worker idle, not start a second thread. The job tells the worker through a
//! thread-local ([`CallEnd`]); jobs that never claim it (map items) are counted when they return.
//!
//! **Invariant:** a job is either in the queue, running on a worker, or completed with a
//! [`Run::Skip`] error; no path drops one silently.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use taskweave_core::instrument::{self, ExecutorEvent};
use taskweave_core::{Error, Promise};
use taskweave_executor::{Map, MapOptions, MapUnordered, Queued};

use crate::job::{self, Job, Run};
use crate::map::{ClosureMap, JobQueue};
use crate::poison;

pub(crate) const EXECUTOR: &str = "ThreadPoolExecutor";

/// The most workers a map plans for, however large `max_workers` is: more threads than this
/// never run usefully in one process, and a map's default window (eight items per worker) stays
/// a few megabytes at most.
const MAX_PARALLELISM: usize = 4096;

type Initializer = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// A pool of threads that runs closures and hands back their [`Promise`]s: Python's
/// `concurrent.futures.ThreadPoolExecutor`.
///
/// Threads start as work arrives, up to `max_workers`, and only when no worker is idle: calls made
/// one after another (`submit(..).result()` in a loop, sequential awaits) all run on one thread. A
/// panic in a submitted closure becomes an
/// [`ErrorKind::Panicked`](taskweave_core::ErrorKind::Panicked) on its promise and the worker
/// thread lives on, also when the panic's payload panics again as it is dropped. Dropping the pool
/// shuts it down and waits for submitted work, like leaving Python's `with ThreadPoolExecutor() as
/// pool:`.
///
/// Work runs inside the submitter's current `tracing` span, so its events carry the caller's
/// context.
///
/// # Differences from Python
///
/// - The submitter's span follows the work for `submit` and `run_in_executor` too; Python copies
///   contextvars only for `asyncio.to_thread`.
/// - Done-callbacks run on the worker that completed the promise, as in Python, but that worker
///   already counts as idle while they run: a call another thread submits meanwhile waits for
///   them rather than starting a new thread (a call the callback submits itself does start
///   one). Keep callbacks short.
/// - Dropped (or shut down with `wait`) inside an async task when no work is left, the pool does
///   not join its idle threads, which leave on their own, instead of blocking the runtime
///   thread on the join.
///
/// From async code, await the promises ([`run_in_executor`](crate::run_in_executor) is the
/// asyncio-style spelling); from plain threads, block on them with [`Promise::result`].
///
/// # Examples
///
/// ```
/// use taskweave_bridge::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::new();
/// let mut answer = pool.submit(|| 6 * 7);
/// assert_eq!(answer.result(None).unwrap(), 42);
///
/// let squares: Vec<u64> = pool.map(|x: u64| x * x, 1..=5).map(Result::unwrap).collect();
/// assert_eq!(squares, [1, 4, 9, 16, 25]);
/// ```
pub struct ThreadPoolExecutor {
    shared: Arc<PoolShared>,
}

/// Configures a [`ThreadPoolExecutor`]: worker count, thread names, a per-thread initializer.
///
/// # Examples
///
/// ```
/// use taskweave_bridge::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::builder()
///     .max_workers(4)
///     .thread_name_prefix("resize")
///     .initializer(|| { /* open a per-thread connection */ })
///     .build()
///     .unwrap();
/// assert_eq!(pool.max_workers(), 4);
/// ```
#[derive(Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    max_workers: Option<usize>,
    thread_name_prefix: Option<String>,
    initializer: Option<Initializer>,
    keep_alive: Option<Duration>,
}

pub(crate) struct PoolShared {
    state: Mutex<PoolState>,
    /// The queue's length, readable without the lock by spinning workers.
    queued: AtomicUsize,
    /// Workers whose call has returned and which are completing its promise. They look at the
    /// queue next, so they count as idle: the caller woken by that promise may submit again
    /// before the worker is back in its loop, and must not start a second thread for it.
    /// Outside the lock, like `unfinished`, so that ending a call takes no lock: a worker
    /// counts itself here before it takes the lock again, so a submit that reads it (under
    /// the lock) either sees it or is seen by that worker's next look at the queue.
    finishing: AtomicUsize,
    /// Submitted jobs not finished (queued or running). Raised under the lock as jobs are
    /// queued, lowered without it as they end.
    unfinished: AtomicUsize,
    spin: AwaitSpin,
    work: Condvar,
    max_workers: usize,
    prefix: String,
    initializer: Option<Initializer>,
    keep_alive: Option<Duration>,
}

struct PoolState {
    queue: VecDeque<Job>,
    /// Worker threads started and not yet exited.
    threads: usize,
    /// Workers waiting on the condvar.
    sleeping: usize,
    /// Idle workers polling `queued` before they sleep.
    spinning: usize,
    /// Wake-ups sent and not yet taken by a worker.
    notified: usize,
    next_thread: usize,
    shutdown: bool,
    broken: Option<String>,
    handles: Vec<JoinHandle<()>>,
}

impl ThreadPoolExecutor {
    /// A pool with Python's defaults: `min(32, cores + 4)` workers, threads named
    /// `ThreadPool<n>_<i>`, no initializer.
    ///
    /// ```
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// assert!(pool.max_workers() >= 5);
    /// ```
    pub fn new() -> ThreadPoolExecutor {
        Builder::default().build_unchecked()
    }

    /// A builder for a configured pool.
    ///
    /// ```
    /// let pool = taskweave_bridge::ThreadPoolExecutor::builder().max_workers(2).build().unwrap();
    /// assert_eq!(pool.max_workers(), 2);
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Python's default worker count: `min(32, cores + 4)`.
    ///
    /// ```
    /// assert!(taskweave_bridge::ThreadPoolExecutor::default_max_workers() <= 32);
    /// ```
    pub fn default_max_workers() -> usize {
        let cores = thread::available_parallelism().map_or(1, usize::from);
        (cores + 4).min(32)
    }

    /// The most threads this pool runs at once.
    ///
    /// ```
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// assert_eq!(pool.max_workers(), taskweave_bridge::ThreadPoolExecutor::default_max_workers());
    /// ```
    pub fn max_workers(&self) -> usize {
        self.shared.max_workers
    }

    /// The prefix of the worker threads' names (each is `<prefix>_<index>`).
    ///
    /// ```
    /// let pool = taskweave_bridge::ThreadPoolExecutor::builder()
    ///     .thread_name_prefix("db")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(pool.thread_name_prefix(), "db");
    /// let mut name = pool.submit(|| std::thread::current().name().unwrap().to_owned());
    /// assert_eq!(name.result(None).unwrap(), "db_0");
    /// ```
    pub fn thread_name_prefix(&self) -> &str {
        &self.shared.prefix
    }

    /// How many worker threads are alive now.
    ///
    /// ```
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// assert_eq!(pool.threads(), 0); // threads start with the first work
    /// ```
    pub fn threads(&self) -> usize {
        self.shared.lock().threads
    }

    /// Runs `f` on a worker thread and returns its promise at once.
    ///
    /// `f` runs inside the caller's current `tracing` span. The promise ends with `f`'s value, or
    /// with an error: [`ErrorKind::Panicked`](taskweave_core::ErrorKind::Panicked) if `f` panicked
    /// (the worker survives), [`ErrorKind::Shutdown`](taskweave_core::ErrorKind::Shutdown) if the
    /// pool was shut down, [`ErrorKind::Broken`](taskweave_core::ErrorKind::Broken) if an
    /// initializer failed, [`ErrorKind::Cancelled`](taskweave_core::ErrorKind::Cancelled) if it was
    /// cancelled while queued.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// let mut p = pool.submit(|| "done");
    /// assert_eq!(p.result(None).unwrap(), "done");
    ///
    /// pool.shutdown(true, false);
    /// let mut late = pool.submit(|| "never runs");
    /// assert!(late.result(None).is_err_and(|e| e.is_shutdown()));
    /// ```
    #[track_caller]
    pub fn submit<F, T>(&self, f: F) -> Promise<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (promise, job) = job::promise_job(EXECUTOR, job::describe::<F>(), f);
        self.shared.enqueue(job);
        promise
    }

    /// Where this executor's jobs go, for its `Executor` impl.
    pub(crate) fn queue(&self) -> Arc<impl JobQueue> {
        self.shared.clone()
    }

    /// Submits `f` for a caller that is about to await the promise (`to_thread`,
    /// `run_in_executor`). When this call is the pool's only work (the caller awaits calls one
    /// at a time) and calls have been finishing within [`AWAIT_SPIN`], it waits that long for
    /// the result before returning.
    ///
    /// A trivial call then comes back before the awaiting task would have parked its runtime
    /// thread, saving the unpark, which costs more than the call. When calls take longer, the
    /// wait misses and is skipped for exponentially more calls, so slow work pays next to
    /// nothing; with other work in flight it never waits, so batches stay concurrent.
    #[track_caller]
    pub(crate) fn submit_awaited<F, T>(&self, f: F) -> Promise<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (promise, job) = job::promise_job(EXECUTOR, job::describe::<F>(), f);
        if self.shared.enqueue(job) == 1 {
            self.shared.spin.wait_briefly(&promise);
        }
        promise
    }

    /// Runs `f` over `inputs` on the pool and yields the results in input order (Python's
    /// `ThreadPoolExecutor.map`), with the default [`MapOptions`].
    ///
    /// The map is lazy: it pulls inputs only as results are taken, keeping at most
    /// [`MapOptions::window`] items in flight, so an endless iterator works in bounded memory.
    /// Each item is `Ok(value)` or the error of that call (panic, shutdown); later items still
    /// come. The returned [`Map`] is a blocking iterator for plain threads and a stream for
    /// async code. Dropping it cancels the items not yet started.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// let lens: Vec<usize> = pool
    ///     .map(|s: &str| s.len(), ["a", "bb", "ccc"])
    ///     .collect::<Result<_, _>>()
    ///     .unwrap();
    /// assert_eq!(lens, [1, 2, 3]);
    /// ```
    #[track_caller]
    pub fn map<F, A, R, I>(&self, f: F, inputs: I) -> Map<R>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        self.map_with(f, inputs, MapOptions::new())
    }

    /// [`map`](Self::map) with options: window, chunksize, timeout, progress reporting.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskweave_bridge::{MapOptions, ThreadPoolExecutor};
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let options = MapOptions::new().window(8).timeout(Duration::from_secs(10));
    /// let total: u64 = pool.map_with(|x: u64| x + 1, 0..100, options).map(Result::unwrap).sum();
    /// assert_eq!(total, 5050);
    /// ```
    #[track_caller]
    pub fn map_with<F, A, R, I>(&self, f: F, inputs: I, options: MapOptions) -> Map<R>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        Map::new(ClosureMap::new(self.shared.clone(), f), inputs, options)
    }

    /// Like [`map`](Self::map), but yields `(index, result)` in completion order, so a slow item
    /// does not hold back the ones after it.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// let mut got: Vec<(usize, u32)> = pool
    ///     .map_unordered(|x: u32| x * 10, [1, 2, 3])
    ///     .map(|(i, r)| (i, r.unwrap()))
    ///     .collect();
    /// got.sort();
    /// assert_eq!(got, [(0, 10), (1, 20), (2, 30)]);
    /// ```
    #[track_caller]
    pub fn map_unordered<F, A, R, I>(&self, f: F, inputs: I) -> MapUnordered<R>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        self.map_unordered_with(f, inputs, MapOptions::new())
    }

    /// [`map_unordered`](Self::map_unordered) with options.
    ///
    /// ```
    /// use taskweave_bridge::{MapOptions, ThreadPoolExecutor};
    /// let pool = ThreadPoolExecutor::new();
    /// let n = pool.map_unordered_with(|x: u8| x, 0..10, MapOptions::new().window(2)).count();
    /// assert_eq!(n, 10);
    /// ```
    #[track_caller]
    pub fn map_unordered_with<F, A, R, I>(
        &self,
        f: F,
        inputs: I,
        options: MapOptions,
    ) -> MapUnordered<R>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        MapUnordered::new(ClosureMap::new(self.shared.clone(), f), inputs, options)
    }

    /// Stops accepting work (Python's `shutdown(wait, cancel_futures)`).
    ///
    /// The two bools mirror Python's `shutdown(wait=True, cancel_futures=False)`, so code
    /// ported from Python reads the same; [`shutdown_async`](Self::shutdown_async) names its
    /// choice with [`Queued`] instead.
    ///
    /// Later submits end with [`ErrorKind::Shutdown`](taskweave_core::ErrorKind::Shutdown). With
    /// `cancel_futures`, work still queued is cancelled
    /// ([`ErrorKind::Cancelled`](taskweave_core::ErrorKind::Cancelled)); running work always
    /// finishes, and so does queued work otherwise. With `wait`, the call returns once every worker
    /// thread has exited.
    ///
    /// A blocking wait inside an async task would stall the runtime, so there `wait` is not
    /// honoured: the pool shuts down and its threads finish on their own. When work is still
    /// queued or running, debug mode reports the refused wait; when none is, there was nothing
    /// to wait for and nothing is reported (so dropping a pool whose work is done, or after
    /// `shutdown_async(..).await`, is silent). Use [`shutdown_async`](Self::shutdown_async) in
    /// async code. Called again, it does the same (idempotent); called from one of the pool's
    /// own threads, it does not wait for that thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// let mut p = pool.submit(|| 1);
    /// pool.shutdown(true, false);
    /// assert_eq!(p.result(None).unwrap(), 1);
    /// assert_eq!(pool.threads(), 0);
    /// ```
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let unfinished = self.shared.shutdown(cancel_futures);
        if !wait {
            return;
        }
        // Inside a task with no work left there is nothing to wait for: the idle workers leave
        // on their own, and a wait refused there would report a correct program.
        if unfinished == 0 && taskweave_core::strict::in_task_poll() {
            return;
        }
        if taskweave_core::strict::check_blocking_wait("ThreadPoolExecutor::shutdown").is_ok() {
            self.shared.join();
        }
    }

    /// Shuts down like [`shutdown`](Self::shutdown) and waits for the worker threads without
    /// blocking the runtime. `queued` says what becomes of work not yet started:
    /// [`Queued::Run`] runs it first, [`Queued::Cancel`] cancels it
    /// ([`ErrorKind::Cancelled`](taskweave_core::ErrorKind::Cancelled)).
    ///
    /// # Examples
    ///
    /// ```
    /// use taskweave_bridge::Queued;
    /// # taskweave_core::run(async {
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// let p = pool.submit(|| 5);
    /// pool.shutdown_async(Queued::Run).await;
    /// assert_eq!(p.await.unwrap(), 5);
    /// # });
    /// ```
    pub async fn shutdown_async(&self, queued: Queued) {
        self.shared.shutdown(queued.cancels());
        let shared = self.shared.clone();
        // Joining is blocking; tokio's blocking pool is the place for it.
        let _ = tokio::task::spawn_blocking(move || shared.join()).await;
    }
}

impl Default for ThreadPoolExecutor {
    fn default() -> ThreadPoolExecutor {
        ThreadPoolExecutor::new()
    }
}

impl Drop for ThreadPoolExecutor {
    fn drop(&mut self) {
        let unfinished = {
            let state = self.shared.lock();
            (!state.shutdown).then(|| self.shared.unfinished.load(Ordering::SeqCst))
        };
        if let Some(pending @ 1..) = unfinished {
            instrument::executor_event(&ExecutorEvent::DroppedWithPending {
                executor: EXECUTOR,
                pending,
            });
        }
        self.shutdown(true, false);
    }
}

impl fmt::Debug for ThreadPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("ThreadPoolExecutor")
            .field("prefix", &self.shared.prefix)
            .field("max_workers", &self.shared.max_workers)
            .field("threads", &state.threads)
            .field("queued", &state.queue.len())
            .field("shutdown", &state.shutdown)
            .field("broken", &state.broken)
            .finish()
    }
}

impl Builder {
    /// The most threads the pool runs at once (default: `min(32, cores + 4)`). Zero is refused
    /// by [`build`](Self::build).
    ///
    /// ```
    /// let pool = taskweave_bridge::ThreadPoolExecutor::builder().max_workers(1).build().unwrap();
    /// assert_eq!(pool.max_workers(), 1);
    /// ```
    pub fn max_workers(mut self, n: usize) -> Builder {
        self.max_workers = Some(n);
        self
    }

    /// The worker threads' names are `<prefix>_<index>` (default `ThreadPool<n>`). Linux shows at
    /// most 15 bytes of a thread name, so short prefixes read best in `top` and debuggers. A
    /// prefix with a NUL byte is refused by [`build`](Self::build).
    ///
    /// ```
    /// let pool = taskweave_bridge::ThreadPoolExecutor::builder()
    ///     .thread_name_prefix("resize")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(pool.thread_name_prefix(), "resize");
    /// ```
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> Builder {
        self.thread_name_prefix = Some(prefix.into());
        self
    }

    /// Runs `init` once in each worker thread before it takes work. A panic in it breaks the
    /// pool as [`try_initializer`](Self::try_initializer) describes.
    ///
    /// ```
    /// use std::cell::Cell;
    /// thread_local!(static BUFFER_SIZE: Cell<usize> = const { Cell::new(0) });
    ///
    /// let pool = taskweave_bridge::ThreadPoolExecutor::builder()
    ///     .initializer(|| BUFFER_SIZE.with(|b| b.set(4096)))
    ///     .build()
    ///     .unwrap();
    /// let mut size = pool.submit(|| BUFFER_SIZE.with(Cell::get));
    /// assert_eq!(size.result(None).unwrap(), 4096);
    /// ```
    pub fn initializer<F>(self, init: F) -> Builder
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.try_initializer(move || {
            init();
            Ok::<(), std::convert::Infallible>(())
        })
    }

    /// Runs `init` once in each worker thread before it takes work. If it returns an error (or
    /// panics) the pool is broken, as in Python: all queued work and every later submit end with
    /// [`ErrorKind::Broken`](taskweave_core::ErrorKind::Broken) carrying the initializer's error.
    ///
    /// ```
    /// use taskweave_bridge::ThreadPoolExecutor;
    ///
    /// let pool = ThreadPoolExecutor::builder()
    ///     .try_initializer(|| Err::<(), _>("no config file"))
    ///     .build()
    ///     .unwrap();
    /// let err = pool.submit(|| 1).result(None).unwrap_err();
    /// assert!(err.to_string().contains("no config file"));
    /// ```
    pub fn try_initializer<F, E>(mut self, init: F) -> Builder
    where
        F: Fn() -> Result<(), E> + Send + Sync + 'static,
        E: fmt::Display,
    {
        self.initializer = Some(Arc::new(move || init().map_err(|e| e.to_string())));
        self
    }

    /// Lets a worker thread that has been idle this long exit; the pool starts a new one when
    /// work comes (default: workers stay until shutdown, as in Python).
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = taskweave_bridge::ThreadPoolExecutor::builder()
    ///     .keep_alive(Duration::from_secs(30))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(pool.submit(|| 1).result(None).unwrap(), 1);
    /// ```
    pub fn keep_alive(mut self, idle: Duration) -> Builder {
        self.keep_alive = Some(idle);
        self
    }

    /// Builds the pool. No thread starts until work is submitted.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) when `max_workers` is zero or
    /// `thread_name_prefix` contains a NUL byte. Every other value is valid: a `max_workers` beyond
    /// what the OS allows only means the pool runs with the threads it could start, and a
    /// `keep_alive` too long to represent means workers stay until shutdown.
    ///
    /// ```
    /// let err = taskweave_bridge::ThreadPoolExecutor::builder().max_workers(0).build();
    /// assert!(err.is_err());
    /// ```
    pub fn build(self) -> Result<ThreadPoolExecutor, Error> {
        if self.max_workers == Some(0) {
            return Err(Error::refused("max_workers must be greater than 0"));
        }
        if let Some(prefix) = &self.thread_name_prefix
            && prefix.contains('\0')
        {
            return Err(Error::refused(format!(
                "thread_name_prefix must not contain a NUL byte (thread names are C \
                     strings): {prefix:?}"
            )));
        }
        Ok(self.build_unchecked())
    }

    fn build_unchecked(self) -> ThreadPoolExecutor {
        static POOLS: AtomicUsize = AtomicUsize::new(0);
        let prefix = self
            .thread_name_prefix
            .unwrap_or_else(|| format!("ThreadPool{}", POOLS.fetch_add(1, Ordering::Relaxed)));
        ThreadPoolExecutor {
            shared: Arc::new(PoolShared {
                state: Mutex::new(PoolState {
                    queue: VecDeque::new(),
                    threads: 0,
                    sleeping: 0,
                    spinning: 0,
                    notified: 0,
                    next_thread: 0,
                    shutdown: false,
                    broken: None,
                    handles: Vec::new(),
                }),
                queued: AtomicUsize::new(0),
                finishing: AtomicUsize::new(0),
                unfinished: AtomicUsize::new(0),
                spin: AwaitSpin::default(),
                work: Condvar::new(),
                max_workers: self
                    .max_workers
                    .unwrap_or_else(ThreadPoolExecutor::default_max_workers)
                    .max(1),
                prefix,
                initializer: self.initializer,
                keep_alive: self.keep_alive,
            }),
        }
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("max_workers", &self.max_workers)
            .field("thread_name_prefix", &self.thread_name_prefix)
            .field("initializer", &self.initializer.is_some())
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

impl JobQueue for PoolShared {
    fn push_jobs(self: Arc<Self>, jobs: &mut Vec<Job>) {
        self.enqueue_from(jobs.drain(..));
    }

    fn parallelism(&self) -> usize {
        // A map sizes its window from this; a huge `max_workers` must not make it huge too.
        self.max_workers.min(MAX_PARALLELISM)
    }
}

impl PoolShared {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        poison::lock(&self.state)
    }

    fn enqueue(self: &Arc<Self>, job: Job) -> usize {
        let mut one = Some(job);
        self.enqueue_from(std::iter::from_fn(|| one.take()))
    }

    /// Queues `jobs` under one lock and wakes or starts as many workers as the new work needs.
    ///
    /// Returns how many jobs are unfinished now, this one included (0 when refused).
    fn enqueue_from(self: &Arc<Self>, jobs: impl Iterator<Item = Job>) -> usize {
        let mut state = self.lock();
        let refusal = if let Some(reason) = &state.broken {
            Some(Error::broken(reason.clone()))
        } else if state.shutdown {
            Some(job::refused_after_shutdown(EXECUTOR))
        } else {
            None
        };
        if let Some(error) = refusal {
            drop(state);
            for job in jobs {
                job(Run::Skip(error.clone()));
            }
            return 0;
        }
        let before = state.queue.len();
        state.queue.extend(jobs);
        let added = state.queue.len() - before;
        let unfinished = self.unfinished.fetch_add(added, Ordering::SeqCst) + added;
        self.queued.store(state.queue.len(), Ordering::Relaxed);
        // Spinning and finishing workers pick up work without a wake-up; wake sleepers for the
        // rest. A finishing worker submitting from a done-callback is not free to take it.
        let finishing = self.finishing.load(Ordering::SeqCst);
        let available =
            (state.spinning + finishing).saturating_sub(usize::from(self.finishing_here()));
        let mut needed = state.queue.len().saturating_sub(available).min(added);
        let mut wake = 0;
        while needed > 0 && state.sleeping > state.notified {
            state.notified += 1;
            wake += 1;
            needed -= 1;
        }
        while needed > 0 && state.threads < self.max_workers {
            if let Err(failed) = self.start_worker(&mut state) {
                let error = state.broken.clone().map(Error::broken);
                drop(state);
                if let Some(error) = error {
                    for job in failed {
                        job(Run::Skip(error.clone()));
                    }
                }
                return 0;
            }
            needed -= 1;
        }
        drop(state);
        for _ in 0..wake {
            self.work.notify_one();
        }
        unfinished
    }

    /// Starts one worker thread; spawning under the lock keeps `threads` and `handles` exact
    /// for `join`, and happens at most `max_workers` times per pool. Returns `false` when the
    /// OS refused the thread; if the pool then has no thread at all it is broken, and the
    /// queued jobs are handed back for the caller to fail once it released the lock.
    fn start_worker(self: &Arc<Self>, state: &mut PoolState) -> Result<(), Vec<Job>> {
        state.handles.retain(|h| !h.is_finished());
        let name = format!("{}_{}", self.prefix, state.next_thread);
        let shared = self.clone();
        match thread::Builder::new()
            .name(name)
            .spawn(move || worker(shared))
        {
            Ok(handle) => {
                state.threads += 1;
                state.next_thread += 1;
                state.handles.push(handle);
                Ok(())
            }
            Err(e) if state.threads == 0 => {
                let reason = format!("cannot start a worker thread: {e}");
                Err(self.break_locked(state, reason))
            }
            // Some worker is alive and takes the work later.
            Err(_) => Err(Vec::new()),
        }
    }

    /// Marks the pool shut down; returns how many jobs are unfinished after the cancellation.
    fn shutdown(&self, cancel_futures: bool) -> usize {
        let mut state = self.lock();
        state.shutdown = true;
        let cancelled: Vec<Job> = if cancel_futures {
            let jobs: Vec<Job> = state.queue.drain(..).collect();
            self.unfinished.fetch_sub(jobs.len(), Ordering::SeqCst);
            self.queued.store(0, Ordering::Relaxed);
            jobs
        } else {
            Vec::new()
        };
        let unfinished = self.unfinished.load(Ordering::SeqCst);
        drop(state);
        self.work.notify_all();
        for job in cancelled {
            job(Run::Skip(job::cancelled_by_shutdown(EXECUTOR)));
        }
        unfinished
    }

    /// Joins every worker thread except the calling one.
    fn join(&self) {
        let me = thread::current().id();
        loop {
            let handles = std::mem::take(&mut self.lock().handles);
            if handles.is_empty() {
                return;
            }
            for handle in handles {
                if handle.thread().id() != me {
                    let _ = handle.join();
                }
            }
        }
    }

    /// Marks the pool broken and fails every queued job with the reason.
    fn break_pool(&self, mut state: MutexGuard<'_, PoolState>, reason: String) {
        let jobs = self.break_locked(&mut state, reason);
        let error = Error::broken(state.broken.clone().unwrap_or_default());
        drop(state);
        for job in jobs {
            job(Run::Skip(error.clone()));
        }
    }

    /// Marks the pool broken and takes the queued jobs, for the caller to fail.
    fn break_locked(&self, state: &mut PoolState, reason: String) -> Vec<Job> {
        if state.broken.is_none() {
            state.broken = Some(reason);
        }
        let jobs: Vec<Job> = state.queue.drain(..).collect();
        self.unfinished.fetch_sub(jobs.len(), Ordering::SeqCst);
        self.queued.store(0, Ordering::Relaxed);
        self.work.notify_all();
        jobs
    }
}

/// Decrements the thread count however the worker ends.
struct Exit<'a> {
    shared: &'a PoolShared,
    me: ThreadId,
}

impl Drop for Exit<'_> {
    fn drop(&mut self) {
        WORKER.with(|w| w.borrow_mut().take());
        let mut state = self.shared.lock();
        state.threads -= 1;
        if state.shutdown {
            return;
        }
        // A worker that left on its own (keep-alive) drops its handle so it is not joined twice.
        let me = self.me;
        state.handles.retain(|h| h.thread().id() != me);
    }
}

thread_local! {
    /// The pool this thread works for, so the job it runs can count itself finished.
    static WORKER: RefCell<Option<Arc<PoolShared>>> = const { RefCell::new(None) };
    /// Where this worker is with the job it runs.
    static CALL: Cell<Call> = const { Cell::new(Call::Idle) };
}

/// A pool worker's progress through one job, kept in [`CALL`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    /// No job, or one that never claimed its end (a map item, a skipped promise).
    Idle,
    /// The worker has handed the job over and not yet heard from it.
    Armed,
    /// The job's call is running; a job run inline inside it cannot claim the worker again.
    Claimed,
    /// The call has returned and the worker counts in `finishing`.
    Finishing,
}

/// The end of one call on a pool worker: dropping it, before the promise is completed, counts
/// the call finished and the worker idle (see `PoolShared::finishing`).
pub(crate) struct CallEnd(());

impl CallEnd {
    /// Claims the end of the job this pool worker was just handed; `None` elsewhere (a rayon
    /// thread, a nested job, a submitting thread completing a skipped job).
    pub(crate) fn claim() -> Option<CallEnd> {
        CALL.with(|c| {
            (c.get() == Call::Armed).then(|| {
                c.set(Call::Claimed);
                CallEnd(())
            })
        })
    }
}

impl Drop for CallEnd {
    fn drop(&mut self) {
        CALL.with(|c| c.set(Call::Finishing));
        WORKER.with(|w| {
            if let Some(shared) = &*w.borrow() {
                // Idle first, then finished: whoever sees the call finished sees the worker idle.
                shared.finishing.fetch_add(1, Ordering::SeqCst);
                shared.unfinished.fetch_sub(1, Ordering::SeqCst);
            }
        });
    }
}

impl PoolShared {
    /// `true` on a worker of this pool that is completing a promise (running its callbacks).
    fn finishing_here(self: &Arc<Self>) -> bool {
        CALL.with(Cell::get) == Call::Finishing
            && WORKER.with(|w| w.borrow().as_ref().is_some_and(|p| Arc::ptr_eq(p, self)))
    }
}

/// Runs one job on a worker and accounts for it, whether or not it claimed its end early.
fn run_job(shared: &PoolShared, job: Job) -> MutexGuard<'_, PoolState> {
    CALL.with(|c| c.set(Call::Armed));
    job::run_contained(job);
    let counted = CALL.with(|c| c.replace(Call::Idle)) == Call::Finishing;
    // Before the lock: a submit that still counts this worker as finishing (and so woke no one)
    // holds the lock while it does, and its job is in the queue when this worker looks.
    if counted {
        shared.finishing.fetch_sub(1, Ordering::SeqCst);
    } else {
        shared.unfinished.fetch_sub(1, Ordering::SeqCst);
    }
    shared.lock()
}

fn worker(shared: Arc<PoolShared>) {
    WORKER.with(|w| *w.borrow_mut() = Some(shared.clone()));
    let _exit = Exit {
        shared: &shared,
        me: thread::current().id(),
    };
    if let Some(init) = &shared.initializer {
        let outcome = catch_unwind(AssertUnwindSafe(|| init())).unwrap_or_else(|payload| {
            let message = taskweave_core::error::panic_message(&*payload);
            taskweave_core::error::drop_panic_payload(payload);
            Err(format!("panicked: {message}"))
        });
        if let Err(e) = outcome {
            let reason =
                format!("a thread initializer failed, the pool is not usable anymore: {e}");
            shared.break_pool(shared.lock(), reason);
            return;
        }
    }
    let mut state = shared.lock();
    loop {
        if let Some(job) = state.queue.pop_front() {
            shared.queued.store(state.queue.len(), Ordering::Relaxed);
            drop(state);
            state = run_job(&shared, job);
            continue;
        }
        if state.shutdown || state.broken.is_some() {
            return;
        }
        // Calls that come back to back (a sequential await loop, a map) usually arrive within
        // microseconds: polling briefly saves the sleep and the wake-up, which cost more than
        // the call itself. One poller is enough to catch them; more would only take CPU from
        // the threads producing the work.
        if state.spinning == 0 {
            state.spinning += 1;
            drop(state);
            spin_for_work(&shared.queued);
            state = shared.lock();
            state.spinning -= 1;
            if !state.queue.is_empty() {
                continue;
            }
            if state.shutdown || state.broken.is_some() {
                return;
            }
        }
        state.sleeping += 1;
        let timed_out = match shared.keep_alive {
            None => {
                state = poison::recover(shared.work.wait(state));
                false
            }
            Some(idle) => {
                let (s, timeout) = poison::recover(shared.work.wait_timeout(state, idle));
                state = s;
                timeout.timed_out()
            }
        };
        state.sleeping -= 1;
        state.notified = state.notified.saturating_sub(1);
        if timed_out && state.queue.is_empty() && !state.shutdown {
            return;
        }
    }
}

/// How long [`ThreadPoolExecutor::submit_awaited`] waits for a call to come back.
const AWAIT_SPIN: Duration = Duration::from_micros(20);

/// Learns whether waiting briefly for awaited calls pays off: after `misses` waits in a row
/// that timed out, the next `2^misses` calls skip the wait.
#[derive(Default)]
struct AwaitSpin {
    misses: AtomicUsize,
    skip: AtomicUsize,
}

impl AwaitSpin {
    fn wait_briefly<T>(&self, promise: &Promise<T>) {
        // Races between threads only blur the statistics; relaxed is enough.
        let skip = self.skip.load(Ordering::Relaxed);
        if skip > 0 {
            self.skip.store(skip - 1, Ordering::Relaxed);
            return;
        }
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                std::hint::spin_loop();
            }
            if promise.done() {
                self.misses.store(0, Ordering::Relaxed);
                return;
            }
            if start.elapsed() >= AWAIT_SPIN {
                let misses = (self.misses.load(Ordering::Relaxed) + 1).min(12);
                self.misses.store(misses, Ordering::Relaxed);
                self.skip.store(1 << misses, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// How long an idle worker polls for new work before it sleeps.
const SPIN: Duration = Duration::from_micros(50);

/// Polls `queued` until it is non-zero or [`SPIN`] has passed, yielding the CPU between
/// polls so the spinning worker never keeps a runnable thread off a core.
fn spin_for_work(queued: &AtomicUsize) {
    let start = Instant::now();
    loop {
        for _ in 0..32 {
            if queued.load(Ordering::Relaxed) > 0 {
                return;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= SPIN {
            return;
        }
        thread::yield_now();
    }
}
