//! to_thread, run_in_executor and the per-runtime default executor.

use std::time::Duration;

use taskweave_bridge::{
    Queued, ThreadPoolExecutor, default_executor, run_in_executor, set_default_executor, to_thread,
};
use taskweave_core::Runtime;

use crate::support::threads_named;

fn blocking_function() -> u32 {
    std::thread::sleep(Duration::from_millis(10));
    42
}

#[test]
fn run_in_executor_awaits_a_blocking_function() {
    taskweave_core::run(async {
        let pool = ThreadPoolExecutor::new();
        assert_eq!(run_in_executor(&pool, blocking_function).await.unwrap(), 42);
        let shared = std::sync::Arc::new(ThreadPoolExecutor::new());
        assert_eq!(run_in_executor(&shared, || 1).await.unwrap(), 1);
        pool.shutdown_async(Queued::Run).await;
    })
    .unwrap();
}

#[test]
fn to_thread_runs_off_the_runtime_threads() {
    taskweave_core::run(async {
        let name = to_thread(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("to_thread_"));
        assert_eq!(to_thread(blocking_function).await.unwrap(), 42);
    })
    .unwrap();
}

#[test]
fn to_thread_panics_become_errors() {
    taskweave_core::run(async {
        let err = to_thread(|| -> u8 { panic!("bad read") })
            .await
            .unwrap_err();
        assert!(err.is_panic());
        assert!(err.to_string().contains("bad read"));
    })
    .unwrap();
}

#[test]
fn to_thread_outside_a_runtime_is_refused() {
    let err = to_thread(|| 1).result(None).unwrap_err();
    assert!(err.is_refused(), "{err:?}");
    assert!(default_executor().is_err());
}

#[test]
fn each_runtime_has_its_own_default_executor_shut_down_with_it() {
    let prefix = "tw-rtdef";
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    rt.run(async move {
        let pool = ThreadPoolExecutor::builder()
            .thread_name_prefix(prefix)
            .max_workers(3)
            .build()
            .unwrap();
        set_default_executor(pool).unwrap();
        let a = default_executor().unwrap();
        let b = default_executor().unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &b));
        assert_eq!(a.max_workers(), 3);
        let promises: Vec<_> = (0..3)
            .map(|_| to_thread(|| std::thread::sleep(Duration::from_millis(20))))
            .collect();
        for p in promises {
            p.await.unwrap();
        }
        assert!(threads_named(prefix) >= 1);
        let other = std::thread::spawn(|| {
            taskweave_core::run(async {
                let name = to_thread(|| std::thread::current().name().map(str::to_owned))
                    .await
                    .unwrap();
                name.unwrap()
            })
            .unwrap()
        })
        .join()
        .unwrap();
        assert!(
            other.starts_with("to_thread_"),
            "another runtime has another pool: {other}"
        );
    })
    .unwrap();
    assert_eq!(
        threads_named(prefix),
        0,
        "the runtime's shutdown joined its default executor"
    );
}

#[test]
fn dropping_the_await_cancels_queued_work() {
    taskweave_core::run(async {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let blocker = run_in_executor(&pool, move || rx.recv().unwrap());
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = ran.clone();
        let victim = run_in_executor(&pool, move || {
            r.store(true, std::sync::atomic::Ordering::SeqCst)
        });
        let timed = taskweave_core::timeout(Duration::from_millis(10), victim).await;
        assert!(timed.is_err());
        tx.send(()).unwrap();
        blocker.await.unwrap();
        pool.shutdown_async(Queued::Run).await;
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    })
    .unwrap();
}

#[test]
fn to_thread_on_a_current_thread_runtime() {
    let rt = Runtime::builder().current_thread().build().unwrap();
    let out = rt
        .run(async {
            let mut sum = 0;
            for i in 0..200u64 {
                sum += to_thread(move || i).await.unwrap();
            }
            sum
        })
        .unwrap();
    assert_eq!(out, (0..200).sum::<u64>());
}

#[test]
fn replacing_the_default_executor_shuts_the_old_one_down() {
    taskweave_core::run(async {
        let first = default_executor().unwrap();
        assert_eq!(to_thread(|| 1).await.unwrap(), 1);
        set_default_executor(ThreadPoolExecutor::new()).unwrap();
        let err = first.submit(|| 1).await.unwrap_err();
        assert!(err.is_shutdown(), "{err:?}");
        assert_eq!(to_thread(|| 2).await.unwrap(), 2);
    })
    .unwrap();
}
