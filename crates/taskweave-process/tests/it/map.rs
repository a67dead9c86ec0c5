//! map and map_unordered: order, laziness, per-item failures, async iteration.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use taskweave_core::Error;
use taskweave_process::{MapOptions, ProcessPoolExecutor, Progress};

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
            .map_with(square, 0..2000u64, MapOptions::new().chunksize(chunksize))
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, expect, "chunksize {chunksize}");
    }
}

#[test]
fn unordered_yields_every_result_once() {
    let _g = shared();
    let pool = pool(2);
    let mut got: Vec<(usize, u64)> = pool
        .map_unordered_with(square, 0..500u64, MapOptions::new().chunksize(3))
        .map(|(i, r)| (i, r.unwrap()))
        .collect();
    got.sort_unstable();
    let expect: Vec<(usize, u64)> = (0..500u64).map(|x| (x as usize, x * x)).collect();
    assert_eq!(got, expect);
}

#[test]
fn unordered_yields_fast_chunks_first() {
    let _g = shared();
    let pool = pool(2);
    let got: Vec<(usize, u64)> = pool
        .map_unordered(sleep_ms, [600, 10])
        .map(|(i, r)| (i, r.unwrap()))
        .collect();
    assert_eq!(got, [(1, 10), (0, 600)]);
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
        .map_with(square, inputs, MapOptions::new().chunksize(4))
        .take(100)
        .map(Result::unwrap)
        .collect();
    assert_eq!(first[99], 99 * 99);
    // Bounded: the window is at most max_workers * 66 chunks of 4, plus the chunk that filled it.
    assert!(
        pulled.load(Ordering::Relaxed) <= 100 + 2 * 66 * 4 + 4,
        "{}",
        pulled.load(Ordering::Relaxed)
    );
}

fn odd_panics(x: u64) -> u64 {
    assert!(x.is_multiple_of(2), "odd input {x}");
    x
}

#[test]
fn a_panicking_item_fails_only_itself() {
    let _g = shared();
    let pool = pool(2);
    let out: Vec<Result<u64, Error>> = pool
        .map_with(odd_panics, 0..20u64, MapOptions::new().chunksize(5))
        .collect();
    assert_eq!(out.len(), 20);
    for (x, r) in out.into_iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(v, x as u64),
            Err(e) => {
                assert!(x % 2 == 1);
                assert!(
                    e.panic()
                        .is_some_and(|p| p.message() == format!("odd input {x}")),
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
    let out: Vec<Result<u64, Error>> = pool
        .map_with(exit_on_13, 0..30u64, MapOptions::new().chunksize(10))
        .collect();
    for (x, r) in out.iter().enumerate() {
        if (10..20).contains(&x) {
            assert!(
                r.as_ref()
                    .is_err_and(|e| e.worker().is_some_and(|d| d.exit_code() == Some(5))),
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
    let out: Vec<Result<u64, Error>> = pool
        .map_with(square, 0..5u64, MapOptions::new().chunksize(2))
        .collect();
    assert_eq!(out.len(), 5);
    assert!(
        out.iter()
            .all(|r| r.as_ref().is_err_and(|e| e.is_shutdown()))
    );
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
        let mut m = pool.map(sleep_ms, [100, 100, 100]);
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
    let first = taskweave_core::run(async move { pool.map(square, 0..3u64).next() });
    assert!(
        first
            .unwrap()
            .is_some_and(|r| r.is_err_and(|e| e.is_refused()))
    );
}

#[test]
fn progress_counts_every_result() {
    let _g = shared();
    let pool = pool(2);
    let seen = Arc::new(std::sync::Mutex::new(Vec::<Progress>::new()));
    let log = seen.clone();
    let options = MapOptions::new()
        .chunksize(3)
        .on_progress(move |p| log.lock().unwrap().push(p));
    let out: Vec<Result<u64, Error>> = pool.map_with(odd_panics, 0..10u64, options).collect();
    assert_eq!(out.len(), 10);
    let seen = seen.lock().unwrap();
    let last = seen.iter().max_by_key(|p| p.done()).unwrap();
    assert_eq!(
        (last.done(), last.failed(), last.total()),
        (10, 5, Some(10))
    );
    assert_eq!(seen.iter().filter(|p| p.done() == 10).count(), 1);
}

#[test]
fn the_process_map_is_the_shared_map_with_its_options() {
    let _g = shared();
    let pool = pool(2);
    let got = taskweave_core::run(async {
        let ordered = pool
            .map_with(square, 0..50u64, MapOptions::new().chunksize(7).window(14))
            .collect_async()
            .await;
        let timed_out = pool
            .map_with(
                sleep_ms,
                [400u64],
                MapOptions::new().timeout(Duration::from_millis(50)),
            )
            .collect_async()
            .await;
        (ordered, timed_out)
    })
    .unwrap();
    assert_eq!(
        got.0.unwrap(),
        (0..50u64).map(|x| x * x).collect::<Vec<_>>()
    );
    assert!(got.1.unwrap_err().is_timeout());
}

#[test]
fn extreme_chunksizes_and_windows_work_or_are_refused() {
    let _g = shared();
    let pool = pool(1);
    let huge = MapOptions::new()
        .chunksize(1 << 40)
        .window(1 << 40)
        .timeout(Duration::MAX);
    let out: Vec<u64> = pool
        .map_with(square, 0..100u64, huge)
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, (0..100u64).map(|x| x * x).collect::<Vec<_>>());
    let mut zero = pool.map_with(square, 0..100u64, MapOptions::new().chunksize(0));
    let err = zero.next().unwrap().unwrap_err();
    assert!(err.is_refused(), "{err:?}");
    assert!(zero.next().is_none());
    assert_eq!(
        pool.stats().submitted,
        1,
        "nothing was sent for the refused map"
    );
}
