//! map and map_unordered: order, laziness, per-item failures, async iteration.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use taskweave_core::Error;
use taskweave_process::ProcessPoolExecutor;

use crate::shared;
use crate::work::{sleep_ms, square};

fn pool(n: usize) -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(n)
        .build()
        .unwrap()
}

#[test]
fn ordered_for_every_chunksize() {
    let _g = shared();
    let pool = pool(2);
    let expect: Vec<u64> = (0..2000u64).map(|x| x * x).collect();
    for chunksize in [1, 7, 1000, 5000] {
        let got: Vec<u64> = pool
            .map(square, 0..2000u64, chunksize)
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, expect, "chunksize {chunksize}");
    }
}

#[test]
fn unordered_yields_every_result_once() {
    let _g = shared();
    let pool = pool(2);
    let mut got: Vec<u64> = pool
        .map_unordered(square, 0..500u64, 3)
        .map(Result::unwrap)
        .collect();
    got.sort_unstable();
    assert_eq!(got, (0..500u64).map(|x| x * x).collect::<Vec<_>>());
}

#[test]
fn unordered_yields_fast_chunks_first() {
    let _g = shared();
    let pool = pool(2);
    let got: Vec<u64> = pool
        .map_unordered(sleep_ms, [600, 10], 1)
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, [10, 600]);
}

#[test]
fn lazy_over_an_endless_iterator() {
    let _g = shared();
    let pool = pool(2);
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let inputs = (0u64..).inspect(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let first: Vec<u64> = pool
        .map(square, inputs, 4)
        .take(100)
        .map(Result::unwrap)
        .collect();
    assert_eq!(first[99], 99 * 99);
    // Bounded: the window is at most max_workers * 66 chunks of 4.
    assert!(
        pulled.load(Ordering::Relaxed) < 100 + 2 * 66 * 4,
        "{}",
        pulled.load(Ordering::Relaxed)
    );
}

fn odd_panics(x: u64) -> u64 {
    assert!(x % 2 == 0, "odd input {x}");
    x
}

#[test]
fn a_panicking_item_fails_only_itself() {
    let _g = shared();
    let pool = pool(2);
    let out: Vec<Result<u64, Error>> = pool.map(odd_panics, 0..20u64, 5).collect();
    assert_eq!(out.len(), 20);
    for (x, r) in out.into_iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(v, x as u64),
            Err(e) => {
                assert!(x % 2 == 1);
                assert!(
                    matches!(&e, Error::Panicked(p) if p.message == format!("odd input {x}")),
                    "{e}"
                );
            }
        }
    }
}

#[test]
fn a_dying_worker_fails_the_items_of_its_chunk() {
    let _g = shared();
    let pool = pool(1);
    fn exit_on_13(x: u64) -> u64 {
        if x == 13 {
            std::process::exit(5);
        }
        x
    }
    let out: Vec<Result<u64, Error>> = pool.map(exit_on_13, 0..30u64, 10).collect();
    for (x, r) in out.iter().enumerate() {
        if (10..20).contains(&x) {
            assert!(
                matches!(r, Err(Error::WorkerDied(d)) if d.exit_code == Some(5)),
                "{x}: {r:?}"
            );
        } else {
            assert_eq!(*r.as_ref().unwrap(), x as u64);
        }
    }
}

#[test]
fn map_after_shutdown_fails_every_item() {
    let _g = shared();
    let pool = pool(1);
    pool.shutdown(true, false);
    let out: Vec<Result<u64, Error>> = pool.map(square, 0..5u64, 2).collect();
    assert_eq!(out.len(), 5);
    assert!(out.iter().all(|r| matches!(r, Err(Error::Shutdown { .. }))));
}

#[test]
fn next_async_does_not_block_the_runtime() {
    let _g = shared();
    let pool = pool(2);
    let got = taskweave_core::run(async move {
        let ticker = taskweave_core::create_task(async {
            let mut ticks = 0;
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks += 1;
            }
            ticks
        });
        let mut m = pool.map(sleep_ms, [100, 100, 100], 1);
        let mut out = Vec::new();
        while let Some(r) = m.next_async().await {
            out.push(r.unwrap());
        }
        (out, ticker.await.unwrap())
    });
    assert_eq!(got.unwrap(), (vec![100, 100, 100], 5));
}

#[test]
fn blocking_next_inside_a_task_is_refused() {
    let _g = shared();
    let pool = pool(1);
    let first = taskweave_core::run(async move { pool.map(square, 0..3u64, 1).next() });
    assert!(matches!(first.unwrap(), Some(Err(Error::Refused { .. }))));
}

#[test]
fn progress_counts_every_result() {
    let _g = shared();
    let pool = pool(2);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let out: Vec<Result<u64, Error>> = pool
        .map(odd_panics, 0..10u64, 3)
        .on_progress(move |p| log.lock().unwrap().push(p))
        .collect();
    assert_eq!(out.len(), 10);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 10);
    let last = seen[9];
    assert_eq!((last.done, last.failed, last.taken), (10, 5, 10));
    assert!(last.inputs_exhausted);
    assert!(seen.windows(2).all(|w| w[0].done + 1 == w[1].done));
}
