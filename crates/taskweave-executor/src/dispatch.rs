//! The seam between the map engine and an executor: [`Dispatch`] hands an executor chunks of
//! inputs ([`Chunk`]), each with the [`ChunkResults`] through which its results come back.
//!
//! # How it works
//!
//! Results land on one board per map: a mutex and a condvar carry every result, so items do not
//! get a promise each, and a worker wakes the consumer only for a result it is waiting for.
//! Ordered, the board is a deque that starts at the next index the consumer takes and grows
//! only as far as results have arrived (at most the items in flight, never preallocated by the
//! window); unordered, a completion queue.
//!
//! **Invariant:** every index the engine hands out gets exactly one result. A [`ChunkResults`]
//! dropped before it delivered all of them fills in the rest with [`Error::Abandoned`], so a
//! consumer never waits for an item an executor lost. After the map is closed (dropped, timed
//! out) late results are discarded, outside the lock.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;

use taskweave_core::Error;

use crate::poison;
use crate::progress::ProgressHook;

/// What an executor implements so the map engine can run maps on it: take chunks of inputs and
/// deliver one result per input.
///
/// One value is made per map (it usually holds the function and a handle to the executor's
/// queue). The engine calls [`dispatch`](Self::dispatch) from the consuming thread whenever the
/// window has room, with the chunks it took from the input; each [`Chunk`] carries its inputs and
/// the [`ChunkResults`] to complete, from any thread, in input order. The engine does the rest:
/// the window, ordering, timeouts, progress, cancellation on drop, the strict blocking-wait
/// check, `Iterator` and `Stream`.
///
/// # Examples
///
/// An executor that runs each chunk on a thread of its own:
///
/// ```
/// use taskweave_executor::{Chunk, Dispatch, Map, MapOptions};
///
/// struct ThreadPerChunk(fn(u64) -> u64);
///
/// impl Dispatch for ThreadPerChunk {
///     type Input = u64;
///     type Output = u64;
///
///     fn default_window(&self, chunksize: usize) -> usize {
///         4 * chunksize
///     }
///
///     fn dispatch(&mut self, chunks: &mut Vec<Chunk<u64, u64>>) {
///         let f = self.0;
///         for chunk in chunks.drain(..) {
///             let (items, mut results) = chunk.into_parts();
///             std::thread::spawn(move || {
///                 for x in items {
///                     if results.is_cancelled() {
///                         break; // the map was dropped: the rest is not wanted
///                     }
///                     results.push(Ok(f(x)));
///                 }
///             });
///         }
///     }
/// }
///
/// fn square(x: u64) -> u64 { x * x }
///
/// let map = Map::new(ThreadPerChunk(square), 1..=4, MapOptions::new().chunksize(2));
/// let squares: Vec<u64> = map.map(Result::unwrap).collect();
/// assert_eq!(squares, [1, 4, 9, 16]);
/// ```
pub trait Dispatch: Send + 'static {
    /// One input of the map.
    type Input: Send + 'static;
    /// What one call returns.
    type Output: Send + 'static;

    /// How many items to keep in flight when [`MapOptions::window`](crate::MapOptions::window)
    /// is not given, for chunks of `chunksize` inputs. Asked before every refill, so it may follow
    /// the executor's load. Use saturating arithmetic: `chunksize` may be huge.
    ///
    /// ```
    /// # use taskweave_executor::{Chunk, Dispatch};
    /// struct Eight;
    /// impl Dispatch for Eight {
    ///     type Input = ();
    ///     type Output = ();
    ///     fn default_window(&self, chunksize: usize) -> usize {
    ///         chunksize.saturating_mul(8)
    ///     }
    ///     fn dispatch(&mut self, chunks: &mut Vec<Chunk<(), ()>>) {
    ///         chunks.clear(); // dropped chunks end `Abandoned`
    ///     }
    /// }
    /// assert_eq!(Eight.default_window(usize::MAX), usize::MAX);
    /// ```
    fn default_window(&self, chunksize: usize) -> usize;

    /// Starts the chunks, draining `chunks`. A chunk left in the vector is dropped, and its
    /// items end with [`Error::Abandoned`].
    ///
    /// An executor that refuses work (shut down, broken) completes the chunks at once with
    /// [`ChunkResults::fail`]; one that cannot run an item reports that item's error in its
    /// place and carries on with the next.
    ///
    /// ```
    /// # use taskweave_executor::{Chunk, Dispatch, Map, MapOptions};
    /// use taskweave_core::Error;
    /// struct ShutDown;
    /// impl Dispatch for ShutDown {
    ///     type Input = u8;
    ///     type Output = u8;
    ///     fn default_window(&self, chunksize: usize) -> usize {
    ///         chunksize
    ///     }
    ///     fn dispatch(&mut self, chunks: &mut Vec<Chunk<u8, u8>>) {
    ///         for chunk in chunks.drain(..) {
    ///             chunk.into_parts().1.fail(Error::shutdown("the executor was shut down"));
    ///         }
    ///     }
    /// }
    /// let out: Vec<_> = Map::new(ShutDown, [1, 2], MapOptions::new()).collect();
    /// assert!(out.iter().all(|r| matches!(r, Err(Error::Shutdown { .. }))));
    /// ```
    fn dispatch(&mut self, chunks: &mut Vec<Chunk<Self::Input, Self::Output>>);
}

