//! The [`Executor`] trait: where work runs, so user code can be generic over threads, rayon and
//! processes; [`Runs`], what `run_in_executor` accepts; and [`Payload`], what crosses to any
//! executor.
//!
//! The trait speaks in plain `fn` pointers and serialisable payloads because that is what every
//! executor can carry, a process pool included: a closure cannot cross a process boundary, a
//! function of the same executable and a serialised argument can. Executors also have richer
//! inherent methods (closures for threads and rayon).

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use taskweave_core::Promise;

use crate::dispatch::Dispatch;
use crate::map::{Map, MapUnordered};
use crate::options::MapOptions;

/// A value that any executor can carry: sendable to a thread and serialisable for a process.
///
/// Implemented for every type that is `Serialize + DeserializeOwned + Send + 'static`.
///
/// ```
/// fn carry<T: taskweave_executor::Payload>(value: T) -> T { value }
/// assert_eq!(carry(vec![String::from("a")]), ["a"]);
/// ```
pub trait Payload: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Payload for T {}

/// Somewhere to run blocking functions: a thread pool, rayon, a process pool.
///
/// Every executor's maps are the same [`Map`] and [`MapUnordered`], run by one engine, with the
/// same [`MapOptions`]. The thread pool and the rayon executor have richer inherent methods of
/// the same names that take closures, and the process pool's take any function item; in
/// generic code (`E: Executor`) these trait methods are the ones called.
///
/// An executor implements three methods: [`submit`](Self::submit), [`dispatcher`](Self::dispatcher)
/// (the [`Dispatch`] its maps run on) and [`shutdown`](Self::shutdown); the maps are provided.
///
/// ```
/// use taskweave_core::Promise;
/// use taskweave_executor::{Chunk, Dispatch, Executor, Payload};
///
/// /// Runs every call and every chunk on a thread of its own.
/// struct Spawner;
///
/// struct PerChunk<A, R>(fn(A) -> R);
///
/// impl<A: Payload, R: Payload> Dispatch for PerChunk<A, R> {
///     type Input = A;
///     type Output = R;
///     fn default_window(&self, chunksize: usize) -> usize {
///         chunksize.saturating_mul(4)
///     }
///     fn dispatch(&mut self, chunks: &mut Vec<Chunk<A, R>>) {
///         let f = self.0;
///         for chunk in chunks.drain(..) {
///             let (items, mut results) = chunk.into_parts();
///             std::thread::spawn(move || results.extend(items.map(|x| Ok(f(x)))));
///         }
///     }
/// }
///
/// impl Executor for Spawner {
///     fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Promise<R> {
///         let (promise, resolver) = Promise::pending();
///         std::thread::spawn(move || resolver.resolve(Ok(f(arg))));
///         promise
///     }
///     fn dispatcher<A: Payload, R: Payload>(
///         &self,
///         f: fn(A) -> R,
///     ) -> impl Dispatch<Input = A, Output = R> {
///         PerChunk(f)
///     }
///     fn shutdown(&self, _wait: bool, _cancel_futures: bool) {}
/// }
///
/// fn square(x: u64) -> u64 { x * x }
/// let squares: Vec<u64> = Spawner.map(square, 1..=4).map(Result::unwrap).collect();
/// assert_eq!(squares, [1, 4, 9, 16]);
/// assert_eq!(Spawner.submit(square, 5).result(None).unwrap(), 25);
/// ```
///
/// # What a panic is called
///
/// The trait takes `fn` pointers, and a pointer carries no name: a panic through the trait names
/// the work by its type (`fn(u64) -> u64`) and, on the thread pool and rayon, the line that
/// submitted it (`created at src/main.rs:12:5`). Call the executor's own method
/// (`pool.submit(square, 3)`) for a panic that names `square`.
///
/// # Examples
///
/// ```
/// use taskweave_bridge::{RayonExecutor, ThreadPoolExecutor};
/// use taskweave_executor::Executor;
///
/// fn square(x: u64) -> u64 { x * x }
///
/// fn total(pool: &impl Executor) -> u64 {
///     pool.map(square, 1..=5u64).map(Result::unwrap).sum()
/// }
///
/// assert_eq!(total(&ThreadPoolExecutor::new()), 55);
/// assert_eq!(total(&RayonExecutor::global()), 55);
/// let mut one = Executor::submit(&ThreadPoolExecutor::new(), square, 3);
/// assert_eq!(one.result(None).unwrap(), 9);
/// ```
pub trait Executor: Send + Sync {
    /// Runs `f(arg)` and returns its promise.
    ///
    /// Errors are carried by the promise:
    /// [`ErrorKind::Shutdown`](taskweave_core::ErrorKind::Shutdown) after shutdown,
    /// [`ErrorKind::Panicked`](taskweave_core::ErrorKind::Panicked) when `f` panics, and for
    /// process pools [`ErrorKind::WorkerDied`](taskweave_core::ErrorKind::WorkerDied) and
    /// [`ErrorKind::Wire`](taskweave_core::ErrorKind::Wire).
    ///
    /// ```
    /// use taskweave_bridge::ThreadPoolExecutor;
    /// use taskweave_executor::Executor;
    /// fn shout(s: String) -> String { s.to_uppercase() }
    /// let pool = ThreadPoolExecutor::new();
    /// let mut p = Executor::submit(&pool, shout, "hi".to_owned());
    /// assert_eq!(p.result(None).unwrap(), "HI");
    /// ```
    ///
    /// [`ErrorKind::Shutdown`]: taskweave_core::ErrorKind::Shutdown
    /// [`ErrorKind::Panicked`]: taskweave_core::ErrorKind::Panicked
    /// [`ErrorKind::WorkerDied`]: taskweave_core::ErrorKind::WorkerDied
    /// [`ErrorKind::Wire`]: taskweave_core::ErrorKind::Wire
    fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Promise<R>;

