//! run_coroutine_threadsafe: plain threads hand futures to a running runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use taskweave_bridge::run_coroutine_threadsafe;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn from_many_threads_at_once() {
    let rt = runtime();
    let threads: Vec<_> = (0..16u64)
        .map(|t| {
            let handle = rt.handle().clone();
            std::thread::spawn(move || {
                let promises: Vec<_> = (0..50u64)
                    .map(|i| {
                        run_coroutine_threadsafe(&handle, async move {
                            tokio::task::yield_now().await;
                            t * 1000 + i
                        })
                    })
                    .collect();
                promises
                    .into_iter()
                    .map(|mut p| p.result(Some(Duration::from_secs(20))).unwrap())
                    .sum::<u64>()
            })
        })
        .collect();
    for (t, th) in threads.into_iter().enumerate() {
        let t = t as u64;
        let expected: u64 = (0..50).map(|i| t * 1000 + i).sum();
        assert_eq!(th.join().unwrap(), expected);
    }
}

#[test]
fn result_times_out_then_succeeds() {
    let rt = runtime();
    let mut p = run_coroutine_threadsafe(rt.handle(), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        "late"
    });
    assert!(
        p.result(Some(Duration::from_millis(5)))
            .unwrap_err()
            .is_timeout()
    );
    assert_eq!(p.result(Some(Duration::from_secs(10))).unwrap(), "late");
}

#[test]
fn cancel_cancels_the_task() {
    let rt = runtime();
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    let mut p = run_coroutine_threadsafe(rt.handle(), async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        f.store(true, Ordering::SeqCst);
    });
    assert!(p.cancel());
    assert!(
        p.result(Some(Duration::from_secs(10)))
            .unwrap_err()
            .is_cancelled()
    );
    assert!(!finished.load(Ordering::SeqCst));
}

#[test]
fn a_panicking_future_is_an_error() {
    let rt = runtime();
    let mut p = run_coroutine_threadsafe(rt.handle(), async { panic!("coroutine broke") });
    let err: taskweave_core::Error = p.result(Some(Duration::from_secs(10))).unwrap_err();
    assert!(err.to_string().contains("coroutine broke"));
}