/// Consecutive inputs of a map and the handle for their results.
///
/// ```
/// # use taskweave_executor::{Chunk, Dispatch, Map, MapOptions};
/// struct Inline;
/// impl Dispatch for Inline {
///     type Input = char;
///     type Output = usize;
///     fn default_window(&self, chunksize: usize) -> usize {
///         chunksize
///     }
///     fn dispatch(&mut self, chunks: &mut Vec<Chunk<char, usize>>) {
///         for chunk in chunks.drain(..) {
///             let first = chunk.first_index();
///             assert_eq!(chunk.len(), 3);
///             let (items, mut results) = chunk.into_parts();
///             results.extend(items.enumerate().map(|(i, _)| Ok(first + i)));
///         }
///     }
/// }
/// let indices: Vec<usize> =
///     Map::new(Inline, "abcdef".chars(), MapOptions::new().chunksize(3)).map(Result::unwrap).collect();
/// assert_eq!(indices, [0, 1, 2, 3, 4, 5]);
/// ```
pub struct Chunk<A, R> {
    items: Items<A>,
    results: ChunkResults<R>,
}

impl<A, R> Chunk<A, R> {
    pub(crate) fn new(items: Items<A>, results: ChunkResults<R>) -> Chunk<A, R> {
        Chunk { items, results }
    }

    /// The input index of the chunk's first item.
    ///
    /// ```
    /// # use taskweave_executor::{Chunk, Dispatch, Map, MapOptions};
    /// # struct Firsts;
    /// # impl Dispatch for Firsts {
    /// #     type Input = u8;
    /// #     type Output = usize;
    /// #     fn default_window(&self, chunksize: usize) -> usize { chunksize }
    /// #     fn dispatch(&mut self, chunks: &mut Vec<Chunk<u8, usize>>) {
    /// #         for chunk in chunks.drain(..) {
    /// let first = chunk.first_index();
    /// let (items, mut results) = chunk.into_parts();
    /// results.extend(items.map(|_| Ok(first)));
    /// #         }
    /// #     }
    /// # }
    /// # let v: Vec<usize> = Map::new(Firsts, 0..4, MapOptions::new().chunksize(2)).map(Result::unwrap).collect();
    /// # assert_eq!(v, [0, 0, 2, 2]);
    /// ```
    pub fn first_index(&self) -> usize {
        self.results.next
    }

