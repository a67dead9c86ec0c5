//! The [`Executor`] trait: where work runs, so user code can be generic over threads, rayon and
//! processes.
//!
//! The trait speaks in plain `fn` pointers and serialisable payloads because that is what every
//! executor can carry, a process pool included: a closure cannot cross a process boundary, a
//! function of the same executable and a serialised argument can. Executors also have richer
//! inherent methods (closures for threads and rayon).

use serde::Serialize;
use serde::de::DeserializeOwned;
use taskweave_core::{Error, Promise};

use crate::pool::ThreadPoolExecutor;
use crate::rayon_bridge::RayonExecutor;

/// A value that any executor can carry: sendable to a thread and serialisable for a process.
///
/// Implemented for every type that is `Serialize + DeserializeOwned + Send + 'static`.
pub trait Payload: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Payload for T {}

/// The results of [`Executor::map`], in input order.
pub type MapResults<R> = Box<dyn Iterator<Item = Result<R, Error>> + Send>;

/// Somewhere to run blocking functions: a thread pool, rayon, a process pool.
///
/// The thread pool and the rayon executor have richer inherent methods of the same names that
/// take closures; in generic code (`E: Executor`) these trait methods are the ones called.
///
/// # Examples
///
/// ```
/// use taskweave_bridge::{Executor, RayonExecutor, ThreadPoolExecutor};
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
    /// Errors are carried by the promise: [`Error::Shutdown`] after shutdown, [`Error::Panicked`]
    /// when `f` panics, and for process pools [`Error::WorkerDied`] and [`Error::Wire`].
    ///
    /// ```
    /// use taskweave_bridge::{Executor, ThreadPoolExecutor};
    /// fn shout(s: String) -> String { s.to_uppercase() }
    /// let pool = ThreadPoolExecutor::new();
    /// let mut p = Executor::submit(&pool, shout, "hi".to_owned());
    /// assert_eq!(p.result(None).unwrap(), "HI");
    /// ```
    fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Promise<R>;

    /// Runs `f` over `inputs`, yielding results in input order. Inputs are pulled lazily with a
    /// bounded number in flight, so an endless iterator works in bounded memory. Each item is
    /// the outcome of one call.
    ///
    /// ```
    /// use taskweave_bridge::{Executor, RayonExecutor};
    /// fn inc(x: u32) -> u32 { x + 1 }
    /// let firsts: Vec<u32> = Executor::map(&RayonExecutor::global(), inc, 0..)
    ///     .take(3)
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(firsts, [1, 2, 3]);
    /// ```
    fn map<A, R, I>(&self, f: fn(A) -> R, inputs: I) -> MapResults<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static;

    /// Stops accepting work. `wait` blocks until running work finished; `cancel_futures`
    /// cancels work that has not started. Later submits get [`Error::Shutdown`].
    ///
    /// ```
    /// use taskweave_bridge::{Executor, ThreadPoolExecutor};
    /// fn one(_: ()) -> u8 { 1 }
    /// let pool = ThreadPoolExecutor::new();
    /// Executor::shutdown(&pool, true, false);
    /// assert!(Executor::submit(&pool, one, ()).result(None).is_err());
    /// ```
    fn shutdown(&self, wait: bool, cancel_futures: bool);
}

impl Executor for ThreadPoolExecutor {
    #[track_caller]
    fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Promise<R> {
        ThreadPoolExecutor::submit(self, move || f(arg))
    }

    #[track_caller]
    fn map<A, R, I>(&self, f: fn(A) -> R, inputs: I) -> MapResults<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        Box::new(ThreadPoolExecutor::map(self, f, inputs))
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        ThreadPoolExecutor::shutdown(self, wait, cancel_futures);
    }
}

impl Executor for RayonExecutor {
    #[track_caller]
    fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Promise<R> {
        self.spawn(move || f(arg))
    }

    #[track_caller]
    fn map<A, R, I>(&self, f: fn(A) -> R, inputs: I) -> MapResults<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        Box::new(RayonExecutor::map(self, f, inputs))
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        RayonExecutor::shutdown(self, wait, cancel_futures);
    }
}
