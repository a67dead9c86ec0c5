//! `gather`: run many futures concurrently and collect their results in input order.
//!
//! On the first error [`gather()`] returns it at once and drops the other futures. Dropping cancels
//! them: inline futures stop, awaited tasks are cancelled (awaiting links cancellation, see
//! [`Awaiting`](crate::promise::Awaiting)). This differs from asyncio, where the others keep
//! running: in Rust a future nobody can await any more has nowhere to deliver its result, so
//! letting it run on would only orphan work and bury its errors. To keep every result (or every
//! task running), use [`gather_settled()`]; to keep a task alive regardless, [`shield`](crate::shield) it.
//!
//! # Values and failures
//!
//! What [`gather()`] returns depends on what its futures return ([`GatherOutput`]): futures
//! returning `Result<T, E>` (tasks and promises among them) give `Result<Vec<T>, E>`, the first
//! error ending the gather; futures returning a plain value, such as an `async fn` returning
//! `u64`, give `Vec<u64>`, as asyncio's `gather` of coroutines gives a list. The plain values are
//! the std value types (numbers, `String`, `Vec`, `Option`, tuples, maps, ...) and every type
//! marked with [`GatherValue`].
//!
//! # Tasks beside executor work
//!
//! To gather a task with promises from an executor (`pool.submit(f, x)` returns a
//! `Promise<T>`), the task must yield the same `Result<T, Error>`. A task of a future that
//! returns `Result<T, E>` made with `create_task` is a `Task<Result<T, E>>` (its own outcome
//! wraps the future's); made with [`create_task_try`](crate::create_task_try) it is a
//! `Task<T>` whose failure is the future's error, so `Promise::from(task)` is a `Promise<T>`
//! like the executor's. (Converting a `create_task` one instead asks for a `Promise<Result<T,
//! E>>`, and the compiler then asks the executor's function to return a serialisable
//! `Result<T, Error>`: "`Error: serde::Serialize` is not satisfied".)
//!
//! ```
//! # taskweave_core::run(async {
//! use taskweave_core::{create_task_try, gather, Error, Promise};
//!
//! // Stands in for `pool.submit(square, 3)`: a promise completed by another thread.
//! let (from_pool, resolver) = Promise::<u64>::pending();
//! std::thread::spawn(move || resolver.set_result(9));
//!
//! let parsed = create_task_try(async { "4".parse::<u64>() });
//! let all: Vec<Promise<u64>> = vec![parsed.into(), from_pool];
//! assert_eq!(gather(all).await.unwrap(), vec![4, 9]);
//! # });
//! ```
//!
//! # How it polls
//!
//! The futures sit in one pinned slice (one allocation for all of them). A first pass polls each
//! in place once, after one yield that lets freshly spawned tasks finish first: a gather of tasks
//! that are already done costs one poll per task and nothing else. Only the futures still pending
//! after that pass go into a `FuturesUnordered`, which wakes exactly the one that made progress,
//! so the whole gather stays O(n). The first pass hands control back to the runtime every
//! [`PASS_CHUNK`] polls, and everything runs outside tokio's cooperative budget: a join handle
//! spends budget on every poll, and with thousands of handles the budget would run out on every
//! pass and make the loop quadratic.

use std::convert::Infallible;
use std::future::{Future, IntoFuture};
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

/// How many futures the first pass polls before it lets other tasks run.
const PASS_CHUNK: usize = 4096;

/// A pinned reference to one future of the slice, so the pending ones can be driven by a
/// `FuturesUnordered` without moving them.
struct Slot<'a, F> {
    index: usize,
    future: Pin<&'a mut F>,
}

impl<F: Future> Future for Slot<'_, F> {
    type Output = (usize, F::Output);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let index = self.index;
        self.future.as_mut().poll(cx).map(|out| (index, out))
    }
}

/// Pinned references to every element of a pinned slice.
fn pin_each<F>(slice: Pin<&mut [F]>) -> impl Iterator<Item = Pin<&mut F>> {
    // SAFETY: the elements are never moved out of the slice: each is only reached through the
    // pinned reference made for it below, and the slice's allocation stays pinned and alive for
    // as long as those references live (they borrow from it).
    let elements = unsafe { slice.get_unchecked_mut() };
    elements.iter_mut().map(|f| {
        // SAFETY: `f` points into the pinned slice and is not moved (see above); structural
        // pinning of slice elements is sound because the slice never hands out `&mut F`.
        unsafe { Pin::new_unchecked(f) }
    })
}