    /// How many inputs the chunk holds (at least one, at most the map's chunksize).
    ///
    /// ```
    /// # use taskweave_executor::{Chunk, Dispatch, Map, MapOptions};
    /// # struct Lens;
    /// # impl Dispatch for Lens {
    /// #     type Input = u8;
    /// #     type Output = usize;
    /// #     fn default_window(&self, chunksize: usize) -> usize { chunksize }
    /// #     fn dispatch(&mut self, chunks: &mut Vec<Chunk<u8, usize>>) {
    /// #         for chunk in chunks.drain(..) {
    /// let len = chunk.len();
    /// let (items, mut results) = chunk.into_parts();
    /// results.extend(items.map(|_| Ok(len)));
    /// #         }
    /// #     }
    /// # }
    /// # let v: Vec<usize> = Map::new(Lens, 0..5, MapOptions::new().chunksize(2)).map(Result::unwrap).collect();
    /// # assert_eq!(v, [2, 2, 2, 2, 1]);
    /// ```
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Always `false`: the engine never makes an empty chunk.
    ///
    /// ```
    /// # use taskweave_executor::{Chunk, Dispatch, Map, MapOptions};
    /// # struct Check;
    /// # impl Dispatch for Check {
    /// #     type Input = u8;
    /// #     type Output = u8;
    /// #     fn default_window(&self, chunksize: usize) -> usize { chunksize }
    /// #     fn dispatch(&mut self, chunks: &mut Vec<Chunk<u8, u8>>) {
    /// #         for chunk in chunks.drain(..) {
    /// assert!(!chunk.is_empty());
    /// #             let (items, mut results) = chunk.into_parts();
    /// #             results.extend(items.map(Ok));
    /// #         }
    /// #     }
    /// # }
    /// # assert_eq!(Map::new(Check, 0..3, MapOptions::new()).count(), 3);
    /// ```
    pub fn is_empty(&self) -> bool {
        self.items.len() == 0
    }

    /// The inputs, and the handle through which their results go back.
    ///
    /// ```
    /// # use taskweave_executor::{Chunk, Dispatch, Map, MapOptions};
    /// # struct Double;
    /// # impl Dispatch for Double {
    /// #     type Input = u8;
    /// #     type Output = u8;
    /// #     fn default_window(&self, chunksize: usize) -> usize { chunksize }
    /// #     fn dispatch(&mut self, chunks: &mut Vec<Chunk<u8, u8>>) {
    /// #         for chunk in chunks.drain(..) {
    /// let (items, mut results) = chunk.into_parts();
    /// for x in items {
    ///     results.push(Ok(x * 2));
    /// }
    /// #         }
    /// #     }
    /// # }
    /// # let v: Vec<u8> = Map::new(Double, [1, 2], MapOptions::new()).map(Result::unwrap).collect();
    /// # assert_eq!(v, [2, 4]);
    /// ```
    pub fn into_parts(self) -> (Items<A>, ChunkResults<R>) {
        (self.items, self.results)
    }
}

impl<A, R> fmt::Debug for Chunk<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk")
            .field("first_index", &self.first_index())
            .field("len", &self.len())
            .finish()
    }
}

/// The inputs of one [`Chunk`], in input order.
///
/// A chunk of one input (the default) holds it without a vector of its own.
///
/// ```
/// # use taskweave_executor::{Chunk, Dispatch, Map, MapOptions};
/// # struct Sum;
/// # impl Dispatch for Sum {
/// #     type Input = u32;
/// #     type Output = u32;
/// #     fn default_window(&self, chunksize: usize) -> usize { chunksize }
/// #     fn dispatch(&mut self, chunks: &mut Vec<Chunk<u32, u32>>) {
/// #         for chunk in chunks.drain(..) {
/// let (items, mut results) = chunk.into_parts();
/// assert_eq!(items.len(), 1);
/// results.extend(items.map(|x| Ok(x + 1)));
/// #         }
/// #     }
/// # }
/// # assert_eq!(Map::new(Sum, [1], MapOptions::new()).next().unwrap().unwrap(), 2);
/// ```
pub struct Items<A> {
    inner: ItemsInner<A>,
}

enum ItemsInner<A> {
    One(Option<A>),
    Many(std::vec::IntoIter<A>),
}

impl<A> Items<A> {
    pub(crate) fn one(item: A) -> Items<A> {
        Items {
            inner: ItemsInner::One(Some(item)),
        }
    }