    /// The dispatcher through which this executor runs a map of `f`: what
    /// [`map_with`](Self::map_with) and [`map_unordered_with`](Self::map_unordered_with) hand
    /// to the map engine. It is the one map method an executor implements; the engine does the
    /// rest (window, order, timeouts, progress, cancellation).
    ///
    /// Making it starts nothing: work goes out when a [`Map`] or [`MapUnordered`] built on it
    /// pulls its inputs. An executor that cannot run `f` at all (shut down, or `f` cannot reach
    /// its workers) says so through the map's items, never here.
    ///
    /// ```
    /// use taskweave_bridge::ThreadPoolExecutor;
    /// use taskweave_executor::{Executor, Map, MapOptions};
    /// fn inc(x: u32) -> u32 { x + 1 }
    /// let pool = ThreadPoolExecutor::new();
    /// let map = Map::new(Executor::dispatcher(&pool, inc), 0..3, MapOptions::new());
    /// assert_eq!(map.map(Result::unwrap).collect::<Vec<_>>(), [1, 2, 3]);
    /// ```
    #[track_caller]
    fn dispatcher<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
    ) -> impl Dispatch<Input = A, Output = R>;

    /// Runs `f` over `inputs` with `options`, yielding results in input order. Inputs are
    /// pulled lazily with a bounded number in flight, so an endless iterator works in bounded
    /// memory. Each item is the outcome of one call.
    ///
    /// ```
    /// use taskweave_bridge::RayonExecutor;
    /// use taskweave_executor::{Executor, MapOptions};
    /// fn inc(x: u32) -> u32 { x + 1 }
    /// let options = MapOptions::new().chunksize(4);
    /// let firsts: Vec<u32> = Executor::map_with(&RayonExecutor::global(), inc, 0.., options)
    ///     .take(3)
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(firsts, [1, 2, 3]);
    /// ```
    #[track_caller]
    fn map_with<A, R, I>(&self, f: fn(A) -> R, inputs: I, options: MapOptions) -> Map<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        Map::new(self.dispatcher(f), inputs, options)
    }

    /// As [`map_with`](Self::map_with), yielding `(input index, result)` in completion order.
    ///
    /// ```
    /// use taskweave_bridge::ThreadPoolExecutor;
    /// use taskweave_executor::{Executor, MapOptions};
    /// fn inc(x: u32) -> u32 { x + 1 }
    /// let pool = ThreadPoolExecutor::new();
    /// let mut got: Vec<(usize, u32)> = Executor::map_unordered_with(&pool, inc, 0..3, MapOptions::new())
    ///     .map(|(i, r)| (i, r.unwrap()))
    ///     .collect();
    /// got.sort();
    /// assert_eq!(got, [(0, 1), (1, 2), (2, 3)]);
    /// ```
    #[track_caller]
    fn map_unordered_with<A, R, I>(
        &self,
        f: fn(A) -> R,
        inputs: I,
        options: MapOptions,
    ) -> MapUnordered<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        MapUnordered::new(self.dispatcher(f), inputs, options)
    }

    /// [`map_with`](Self::map_with) with the default options.
    ///
    /// ```
    /// use taskweave_bridge::RayonExecutor;
    /// use taskweave_executor::Executor;
    /// fn inc(x: u32) -> u32 { x + 1 }
    /// let firsts: Vec<u32> = Executor::map(&RayonExecutor::global(), inc, 0..)
    ///     .take(3)
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(firsts, [1, 2, 3]);
    /// ```
    #[track_caller]
    fn map<A, R, I>(&self, f: fn(A) -> R, inputs: I) -> Map<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        self.map_with(f, inputs, MapOptions::new())
    }

    /// [`map_unordered_with`](Self::map_unordered_with) with the default options.
    ///
    /// ```
    /// use taskweave_bridge::ThreadPoolExecutor;
    /// use taskweave_executor::Executor;
    /// fn inc(x: u32) -> u32 { x + 1 }
    /// let pool = ThreadPoolExecutor::new();
    /// let sum: u32 = Executor::map_unordered(&pool, inc, 0..3).map(|(_, r)| r.unwrap()).sum();
    /// assert_eq!(sum, 6);
    /// ```
    #[track_caller]
    fn map_unordered<A, R, I>(&self, f: fn(A) -> R, inputs: I) -> MapUnordered<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        self.map_unordered_with(f, inputs, MapOptions::new())
    }

    /// Stops accepting work. `wait` blocks until running work finished; `cancel_futures` cancels
    /// work that has not started. Later submits get
    /// [`ErrorKind::Shutdown`](taskweave_core::ErrorKind::Shutdown).
    ///
    /// The two bools are Python's `shutdown(wait=True, cancel_futures=False)`, kept so that
    /// ported code reads the same; the executors' `shutdown_async` takes a
    /// [`Queued`](crate::Queued) instead.
    ///
    /// ```
    /// use taskweave_bridge::ThreadPoolExecutor;
    /// use taskweave_executor::Executor;
    /// fn one(_: ()) -> u8 { 1 }
    /// let pool = ThreadPoolExecutor::new();
    /// Executor::shutdown(&pool, true, false);
    /// assert!(Executor::submit(&pool, one, ()).result(None).is_err());
    /// ```
    ///
    /// [`ErrorKind::Shutdown`]: taskweave_core::ErrorKind::Shutdown
    fn shutdown(&self, wait: bool, cancel_futures: bool);
}

