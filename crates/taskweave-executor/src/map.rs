//! The map engine: [`Map`] (input order) and [`MapUnordered`] (completion order), lazy and
//! windowed, over any executor that implements [`Dispatch`].
//!
//! # How it works
//!
//! The consumer pulls inputs only while fewer than `window` items are in flight, so memory stays
//! bounded even for an endless iterator. Inputs go to the executor in chunks of `chunksize`; once
//! started, the window is refilled only when half of it has drained, so chunks go out in batches
//! (one lock and one round of wake-ups on the executor's side). Results come back through the
//! chunks' [`ChunkResults`](crate::ChunkResults) onto the map's board (see `dispatch.rs`); the
//! consumer takes them from there, blocking on a condvar (`Iterator`) or registering its waker
//! (`Stream`).
//!
//! **Invariant:** the consumer takes each index once; after the map is closed (dropped, timed
//! out, refused) nothing more is dispatched and late results are discarded.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use taskweave_core::Error;

use crate::dispatch::{Board, Chunk, ChunkResults, Dispatch, Items};
use crate::options::MapOptions;
use crate::poison;

/// The results of a map in input order: a blocking [`Iterator`] for plain threads and an async
/// stream ([`next_async`](Map::next_async), [`collect_async`](Map::collect_async),
/// `futures::Stream`) for async code. Every executor's `map` returns it.
///
/// Each item is the outcome of one call: `Ok(value)`, or the error of that call (a panic,
/// shutdown of the executor, a dead worker); later items still follow. After a timeout the map
/// yields one [`Error::TimedOut`] and ends. Dropping it cancels the items not yet started.
///
/// Iterating blocks the thread; inside an async task the first item is [`Error::Refused`]
/// (use [`next_async`](Map::next_async) there).
///
/// # Differences from Python
///
/// `Executor.map` submits every input at once (before Python 3.14's `buffersize`) and raises the
/// first error when its result is reached; this map is lazy with a bounded window, and hands
/// each item's error over as that item, so the items after it still come.
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
/// Like [`Map`] otherwise: blocking iterator, async stream, window, chunksize, timeout,
/// cancellation on drop.
///
/// # Differences from Python
///
/// concurrent.futures has no unordered map; this is `as_completed` over the submitted calls,
/// with the input index attached so a result can be matched to its input.
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
    /// A map of `dispatch`'s function over `inputs`, in input order. This is how an executor
    /// builds the map its `map` method returns.
    ///
    /// ```
    /// # use taskweave_executor::{Chunk, Dispatch, Map, MapOptions};
    /// struct Inline(fn(u8) -> u8);
    /// impl Dispatch for Inline {
    ///     type Input = u8;
    ///     type Output = u8;
    ///     fn default_window(&self, chunksize: usize) -> usize {
    ///         chunksize
    ///     }
    ///     fn dispatch(&mut self, chunks: &mut Vec<Chunk<u8, u8>>) {
    ///         for chunk in chunks.drain(..) {
    ///             let (items, mut results) = chunk.into_parts();
    ///             results.extend(items.map(|x| Ok((self.0)(x))));
    ///         }
    ///     }
    /// }
    /// fn inc(x: u8) -> u8 { x + 1 }
    /// let out: Vec<u8> = Map::new(Inline(inc), [1, 2, 3], MapOptions::new()).map(Result::unwrap).collect();
    /// assert_eq!(out, [2, 3, 4]);
    /// ```
    pub fn new<D, I>(dispatch: D, inputs: I, options: MapOptions) -> Map<R>
    where
        D: Dispatch<Output = R>,
        I: IntoIterator<Item = D::Input>,
        I::IntoIter: Send + 'static,
    {
        Map {
            engine: Engine::new(dispatch, inputs, options, true),
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

    /// Awaits every result, in input order.
    ///
    /// # Errors
    ///
    /// The first item's error, at which point the rest of the map is cancelled (as when it is
    /// dropped).
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// let squares = pool.map(|x: u32| x * x, 1..=3).collect_async().await.unwrap();
    /// assert_eq!(squares, [1, 4, 9]);
    /// let failed = pool.map(|x: u32| if x == 2 { panic!("two") } else { x }, 1..=3).collect_async().await;
    /// assert!(failed.unwrap_err().is_panic());
    /// # });
    /// ```
    pub async fn collect_async(mut self) -> Result<Vec<R>, Error> {
        let mut out = Vec::new();
        while let Some(r) = self.next_async().await {
            out.push(r?);
        }
        Ok(out)
    }
}

impl<R: Send + 'static> MapUnordered<R> {
    /// A map of `dispatch`'s function over `inputs`, yielding in completion order. This is how
    /// an executor builds the map its `map_unordered` method returns.
    ///
    /// ```
    /// # use taskweave_executor::{Chunk, Dispatch, MapOptions, MapUnordered};
    /// struct Inline;
    /// impl Dispatch for Inline {
    ///     type Input = u8;
    ///     type Output = u8;
    ///     fn default_window(&self, chunksize: usize) -> usize {
    ///         chunksize
    ///     }
    ///     fn dispatch(&mut self, chunks: &mut Vec<Chunk<u8, u8>>) {
    ///         for chunk in chunks.drain(..) {
    ///             let (items, mut results) = chunk.into_parts();
    ///             results.extend(items.map(Ok));
    ///         }
    ///     }
    /// }
    /// let out: Vec<(usize, u8)> = MapUnordered::new(Inline, [5, 6], MapOptions::new())
    ///     .map(|(i, r)| (i, r.unwrap()))
    ///     .collect();
    /// assert_eq!(out, [(0, 5), (1, 6)]);
    /// ```
    pub fn new<D, I>(dispatch: D, inputs: I, options: MapOptions) -> MapUnordered<R>
    where
        D: Dispatch<Output = R>,
        I: IntoIterator<Item = D::Input>,
        I::IntoIter: Send + 'static,
    {
        MapUnordered {
            engine: Engine::new(dispatch, inputs, options, false),
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

    /// Awaits every result, as `(input index, value)` in completion order.
    ///
    /// # Errors
    ///
    /// The first error to arrive, at which point the rest of the map is cancelled.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let pool = taskweave_bridge::ThreadPoolExecutor::new();
    /// let mut got = pool.map_unordered(|x: u32| x * 10, 0..3).collect_async().await.unwrap();
    /// got.sort();
    /// assert_eq!(got, [(0, 0), (1, 10), (2, 20)]);
    /// # });
    /// ```
    pub async fn collect_async(mut self) -> Result<Vec<(usize, R)>, Error> {
        let mut out = Vec::new();
        while let Some((i, r)) = self.next_async().await {
            out.push((i, r?));
        }
        Ok(out)
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

/// The input side of a map with its types erased: takes inputs, makes chunks, dispatches them.
trait Source: Send {
    /// Dispatches chunks covering at least `room` more items (or what is left of the input);
    /// returns how many items it took and whether the input has ended.
    fn feed(&mut self, room: usize) -> (usize, bool);
    /// The executor's window when the options give none.
    fn default_window(&self) -> usize;
}

struct Feed<I, D: Dispatch> {
    inputs: I,
    dispatch: D,
    board: Arc<Board<D::Output>>,
    chunksize: usize,
    next_index: usize,
    batch: Vec<Chunk<D::Input, D::Output>>,
}

impl<I, D> Source for Feed<I, D>
where
    D: Dispatch,
    I: Iterator<Item = D::Input> + Send,
{
    fn feed(&mut self, room: usize) -> (usize, bool) {
        let mut taken = 0;
        let mut ended = false;
        while taken < room {
            let items = if self.chunksize == 1 {
                match self.inputs.next() {
                    Some(item) => Items::one(item),
                    None => {
                        ended = true;
                        break;
                    }
                }
            } else {
                // Grown item by item, not reserved from the chunksize or the input's size hint:
                // either may be far larger than what really arrives.
                let mut items = Vec::new();
                for item in self.inputs.by_ref().take(self.chunksize) {
                    items.push(item);
                }
                if items.is_empty() {
                    ended = true;
                    break;
                }
                Items::many(items)
            };
            let len = items.len();
            let results = ChunkResults::new(self.board.clone(), self.next_index, len);
            self.next_index += len;
            taken += len;
            self.batch.push(Chunk::new(items, results));
        }
        if !self.batch.is_empty() {
            self.dispatch.dispatch(&mut self.batch);
            // What the executor left behind ends `Abandoned` as it drops.
            self.batch.clear();
        }
        (taken, ended)
    }

    fn default_window(&self) -> usize {
        self.dispatch.default_window(self.chunksize)
    }
}

/// The consumer side shared by both map kinds.
struct Engine<R> {
    board: Arc<Board<R>>,
    source: Option<Box<dyn Source>>,
    window: Option<usize>,
    in_flight: usize,
    started: bool,
    exhausted: bool,
    finished: bool,
    /// Given before anything ran (bad options); the map yields it and ends.
    refusal: Option<Error>,
    /// The timeout, and its deadline when it is representable.
    timeout: Option<(Duration, Option<Instant>)>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// Longer than any map runs: a timeout beyond it is treated as none, so no clock arithmetic
/// (here or in tokio's timer) can overflow.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl<R: Send + 'static> Engine<R> {
    fn new<D, I>(dispatch: D, inputs: I, options: MapOptions, ordered: bool) -> Engine<R>
    where
        D: Dispatch<Output = R>,
        I: IntoIterator<Item = D::Input>,
        I::IntoIter: Send + 'static,
    {
        let inputs = inputs.into_iter();
        let chunksize = options.chunksize.unwrap_or(1);
        let total = options.total.or_else(|| match inputs.size_hint() {
            (low, Some(high)) if low == high => u64::try_from(low).ok(),
            _ => None,
        });
        let mut progress = options.progress;
        progress.start(total);
        let board = Arc::new(Board::new(ordered, progress));
        let refusal = (chunksize == 0).then(|| {
            Error::refused("MapOptions::chunksize must be at least 1, got 0: nothing was run")
        });
        let source: Option<Box<dyn Source>> = refusal.is_none().then(|| {
            Box::new(Feed {
                inputs,
                dispatch,
                board: board.clone(),
                chunksize,
                next_index: 0,
                batch: Vec::new(),
            }) as Box<dyn Source>
        });
        let now = Instant::now();
        Engine {
            board,
            source,
            window: options.window,
            in_flight: 0,
            started: false,
            exhausted: false,
            finished: false,
            refusal,
            timeout: options.timeout.map(|t| {
                let deadline = if t > FOREVER {
                    None
                } else {
                    now.checked_add(t)
                };
                (t, deadline)
            }),
            sleep: None,
        }
    }

    /// Submits inputs until the window is full or the input ends.
    ///
    /// Once started, it refills only when half the window has drained, so chunks go to the
    /// executor in batches.
    fn fill(&mut self) {
        if self.exhausted || self.finished {
            return;
        }
        let Some(source) = self.source.as_mut() else {
            return;
        };
        let window = self
            .window
            .unwrap_or_else(|| source.default_window())
            .max(1);
        if (self.started && self.in_flight > window / 2) || self.in_flight >= window {
            return;
        }
        self.started = true;
        let (taken, ended) = source.feed(window - self.in_flight);
        self.in_flight += taken;
        if ended {
            self.exhausted = true;
            // The input and the executor's handle are not needed any more.
            self.source = None;
        }
    }

    /// A result that ends the map before anything was waited for, if any.
    fn early_end(&mut self) -> Option<(usize, Result<R, Error>)> {
        let e = self.refusal.take()?;
        self.close();
        Some((0, Err(e)))
    }

    fn next_blocking(&mut self) -> Option<(usize, Result<R, Error>)> {
        if self.finished {
            return None;
        }
        if let Some(out) = self.early_end() {
            return Some(out);
        }
        if let Err(e) = taskweave_core::strict::check_blocking_wait("Map::next") {
            let index = self.board.base();
            self.close();
            return Some((index, Err(e)));
        }
        self.fill();
        if self.in_flight == 0 {
            self.close();
            return None;
        }
        let mut inner = self.board.lock();
        loop {
            if let Some(out) = self.board.take_ready(&mut inner) {
                drop(inner);
                return Some(self.taken(out));
            }
            inner.sleeping = true;
            inner = match self.timeout {
                None | Some((_, None)) => poison::recover(self.board.condvar().wait(inner)),
                Some((after, Some(deadline))) => {
                    let now = Instant::now();
                    if now >= deadline {
                        inner.sleeping = false;
                        drop(inner);
                        return Some(self.timed_out(after));
                    }
                    poison::recover(self.board.condvar().wait_timeout(inner, deadline - now)).0
                }
            };
            inner.sleeping = false;
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, Result<R, Error>)>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if let Some(out) = self.early_end() {
            return Poll::Ready(Some(out));
        }
        self.fill();
        if self.in_flight == 0 {
            self.close();
            return Poll::Ready(None);
        }
        {
            let mut inner = self.board.lock();
            if let Some(out) = self.board.take_ready(&mut inner) {
                drop(inner);
                return Poll::Ready(Some(self.taken(out)));
            }
            match &inner.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => inner.waker = Some(cx.waker().clone()),
            }
        }
        if let Some((after, Some(deadline))) = self.timeout {
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
        let index = self.board.base();
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
        self.board.close();
        // Dropped after the board is closed, so chunks it still holds are not reported.
        self.source = None;
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
