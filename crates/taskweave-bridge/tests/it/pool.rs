//! ThreadPoolExecutor: submit, panics, shutdown, cancel_futures, initializer, thread lifetime.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use taskweave_bridge::{Queued, ThreadPoolExecutor};
use taskweave_core::State;

use crate::support::{eventually, threads_named};

#[test]
fn submit_returns_the_value() {
    let pool = ThreadPoolExecutor::new();
    let promises: Vec<_> = (0..100u64).map(|i| pool.submit(move || i * 2)).collect();
    let got: Vec<u64> = promises
        .into_iter()
        .map(|mut p| p.result(None).unwrap())
        .collect();
    assert_eq!(got, (0..100).map(|i| i * 2).collect::<Vec<_>>());
}

#[test]
fn a_panic_is_an_error_value_and_the_worker_survives() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let mut bad = pool.submit(|| -> u32 { panic!("disk on fire") });
    let err = bad.result(None).unwrap_err();
    match err.panic() {
        Some(p) => {
            assert_eq!(p.message(), "disk on fire");
            assert_eq!(
                p.task(),
                Some("closure in it::pool::a_panic_is_an_error_value_and_the_worker_survives")
            );
            assert!(!err.to_string().contains("{{closure}}"), "{err}");
            let site = p.site().expect("the submit site is recorded");
            assert!(site.file().ends_with("tests/it/pool.rs"), "{site}");
        }
        None => panic!("expected a panic error, got {err:?}"),
    }
    let mut good = pool.submit(|| 7);
    assert_eq!(good.result(None).unwrap(), 7);
    assert_eq!(pool.threads(), 1, "the single worker lived on");
}

#[test]
fn result_with_timeout_times_out_then_succeeds() {
    let pool = ThreadPoolExecutor::new();
    let (tx, rx) = mpsc::channel::<()>();
    let mut p = pool.submit(move || {
        rx.recv().unwrap();
        5
    });
    let started = Instant::now();
    let err = p.result(Some(Duration::from_millis(30))).unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(30));
    tx.send(()).unwrap();
    assert_eq!(p.result(Some(Duration::from_secs(10))).unwrap(), 5);
}

#[test]
fn shutdown_without_wait_returns_at_once_and_work_completes() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let gate = Arc::new(Barrier::new(2));
    let g = gate.clone();
    let mut running = pool.submit(move || {
        g.wait();
        "ran"
    });
    let mut queued: Vec<_> = (0..4).map(|i| pool.submit(move || i)).collect();
    let started = Instant::now();
    pool.shutdown(false, false);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "shutdown(wait = false) must not wait for the blocked work"
    );
    gate.wait();
    assert_eq!(running.result(None).unwrap(), "ran");
    for (i, p) in queued.iter_mut().enumerate() {
        assert_eq!(p.result(None).unwrap(), i);
    }
}

#[test]
fn submit_after_shutdown_is_an_error_value() {
    let pool = ThreadPoolExecutor::new();
    pool.shutdown(true, false);
    let err = pool.submit(|| 1).result(None).unwrap_err();
    assert!(err.is_shutdown(), "{err:?}");
    // Shutting down twice is fine.
    pool.shutdown(true, true);
}

/// A one-thread pool whose thread runs a call that has started and waits for the sender to let
/// it finish (with "finished"), so that what is submitted next stays queued.
fn occupied_pool() -> (
    ThreadPoolExecutor,
    taskweave_core::Promise<&'static str>,
    mpsc::Sender<()>,
) {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let running = pool.submit(move || {
        started_tx.send(()).unwrap();
        go_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        "finished"
    });
    started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    (pool, running, go_tx)
}

#[test]
fn cancel_futures_cancels_only_queued_work() {
    let (pool, mut running, go_tx) = occupied_pool();
    let ran = Arc::new(AtomicUsize::new(0));
    let queued: Vec<_> = (0..5)
        .map(|_| {
            let ran = ran.clone();
            pool.submit(move || ran.fetch_add(1, Ordering::SeqCst))
        })
        .collect();
    pool.shutdown(false, true);
    go_tx.send(()).unwrap();
    assert_eq!(running.result(None).unwrap(), "finished");
    for mut p in queued {
        assert!(p.result(None).unwrap_err().is_cancelled());
        assert_eq!(p.state(), State::Cancelled);
    }
    pool.shutdown(true, false);
    assert_eq!(ran.load(Ordering::SeqCst), 0, "no queued work ran");
}

