//! [`NatsExecutor`] behind the executor layer's [`Executor`] trait, so code generic over
//! executors runs on NATS too, and its [`Runs`](taskweave_executor::Runs) for
//! `run_in_executor`; its maps go through the layer's one map engine, fed by a
//! [`Dispatch`] that submits every item as its own call.

use taskweave_core::{Error, Promise};
use taskweave_executor::{Chunk, Dispatch, Executor, Payload};
use taskweave_registry::Signature;

use crate::NatsExecutor;

/// `run_in_executor(&nats, f)`: asyncio's `loop.run_in_executor(executor, f)` with a worker
/// somewhere on NATS running `f`.
///
/// Only a registered function can be found by another build, so `f` is a `fn() -> R` marked
/// `#[remote]` (a function without argument; it travels with `()` as its argument, so callers
/// by name see it as `fn(()) -> R`). An unregistered function or a closure fails in the
/// promise with [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused); the other errors are
/// those of [`NatsExecutor::submit`].
///
/// ```no_run
/// use taskweave_bridge::run_in_executor;
///
/// #[taskweave_macros::remote(crate = taskweave_registry)]
/// fn answer() -> u32 {
///     42
/// }
///
/// let nats = taskweave_nats::NatsExecutor::builder().connect()?;
/// let got = taskweave_core::run(async {
///     let a = run_in_executor(&nats, answer).await?;
///     let refused = run_in_executor(&nats, || 7u32).await.unwrap_err();
///     assert!(refused.is_refused());
///     Ok::<_, taskweave_core::Error>(a)
/// });
/// assert_eq!(got??, 42);
/// # Ok::<(), taskweave_core::Error>(())
/// ```
impl<R: Payload> taskweave_executor::Runs<fn() -> R> for NatsExecutor {
    type Output = R;

    #[track_caller]
    fn run(&self, f: fn() -> R) -> Promise<R> {
        match taskweave_registry::by_nullary_fn(f) {
            Ok(entry) => self.send(entry.name(), Signature::of::<(), R>(), (), None),
            Err(e) => Promise::ready(Err(Error::refused(e.to_string()))),
        }
    }
}

/// Calls kept in flight per map by default: enough to keep a few machines' workers busy, bounded
/// so an endless input runs in bounded memory.
const DEFAULT_WINDOW: usize = 64;

impl Executor for NatsExecutor {
    #[track_caller]
    fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Promise<R> {
        NatsExecutor::submit(self, f, arg)
    }

    fn dispatcher<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
    ) -> impl Dispatch<Input = A, Output = R> {
        Calls {
            executor: self.clone(),
            f,
        }
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        NatsExecutor::shutdown(self, wait, cancel_futures);
    }
}

/// Feeds a map: each item of a chunk becomes one call; a task on the executor's runtime awaits
/// the chunk's calls in order and delivers their results.
struct Calls<A, R> {
    executor: NatsExecutor,
    f: fn(A) -> R,
}

impl<A: Payload, R: Payload> Dispatch for Calls<A, R> {
    type Input = A;
    type Output = R;

    fn default_window(&self, chunksize: usize) -> usize {
        DEFAULT_WINDOW.max(chunksize.saturating_mul(2))
    }

    fn dispatch(&mut self, chunks: &mut Vec<Chunk<A, R>>) {
        for chunk in chunks.drain(..) {
            let (items, mut results) = chunk.into_parts();
            if results.is_cancelled() {
                continue;
            }
            let calls: Vec<Promise<R>> = items
                .map(|arg| NatsExecutor::submit(&self.executor, self.f, arg))
                .collect();
            self.executor.runtime_handle().spawn(async move {
                let mut calls = calls.into_iter();
                while let Some(call) = calls.next() {
                    if results.is_cancelled() {
                        // The map was dropped: calls not started yet need not run.
                        call.cancel();
                        calls.for_each(|c| {
                            c.cancel();
                        });
                        return;
                    }
                    results.push(call.await);
                }
            });
        }
    }
}
