//! The [`Executor`] trait for the thread pool and the rayon executor: `fn` pointers run through
//! the same jobs and [`ClosureMap`] as their closure methods, named by their type since a
//! pointer has no name.

use std::sync::Arc;

use taskweave_core::Promise;
use taskweave_executor::{Dispatch, Executor, Payload};

use crate::job;
use crate::map::{ClosureMap, JobQueue};
use crate::pool::{self, ThreadPoolExecutor};
use crate::rayon_bridge::{self, RayonExecutor};

/// Queues `f(arg)` on `queue` as work of `executor`, named after `f`'s type (a closure made
/// here would be named after this function); the submit site recorded with it says where.
#[track_caller]
fn submit_fn<A, R>(
    queue: Arc<impl JobQueue>,
    executor: &'static str,
    f: fn(A) -> R,
    arg: A,
) -> Promise<R>
where
    A: Send + 'static,
    R: Send + 'static,
{
    let (promise, job) = job::promise_job(executor, job::describe::<fn(A) -> R>(), move || f(arg));
    queue.push_jobs(&mut vec![job]);
    promise
}

/// The two impls differ only in their type and the name their events carry.
macro_rules! closure_executor {
    ($executor:ty, $name:expr) => {
        impl Executor for $executor {
            #[track_caller]
            fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Promise<R> {
                submit_fn(self.queue(), $name, f, arg)
            }

            #[track_caller]
            fn dispatcher<A: Payload, R: Payload>(
                &self,
                f: fn(A) -> R,
            ) -> impl Dispatch<Input = A, Output = R> {
                ClosureMap::new(self.queue(), f)
            }

            fn shutdown(&self, wait: bool, cancel_futures: bool) {
                <$executor>::shutdown(self, wait, cancel_futures);
            }
        }
    };
}

closure_executor!(ThreadPoolExecutor, pool::EXECUTOR);
closure_executor!(RayonExecutor, rayon_bridge::EXECUTOR);
