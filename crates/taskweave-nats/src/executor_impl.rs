//! [`NatsExecutor`] behind the executor layer's [`Executor`] trait, so code generic over
//! executors runs on NATS too; its maps go through the layer's one map engine, fed by a
//! [`Dispatch`] that submits every item as its own call.

use taskweave_core::Promise;
use taskweave_executor::{Chunk, Dispatch, Executor, Payload};

use crate::NatsExecutor;

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
