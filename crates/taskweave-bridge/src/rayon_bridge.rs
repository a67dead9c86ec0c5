//! The rayon bridge: run closures and parallel maps on a rayon pool and await them from async
//! code ([`spawn_rayon`], [`par_map`], [`RayonExecutor`]).
//!
//! rayon has no futures of its own: work is handed to `rayon::spawn` (or a given pool's
//! `spawn`), runs with its panic caught, and completes a [`Promise`]. Awaiting that promise never
//! blocks a runtime thread.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use rayon::iter::{IntoParallelIterator, ParallelIterator};
use taskweave_core::Promise;
use taskweave_executor::{Map, MapOptions, MapUnordered, Runs};

use crate::job::{self, Job, Run};
use crate::map::{ClosureMap, JobQueue};
use crate::poison::{self, lock};

pub(crate) const EXECUTOR: &str = "RayonExecutor";

/// Runs `f` on rayon's global pool and returns its promise, to be awaited. `f` runs inside the
/// caller's current `tracing` span.
///
/// # Errors
///
/// The promise carries [`ErrorKind::Panicked`](taskweave_core::ErrorKind::Panicked) when `f`
/// panics.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// let sum = taskweave_bridge::spawn_rayon(|| (1..=100u64).sum::<u64>()).await.unwrap();
/// assert_eq!(sum, 5050);
/// # });
/// ```
///
/// [`ErrorKind::Panicked`]: taskweave_core::ErrorKind::Panicked
#[track_caller]
pub fn spawn_rayon<F, T>(f: F) -> Promise<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (promise, work) = job::promise_work(EXECUTOR, job::describe::<F>(), f);
    rayon::spawn(move || job::run_contained(work));
    promise
}

/// Maps `f` over `items` in parallel on rayon's global pool and returns a promise of the
/// results in input order: an awaitable `par_iter().map(f).collect()`.
///
/// The caller's `tracing` span is entered on the rayon thread that starts the parallel
/// iterator; items other rayon threads steal run outside it (rayon does not carry it).
///
/// # Errors
///
/// The promise carries [`ErrorKind::Panicked`](taskweave_core::ErrorKind::Panicked) when `f` panics
/// for any item.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// let squares = taskweave_bridge::par_map(vec![1u64, 2, 3], |x| x * x).await.unwrap();
/// assert_eq!(squares, [1, 4, 9]);
/// # });
/// ```
///
/// [`ErrorKind::Panicked`]: taskweave_core::ErrorKind::Panicked
#[track_caller]
pub fn par_map<I, F, R>(items: I, f: F) -> Promise<Vec<R>>
where
    I: IntoParallelIterator + Send + 'static,
    F: Fn(I::Item) -> R + Send + Sync + 'static,
    R: Send + 'static,
{
    spawn_rayon(move || items.into_par_iter().map(f).collect())
}

/// An executor that runs work on a rayon pool, the global one or one of your own.
///
/// Besides closures ([`spawn`](Self::spawn)) and awaitable parallel maps
/// ([`par_map`](Self::par_map)), it offers the lazy windowed [`map`](Self::map) of the thread
/// pool and implements [`Executor`](crate::Executor), so code generic over executors can use
/// rayon. rayon pools cannot be stopped from outside; [`shutdown`](Self::shutdown) makes this
/// executor refuse new work, and with `cancel_futures` skips work not yet started.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// use taskweave_bridge::RayonExecutor;
///
/// let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
/// let rayon = RayonExecutor::new(pool);
/// assert_eq!(rayon.spawn(|| rayon::current_num_threads()).await.unwrap(), 2);
/// assert_eq!(rayon.par_map(0..4u32, |x| x + 1).await.unwrap(), [1, 2, 3, 4]);
/// # });
/// ```
#[derive(Clone)]
pub struct RayonExecutor {
    shared: Arc<RayonShared>,
}

struct RayonShared {
    pool: Option<Arc<rayon::ThreadPool>>,
    shutdown: AtomicBool,
    /// Bumped by `shutdown(cancel_futures = true)`: work submitted before skips its call.
    epoch: AtomicU64,
    unfinished: AtomicUsize,
    idle: Mutex<()>,
    idle_cond: Condvar,
}

