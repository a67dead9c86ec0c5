//! The [`Executor`] trait for the thread pool and the rayon executor: `fn` pointers run through
//! their closure methods.

use taskweave_core::Promise;
use taskweave_executor::{Executor, Map, MapOptions, MapUnordered, Payload};

use crate::pool::ThreadPoolExecutor;
use crate::rayon_bridge::RayonExecutor;

impl Executor for ThreadPoolExecutor {
    #[track_caller]
    fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Promise<R> {
        ThreadPoolExecutor::submit(self, move || f(arg))
    }

    #[track_caller]
    fn map_with<A, R, I>(&self, f: fn(A) -> R, inputs: I, options: MapOptions) -> Map<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        ThreadPoolExecutor::map_with(self, f, inputs, options)
    }

    #[track_caller]
    fn map_unordered_with<A, R, I>(
        &self,
        f: fn(A) -> R,
        inputs: I,
        options: MapOptions,
    ) -> MapUnordered<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        ThreadPoolExecutor::map_unordered_with(self, f, inputs, options)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        ThreadPoolExecutor::shutdown(self, wait, cancel_futures);
    }
}

impl Executor for RayonExecutor {
    #[track_caller]
    fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Promise<R> {
        self.spawn(move || f(arg))
    }

    #[track_caller]
    fn map_with<A, R, I>(&self, f: fn(A) -> R, inputs: I, options: MapOptions) -> Map<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        RayonExecutor::map_with(self, f, inputs, options)
    }

    #[track_caller]
    fn map_unordered_with<A, R, I>(
        &self,
        f: fn(A) -> R,
        inputs: I,
        options: MapOptions,
    ) -> MapUnordered<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        RayonExecutor::map_unordered_with(self, f, inputs, options)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        RayonExecutor::shutdown(self, wait, cancel_futures);
    }
}
