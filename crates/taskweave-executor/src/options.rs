//! [`MapOptions`]: how a map runs (window, chunksize, timeout) and where its progress goes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::progress::{Progress, ProgressHook, ProgressStream};

/// Options for a map: how many items in flight, how many per call, a timeout, progress
/// reporting. Every executor's map takes them.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use taskweave_executor::MapOptions;
///
/// let options = MapOptions::new()
///     .window(64)
///     .chunksize(8)
///     .timeout(Duration::from_secs(30))
///     .on_progress(|p| eprintln!("{} of {:?}", p.done(), p.total()));
/// # drop(options);
/// ```
#[derive(Clone, Default)]
#[must_use = "options do nothing until passed to a map"]
pub struct MapOptions {
    pub(crate) window: Option<usize>,
    pub(crate) chunksize: Option<usize>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) total: Option<u64>,
    pub(crate) progress: ProgressHook,
}

impl MapOptions {
    /// The defaults: the executor's window (for a thread pool eight items per worker, at least
    /// 64), one input per call, no timeout, no progress.
    ///
    /// ```
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// let options = taskweave_executor::MapOptions::new();
    /// assert_eq!(pool.map_with(|x: u8| x, 0..3, options).count(), 3);
    /// ```
    pub fn new() -> MapOptions {
        MapOptions::default()
    }

    /// At most `n` items in flight (submitted and not yet taken); at least 1, or one chunk
    /// when chunks are larger.
    ///
    /// A larger window keeps workers busy when items vary in cost; a smaller one bounds memory
    /// and how far the map reads ahead of its consumer. Nothing is reserved up front, so a huge
    /// window costs only what is really in flight.
    ///
    /// ```
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// let options = taskweave_executor::MapOptions::new().window(2);
    /// let firsts: Vec<u64> = pool.map_with(|x: u64| x, 0.., options).take(3).map(Result::unwrap).collect();
    /// assert_eq!(firsts, [0, 1, 2]);
    /// ```
    pub fn window(mut self, n: usize) -> MapOptions {
        self.window = Some(n.max(1));
        self
    }

    /// Sends inputs to the executor `n` at a time (Python's `chunksize`): one call runs `n`
    /// items in turn, which saves per-call overhead for cheap items, most of all on a process
    /// pool. Results still come one per input.
    ///
    /// A chunksize of 0 is refused: the map's first item is [`Error::Refused`] and nothing runs.
    ///
    /// # Differences from Python
    ///
    /// Python raises `ValueError` from `map` itself; here the map carries the error, since
    /// building options cannot fail.
    ///
    /// [`Error::Refused`]: taskweave_core::Error::Refused
    ///
    /// ```
    /// use taskweave_executor::MapOptions;
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// let sum: u32 = pool.map_with(|x: u32| x, 0..100, MapOptions::new().chunksize(10))
    ///     .map(Result::unwrap)
    ///     .sum();
    /// assert_eq!(sum, 4950);
    /// let mut refused = pool.map_with(|x: u32| x, 0..100, MapOptions::new().chunksize(0));
    /// assert!(refused.next().unwrap().unwrap_err().to_string().contains("chunksize"));
    /// assert!(refused.next().is_none());
    /// ```
    pub fn chunksize(mut self, n: usize) -> MapOptions {
        self.chunksize = Some(n);
        self
    }

    /// Gives up when the whole map takes longer than `timeout`, counted from the call to `map`
    /// as in Python: the next item then is [`Error::TimedOut`], the items not started are
    /// cancelled, and the map ends. A timeout too long to represent as a deadline (such as
    /// [`Duration::MAX`]) never fires.
    ///
    /// [`Error::TimedOut`]: taskweave_core::Error::TimedOut
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskweave_bridge::ThreadPoolExecutor;
    /// use taskweave_executor::MapOptions;
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
    /// use taskweave_executor::MapOptions;
    /// let lines = "a\nb\nc".lines(); // no exact length
    /// let options = MapOptions::new().total(3).on_progress(|p| assert_eq!(p.total(), Some(3)));
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// assert_eq!(pool.map_with(str::len, lines, options).count(), 3);
    /// ```
    pub fn total(mut self, total: u64) -> MapOptions {
        self.total = Some(total);
        self
    }

    /// Calls `callback` each time results arrive, on the thread that delivered them (a worker
    /// thread, or a process pool's reader thread), with how many are done and the total when
    /// known. Keep it cheap; a panic in it is caught and ignored.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use taskweave_bridge::ThreadPoolExecutor;
    /// use taskweave_executor::MapOptions;
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
    /// use taskweave_bridge::ThreadPoolExecutor;
    /// use taskweave_executor::MapOptions;
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
    /// assert_eq!(map.collect_async().await.unwrap().len(), 10);
    /// assert_eq!(watcher.await.unwrap(), 10);
    /// # });
    /// ```
    pub fn progress_stream(mut self) -> (MapOptions, ProgressStream) {
        let stream = self.progress.add_stream();
        (self, stream)
    }

    /// Draws an [`indicatif`] progress bar on stderr while the map runs (like tqdm's
    /// `thread_map`). Needs the `progress` feature.
    ///
    /// ```
    /// use taskweave_bridge::ThreadPoolExecutor;
    /// use taskweave_executor::MapOptions;
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
            .field("chunksize", &self.chunksize)
            .field("timeout", &self.timeout)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}