impl RayonExecutor {
    /// An executor on rayon's global pool.
    ///
    /// ```
    /// let rayon = taskweave_bridge::RayonExecutor::global();
    /// assert_eq!(rayon.spawn(|| 1).result(None).unwrap(), 1);
    /// ```
    pub fn global() -> RayonExecutor {
        RayonExecutor::with_pool(None)
    }

    /// An executor on `pool`.
    ///
    /// ```
    /// let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    /// let rayon = taskweave_bridge::RayonExecutor::new(pool);
    /// assert_eq!(rayon.num_threads(), 1);
    /// ```
    pub fn new(pool: rayon::ThreadPool) -> RayonExecutor {
        RayonExecutor::with_pool(Some(Arc::new(pool)))
    }

    /// An executor on a shared `pool`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let pool = Arc::new(rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap());
    /// let rayon = taskweave_bridge::RayonExecutor::from_arc(pool.clone());
    /// assert_eq!(rayon.spawn(|| rayon::current_num_threads()).result(None).unwrap(), 2);
    /// ```
    pub fn from_arc(pool: Arc<rayon::ThreadPool>) -> RayonExecutor {
        RayonExecutor::with_pool(Some(pool))
    }

    fn with_pool(pool: Option<Arc<rayon::ThreadPool>>) -> RayonExecutor {
        RayonExecutor {
            shared: Arc::new(RayonShared {
                pool,
                shutdown: AtomicBool::new(false),
                epoch: AtomicU64::new(0),
                unfinished: AtomicUsize::new(0),
                idle: Mutex::new(()),
                idle_cond: Condvar::new(),
            }),
        }
    }

    /// The number of threads of the pool.
    ///
    /// ```
    /// let rayon = taskweave_bridge::RayonExecutor::global();
    /// assert_eq!(rayon.num_threads(), rayon::current_num_threads());
    /// ```
    pub fn num_threads(&self) -> usize {
        self.shared.parallelism()
    }

    /// Runs `f` on the pool, inside the caller's current `tracing` span, and returns its
    /// promise.
    ///
    /// # Errors
    ///
    /// The promise carries [`ErrorKind::Panicked`](taskweave_core::ErrorKind::Panicked) when `f`
    /// panics, [`ErrorKind::Shutdown`](taskweave_core::ErrorKind::Shutdown) after
    /// [`shutdown`](Self::shutdown), [`ErrorKind::Cancelled`](taskweave_core::ErrorKind::Cancelled)
    /// when cancelled before it started.
    ///
    /// ```
    /// let rayon = taskweave_bridge::RayonExecutor::global();
    /// let err = rayon.spawn(|| panic!("bad pixel")).result(None).unwrap_err();
    /// assert!(err.to_string().contains("bad pixel"));
    /// ```
    ///
    /// [`ErrorKind::Panicked`]: taskweave_core::ErrorKind::Panicked
    /// [`ErrorKind::Shutdown`]: taskweave_core::ErrorKind::Shutdown
    /// [`ErrorKind::Cancelled`]: taskweave_core::ErrorKind::Cancelled
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> Promise<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (promise, work) = job::promise_work(EXECUTOR, job::describe::<F>(), f);
        self.shared.submit(work);
        promise
    }

    /// Where this executor's jobs go, for its `Executor` impl.
    pub(crate) fn queue(&self) -> Arc<impl JobQueue> {
        self.shared.clone()
    }

    /// Maps `f` over `items` in parallel on the pool; the promise holds the results in input
    /// order.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn): a panic for any item fails the whole map.
    ///
    /// ```
    /// let rayon = taskweave_bridge::RayonExecutor::global();
    /// let mut lens = rayon.par_map(vec!["a", "bb"], str::len);
    /// assert_eq!(lens.result(None).unwrap(), [1, 2]);
    /// ```
    #[track_caller]
    pub fn par_map<I, F, R>(&self, items: I, f: F) -> Promise<Vec<R>>
    where
        I: IntoParallelIterator + Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        self.spawn(move || items.into_par_iter().map(f).collect())
    }

    /// A lazy map with a bounded window, each item one rayon job, results in input order
    /// (see [`ThreadPoolExecutor::map`](crate::ThreadPoolExecutor::map)).
    ///
    /// ```
    /// let rayon = taskweave_bridge::RayonExecutor::global();
    /// let v: Vec<u32> = rayon.map(|x: u32| x * 3, 0..4).map(Result::unwrap).collect();
    /// assert_eq!(v, [0, 3, 6, 9]);
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

    /// [`map`](Self::map) with options.
    ///
    /// ```
    /// use taskweave_bridge::{MapOptions, RayonExecutor};
    /// let rayon = RayonExecutor::global();
    /// let n = rayon.map_with(|x: u32| x, 0..10, MapOptions::new().window(4)).count();
    /// assert_eq!(n, 10);
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

    /// A lazy map yielding `(index, result)` in completion order.
    ///
    /// ```
    /// let rayon = taskweave_bridge::RayonExecutor::global();
    /// let mut indices: Vec<usize> = rayon.map_unordered(|x: u8| x, 0..5).map(|(i, _)| i).collect();
    /// indices.sort();
    /// assert_eq!(indices, [0, 1, 2, 3, 4]);
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
    /// use taskweave_bridge::{MapOptions, RayonExecutor};
    /// let rayon = RayonExecutor::global();
    /// let n = rayon.map_unordered_with(|x: u32| x, 0..10, MapOptions::new().chunksize(3)).count();
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

    /// Refuses new work from now on ([`ErrorKind::Shutdown`](taskweave_core::ErrorKind::Shutdown)).
    /// With `cancel_futures`, work submitted earlier that has not started is skipped with
    /// [`ErrorKind::Cancelled`](taskweave_core::ErrorKind::Cancelled). With `wait`, returns once
    /// all work submitted through this executor has finished (not honoured inside an async task,
    /// where it would block the runtime). The rayon pool itself keeps running until it is dropped.
    ///
    /// ```
    /// let rayon = taskweave_bridge::RayonExecutor::global();
    /// let mut p = rayon.spawn(|| 1);
    /// rayon.shutdown(true, false);
    /// assert_eq!(p.result(None).unwrap(), 1);
    /// assert!(rayon.spawn(|| 2).result(None).is_err());
    /// ```
    ///
    /// [`ErrorKind::Shutdown`]: taskweave_core::ErrorKind::Shutdown
    /// [`ErrorKind::Cancelled`]: taskweave_core::ErrorKind::Cancelled
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        if cancel_futures {
            self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        }
        if wait && taskweave_core::strict::check_blocking_wait("RayonExecutor::shutdown").is_ok() {
            let mut guard = lock(&self.shared.idle);
            while self.shared.unfinished.load(Ordering::SeqCst) > 0 {
                guard = poison::recover(self.shared.idle_cond.wait(guard));
            }
        }
    }
}

