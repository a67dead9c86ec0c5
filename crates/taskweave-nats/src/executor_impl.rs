//! [`NatsExecutor`] behind the bridge's [`Executor`] trait, so code generic over executors runs
//! on NATS too. The only place this crate depends on the bridge.

use std::collections::VecDeque;

use taskweave_bridge::{Executor, MapResults, Payload};
use taskweave_core::{Error, Promise};

use crate::NatsExecutor;

/// Calls kept in flight by the trait's `map`: enough to keep a few workers busy, bounded so an
/// endless input runs in bounded memory.
const MAP_WINDOW: usize = 64;

impl Executor for NatsExecutor {
    #[track_caller]
    fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Promise<R> {
        NatsExecutor::submit(self, f, arg)
    }

    fn map<A, R, I>(&self, f: fn(A) -> R, inputs: I) -> MapResults<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        Box::new(Window {
            executor: self.clone(),
            f,
            inputs: inputs.into_iter(),
            in_flight: VecDeque::with_capacity(MAP_WINDOW),
        })
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        NatsExecutor::shutdown(self, wait, cancel_futures);
    }
}

/// Results in input order with at most [`MAP_WINDOW`] calls out.
struct Window<A, R, I> {
    executor: NatsExecutor,
    f: fn(A) -> R,
    inputs: I,
    in_flight: VecDeque<Promise<R>>,
}

impl<A: Payload, R: Payload, I: Iterator<Item = A>> Iterator for Window<A, R, I> {
    type Item = Result<R, Error>;

    fn next(&mut self) -> Option<Result<R, Error>> {
        while self.in_flight.len() < MAP_WINDOW {
            match self.inputs.next() {
                Some(arg) => {
                    self.in_flight
                        .push_back(NatsExecutor::submit(&self.executor, self.f, arg))
                }
                None => break,
            }
        }
        self.in_flight.pop_front().map(|mut p| p.result(None))
    }
}
