//! Deadlines: [`wait_for`], [`timeout`] and [`timeout_at`].
//!
//! On expiry the inner future is dropped, which cancels it: an inline future stops, an awaited
//! task is cancelled (awaiting links cancellation), as asyncio's `wait_for` cancels its inner
//! task. Thread and process work that already runs cannot be stopped and finishes unobserved.

use std::future::IntoFuture;
use std::time::Duration;

use crate::error::Error;

/// Awaits `future` for at most `duration` (asyncio's `wait_for`); on timeout the inner work is
/// cancelled.
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
    match tokio::time::timeout(duration, future.into_future()).await {
        Ok(out) => out,
        Err(_) => Err(Error::timed_out(duration)),
    }
}

/// Runs `future` with a deadline `duration` from now (asyncio's `timeout()` scope); any output
/// type.
///
/// # Errors
///
/// [`Error::TimedOut`] when the deadline passes first; the future is then dropped (cancelled).
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
    tokio::time::timeout(duration, future.into_future())
        .await
        .map_err(|_| Error::timed_out(duration))
}

/// Runs `future` until the instant `deadline` (asyncio's `timeout_at`).
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
    tokio::time::timeout_at(deadline.into(), future.into_future())
        .await
        .map_err(|_| Error::timed_out(deadline.saturating_duration_since(start)))
}