    pub(crate) fn many(items: Vec<A>) -> Items<A> {
        Items {
            inner: ItemsInner::Many(items.into_iter()),
        }
    }
}

impl<A> Iterator for Items<A> {
    type Item = A;

    fn next(&mut self) -> Option<A> {
        match &mut self.inner {
            ItemsInner::One(item) => item.take(),
            ItemsInner::Many(items) => items.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.inner {
            ItemsInner::One(item) => usize::from(item.is_some()),
            ItemsInner::Many(items) => items.len(),
        };
        (n, Some(n))
    }
}

impl<A> ExactSizeIterator for Items<A> {}

impl<A> fmt::Debug for Items<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Items").field("len", &self.len()).finish()
    }
}

/// Where the results of one [`Chunk`] go: one per input, in input order, from any thread.
///
/// Results beyond the chunk's length are ignored. Dropped before it delivered them all, it
/// completes the rest with [`Error::Abandoned`]: a lost chunk never leaves the map waiting.
///
/// ```
/// # use taskweave_executor::{Chunk, Dispatch, Map, MapOptions};
/// use taskweave_core::Error;
/// # struct Lossy;
/// # impl Dispatch for Lossy {
/// #     type Input = u8;
/// #     type Output = u8;
/// #     fn default_window(&self, chunksize: usize) -> usize { chunksize }
/// #     fn dispatch(&mut self, chunks: &mut Vec<Chunk<u8, u8>>) {
/// #         for chunk in chunks.drain(..) {
/// let (mut items, mut results) = chunk.into_parts();
/// assert_eq!(results.remaining(), 2);
/// results.push(Ok(items.next().unwrap()));
/// drop(results); // the second item is lost
/// #         }
/// #     }
/// # }
/// let out: Vec<_> = Map::new(Lossy, [7, 8], MapOptions::new().chunksize(2)).collect();
/// assert_eq!(*out[0].as_ref().unwrap(), 7);
/// assert!(matches!(out[1], Err(Error::Abandoned)));
/// ```
pub struct ChunkResults<R> {
    board: Arc<Board<R>>,
    next: usize,
    end: usize,
}

impl<R> ChunkResults<R> {
    pub(crate) fn new(board: Arc<Board<R>>, first: usize, len: usize) -> ChunkResults<R> {
        ChunkResults {
            board,
            next: first,
            end: first + len,
        }
    }

