//! Model-checked tests of the promise state machine: every interleaving of producer, consumer,
//! canceller and callback adders is explored by loom. Run with `cargo xtask loom`.

#![cfg(taskweave_loom)]

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

#[test]
fn callbacks_added_from_two_threads_after_completion_both_see_the_value() {
    loom::model(|| {
        let (promise, resolver) = Promise::<u32>::pending();
        resolver.set_result(5);
        let promise = Arc::new(promise);
        let count = Arc::new(AtomicUsize::new(0));
        let (p, c) = (promise.clone(), count.clone());
        let other = thread::spawn(move || {
            p.add_done_callback(move |r| {
                assert_eq!(*r.as_ref().unwrap(), 5);
                c.fetch_add(1, Ordering::SeqCst);
            });
        });
        let c = count.clone();
        promise.add_done_callback(move |r| {
            assert_eq!(*r.as_ref().unwrap(), 5);
            c.fetch_add(1, Ordering::SeqCst);
        });
        other.join().unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 2);
        let mut promise = Arc::try_unwrap(promise).unwrap();
        assert_eq!(promise.result(None).unwrap(), 5);
    });
}

#[test]
fn exception_is_seen_while_another_thread_runs_a_late_callback() {
    loom::model(|| {
        let promise = Arc::new(Promise::<u32>::ready(Err(Error::Abandoned)));
        let p = promise.clone();
        let other = thread::spawn(move || {
            p.add_done_callback(|r| assert!(matches!(r, Err(Error::Abandoned))));
        });
        assert!(matches!(promise.exception(), Some(Error::Abandoned)));
        other.join().unwrap();
    });
}

#[test]
fn a_late_callback_may_add_another_while_a_second_thread_adds_one() {
    loom::model(|| {
        let (promise, resolver) = Promise::<u32>::pending();
        resolver.set_result(2);
        let promise = Arc::new(promise);
        let count = Arc::new(AtomicUsize::new(0));
        let (p, c) = (promise.clone(), count.clone());
        let other = thread::spawn(move || {
            p.add_done_callback(move |r| {
                assert_eq!(*r.as_ref().unwrap(), 2);
                c.fetch_add(1, Ordering::SeqCst);
            });
        });
        let (inner_p, c) = (promise.clone(), count.clone());
        promise.add_done_callback(move |r| {
            assert_eq!(*r.as_ref().unwrap(), 2);
            let c2 = c.clone();
            // Re-entering the promise from its own callback must not deadlock.
            inner_p.add_done_callback(move |r| {
                assert_eq!(*r.as_ref().unwrap(), 2);
                c2.fetch_add(1, Ordering::SeqCst);
            });
            c.fetch_add(1, Ordering::SeqCst);
        });
        other.join().unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 3);
    });
}