/// Drives `futures` until all are done or `each` breaks; `each` gets every output with its
/// input index, in completion order.
async fn drive<F, B>(
    futures: Vec<F>,
    mut each: impl FnMut(usize, F::Output) -> ControlFlow<B>,
) -> Option<B>
where
    F: Future,
{
    let mut slots: Pin<Box<[F]>> = Box::into_pin(futures.into_boxed_slice());
    if slots.len() > 1 {
        // Lets tasks spawned just before finish, so the first pass finds them done.
        tokio::task::yield_now().await;
    }
    tokio::task::unconstrained(async move {
        let mut pins = pin_each(slots.as_mut()).enumerate();
        let mut pending = FuturesUnordered::new();
        let stopped = std::future::poll_fn(|cx| {
            for _ in 0..PASS_CHUNK {
                let Some((index, mut future)) = pins.next() else {
                    return Poll::Ready(None);
                };
                match future.as_mut().poll(cx) {
                    Poll::Ready(out) => {
                        if let ControlFlow::Break(b) = each(index, out) {
                            return Poll::Ready(Some(b));
                        }
                    }
                    // Pushed nodes are polled again by the set, with their own waker.
                    Poll::Pending => pending.push(Slot { index, future }),
                }
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
        if stopped.is_some() {
            return stopped;
        }
        while let Some((index, out)) = pending.next().await {
            if let ControlFlow::Break(b) = each(index, out) {
                return Some(b);
            }
        }
        None
    })
    .await
}

/// Runs `futures` concurrently and returns their values in input order (asyncio's `gather`).
///
/// Accepts anything awaitable: tasks, promises, `async` blocks, calls of an `async fn`. Futures
/// returning `Result<T, E>` give `Result<Vec<T>, E>` and the first error ends the gather (see
/// the module docs for what happens to the others); futures returning a plain value give the
/// `Vec` of values ([`GatherOutput`] says which is which).
///
/// # Differences from Python
///
/// asyncio wraps each coroutine in a task; here the futures are polled inside the gather, on
/// the task that awaits it, which costs no spawn. They still wait concurrently, but CPU work in
/// them shares one thread: start each as a task first (`gather(xs.map(|x|
/// create_task(compute(x))))`) to spread it over the runtime's threads. The first error cancels
/// the others (see the module docs), where asyncio lets them run on.
///
/// # Errors
///
/// For futures returning `Result`s: the first error any of them returns, in completion order.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// use taskweave_core::{create_task, gather, sleep};
/// use std::time::Duration;
///
/// async fn compute(x: u64) -> u64 {
///     sleep(Duration::from_millis(5)).await;
///     x * x
/// }
///
/// // Coroutines, as in Python: their values.
/// assert_eq!(gather((0..5).map(compute)).await, vec![0, 1, 4, 9, 16]);
/// // Tasks: awaiting a task gives `Result<T, Error>`, so the gather does too.
/// let tasks = (0..5).map(|x| create_task(compute(x)));
/// assert_eq!(gather(tasks).await.unwrap(), vec![0, 1, 4, 9, 16]);
/// # });
/// ```
///
/// A type of the program's own is a plain value once marked with [`GatherValue`]; until then
/// the compiler says so:
///
/// ```compile_fail,E0277
/// # taskweave_core::run(async {
/// struct Page;
/// async fn fetch() -> Page { Page }
/// let pages = taskweave_core::gather([fetch(), fetch()]).await;
/// # });
/// ```
pub async fn gather<I>(futures: I) -> Gathered<I>
where
    I: IntoIterator,
    I::Item: IntoFuture,
    <I::Item as IntoFuture>::Output: GatherOutput,
{
    let futures: Vec<_> = futures.into_iter().map(IntoFuture::into_future).collect();
    let mut values = Vec::new();
    values.resize_with(futures.len(), || None);
    let failed = drive(futures, |index, out| match GatherOutput::into_result(out) {
        Ok(v) => {
            values[index] = Some(v);
            ControlFlow::Continue(())
        }
        Err(e) => ControlFlow::Break(e),
    })
    .await;
    <<I::Item as IntoFuture>::Output as GatherOutput>::gathered(match failed {
        Some(e) => Err(e),
        None => Ok(values.into_iter().flatten().collect()),
    })
}

/// What [`gather()`] returns for the futures `I` yields.
pub type Gathered<I> =
    <<<I as IntoIterator>::Item as IntoFuture>::Output as GatherOutput>::Gathered;

/// The output of a future that [`gather()`] can collect: a `Result` (a value or a failure) or a
/// plain value ([`GatherValue`]).
///
/// Rust cannot tell "a `Result`" from "any other type" in one generic function, so the plain
/// values are the types that say so: every std value type is one, and a type of the program's
/// own becomes one with `impl GatherValue for MyType {}`. Implemented by taskweave only (it is
/// sealed); implement [`GatherValue`] instead.
///
/// # Examples
///
/// ```
/// use taskweave_core::GatherOutput;
/// fn gathered_as<O: GatherOutput>(_: &O) -> &'static str { std::any::type_name::<O::Gathered>() }
/// assert!(gathered_as(&Ok::<u8, std::fmt::Error>(1)).contains("Result"));
/// assert!(gathered_as(&1u8).starts_with("alloc::vec::Vec"));
/// ```
#[diagnostic::on_unimplemented(
    message = "`gather` cannot tell whether `{Self}` is a value or a failure",
    label = "these futures return `{Self}`",
    note = "futures returning `Result<T, E>` make `gather` return `Result<Vec<T>, E>`; futures returning a plain value (`impl taskweave::GatherValue for {Self} {{}}` makes `{Self}` one) make it return the `Vec` of values",
    note = "or start each future with `create_task`: awaiting a task gives `Result<T, Error>`"
)]
pub trait GatherOutput: sealed::Sealed {
    /// The value of a success.
    type Value;
    /// The failure that ends the gather (`Infallible` for plain values).
    type Error;
    /// What the gather returns: `Result<Vec<Value>, Error>`, or `Vec<Value>` for plain values.
    type Gathered;
    /// Splits the output into a value or a failure.
    fn into_result(self) -> Result<Self::Value, Self::Error>;
    /// Turns the collected values (or the first failure) into what the gather returns.
    fn gathered(values: Result<Vec<Self::Value>, Self::Error>) -> Self::Gathered;
}

mod sealed {
    pub trait Sealed {}
    impl<T, E> Sealed for Result<T, E> {}
    impl<T: super::GatherValue> Sealed for T {}
}

impl<T, E> GatherOutput for Result<T, E> {
    type Value = T;
    type Error = E;
    type Gathered = Result<Vec<T>, E>;

    fn into_result(self) -> Result<T, E> {
        self
    }

    fn gathered(values: Result<Vec<T>, E>) -> Result<Vec<T>, E> {
        values
    }
}

impl<T: GatherValue> GatherOutput for T {
    type Value = T;
    type Error = Infallible;
    type Gathered = Vec<T>;

    fn into_result(self) -> Result<T, Infallible> {
        Ok(self)
    }

    fn gathered(values: Result<Vec<T>, Infallible>) -> Vec<T> {
        match values {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }
}

/// Marks a type as a plain value for [`gather()`]: a gather of futures returning it returns the
/// `Vec` of their values, with no failure to stop at.
///
/// Implemented for the std value types: numbers, `bool`, `char`, `()`, strings, paths,
/// durations, `Vec`, `VecDeque`, `Option`, `Box`, `Arc`, `Rc`, arrays, maps, sets and tuples of
/// up to eight values. Never implemented for `Result` (which is a value or a failure).
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// #[derive(Debug, PartialEq)]
/// struct Page(u32);
/// impl taskweave_core::GatherValue for Page {}
///
/// async fn fetch(n: u32) -> Page { Page(n) }
/// let pages = taskweave_core::gather((1..=2).map(fetch)).await;
/// assert_eq!(pages, vec![Page(1), Page(2)]);
/// # });
/// ```
#[diagnostic::on_unimplemented(
    message = "`gather` cannot tell whether `{Self}` is a value or a failure",
    label = "these futures return `{Self}`",
    note = "futures returning `Result<T, E>` make `gather` return `Result<Vec<T>, E>`; futures returning a plain value (`impl taskweave::GatherValue for {Self} {{}}` makes `{Self}` one) make it return the `Vec` of values",
    note = "or start each future with `create_task`: awaiting a task gives `Result<T, Error>`"
)]
pub trait GatherValue {}

