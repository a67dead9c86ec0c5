//! Progress of a map: [`Progress`] reports, delivered to callbacks, to a [`ProgressStream`], and
//! with the `progress` feature to an indicatif bar. Every executor's map reports the same way.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::poison::lock;

/// How far a map has come: items done (and how many of them failed), and the total when known.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use taskweave_bridge::ThreadPoolExecutor;
/// use taskweave_executor::{MapOptions, Progress};
///
/// let last = Arc::new(Mutex::new(Progress::default()));
/// let l = last.clone();
/// let options = MapOptions::new().on_progress(move |p| {
///     let mut last = l.lock().unwrap();
///     if p.done() > last.done() {
///         *last = p;
///     }
/// });
/// let pool = ThreadPoolExecutor::new();
/// assert_eq!(pool.map_with(|x: u8| x, 0..4, options).count(), 4);
/// let p = *last.lock().unwrap();
/// assert_eq!((p.done(), p.total(), p.fraction()), (4, Some(4), Some(1.0)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Progress {
    done: u64,
    failed: u64,
    total: Option<u64>,
}

impl Progress {
    /// Items finished so far (successfully or not).
    ///
    /// ```
    /// use taskweave_bridge::ThreadPoolExecutor;
    /// use taskweave_executor::MapOptions;
    /// let pool = ThreadPoolExecutor::new();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let options = MapOptions::new().on_progress(move |p| tx.send(p).unwrap());
    /// let _: Vec<_> = pool.map_with(|x: u8| x, 0..4u8, options).collect();
    /// let last = rx.try_iter().last().unwrap();
    /// assert_eq!(last.done(), 4);
    /// ```
    pub fn done(&self) -> u64 {
        self.done
    }

    /// How many of the items done ended with an error.
    ///
    /// ```
    /// use taskweave_bridge::ThreadPoolExecutor;
    /// use taskweave_executor::MapOptions;
    /// let pool = ThreadPoolExecutor::new();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let options = MapOptions::new().on_progress(move |p| tx.send(p).unwrap());
    /// let odd_fails = |x: u8| if x % 2 == 1 { panic!("odd") } else { x };
    /// let _: Vec<_> = pool.map_with(odd_fails, 0..4u8, options).collect();
    /// let last = rx.try_iter().max_by_key(|p| p.done()).unwrap();
    /// assert_eq!((last.done(), last.failed()), (4, 2));
    /// ```
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// How many items there are, when the input's length is known (an exact `size_hint`, or
    /// [`MapOptions::total`](crate::MapOptions::total)).
    ///
    /// ```
    /// use taskweave_bridge::ThreadPoolExecutor;
    /// use taskweave_executor::MapOptions;
    /// let pool = ThreadPoolExecutor::new();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let options = MapOptions::new().on_progress(move |p| tx.send(p).unwrap());
    /// let _: Vec<_> = pool.map_with(|x: u8| x, 0..4u8, options).collect();
    /// let last = rx.try_iter().last().unwrap();
    /// assert_eq!(last.total(), Some(4));
    /// ```
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// `done / total` between 0 and 1, when the total is known and not zero.
    ///
    /// ```
    /// use taskweave_bridge::ThreadPoolExecutor;
    /// use taskweave_executor::MapOptions;
    /// let pool = ThreadPoolExecutor::new();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let options = MapOptions::new().on_progress(move |p| tx.send(p).unwrap());
    /// let _: Vec<_> = pool.map_with(|x: u8| x, 0..4u8, options).collect();
    /// let last = rx.try_iter().last().unwrap();
    /// assert_eq!(last.fraction(), Some(1.0));
    /// ```
    pub fn fraction(&self) -> Option<f64> {
        match self.total {
            Some(total) if total > 0 => Some(self.done as f64 / total as f64),
            _ => None,
        }
    }
}

/// Progress reports of one map as an async stream; it ends when the map has ended.
///
/// Reports may be coalesced: a slow reader sees the latest, never a stale one. Made by
/// [`MapOptions::progress_stream`](crate::MapOptions::progress_stream).
///
/// ```
/// # taskweave_core::run(async {
/// use taskweave_bridge::ThreadPoolExecutor;
/// use taskweave_executor::MapOptions;
///
/// let pool = ThreadPoolExecutor::new();
/// let (options, mut progress) = MapOptions::new().progress_stream();
/// let mut map = pool.map_with(|x: u8| x, 0..8, options);
/// while map.next_async().await.is_some() {}
/// drop(map);
/// let mut last = progress.latest();
/// while let Some(p) = progress.next().await {
///     last = p;
/// }
/// assert_eq!(last.done(), 8);
/// # });
/// ```
pub struct ProgressStream {
    rx: watch::Receiver<Progress>,
}

