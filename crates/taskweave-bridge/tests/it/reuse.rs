//! Idle accounting: calls made one after another reuse one idle worker instead of starting more.

use std::time::Duration;

use taskweave_bridge::{Queued, ThreadPoolExecutor, default_executor, run_in_executor, to_thread};

const LIMIT: Duration = Duration::from_secs(10);

#[test]
fn sequential_submit_result_calls_reuse_one_thread() {
    let pool = ThreadPoolExecutor::new();
    for i in 0..100u32 {
        let got = pool.submit(move || i).result(Some(LIMIT)).unwrap();
        assert_eq!(got, i);
    }
    assert_eq!(pool.threads(), 1, "every call found the idle worker");
}

#[test]
fn sequential_to_thread_calls_reuse_one_thread() {
    taskweave_core::run(async {
        for i in 0..100u32 {
            let got = tokio::time::timeout(LIMIT, to_thread(move || i)).await;
            assert_eq!(got.expect("bounded").unwrap(), i);
        }
        assert_eq!(default_executor().unwrap().threads(), 1);
    })
    .unwrap();
}

#[test]
fn sequential_run_in_executor_calls_reuse_one_thread() {
    taskweave_core::run(async {
        let pool = ThreadPoolExecutor::new();
        for i in 0..100u32 {
            let got = tokio::time::timeout(LIMIT, run_in_executor(&pool, move || i)).await;
            assert_eq!(got.expect("bounded").unwrap(), i);
        }
        assert_eq!(pool.threads(), 1);
        pool.shutdown_async(Queued::Run).await;
    })
    .unwrap();
}

#[test]
fn a_done_callback_that_blocks_on_new_work_does_not_deadlock() {
    // The callback runs on the worker that just finished; work it submits and waits for must
    // get a thread of its own rather than wait for the callback's own worker.
    let pool = std::sync::Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(2)
            .build()
            .unwrap(),
    );
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut first = pool.submit(move || rx.recv().unwrap());
    let inner = pool.clone();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    first.add_done_callback(move |_| {
        let got = inner.submit(|| 9).result(Some(LIMIT));
        seen_tx.send(got).unwrap();
    });
    tx.send(()).unwrap();
    first.result(Some(LIMIT)).unwrap();
    assert_eq!(seen_rx.recv_timeout(LIMIT).unwrap().unwrap(), 9);
}