#[test]
fn a_cancelled_promise_skips_its_work() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let mut blocker = pool.submit(move || go_rx.recv().unwrap());
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let mut victim = pool.submit(move || r.fetch_add(1, Ordering::SeqCst));
    assert!(victim.cancel());
    go_tx.send(()).unwrap();
    blocker.result(None).unwrap();
    assert!(victim.result(None).unwrap_err().is_cancelled());
    pool.shutdown(true, false);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn a_failing_initializer_breaks_the_pool() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .try_initializer(|| Err::<(), _>("database unreachable"))
        .build()
        .unwrap();
    let mut pending: Vec<_> = (0..10).map(|i| pool.submit(move || i)).collect();
    for p in &mut pending {
        let err = p.result(Some(Duration::from_secs(10))).unwrap_err();
        assert!(err.is_broken(), "{err:?}");
        assert!(err.to_string().contains("database unreachable"), "{err}");
    }
    let err = pool.submit(|| 1).result(None).unwrap_err();
    assert!(err.is_broken(), "later submits say so too: {err:?}");
}

#[test]
fn a_panicking_initializer_breaks_the_pool() {
    let pool = ThreadPoolExecutor::builder()
        .initializer(|| panic!("no config"))
        .build()
        .unwrap();
    let err = pool.submit(|| 1).result(None).unwrap_err();
    assert!(err.to_string().contains("no config"), "{err}");
}