impl ProgressStream {
    /// The next report, or `None` once the map has ended and the last report was seen.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// use taskweave_bridge::ThreadPoolExecutor;
    /// use taskweave_executor::MapOptions;
    /// let pool = ThreadPoolExecutor::new();
    /// let (options, mut progress) = MapOptions::new().progress_stream();
    /// let mut map = pool.map_with(|x: u8| x, 0..3, options);
    /// while map.next_async().await.is_some() {}
    /// drop(map);
    /// while let Some(p) = progress.next().await {
    ///     assert!(p.done() <= 3);
    /// }
    /// # });
    /// ```
    pub async fn next(&mut self) -> Option<Progress> {
        self.rx.changed().await.ok()?;
        Some(*self.rx.borrow_and_update())
    }

    /// The latest report, without waiting.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// use taskweave_bridge::ThreadPoolExecutor;
    /// use taskweave_executor::MapOptions;
    /// let pool = ThreadPoolExecutor::new();
    /// let (options, mut progress) = MapOptions::new().progress_stream();
    /// let mut map = pool.map_with(|x: u8| x, 0..3, options);
    /// while map.next_async().await.is_some() {}
    /// drop(map);
    /// assert_eq!(progress.latest().done(), 3);
    /// # });
    /// ```
    pub fn latest(&self) -> Progress {
        *self.rx.borrow()
    }
}

impl fmt::Debug for ProgressStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgressStream")
            .field("latest", &self.latest())
            .finish()
    }
}

type Callback = Arc<dyn Fn(Progress) + Send + Sync>;
type StreamSender = Arc<Mutex<Option<watch::Sender<Progress>>>>;

/// Where a map's progress goes. Empty (and free) unless asked for.
#[derive(Clone, Default)]
pub(crate) struct ProgressHook {
    callbacks: Vec<Callback>,
    streams: Vec<StreamSender>,
    total: Option<u64>,
    #[cfg(feature = "progress")]
    want_bar: bool,
    #[cfg(feature = "progress")]
    bar: Option<indicatif::ProgressBar>,
}

impl ProgressHook {
    pub(crate) fn add_callback(&mut self, callback: Callback) {
        self.callbacks.push(callback);
    }

    pub(crate) fn add_stream(&mut self) -> ProgressStream {
        let (tx, rx) = watch::channel(Progress::default());
        self.streams.push(Arc::new(Mutex::new(Some(tx))));
        ProgressStream { rx }
    }

    #[cfg(feature = "progress")]
    pub(crate) fn want_bar(&mut self) {
        self.want_bar = true;
    }

    fn is_empty(&self) -> bool {
        #[cfg(feature = "progress")]
        if self.bar.is_some() {
            return false;
        }
        self.callbacks.is_empty() && self.streams.is_empty()
    }

    /// Called once when the map starts, with the total if known.
    pub(crate) fn start(&mut self, total: Option<u64>) {
        self.total = total;
        #[cfg(feature = "progress")]
        if self.want_bar {
            self.bar = Some(match total {
                Some(n) => indicatif::ProgressBar::new(n),
                None => indicatif::ProgressBar::new_spinner(),
            });
        }
        if !self.is_empty() {
            self.send(Progress {
                done: 0,
                failed: 0,
                total,
            });
        }
    }

    pub(crate) fn report(&self, done: u64, failed: u64) {
        if self.is_empty() {
            return;
        }
        self.send(Progress {
            done,
            failed,
            total: self.total,
        });
    }

    fn send(&self, progress: Progress) {
        for cb in &self.callbacks {
            // A failing progress callback must not take the worker or the item down with it.
            let _ = catch_unwind(AssertUnwindSafe(|| cb(progress)));
        }
        for s in &self.streams {
            if let Some(tx) = lock(s).as_ref() {
                tx.send_replace(progress);
            }
        }
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            bar.set_position(progress.done);
        }
    }

    /// The map ended: streams end, the bar is finished.
    pub(crate) fn finish(&self) {
        for s in &self.streams {
            lock(s).take();
        }
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
