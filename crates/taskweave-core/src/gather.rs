//! `gather`: run many futures concurrently and collect their results in input order.
//!
//! On the first error [`gather()`] returns it at once and drops the other futures. Dropping cancels
//! them: inline futures stop, awaited tasks are cancelled (awaiting links cancellation, see
//! [`Awaiting`](crate::promise::Awaiting)). This differs from asyncio, where the others keep
//! running: in Rust a future nobody can await any more has nowhere to deliver its result, so
//! letting it run on would only orphan work and bury its errors. To keep every result (or every
//! task running), use [`gather_settled()`]; to keep a task alive regardless, [`shield`](crate::shield) it.
//!
//! Futures are polled through one `FuturesUnordered`, so each wake-up polls only the future that
//! was woken: gathering 100k futures costs O(n), not O(n²). The gathering loop runs outside
//! tokio's cooperative budget: a task's join handle spends budget on every poll, and with
//! thousands of handles the budget would run out on every pass and turn the loop quadratic.
//! `FuturesUnordered` yields to the runtime on its own after a bounded number of polls, so the
//! gathering task still lets others run.

use std::future::IntoFuture;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

pin_project_lite::pin_project! {
    struct Indexed<F> {
        index: usize,
        #[pin]
        future: F,
    }
}

impl<F: std::future::Future> std::future::Future for Indexed<F> {
    type Output = (usize, F::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let index = *this.index;
        this.future.poll(cx).map(|out| (index, out))
    }
}

fn indexed<I>(futures: I) -> FuturesUnordered<Indexed<<I::Item as IntoFuture>::IntoFuture>>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    futures
        .into_iter()
        .enumerate()
        .map(|(index, f)| Indexed {
            index,
            future: f.into_future(),
        })
        .collect()
}

/// Yields once before a large gather: tasks spawned just before are then already done when they
/// are first polled, so each is polled once instead of twice (once to register a waker, once
/// more when woken), which halves the polling cost of `gather(many tasks)`.
async fn let_spawned_tasks_run(count: usize) {
    if count > 1 {
        tokio::task::yield_now().await;
    }
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
    let mut set = indexed(futures);
    let_spawned_tasks_run(set.len()).await;
    let mut slots: Vec<Option<T>> = Vec::new();
    slots.resize_with(set.len(), || None);
    tokio::task::unconstrained(async {
        while let Some((index, out)) = set.next().await {
            slots[index] = Some(out?);
        }
        Ok(())
    })
    .await?;
    Ok(slots.into_iter().flatten().collect())
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
    let mut set = indexed(futures);
    let_spawned_tasks_run(set.len()).await;
    let mut slots = Vec::new();
    slots.resize_with(set.len(), || None);
    tokio::task::unconstrained(async {
        while let Some((index, out)) = set.next().await {
            slots[index] = Some(out);
        }
    })
    .await;
    slots.into_iter().flatten().collect()
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