impl Default for RayonExecutor {
    fn default() -> RayonExecutor {
        RayonExecutor::global()
    }
}

impl fmt::Debug for RayonExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RayonExecutor")
            .field("global", &self.shared.pool.is_none())
            .field("num_threads", &self.num_threads())
            .field(
                "unfinished",
                &self.shared.unfinished.load(Ordering::Relaxed),
            )
            .finish()
    }
}

impl RayonShared {
    fn submit<J: FnOnce(Run) + Send + 'static>(self: &Arc<Self>, job: J) {
        if self.shutdown.load(Ordering::SeqCst) {
            job(Run::Skip(job::refused_after_shutdown(EXECUTOR)));
            return;
        }
        self.unfinished.fetch_add(1, Ordering::SeqCst);
        let epoch = self.epoch.load(Ordering::SeqCst);
        let shared = self.clone();
        let task = move || {
            if shared.epoch.load(Ordering::SeqCst) != epoch {
                job(Run::Skip(job::cancelled_by_shutdown(EXECUTOR)));
            } else {
                job::run_contained(job);
            }
            if shared.unfinished.fetch_sub(1, Ordering::SeqCst) == 1 {
                // Taking the lock orders this wake-up after a waiter's check.
                let _guard = lock(&shared.idle);
                shared.idle_cond.notify_all();
            }
        };
        match &self.pool {
            Some(pool) => pool.spawn(task),
            None => rayon::spawn(task),
        }
    }
}

impl JobQueue for RayonShared {
    fn push_jobs(self: Arc<Self>, jobs: &mut Vec<Job>) {
        for job in jobs.drain(..) {
            self.submit(job);
        }
    }

    fn parallelism(&self) -> usize {
        match &self.pool {
            Some(pool) => pool.current_num_threads(),
            None => rayon::current_num_threads(),
        }
    }
}

impl<F, T> Runs<F> for RayonExecutor
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    type Output = T;

    #[track_caller]
    fn run(&self, f: F) -> Promise<T> {
        self.spawn(f)
    }
}