    /// `true` once nobody wants the results any more (the map was dropped or timed out): skip
    /// the calls not started yet.
    ///
    /// ```
    /// # use taskweave_executor::{Chunk, Dispatch, Map, MapOptions};
    /// # struct Check;
    /// # impl Dispatch for Check {
    /// #     type Input = u8;
    /// #     type Output = u8;
    /// #     fn default_window(&self, chunksize: usize) -> usize { chunksize }
    /// #     fn dispatch(&mut self, chunks: &mut Vec<Chunk<u8, u8>>) {
    /// #         for chunk in chunks.drain(..) {
    /// let (items, mut results) = chunk.into_parts();
    /// assert!(!results.is_cancelled()); // the consumer is still there
    /// results.extend(items.map(Ok));
    /// #         }
    /// #     }
    /// # }
    /// # assert_eq!(Map::new(Check, 0..2, MapOptions::new()).count(), 2);
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.board.stop.load(Ordering::Relaxed)
    }

    /// How many results are still to deliver.
    ///
    /// ```
    /// # use taskweave_executor::{Chunk, Dispatch, Map, MapOptions};
    /// # struct Count;
    /// # impl Dispatch for Count {
    /// #     type Input = u8;
    /// #     type Output = u8;
    /// #     fn default_window(&self, chunksize: usize) -> usize { chunksize }
    /// #     fn dispatch(&mut self, chunks: &mut Vec<Chunk<u8, u8>>) {
    /// #         for chunk in chunks.drain(..) {
    /// let (items, mut results) = chunk.into_parts();
    /// let n = results.remaining();
    /// results.extend(items.map(Ok));
    /// assert_eq!((n, results.remaining()), (3, 0));
    /// #         }
    /// #     }
    /// # }
    /// # assert_eq!(Map::new(Count, 0..3, MapOptions::new().chunksize(3)).count(), 3);
    /// ```
    pub fn remaining(&self) -> usize {
        self.end - self.next
    }

    /// Delivers the result of the next input.
    ///
    /// ```
    /// # use taskweave_executor::{Chunk, Dispatch, Map, MapOptions};
    /// # struct Inline;
    /// # impl Dispatch for Inline {
    /// #     type Input = u8;
    /// #     type Output = u8;
    /// #     fn default_window(&self, chunksize: usize) -> usize { chunksize }
    /// #     fn dispatch(&mut self, chunks: &mut Vec<Chunk<u8, u8>>) {
    /// #         for chunk in chunks.drain(..) {
    /// let (items, mut results) = chunk.into_parts();
    /// for x in items {
    ///     results.push(Ok(x));
    /// }
    /// #         }
    /// #     }
    /// # }
    /// # assert_eq!(Map::new(Inline, 0..2, MapOptions::new()).count(), 2);
    /// ```
    pub fn push(&mut self, result: Result<R, Error>) {
        if self.next == self.end {
            return;
        }
        self.board.post(self.next, Some(result).into_iter(), 1);
        self.next += 1;
    }

    /// Completes every input not delivered yet with `error` (the executor refused the chunk,
    /// or the worker running it died).
    ///
    /// ```
    /// # use taskweave_executor::{Chunk, Dispatch, Map, MapOptions};
    /// use taskweave_core::Error;
    /// # struct Broken;
    /// # impl Dispatch for Broken {
    /// #     type Input = u8;
    /// #     type Output = u8;
    /// #     fn default_window(&self, chunksize: usize) -> usize { chunksize }
    /// #     fn dispatch(&mut self, chunks: &mut Vec<Chunk<u8, u8>>) {
    /// #         for chunk in chunks.drain(..) {
    /// chunk.into_parts().1.fail(Error::broken("the pool's initializer failed"));
    /// #         }
    /// #     }
    /// # }
    /// let out: Vec<_> = Map::new(Broken, 0..3, MapOptions::new()).collect();
    /// assert!(out.iter().all(|r| matches!(r, Err(Error::Broken { .. }))));
    /// ```
    pub fn fail(mut self, error: Error) {
        self.fill(&error);
    }

    fn fill(&mut self, error: &Error) {
        let n = self.remaining();
        if n == 0 {
            return;
        }
        self.board
            .post(self.next, (0..n).map(|_| Err(error.clone())), n);
        self.next = self.end;
    }
}

/// Delivers results for the next inputs under one lock; results beyond the chunk are ignored.
///
/// ```
/// # use taskweave_executor::{Chunk, Dispatch, Map, MapOptions};
/// # struct Inline;
/// # impl Dispatch for Inline {
/// #     type Input = u8;
/// #     type Output = u8;
/// #     fn default_window(&self, chunksize: usize) -> usize { chunksize }
/// #     fn dispatch(&mut self, chunks: &mut Vec<Chunk<u8, u8>>) {
/// #         for chunk in chunks.drain(..) {
/// let (items, mut results) = chunk.into_parts();
/// results.extend(items.map(|x| Ok(x + 1)));
/// #         }
/// #     }
/// # }
/// # let v: Vec<u8> = Map::new(Inline, 0..4, MapOptions::new().chunksize(4)).map(Result::unwrap).collect();
/// # assert_eq!(v, [1, 2, 3, 4]);
/// ```
impl<R> Extend<Result<R, Error>> for ChunkResults<R> {
    fn extend<I: IntoIterator<Item = Result<R, Error>>>(&mut self, results: I) {
        // Collected first: producing a result may run user code (a decoder), which must not
        // run under the board's lock.
        let mut results: Vec<Result<R, Error>> =
            results.into_iter().take(self.remaining()).collect();
        let n = results.len();
        if n == 0 {
            return;
        }
        self.board.post(self.next, results.drain(..), n);
        self.next += n;
    }
}