macro_rules! gather_values {
    ($($t:ty),* $(,)?) => { $(impl GatherValue for $t {})* };
}

gather_values!(
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    bool,
    char,
    (),
    String,
    std::path::PathBuf,
    std::ffi::OsString,
    std::time::Duration,
    std::time::Instant,
    std::time::SystemTime,
);

impl GatherValue for &str {}
impl GatherValue for &std::path::Path {}
impl<T> GatherValue for Vec<T> {}
impl<T> GatherValue for std::collections::VecDeque<T> {}
impl<T> GatherValue for Option<T> {}
impl<T: ?Sized> GatherValue for Box<T> {}
impl<T: ?Sized> GatherValue for std::sync::Arc<T> {}
impl<T: ?Sized> GatherValue for std::rc::Rc<T> {}
impl<T, const N: usize> GatherValue for [T; N] {}
impl<K, V, S> GatherValue for std::collections::HashMap<K, V, S> {}
impl<T, S> GatherValue for std::collections::HashSet<T, S> {}
impl<K, V> GatherValue for std::collections::BTreeMap<K, V> {}
impl<T> GatherValue for std::collections::BTreeSet<T> {}

macro_rules! gather_tuples {
    ($(($($t:ident),+))*) => { $(impl<$($t),+> GatherValue for ($($t,)+) {})* };
}

