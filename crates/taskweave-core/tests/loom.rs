//! Model-checked tests of the promise state machine: every interleaving of producer, consumer,
//! canceller and callback adders is explored by loom. Run with `cargo xtask loom`.

#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering};

use loom::sync::Arc;
use loom::thread;
use taskweave_core::{Error, Promise, State};

#[test]
fn callback_runs_exactly_once_when_added_during_completion() {
    loom::model(|| {
        let count = Arc::new(AtomicUsize::new(0));
        let (promise, resolver) = Promise::<u32>::pending();
        let producer = thread::spawn(move || resolver.set_result(1));
        let c = count.clone();
        promise.add_done_callback(move |r| {
            assert_eq!(*r.as_ref().unwrap(), 1);
            c.fetch_add(1, Ordering::SeqCst);
        });
        producer.join().unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert!(promise.done());
    });
}

#[test]
fn cancel_and_resolve_race_to_one_outcome() {
    loom::model(|| {
        let (mut promise, resolver) = Promise::<u32>::pending();
        let producer = thread::spawn(move || {
            if resolver.set_running() {
                resolver.set_result(7);
                true
            } else {
                false
            }
        });
        let cancelled = promise.cancel();
        let ran = producer.join().unwrap();
        // Either the cancel won (the work never ran) or the work ran and the cancel failed.
        assert_ne!(cancelled, ran);
        match promise.result(None) {
            Ok(v) => {
                assert!(ran);
                assert_eq!(v, 7);
            }
            Err(e) => {
                assert!(cancelled && e.is_cancelled());
            }
        }
        let state = promise.state();
        assert!(state == State::Finished || state == State::Cancelled);
    });
}

#[test]
fn blocking_waiter_sees_the_result() {
    loom::model(|| {
        let (mut promise, resolver) = Promise::<u32>::pending();
        let producer = thread::spawn(move || resolver.set_result(3));
        assert_eq!(promise.result(None).unwrap(), 3);
        producer.join().unwrap();
    });
}

#[test]
fn dropped_resolver_wakes_the_waiter_with_abandoned() {
    loom::model(|| {
        let (mut promise, resolver) = Promise::<u32>::pending();
        let producer = thread::spawn(move || drop(resolver));
        assert!(matches!(promise.result(None), Err(Error::Abandoned)));
        producer.join().unwrap();
    });
}