/// Something that can run the callable `F` and hand back its promise: what
/// `run_in_executor` accepts.
///
/// The thread pool and the rayon executor run any `FnOnce() -> T + Send + 'static`; a process
/// pool accepts `fn() -> R`.
///
/// # Examples
///
/// ```
/// use taskweave_bridge::ThreadPoolExecutor;
/// use taskweave_executor::Runs;
///
/// fn run_twice<E: Runs<fn() -> u32, Output = u32>>(executor: &E) -> u32 {
///     fn one() -> u32 { 1 }
///     let mut a = executor.run(one as fn() -> u32);
///     let mut b = executor.run(one as fn() -> u32);
///     a.result(None).unwrap() + b.result(None).unwrap()
/// }
/// assert_eq!(run_twice(&ThreadPoolExecutor::new()), 2);
/// ```
pub trait Runs<F> {
    /// What `F` returns.
    type Output;

    /// Starts `f` and returns its promise at once.
    ///
    /// Errors travel in the promise, as for [`Executor::submit`].
    ///
    /// ```
    /// use taskweave_bridge::ThreadPoolExecutor;
    /// use taskweave_executor::Runs;
    /// let pool = ThreadPoolExecutor::new();
    /// assert_eq!(pool.run(|| "ran").result(None).unwrap(), "ran");
    /// ```
    fn run(&self, f: F) -> Promise<Self::Output>;
}

impl<F, E: Runs<F> + ?Sized> Runs<F> for Arc<E> {
    type Output = E::Output;

    #[track_caller]
    fn run(&self, f: F) -> Promise<E::Output> {
        (**self).run(f)
    }
}

impl<F, E: Runs<F> + ?Sized> Runs<F> for &E {
    type Output = E::Output;

    #[track_caller]
    fn run(&self, f: F) -> Promise<E::Output> {
        (**self).run(f)
    }
}
