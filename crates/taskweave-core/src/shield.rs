//! `shield`: await work without passing cancellation on to it (asyncio's `shield`).

use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::Error;
use crate::promise::Promise;

/// Awaits `work` but, if this await is dropped (cancelled, timed out), leaves the work running
/// instead of cancelling it.
///
/// Errors of shielded work that nobody retrieves after the await was dropped are still reported.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// use std::time::Duration;
/// use taskweave_core::{create_task, shield, wait_for};
///
/// let (tx, rx) = tokio::sync::oneshot::channel();
/// let save = create_task(async move {
///     tokio::time::sleep(Duration::from_millis(50)).await;
///     let _ = tx.send("saved");
/// });
/// // The timeout drops the shield, not the task, which runs on:
/// assert!(wait_for(shield(save), Duration::from_millis(1)).await.is_err());
/// assert_eq!(rx.await.unwrap(), "saved");
/// # });
/// ```
pub fn shield<T>(work: impl Into<Promise<T>>) -> Shielded<T> {
    Shielded {
        promise: Some(work.into()),
    }
}

/// The future returned by [`shield`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Shielded<T> {
    promise: Option<Promise<T>>,
}

impl<T> std::future::Future for Shielded<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(promise) = self.promise.as_mut() else {
            return Poll::Ready(Err(Error::refused("the result was already taken")));
        };
        let out = promise.poll_take(cx);
        if out.is_ready() {
            self.promise = None;
        }
        out
    }
}

impl<T> Drop for Shielded<T> {
    fn drop(&mut self) {
        if let Some(promise) = self.promise.take() {
            promise.detach();
        }
    }
}