impl<R> Drop for ChunkResults<R> {
    fn drop(&mut self) {
        if self.remaining() > 0 && !self.board.stop.load(Ordering::Relaxed) {
            self.fill(&Error::Abandoned);
        }
    }
}

impl<R> fmt::Debug for ChunkResults<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkResults")
            .field("next_index", &self.next)
            .field("remaining", &self.remaining())
            .finish()
    }
}

/// Where the results of one map land, shared by the consumer and the executor's threads.
pub(crate) struct Board<R> {
    inner: Mutex<Inner<R>>,
    ready: Condvar,
    /// Set when the consumer is gone: queued items skip the call.
    stop: AtomicBool,
    ordered: bool,
    progress: ProgressHook,
}

pub(crate) struct Inner<R> {
    /// Ordered: results from index `base` on, `None` where a result has not arrived yet.
    slots: VecDeque<Option<Result<R, Error>>>,
    /// Ordered: the index the consumer takes next.
    base: usize,
    /// Unordered: results in completion order.
    completed: VecDeque<(usize, Result<R, Error>)>,
    /// The blocking consumer is waiting on the condvar.
    pub(crate) sleeping: bool,
    pub(crate) waker: Option<Waker>,
    done: u64,
    failed: u64,
    closed: bool,
}

impl<R> Board<R> {
    pub(crate) fn new(ordered: bool, progress: ProgressHook) -> Board<R> {
        Board {
            inner: Mutex::new(Inner {
                slots: VecDeque::new(),
                base: 0,
                completed: VecDeque::new(),
                sleeping: false,
                waker: None,
                done: 0,
                failed: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            stop: AtomicBool::new(false),
            ordered,
            progress,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner<R>> {
        poison::lock(&self.inner)
    }

    pub(crate) fn condvar(&self) -> &Condvar {
        &self.ready
    }

    /// The index the ordered consumer takes next.
    pub(crate) fn base(&self) -> usize {
        self.lock().base
    }

    pub(crate) fn take_ready(&self, inner: &mut Inner<R>) -> Option<(usize, Result<R, Error>)> {
        if self.ordered {
            let out = inner.slots.front_mut()?.take()?;
            inner.slots.pop_front();
            let index = inner.base;
            inner.base += 1;
            Some((index, out))
        } else {
            inner.completed.pop_front()
        }
    }

    /// Stores the `n` results of the items from `first` on.
    fn post(&self, first: usize, results: impl Iterator<Item = Result<R, Error>>, n: usize) {
        let mut inner = self.lock();
        if inner.closed {
            drop(inner);
            // Dropped outside the lock: a result's destructor is the user's code.
            drop(results.collect::<Vec<_>>());
            return;
        }
        let mut wanted = false;
        for (index, result) in (first..first + n).zip(results) {
            inner.done += 1;
            if result.is_err() {
                inner.failed += 1;
            }
            if self.ordered {
                let Some(offset) = index.checked_sub(inner.base) else {
                    continue;
                };
                if offset >= inner.slots.len() {
                    inner.slots.resize_with(offset + 1, || None);
                }
                inner.slots[offset] = Some(result);
                wanted |= offset == 0;
            } else {
                inner.completed.push_back((index, result));
                wanted = true;
            }
        }
        let notify = wanted && inner.sleeping;
        let waker = if wanted { inner.waker.take() } else { None };
        // Reported under the lock, so the consumer cannot see the map end before the last
        // report went out.
        self.progress.report(inner.done, inner.failed);
        drop(inner);
        if notify {
            self.ready.notify_one();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Ends the map: queued items skip their call, late results are discarded, progress ends.
    pub(crate) fn close(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let leftovers = {
            let mut inner = self.lock();
            inner.closed = true;
            inner.waker = None;
            (
                std::mem::take(&mut inner.slots),
                std::mem::take(&mut inner.completed),
            )
        };
        // Results are dropped outside the lock: their destructors are the user's code.
        drop(leftovers);
        self.progress.finish();
    }
}
