//! The [`Executor`] trait for the thread pool and the rayon executor: `fn` pointers run through
//! their closure machinery, named by their type since a pointer has no name.

use taskweave_core::Promise;
use taskweave_executor::{Dispatch, Executor, Payload};

use crate::job;
use crate::pool::ThreadPoolExecutor;
use crate::rayon_bridge::RayonExecutor;

impl Executor for ThreadPoolExecutor {
    #[track_caller]
    fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Promise<R> {
        // Named after `f`'s type, not after this closure (which would say only "closure in
        // the trait impl"); the submit site recorded with it says where.
        let info = job::describe::<fn(A) -> R>();
        self.submit_described(info, move || f(arg))
    }

    #[track_caller]
    fn dispatcher<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
    ) -> impl Dispatch<Input = A, Output = R> {
        self.dispatcher_of(f)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        ThreadPoolExecutor::shutdown(self, wait, cancel_futures);
    }
}

impl Executor for RayonExecutor {
    #[track_caller]
    fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Promise<R> {
        let info = job::describe::<fn(A) -> R>();
        self.spawn_described(info, move || f(arg))
    }

    #[track_caller]
    fn dispatcher<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
    ) -> impl Dispatch<Input = A, Output = R> {
        self.dispatcher_of(f)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        RayonExecutor::shutdown(self, wait, cancel_futures);
    }
}