gather_tuples!((A)(A, B)(A, B, C)(A, B, C, D)(A, B, C, D, E)(
    A, B, C, D, E, F
)(A, B, C, D, E, F, G)(A, B, C, D, E, F, G, H));

/// Runs `futures` concurrently and returns every outcome in input order, errors included
/// (asyncio's `gather(..., return_exceptions=True)`).
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// use taskweave_core::{gather_settled, Error};
/// let futs = vec![
///     Box::pin(async { Ok(1) }) as std::pin::Pin<Box<dyn std::future::Future<Output = Result<i32, Error>> + Send>>,
///     Box::pin(async { Err(Error::Abandoned) }),
/// ];
/// let all = gather_settled(futs).await;
/// assert_eq!(all[0].as_ref().unwrap(), &1);
/// assert!(all[1].is_err());
/// # });
/// ```
pub async fn gather_settled<I>(futures: I) -> Vec<<I::Item as IntoFuture>::Output>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    let futures: Vec<_> = futures.into_iter().map(IntoFuture::into_future).collect();
    let mut outcomes = Vec::new();
    outcomes.resize_with(futures.len(), || None);
    drive::<_, ()>(futures, |index, out| {
        outcomes[index] = Some(out);
        ControlFlow::Continue(())
    })
    .await;
    outcomes.into_iter().flatten().collect()
}

/// Gathers futures of *different* types: `gather!(a, b, c)` gives `Result<(A, B, C), E>`, the
/// first error ending it early (others are dropped, which cancels them).
///
/// Every future must return `Result<_, E>` with the same `E`. For futures that cannot fail,
/// [`gather_settled!`](crate::gather_settled!) gives the tuple of their values.
///
/// ```
/// # taskweave_core::run(async {
/// use taskweave_core::{create_task, gather, Error};
/// let name = create_task(async { "ada" });
/// let age = async { Ok::<_, Error>(36) };
/// let (n, a) = gather!(name, age).unwrap();
/// assert_eq!((n, a), ("ada", 36));
/// # });
/// ```
#[macro_export]
macro_rules! gather {
    ($($fut:expr),+ $(,)?) => {
        $crate::__private::tokio::try_join!($(::core::future::IntoFuture::into_future($fut)),+)
    };
}

/// Gathers futures of different types and keeps every outcome: `gather_settled!(a, b)` gives
/// `(Result<A, _>, Result<B, _>)`.
///
/// ```
/// # taskweave_core::run(async {
/// use taskweave_core::{create_task, gather_settled, Error};
/// let ok = create_task(async { 1 });
/// let bad = async { Err::<u8, Error>(Error::Abandoned) };
/// let (a, b) = gather_settled!(ok, bad);
/// assert_eq!(a.unwrap(), 1);
/// assert!(b.is_err());
/// # });
/// ```
#[macro_export]
macro_rules! gather_settled {
    ($($fut:expr),+ $(,)?) => {
        $crate::__private::tokio::join!($(::core::future::IntoFuture::into_future($fut)),+)
    };
}
