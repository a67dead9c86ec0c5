//! [`run_coroutine_threadsafe`]: hand a future from a plain thread to a running runtime and get
//! the general future back (asyncio's `run_coroutine_threadsafe`).

use std::future::Future;

use taskweave_core::{Promise, create_task};
use tokio::runtime::Handle;

/// Starts `future` as a task on the runtime behind `handle` and returns its [`Promise`], which
/// a plain thread can block on with [`Promise::result`] (asyncio's
/// `run_coroutine_threadsafe(coro, loop)`).
///
/// Cancelling the promise ([`Promise::cancel`]) cancels the task at its next suspension point.
/// Callable from any thread, including the runtime's own; blocking on the promise there is
/// refused with [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) (await it instead).
///
/// # Errors
///
/// The promise carries them: [`ErrorKind::Panicked`](taskweave_core::ErrorKind::Panicked) when the
/// future panics, [`ErrorKind::Cancelled`](taskweave_core::ErrorKind::Cancelled) when the task was
/// cancelled or the runtime shut down before it finished.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use taskweave_bridge::run_coroutine_threadsafe;
///
/// let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
/// let handle = rt.handle().clone();
/// let worker = std::thread::spawn(move || {
///     let mut answer = run_coroutine_threadsafe(&handle, async {
///         tokio::time::sleep(Duration::from_millis(10)).await;
///         42
///     });
///     answer.result(Some(Duration::from_secs(5)))
/// });
/// assert_eq!(worker.join().unwrap().unwrap(), 42);
/// ```
#[track_caller]
pub fn run_coroutine_threadsafe<F>(handle: &Handle, future: F) -> Promise<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let _entered = handle.enter();
    Promise::from(create_task(future))
}
