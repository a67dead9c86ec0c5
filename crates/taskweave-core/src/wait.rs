//! `wait` and `as_completed`: watch many futures and act as they finish.
//!
//! [`wait`] takes promises (tasks convert into them) and hands them back split into done and
//! pending, without taking any result, as asyncio's and concurrent.futures' `wait` do.
//! [`as_completed`] yields outcomes in completion order. Both watch through one
//! `FuturesUnordered`, so each completion costs O(1).

use std::future::IntoFuture;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::promise::Promise;

/// When [`wait`] returns (asyncio's `return_when`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReturnWhen {
    /// As soon as any future is done.
    FirstCompleted,
    /// As soon as any future fails; when none fails, once all are done. A cancelled future
    /// counts as completed, not as failed, as in Python.
    FirstException,
    /// Once all are done.
    AllCompleted,
}

struct WhenDone<T> {
    index: usize,
    promise: Option<Promise<T>>,
}

impl<T> std::future::Future for WhenDone<T> {
    type Output = (usize, Promise<T>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let ready = match &self.promise {
            Some(p) => p.poll_done(cx).is_ready(),
            None => return Poll::Pending,
        };
        if !ready {
            return Poll::Pending;
        }
        let index = self.index;
        match self.promise.take() {
            Some(p) => Poll::Ready((index, p)),
            None => Poll::Pending,
        }
    }
}

/// Waits until the condition `return_when` holds or `timeout` passes, and returns the promises
/// split into `(done, pending)`, each in input order (asyncio's and concurrent.futures' `wait`).
///
/// Nothing is cancelled and no result is taken: await the done ones for their results; the
/// pending ones keep running. A timeout is not an error here, as in Python: it just returns
/// what is done so far.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// use std::time::Duration;
/// use taskweave_core::{create_task, wait, Promise, ReturnWhen};
///
/// let fast = create_task(async { 1 });
/// let slow = create_task(async {
///     tokio::time::sleep(Duration::from_secs(30)).await;
///     2
/// });
/// let (done, pending) = wait([fast, slow], ReturnWhen::FirstCompleted, None).await;
/// assert_eq!((done.len(), pending.len()), (1, 1));
/// pending[0].cancel();
/// # });
/// ```
pub async fn wait<I, P, T>(
    futures: I,
    return_when: ReturnWhen,
    timeout: Option<Duration>,
) -> (Vec<Promise<T>>, Vec<Promise<T>>)
where
    I: IntoIterator<Item = P>,
    P: Into<Promise<T>>,
{
    let mut set: FuturesUnordered<WhenDone<T>> = futures
        .into_iter()
        .enumerate()
        .map(|(index, p)| WhenDone {
            index,
            promise: Some(p.into()),
        })
        .collect();
    let mut done: Vec<(usize, Promise<T>)> = Vec::new();
    let collect = async {
        while let Some((index, promise)) = set.next().await {
            let stop = match return_when {
                ReturnWhen::FirstCompleted => true,
                ReturnWhen::FirstException => promise.raised(),
                ReturnWhen::AllCompleted => false,
            };
            done.push((index, promise));
            if stop {
                break;
            }
        }
    };
    match timeout {
        Some(t) => {
            let _ = tokio::time::timeout(t, collect).await;
        }
        None => collect.await,
    }
    let mut pending: Vec<(usize, Promise<T>)> = set
        .into_iter()
        .filter_map(|w| w.promise.map(|p| (w.index, p)))
        .collect();
    done.sort_by_key(|(i, _)| *i);
    pending.sort_by_key(|(i, _)| *i);
    (
        done.into_iter().map(|(_, p)| p).collect(),
        pending.into_iter().map(|(_, p)| p).collect(),
    )
}

/// Yields the outcomes of `futures` in the order they complete (asyncio's `as_completed`).
///
/// The returned [`AsCompleted`] is a `Stream`; its [`next`](AsCompleted::next) method works
/// without importing any stream trait. Dropping it drops the futures not yet yielded, which
/// cancels tasks among them.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// use std::time::Duration;
/// use taskweave_core::{as_completed, create_task};
///
/// let tasks = [30u64, 10, 20].map(|ms| create_task(async move {
///     tokio::time::sleep(Duration::from_millis(ms)).await;
///     ms
/// }));
/// let mut order = Vec::new();
/// let mut stream = as_completed(tasks);
/// while let Some(out) = stream.next().await {
///     order.push(out.unwrap());
/// }
/// assert_eq!(order, vec![10, 20, 30]);
/// # });
/// ```
pub fn as_completed<I>(futures: I) -> AsCompleted<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    AsCompleted {
        set: futures.into_iter().map(IntoFuture::into_future).collect(),
    }
}

/// The stream returned by [`as_completed`].
#[must_use = "streams do nothing unless polled"]
pub struct AsCompleted<F> {
    set: FuturesUnordered<F>,
}

impl<F: std::future::Future> AsCompleted<F> {
    /// The next outcome to complete, or `None` when all were yielded.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let mut s = taskweave_core::as_completed([taskweave_core::create_task(async { 1 })]);
    /// assert_eq!(s.next().await.unwrap().unwrap(), 1);
    /// assert!(s.next().await.is_none());
    /// # }).unwrap();
    /// ```
    pub async fn next(&mut self) -> Option<F::Output> {
        // Outside the cooperative budget for the reason given in `gather`.
        tokio::task::unconstrained(self.set.next()).await
    }

    /// How many outcomes are still to come.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let s = taskweave_core::as_completed([taskweave_core::create_task(async { 1 })]);
    /// assert_eq!(s.len(), 1);
    /// # }).unwrap();
    /// ```
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// `true` when every outcome was yielded.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let s = taskweave_core::as_completed(Vec::<taskweave_core::Task<()>>::new());
    /// assert!(s.is_empty());
    /// # }).unwrap();
    /// ```
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

impl<F: std::future::Future> futures_util::Stream for AsCompleted<F> {
    type Item = F::Output;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        self.set.poll_next_unpin(cx)
    }
}

impl<F> std::fmt::Debug for AsCompleted<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsCompleted")
            .field("remaining", &self.set.len())
            .finish()
    }
}
