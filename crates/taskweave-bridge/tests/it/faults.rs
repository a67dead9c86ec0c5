//! User code that misbehaves while unwinding: a panic payload whose own `Drop` panics, a
//! panicking done-callback. Each fails only its own call; workers live on and nothing strands.

use std::time::Duration;

use taskweave_bridge::{ThreadPoolExecutor, spawn_rayon};

const LIMIT: Duration = Duration::from_secs(10);

/// A panic payload that panics again when it is dropped.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("the payload's own drop panicked");
    }
}

fn one_worker() -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap()
}

#[test]
fn a_payload_whose_drop_panics_is_a_panic_error_and_the_worker_lives_on() {
    let pool = one_worker();
    let before = pool
        .submit(|| std::thread::current().id())
        .result(Some(LIMIT))
        .unwrap();
    let err = pool
        .submit(|| -> u32 { std::panic::panic_any(PanicsOnDrop) })
        .result(Some(LIMIT))
        .unwrap_err();
    assert!(err.is_panic(), "{err:?}");
    let after = pool
        .submit(|| std::thread::current().id())
        .result(Some(LIMIT))
        .unwrap();
    assert_eq!(before, after, "the same worker thread ran the next call");
    assert_eq!(pool.threads(), 1);
}

#[test]
fn a_rayon_payload_whose_drop_panics_is_a_panic_error() {
    let err = spawn_rayon(|| -> u32 { std::panic::panic_any(PanicsOnDrop) })
        .result(Some(LIMIT))
        .unwrap_err();
    assert!(err.is_panic(), "{err:?}");
    assert_eq!(spawn_rayon(|| 3).result(Some(LIMIT)).unwrap(), 3);
}

#[test]
fn a_panicking_done_callback_fails_nothing_else() {
    let pool = one_worker();
    let before = pool
        .submit(|| std::thread::current().id())
        .result(Some(LIMIT))
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut p = pool.submit(move || {
        rx.recv().unwrap();
        5
    });
    // Added while the call runs, so it runs on the worker that completes the call.
    p.add_done_callback(|_| panic!("callback bug"));
    p.add_done_callback(|_| std::panic::panic_any(PanicsOnDrop));
    tx.send(()).unwrap();
    assert_eq!(p.result(Some(LIMIT)).unwrap(), 5);
    let after = pool
        .submit(|| std::thread::current().id())
        .result(Some(LIMIT))
        .unwrap();
    assert_eq!(before, after, "the worker survived the callbacks");
    assert_eq!(pool.threads(), 1);
}