#[test]
fn the_initializer_runs_once_per_thread() {
    let inits = Arc::new(AtomicUsize::new(0));
    let i = inits.clone();
    let pool = ThreadPoolExecutor::builder()
        .max_workers(3)
        .initializer(move || {
            i.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let barrier = Arc::new(Barrier::new(3));
    let promises: Vec<_> = (0..3)
        .map(|_| {
            let b = barrier.clone();
            pool.submit(move || {
                b.wait();
            })
        })
        .collect();
    for mut p in promises {
        p.result(None).unwrap();
    }
    for _ in 0..50 {
        pool.submit(|| ()).result(None).unwrap();
    }
    pool.shutdown(true, false);
    assert_eq!(inits.load(Ordering::SeqCst), 3);
}

#[test]
fn threads_are_named_and_none_is_left_after_shutdown() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(4)
        .thread_name_prefix("tw-left")
        .build()
        .unwrap();
    let barrier = Arc::new(Barrier::new(4));
    let names: Vec<_> = (0..4)
        .map(|_| {
            let b = barrier.clone();
            pool.submit(move || {
                b.wait();
                std::thread::current().name().unwrap().to_owned()
            })
        })
        .collect();
    for mut n in names {
        assert!(n.result(None).unwrap().starts_with("tw-left_"));
    }
    assert_eq!(threads_named("tw-left_"), 4);
    pool.shutdown(true, false);
    assert_eq!(
        threads_named("tw-left_"),
        0,
        "shutdown(wait) joined every worker"
    );
}

#[test]
fn dropping_the_pool_waits_for_its_work() {
    let done = Arc::new(AtomicUsize::new(0));
    {
        let pool = ThreadPoolExecutor::builder()
            .thread_name_prefix("tw-drop")
            .build()
            .unwrap();
        for _ in 0..8 {
            let d = done.clone();
            pool.submit(move || {
                std::thread::sleep(Duration::from_millis(5));
                d.fetch_add(1, Ordering::SeqCst);
            })
            .detach();
        }
    }
    assert_eq!(done.load(Ordering::SeqCst), 8);
    assert_eq!(threads_named("tw-drop_"), 0);
}

#[test]
fn idle_threads_leave_after_keep_alive() {
    let pool = ThreadPoolExecutor::builder()
        .thread_name_prefix("tw-idle")
        .keep_alive(Duration::from_millis(20))
        .build()
        .unwrap();
    pool.submit(|| ()).result(None).unwrap();
    assert!(eventually(Duration::from_secs(5), || pool.threads() == 0));
    assert!(eventually(Duration::from_secs(5), || threads_named(
        "tw-idle_"
    ) == 0));
    // The pool starts a new thread for new work.
    assert_eq!(pool.submit(|| 3).result(None).unwrap(), 3);
}

#[test]
fn zero_workers_is_refused() {
    let err = ThreadPoolExecutor::builder()
        .max_workers(0)
        .build()
        .unwrap_err();
    assert!(err.is_refused());
    assert!(err.to_string().contains("max_workers"));
}

#[test]
fn never_more_threads_than_max_workers() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(3)
        .thread_name_prefix("tw-max")
        .build()
        .unwrap();
    let peak = Arc::new(AtomicUsize::new(0));
    let now = Arc::new(AtomicUsize::new(0));
    let promises: Vec<_> = (0..60)
        .map(|_| {
            let (peak, now) = (peak.clone(), now.clone());
            pool.submit(move || {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
                now.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    for mut p in promises {
        p.result(None).unwrap();
    }
    assert!(peak.load(Ordering::SeqCst) <= 3);
    assert!(pool.threads() <= 3);
    assert!(threads_named("tw-max_") <= 3);
}

#[test]
fn shutdown_from_a_worker_does_not_deadlock() {
    let pool = Arc::new(ThreadPoolExecutor::new());
    let p2 = pool.clone();
    let mut p = pool.submit(move || p2.shutdown(true, false));
    p.result(Some(Duration::from_secs(10))).unwrap();
}

#[test]
fn a_thread_name_prefix_with_a_nul_byte_is_refused() {
    let built = std::panic::catch_unwind(|| {
        ThreadPoolExecutor::builder()
            .thread_name_prefix("bad\0name")
            .build()
    });
    let err = built.expect("build does not panic").unwrap_err();
    assert!(err.is_refused(), "{err:?}");
    assert!(err.to_string().contains("thread_name_prefix"), "{err}");
}

#[test]
fn extreme_builder_arguments_work() {
    let huge = ThreadPoolExecutor::builder()
        .max_workers(usize::MAX)
        .keep_alive(Duration::MAX)
        .build()
        .unwrap();
    assert_eq!(huge.max_workers(), usize::MAX);
    assert_eq!(
        huge.submit(|| 1)
            .result(Some(Duration::from_secs(10)))
            .unwrap(),
        1
    );
    let squares: Vec<u32> = huge.map(|x: u32| x * x, 0..4).map(Result::unwrap).collect();
    assert_eq!(squares, [0, 1, 4, 9]);
    huge.shutdown(true, false);
    assert_eq!(huge.threads(), 0);

    let eager = ThreadPoolExecutor::builder()
        .keep_alive(Duration::ZERO)
        .build()
        .unwrap();
    for i in 0..5u32 {
        assert_eq!(
            eager
                .submit(move || i)
                .result(Some(Duration::from_secs(10)))
                .unwrap(),
            i
        );
    }
}

#[test]
fn a_map_timeout_too_far_to_represent_means_no_deadline() {
    let pool = ThreadPoolExecutor::new();
    // Duration::MAX overflows any clock; 10^12 s (31,000 years) is far but representable.
    for far in [Duration::MAX, Duration::from_secs(1_000_000_000_000)] {
        let options = taskweave_bridge::MapOptions::new().timeout(far);
        let got: Vec<u32> = pool
            .map_with(|x: u32| x + 1, 0..3, options)
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, [1, 2, 3]);
    }
    taskweave_core::run(async {
        let pool = ThreadPoolExecutor::new();
        for far in [Duration::MAX, Duration::from_secs(1_000_000_000_000)] {
            let options = taskweave_bridge::MapOptions::new().timeout(far);
            let mut map = pool.map_with(|x: u32| x * 2, 0..3, options);
            let mut got = Vec::new();
            while let Some(r) = tokio::time::timeout(Duration::from_secs(10), map.next_async())
                .await
                .unwrap()
            {
                got.push(r.unwrap());
            }
            assert_eq!(got, [0, 2, 4]);
        }
        pool.shutdown_async(Queued::Run).await;
    })
    .unwrap();
}

#[test]
fn shutdown_async_with_queued_cancel_cancels_what_has_not_started() {
    let (pool, running, go) = occupied_pool();
    let queued = pool.submit(|| "queued");
    let (running, queued) = taskweave_core::run(async move {
        // The shutdown starts (and cancels the queued call) before the running one is let go.
        let shutdown = async {
            tokio::time::timeout(Duration::from_secs(10), pool.shutdown_async(Queued::Cancel))
                .await
                .expect("shutdown_async did not finish");
        };
        let release = async { go.send(()).unwrap() };
        tokio::join!(shutdown, release);
        assert_eq!(pool.threads(), 0);
        (running.await, queued.await)
    })
    .unwrap();
    assert_eq!(running.unwrap(), "finished");
    assert!(queued.is_err_and(|e| e.is_cancelled()));
}

fn fails_on_seven(x: u32) -> u32 {
    assert!(x != 7, "seven");
    x
}

#[test]
fn through_the_executor_trait_a_panic_names_the_function_type_and_the_caller() {
    use taskweave_bridge::{Executor, RayonExecutor};

    fn check(err: &taskweave_core::Error) {
        let p = err.panic().expect("a panic error");
        // A pointer has no name; its type and the caller's line are what is known.
        assert_eq!(p.task(), Some("fn(u32) -> u32"), "{err}");
        let site = p.site().expect("the submit site is recorded");
        assert!(site.file().ends_with("tests/it/pool.rs"), "{site}");
    }
    let pool = ThreadPoolExecutor::new();
    check(
        &Executor::submit(&pool, fails_on_seven, 7)
            .result(None)
            .unwrap_err(),
    );
    let first = Executor::map(&pool, fails_on_seven, [7])
        .next()
        .expect("one item");
    check(&first.unwrap_err());
    let rayon = RayonExecutor::global();
    check(
        &Executor::submit(&rayon, fails_on_seven, 7)
            .result(None)
            .unwrap_err(),
    );
    let (_, first) = Executor::map_unordered(&rayon, fails_on_seven, [7])
        .next()
        .expect("one item");
    check(&first.unwrap_err());
}
