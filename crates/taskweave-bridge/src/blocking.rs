//! Blocking work from async code: [`to_thread`], [`run_in_executor`] and the per-runtime
//! default executor (asyncio's `to_thread`, `loop.run_in_executor` and the loop's default
//! `ThreadPoolExecutor`).
//!
//! The default executor is a [`ThreadPoolExecutor`] per tokio runtime, created on first use.
//! It is shut down (and its threads joined) when its runtime shuts down, as `asyncio.run` shuts
//! down the loop's default executor; idle threads also leave after [`DEFAULT_KEEP_ALIVE`].
//!
//! `to_thread` runs on this pool rather than on tokio's `spawn_blocking` because the pool's
//! round trip is shorter: an idle worker polls briefly before it sleeps, so calls that come
//! back to back skip the wake-up, and a single lock per call replaces the blocking pool's task
//! machinery (see `docs/ARCHITECTURE.md` for the numbers).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use taskweave_core::{Error, Promise};
use taskweave_executor::Runs;
use tokio::runtime::{Handle, Id};

use crate::poison;
use crate::pool::ThreadPoolExecutor;

/// How long an idle thread of a default executor waits for work before it exits.
///
/// ```
/// assert_eq!(taskweave_bridge::DEFAULT_KEEP_ALIVE.as_secs(), 10);
/// ```
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(10);

impl<F, T> Runs<F> for ThreadPoolExecutor
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    type Output = T;

    #[track_caller]
    fn run(&self, f: F) -> Promise<T> {
        self.submit_awaited(f)
    }
}

/// Runs `f` on `executor` and returns its promise, to be awaited (asyncio's
/// `loop.run_in_executor(executor, f)`).
///
/// The work starts at once, whether or not the promise is awaited, inside the caller's current
/// `tracing` span (for an instrumented task, the task's span). Dropping the await before the
/// work started cancels it; running work finishes (threads cannot be interrupted).
///
/// # Differences from Python
///
/// `loop.run_in_executor` does not copy contextvars; this carries the caller's span to the
/// work, as `to_thread` does.
///
/// # Errors
///
/// The promise carries them: [`Error::Panicked`] when `f` panics, [`Error::Shutdown`] when the
/// executor was shut down, [`Error::Broken`] when its initializer failed.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// use std::time::Duration;
/// use taskweave_bridge::{run_in_executor, ThreadPoolExecutor};
///
/// fn blocking_function() -> u32 {
///     std::thread::sleep(Duration::from_millis(20));
///     42
/// }
///
/// let pool = ThreadPoolExecutor::new();
/// assert_eq!(run_in_executor(&pool, blocking_function).await.unwrap(), 42);
/// # });
/// ```
#[track_caller]
pub fn run_in_executor<E, F>(executor: &E, f: F) -> Promise<E::Output>
where
    E: Runs<F> + ?Sized,
{
    executor.run(f)
}

/// Runs `f` on the current runtime's default executor and returns its promise, to be awaited
/// (asyncio's `to_thread`).
///
/// The work starts at once, inside the caller's current `tracing` span, as Python runs it in
/// a copy of the caller's contextvars. Use it for blocking calls (file I/O, a blocking client,
/// a slow computation) that would otherwise hold a runtime thread. Calls awaited one after
/// another reuse one idle thread.
///
/// # Errors
///
/// The promise carries them: [`Error::Panicked`] when `f` panics; [`Error::Refused`] when
/// called outside a tokio runtime (use [`ThreadPoolExecutor::submit`] from plain threads).
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// let text = taskweave_bridge::to_thread(|| std::fs::read_to_string("Cargo.toml")).await;
/// assert!(text.unwrap().is_ok());
/// # });
/// ```
#[track_caller]
pub fn to_thread<F, T>(f: F) -> Promise<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match default_executor() {
        Ok(pool) => pool.submit_awaited(f),
        Err(e) => Promise::ready(Err(e)),
    }
}

/// The current runtime's default executor, created on first use: a [`ThreadPoolExecutor`]
/// with Python's default size, threads named `to_thread_<i>`, idle threads leaving after
/// [`DEFAULT_KEEP_ALIVE`].
///
/// # Errors
///
/// [`Error::Refused`] when called outside a tokio runtime.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// let pool = taskweave_bridge::default_executor().unwrap();
/// assert_eq!(pool.submit(|| 2 + 2).await.unwrap(), 4);
/// # });
/// ```
pub fn default_executor() -> Result<Arc<ThreadPoolExecutor>, Error> {
    let handle = current_handle("the default executor")?;
    let mut slots = registry();
    if let Some(pool) = slots.get(&handle.id()) {
        return Ok(pool.clone());
    }
    let pool = Arc::new(
        ThreadPoolExecutor::builder()
            .thread_name_prefix("to_thread")
            .keep_alive(DEFAULT_KEEP_ALIVE)
            .build()?,
    );
    slots.insert(handle.id(), pool.clone());
    drop(slots);
    watch_runtime(&handle);
    Ok(pool)
}

/// Makes `executor` the current runtime's default executor (asyncio's
/// `loop.set_default_executor`); the previous one is shut down without waiting.
///
/// # Errors
///
/// [`Error::Refused`] when called outside a tokio runtime.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// use taskweave_bridge::{set_default_executor, to_thread, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::builder().max_workers(2).thread_name_prefix("io").build().unwrap();
/// set_default_executor(pool).unwrap();
/// let name = to_thread(|| std::thread::current().name().map(str::to_owned)).await.unwrap();
/// assert!(name.unwrap().starts_with("io_"));
/// # });
/// ```
pub fn set_default_executor(executor: ThreadPoolExecutor) -> Result<(), Error> {
    let handle = current_handle("set_default_executor")?;
    let old = registry().insert(handle.id(), Arc::new(executor));
    match old {
        Some(old) => old.shutdown(false, false),
        None => watch_runtime(&handle),
    }
    Ok(())
}

fn current_handle(what: &str) -> Result<Handle, Error> {
    Handle::try_current().map_err(|_| {
        Error::refused(format!(
            "{what} belongs to a runtime, and this thread is not running one: call it from async \
             code, or submit to a ThreadPoolExecutor from plain threads"
        ))
    })
}

type Registry = HashMap<Id, Arc<ThreadPoolExecutor>>;

fn registry() -> MutexGuard<'static, Registry> {
    static SLOTS: OnceLock<Mutex<Registry>> = OnceLock::new();
    poison::lock(SLOTS.get_or_init(Mutex::default))
}

/// Spawns a sentinel task on the runtime of `handle` that removes and shuts down its default
/// executor when the runtime drops its tasks at shutdown. Called without the registry lock: a
/// runtime already shutting down drops the task, and so runs the sentinel, inside `spawn`.
fn watch_runtime(handle: &Handle) {
    let sentinel = RuntimeGone { id: handle.id() };
    // The task never finishes; the runtime drops it, and with it the sentinel, on shutdown.
    drop(handle.spawn(async move {
        let _sentinel = sentinel;
        std::future::pending::<()>().await;
    }));
}

struct RuntimeGone {
    id: Id,
}

impl Drop for RuntimeGone {
    fn drop(&mut self) {
        let pool = registry().remove(&self.id);
        if let Some(pool) = pool {
            // asyncio.run waits for the default executor; so does a runtime's shutdown here.
            pool.shutdown(true, false);
        }
    }
}
