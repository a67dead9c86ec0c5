//! Deadlines: [`wait_for`], [`timeout`] and [`timeout_at`].
//!
//! All three run their future inside one [`Deadline`], which checks the clock *before* it polls
//! the future. So when scopes are nested, the outermost one whose deadline has passed is the one
//! that reports [`Error::TimedOut`]: the scopes inside it are dropped without seeing their own
//! deadline, and no code inside runs on past the outer deadline (asyncio's nested `timeout()`
//! behaves so). A deadline already past when the scope starts never polls the future.
//!
//! On expiry the inner future is dropped, which cancels it: an inline future stops, an awaited
//! task is cancelled (awaiting links cancellation), as asyncio's `wait_for` cancels its inner
//! task. The timeout is reported only once every task cancelled that way has finished, its
//! destructors included (see `ending.rs`). Thread and process work that already runs cannot be
//! stopped: it finishes unobserved, and nobody waits for it.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::ending::{self, Ending};
use crate::error::Error;

pin_project_lite::pin_project! {
    /// Runs a future until a deadline; on expiry drops it and waits for the tasks that drop
    /// cancelled.
    struct Deadline<F> {
        #[pin]
        future: Option<F>,
        #[pin]
        sleep: Option<tokio::time::Sleep>,
        deadline: Option<tokio::time::Instant>,
        // `Some` once expired: the ends still to wait for.
        endings: Option<Vec<Ending>>,
    }

    impl<F> PinnedDrop for Deadline<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped while waiting for cancelled tasks (an enclosing deadline expired): pass
            // them on, so the enclosing one waits for them instead.
            if let Some(endings) = this.project().endings.take() {
                ending::hand_over(endings);
            }
        }
    }
}

/// The output of a [`Deadline`] that expired.
struct Expired;

impl<F: Future> Deadline<F> {
    /// `deadline` of `None` means none (a duration too large for the clock).
    fn new(deadline: Option<tokio::time::Instant>, future: F) -> Deadline<F> {
        Deadline {
            future: Some(future),
            sleep: deadline.map(tokio::time::sleep_until),
            deadline,
            endings: None,
        }
    }

    fn after(duration: Duration, future: F) -> Deadline<F> {
        Deadline::new(tokio::time::Instant::now().checked_add(duration), future)
    }
}

impl<F: Future> Future for Deadline<F> {
    type Output = Result<F::Output, Expired>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if this.endings.is_none() {
            // The clock first: a timer entry of an inner scope with the same deadline may
            // fire (and wake this task) before this scope's own entry is marked as fired.
            let expired = match (*this.deadline, this.sleep.as_mut().as_pin_mut()) {
                (Some(deadline), Some(sleep)) => {
                    tokio::time::Instant::now() >= deadline || sleep.poll(cx).is_ready()
                }
                _ => false,
            };
            if !expired {
                return match this.future.as_mut().as_pin_mut() {
                    Some(future) => future.poll(cx).map(Ok),
                    None => Poll::Pending,
                };
            }
            let mut future = this.future;
            *this.endings = Some(ending::collect(|| future.set(None)));
        }
        match this.endings.as_mut() {
            Some(endings) => {
                endings.retain_mut(|e| e.poll(cx).is_pending());
                if endings.is_empty() {
                    Poll::Ready(Err(Expired))
                } else {
                    Poll::Pending
                }
            }
            None => Poll::Pending,
        }
    }
}

/// Awaits `future` for at most `duration` (asyncio's `wait_for`); on timeout the inner work is
/// cancelled.
///
/// On timeout the future is dropped, cancelling every task it awaits, and `wait_for` returns
/// only once those tasks have finished (their destructors ran). A `duration` too large for the
/// clock (such as `Duration::MAX`) means no timeout.
///
/// # Differences from Python
///
/// - A zero duration never polls the future, even when it would be ready at once: asyncio 3.11
///   returns the result of an already finished future there, and 3.12 runs a coroutine up to its
///   first suspension; here the deadline has passed, so the work does not start.
/// - The deadline is checked before the future is polled, so work that completes in the very
///   poll the deadline passed counts as late.
/// - Running thread or process work cannot be stopped; `wait_for` does not wait for it.
///
/// # Errors
///
/// [`Error::TimedOut`] on timeout; otherwise the future's own error.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// use std::time::Duration;
/// use taskweave_core::{create_task, wait_for};
///
/// let slow = create_task(tokio::time::sleep(Duration::from_secs(60)));
/// let err = wait_for(slow, Duration::from_millis(10)).await.unwrap_err();
/// assert!(err.is_timeout());
/// # });
/// ```
pub async fn wait_for<F, T>(future: F, duration: Duration) -> Result<T, Error>
where
    F: IntoFuture<Output = Result<T, Error>>,
{
    match Deadline::after(duration, future.into_future()).await {
        Ok(out) => out,
        Err(Expired) => Err(Error::timed_out(duration)),
    }
}

/// Runs `future` with a deadline `duration` from now (asyncio's `timeout()` scope); any output
/// type.
///
/// Nested scopes: the outermost scope whose deadline has passed reports the timeout; the scopes
/// inside it are dropped (cancelled) without reporting their own. A duration too large for the
/// clock means no deadline.
///
/// # Differences from Python
///
/// A zero duration never polls the future (asyncio runs the body up to its first suspension),
/// and the deadline is checked before each poll, so work that completes in the poll the deadline
/// passed counts as late.
///
/// # Errors
///
/// [`Error::TimedOut`] when the deadline passes first; the future is then dropped (cancelled),
/// and the tasks it awaited have finished by the time the error is returned.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// use std::time::Duration;
/// let out = taskweave_core::timeout(Duration::from_secs(5), async {
///     tokio::time::sleep(Duration::from_millis(1)).await;
///     "in time"
/// }).await;
/// assert_eq!(out.unwrap(), "in time");
/// # });
/// ```
pub async fn timeout<F: IntoFuture>(duration: Duration, future: F) -> Result<F::Output, Error> {
    Deadline::after(duration, future.into_future())
        .await
        .map_err(|Expired| Error::timed_out(duration))
}

/// Runs `future` until the instant `deadline` (asyncio's `timeout_at`).
///
/// Behaves as [`timeout`] does: nested scopes with the same deadline report it once, at the
/// outermost; a deadline already past never polls the future.
///
/// # Errors
///
/// [`Error::TimedOut`] when the deadline passes first.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// use std::time::{Duration, Instant};
/// let deadline = Instant::now() + Duration::from_millis(5);
/// let out = taskweave_core::timeout_at(deadline, std::future::pending::<()>()).await;
/// assert!(out.unwrap_err().is_timeout());
/// # });
/// ```
pub async fn timeout_at<F: IntoFuture>(
    deadline: std::time::Instant,
    future: F,
) -> Result<F::Output, Error> {
    let start = std::time::Instant::now();
    Deadline::new(Some(deadline.into()), future.into_future())
        .await
        .map_err(|Expired| Error::timed_out(deadline.saturating_duration_since(start)))
}
