//! The general future from plain threads: blocking waits, timeouts, callbacks, errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use taskweave_core::{Error, Promise, State};

#[test]
fn result_from_a_plain_thread_in_time() {
    let (mut p, r) = Promise::<String>::pending();
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        r.set_result("late but in time".into());
    });
    assert_eq!(
        p.result(Some(Duration::from_secs(5))).unwrap(),
        "late but in time"
    );
    producer.join().unwrap();
}

#[test]
fn result_times_out_and_can_be_retried() {
    let (mut p, r) = Promise::<u8>::pending();
    let start = Instant::now();
    let err = p.result(Some(Duration::from_millis(30))).unwrap_err();
    assert!(err.is_timeout());
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert_eq!(p.state(), State::Pending, "a timeout does not cancel");
    r.set_result(4);
    assert_eq!(p.result(Some(Duration::from_millis(30))).unwrap(), 4);
}

#[test]
fn result_twice_is_refused_not_a_panic() {
    let mut p = Promise::ready(Ok(1u8));
    assert_eq!(p.result(None).unwrap(), 1);
    assert!(matches!(p.result(None), Err(Error::Refused { .. })));
}

#[test]
fn dropped_resolver_abandons() {
    let (mut p, r) = Promise::<u8>::pending();
    std::thread::spawn(move || drop(r)).join().unwrap();
    assert!(matches!(p.result(None), Err(Error::Abandoned)));
}

#[test]
fn exception_does_not_take_the_error() {
    let (mut p, r) = Promise::<u8>::pending();
    assert!(p.exception().is_none());
    r.set_error(Error::broken("init failed"));
    assert!(matches!(p.exception(), Some(Error::Broken { .. })));
    assert!(matches!(p.result(None), Err(Error::Broken { .. })));
}

#[test]
fn callbacks_before_and_after_completion_run_once() {
    let count = Arc::new(AtomicUsize::new(0));
    let (p, r) = Promise::<u32>::pending();
    let c = count.clone();
    p.add_done_callback(move |res| {
        assert_eq!(*res.as_ref().unwrap(), 3);
        c.fetch_add(1, Ordering::SeqCst);
    });
    r.set_result(3);
    let c = count.clone();
    p.add_done_callback(move |res| {
        assert_eq!(*res.as_ref().unwrap(), 3);
        c.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[test]
fn a_panicking_callback_does_not_stop_the_others() {
    let count = Arc::new(AtomicUsize::new(0));
    let (mut p, r) = Promise::<u32>::pending();
    p.add_done_callback(|_| panic!("bad callback"));
    let c = count.clone();
    p.add_done_callback(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    r.set_result(1);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(p.result(None).unwrap(), 1);
}

#[test]
fn callback_may_call_back_into_its_promise() {
    let (p, r) = Promise::<u32>::pending();
    let p = Arc::new(p);
    let inner = Arc::clone(&p);
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    p.add_done_callback(move |_| {
        // Callbacks run outside the lock: querying the promise does not deadlock.
        let _ = inner.state();
        s.fetch_add(1, Ordering::SeqCst);
    });
    r.set_result(1);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[test]
fn callbacks_exactly_once_under_races() {
    for _ in 0..200 {
        let count = Arc::new(AtomicUsize::new(0));
        let (p, r) = Promise::<u32>::pending();
        let p = Arc::new(p);
        let adders: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                let count = count.clone();
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        let c = count.clone();
                        p.add_done_callback(move |_| {
                            c.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                })
            })
            .collect();
        let resolver = std::thread::spawn(move || r.set_result(1));
        for a in adders {
            a.join().unwrap();
        }
        resolver.join().unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 40);
    }
}

#[test]
fn many_threads_wait_on_one_promise_in_turn() {
    let (p, r) = Promise::<u32>::pending();
    let p = Arc::new(std::sync::Mutex::new(p));
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || {
                // Each waiter only looks for completion; the first one takes the result.
                loop {
                    let done = p.lock().unwrap().done();
                    if done {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(10));
    r.set_result(8);
    for w in waiters {
        w.join().unwrap();
    }
    assert_eq!(p.lock().unwrap().result(None).unwrap(), 8);
}

#[test]
fn callbacks_added_from_two_threads_after_completion_both_see_the_result() {
    let (promise, resolver) = Promise::<u32>::pending();
    resolver.set_result(11);
    let promise = Arc::new(promise);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let (promise, seen) = (promise.clone(), seen.clone());
            std::thread::spawn(move || {
                // The second adds its callback while the first one runs.
                std::thread::sleep(Duration::from_millis(i * 10));
                promise.add_done_callback(move |r| {
                    let got = r.as_ref().map(|v| *v).map_err(ToString::to_string);
                    std::thread::sleep(Duration::from_millis(40));
                    seen.lock().unwrap().push(got);
                });
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*seen.lock().unwrap(), vec![Ok(11), Ok(11)]);
    let mut promise = Arc::into_inner(promise).unwrap();
    assert_eq!(promise.result(Some(Duration::from_secs(1))).unwrap(), 11);
}

#[test]
fn exception_is_visible_while_a_late_callback_runs() {
    let promise = Arc::new(Promise::<u32>::ready(Err(Error::shutdown("closed"))));
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let p = promise.clone();
    let adder = std::thread::spawn(move || {
        p.add_done_callback(move |r| {
            assert!(r.is_err());
            started_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        });
    });
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(matches!(promise.exception(), Some(Error::Shutdown { .. })));
    adder.join().unwrap();
}
