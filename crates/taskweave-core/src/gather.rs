//! `gather`: run many futures concurrently and collect their results in input order.
//!
//! On the first error [`gather()`] returns it at once and drops the other futures. Dropping cancels
//! them: inline futures stop, awaited tasks are cancelled (awaiting links cancellation, see
//! [`Awaiting`](crate::promise::Awaiting)). This differs from asyncio, where the others keep
//! running: in Rust a future nobody can await any more has nowhere to deliver its result, so
//! letting it run on would only orphan work and bury its errors. To keep every result (or every
//! task running), use [`gather_settled()`]; to keep a task alive regardless, [`shield`](crate::shield) it.
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

/// Runs `futures` concurrently and returns their values in input order, or the first error
/// (asyncio's `gather`).
///
/// Accepts anything awaitable whose output is a `Result`: tasks, promises, `async` blocks. See
/// the module docs for what happens to the others on the first error.
///
/// # Errors
///
/// The first error any future returns, in completion order.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// use taskweave_core::{create_task, gather};
/// let tasks = (0..5u64).map(|x| create_task(async move { x * x }));
/// assert_eq!(gather(tasks).await.unwrap(), vec![0, 1, 4, 9, 16]);
/// # });
/// ```
pub async fn gather<I, T, E>(futures: I) -> Result<Vec<T>, E>
where
    I: IntoIterator,
    I::Item: IntoFuture<Output = Result<T, E>>,
{
    let futures: Vec<_> = futures.into_iter().map(IntoFuture::into_future).collect();
    let mut values: Vec<Option<T>> = Vec::new();
    values.resize_with(futures.len(), || None);
    let failed = drive(futures, |index, out| match out {
        Ok(v) => {
            values[index] = Some(v);
            ControlFlow::Continue(())
        }
        Err(e) => ControlFlow::Break(e),
    })
    .await;
    match failed {
        Some(e) => Err(e),
        None => Ok(values.into_iter().flatten().collect()),
    }
}

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
///     Box::pin(async { Err(Error::abandoned()) }),
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
/// Every future must return `Result<_, E>` with the same `E`.
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
/// let bad = async { Err::<u8, Error>(Error::abandoned()) };
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
