//! map and map_unordered: ordering, laziness and the window, timeouts, cancellation, progress.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use proptest::prelude::*;
use taskweave_bridge::{MapOptions, Progress, ThreadPoolExecutor};
use taskweave_core::Error;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Results come in input order whatever the delays, and errors stay at their item.
    #[test]
    fn map_keeps_input_order(
        items in proptest::collection::vec((0u64..400, any::<bool>()), 0..60),
        window in 1usize..12,
        workers in 1usize..6,
    ) {
        let pool = ThreadPoolExecutor::builder().max_workers(workers).build().unwrap();
        let inputs: Vec<(usize, u64, bool)> =
            items.iter().enumerate().map(|(i, &(d, fail))| (i, d, fail)).collect();
        let out: Vec<Result<Result<usize, String>, Error>> = pool
            .map_with(
                |(i, micros, fail): (usize, u64, bool)| {
                    std::thread::sleep(Duration::from_micros(micros));
                    if fail { Err(format!("item {i} failed")) } else { Ok(i) }
                },
                inputs,
                MapOptions::new().window(window),
            )
            .collect();
        prop_assert_eq!(out.len(), items.len());
        for (i, (r, &(_, fail))) in out.into_iter().zip(&items).enumerate() {
            let r = r.unwrap();
            if fail {
                prop_assert_eq!(r, Err(format!("item {i} failed")));
            } else {
                prop_assert_eq!(r, Ok(i));
            }
        }
    }

    /// The unordered map yields every index exactly once.
    #[test]
    fn map_unordered_yields_each_item_once(
        delays in proptest::collection::vec(0u64..300, 0..50),
        window in 1usize..10,
    ) {
        let pool = ThreadPoolExecutor::builder().max_workers(4).build().unwrap();
        let n = delays.len();
        let seen: Vec<(usize, u64)> = pool
            .map_unordered_with(
                |d: u64| {
                    std::thread::sleep(Duration::from_micros(d));
                    d
                },
                delays.clone(),
                MapOptions::new().window(window),
            )
            .map(|(i, r)| (i, r.unwrap()))
            .collect();
        prop_assert_eq!(seen.len(), n);
        let indices: HashSet<usize> = seen.iter().map(|&(i, _)| i).collect();
        prop_assert_eq!(indices.len(), n);
        for (i, d) in seen {
            prop_assert_eq!(d, delays[i]);
        }
    }
}

#[test]
fn a_panicking_item_is_an_error_at_its_place() {
    let pool = ThreadPoolExecutor::new();
    let out: Vec<_> = pool
        .map(
            |x: u32| {
                if x == 2 {
                    panic!("bad item {x}");
                }
                x
            },
            0..5,
        )
        .collect();
    assert_eq!(out.len(), 5);
    for (i, r) in out.iter().enumerate() {
        if i == 2 {
            let err = r.as_ref().unwrap_err();
            assert!(err.to_string().contains("bad item 2"));
            match err {
                Error::Panicked(p) => {
                    let site = p.site.expect("the map's call site is recorded");
                    assert!(site.file().ends_with("tests/it/map.rs"), "{site}");
                }
                other => panic!("expected a panic error, got {other:?}"),
            }
        } else {
            assert_eq!(*r.as_ref().unwrap(), i as u32);
        }
    }
}

#[test]
fn an_endless_input_never_has_more_than_the_window_in_flight() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(4)
        .build()
        .unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    let endless = (0u64..).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let window = 8;
    let mut map = pool.map_with(|x: u64| x + 1, endless, MapOptions::new().window(window));
    for taken in 0..2_000u64 {
        let value = map.next().unwrap().unwrap();
        assert_eq!(value, taken + 1);
        let in_flight = pulled.load(Ordering::SeqCst) - (taken as usize + 1);
        assert!(
            in_flight <= window,
            "{in_flight} in flight with a window of {window}"
        );
    }
}

#[test]
fn inputs_are_pulled_only_as_results_are_taken() {
    let pool = ThreadPoolExecutor::new();
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    let inputs = (0..1000).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let map = pool.map_with(|x: i32| x, inputs, MapOptions::new().window(4));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        0,
        "nothing is pulled before the first next()"
    );
    drop(map);
}

#[test]
fn a_timeout_yields_timed_out_and_ends_the_map() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let r = ran.clone();
    let mut map = pool.map_with(
        move |i: u32| {
            if i == 1 {
                release_rx.lock().unwrap().recv().unwrap();
            }
            r.fetch_add(1, Ordering::SeqCst);
            i
        },
        0..5,
        MapOptions::new()
            .window(5)
            .timeout(Duration::from_millis(300)),
    );
    assert_eq!(map.next().unwrap().unwrap(), 0);
    let err = map.next().unwrap().unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(map.next().is_none(), "the map ends after a timeout");
    release_tx.send(()).unwrap();
    pool.shutdown(true, false);
    assert_eq!(
        ran.load(Ordering::SeqCst),
        2,
        "items not started were cancelled"
    );
}

#[test]
fn dropping_the_map_cancels_items_not_started() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    // Item 0 waits for `first`, item 1 for `second`: when the map is dropped, item 1 is
    // running and items 2.. are queued, however the threads are scheduled.
    let (first_tx, first_rx) = mpsc::channel::<()>();
    let (second_tx, second_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let gates = Arc::new(Mutex::new((first_rx, second_rx, started_tx)));
    let r = ran.clone();
    let mut map = pool.map_with(
        move |i: u32| {
            match i {
                0 => gates.lock().unwrap().0.recv().unwrap(),
                1 => {
                    let g = gates.lock().unwrap();
                    g.2.send(()).unwrap();
                    g.1.recv().unwrap();
                }
                _ => {}
            }
            r.fetch_add(1, Ordering::SeqCst);
        },
        0..100u32,
        MapOptions::new().window(10),
    );
    first_tx.send(()).unwrap();
    assert!(map.next().unwrap().is_ok());
    started_rx.recv().unwrap();
    drop(map);
    second_tx.send(()).unwrap();
    pool.shutdown(true, false);
    assert_eq!(
        ran.load(Ordering::SeqCst),
        2,
        "only the items started before the drop ran"
    );
}

#[test]
fn map_after_shutdown_yields_shutdown_errors() {
    let pool = ThreadPoolExecutor::new();
    pool.shutdown(true, false);
    let out: Vec<_> = pool.map(|x: u8| x, 0..3).collect();
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|r| matches!(r, Err(Error::Shutdown { .. }))));
}

#[test]
fn progress_callback_counts_every_item() {
    let pool = ThreadPoolExecutor::new();
    let reports = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let r = reports.clone();
    let options = MapOptions::new().on_progress(move |p| r.lock().unwrap().push(p));
    let n = pool.map_with(|x: u32| x, 0..50, options).count();
    assert_eq!(n, 50);
    let reports = reports.lock().unwrap();
    let last = reports.iter().map(Progress::done).max().unwrap();
    assert_eq!(last, 50);
    assert!(reports.iter().all(|p| p.total() == Some(50)));
    assert_eq!(reports.iter().filter(|p| p.done() == 50).count(), 1);
}

#[test]
fn progress_total_can_be_given_for_unsized_inputs() {
    let pool = ThreadPoolExecutor::new();
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    let inputs = (0..10).filter(|x| x % 2 == 0);
    let options = MapOptions::new()
        .total(5)
        .on_progress(move |p| *s.lock().unwrap() = Some(p));
    assert_eq!(pool.map_with(|x: i32| x, inputs, options).count(), 5);
    let p = seen.lock().unwrap().unwrap();
    assert_eq!((p.done(), p.total(), p.fraction()), (5, Some(5), Some(1.0)));
}

#[test]
fn a_panicking_progress_callback_is_contained() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let options = MapOptions::new().on_progress(|_| panic!("progress display broke"));
    let out: Vec<_> = pool.map_with(|x: u8| x, 0..4, options).collect();
    assert!(out.iter().all(Result::is_ok));
    assert_eq!(pool.submit(|| 1).result(None).unwrap(), 1);
}

#[test]
fn map_as_an_async_stream() {
    taskweave_core::run(async {
        let pool = ThreadPoolExecutor::new();
        let (options, mut progress) = MapOptions::new().progress_stream();
        let mut map = pool.map_with(|x: u64| x * x, 0..20u64, options);
        let mut got = Vec::new();
        while let Some(r) = map.next_async().await {
            got.push(r.unwrap());
        }
        assert_eq!(got, (0..20u64).map(|x| x * x).collect::<Vec<_>>());
        let mut last = None;
        while let Some(p) = progress.next().await {
            last = Some(p);
        }
        assert_eq!(last.map(|p| p.done()), Some(20));
    })
    .unwrap();
}

#[test]
fn async_map_timeout() {
    taskweave_core::run(async {
        let pool = ThreadPoolExecutor::new();
        let mut map = pool.map_with(
            |ms: u64| std::thread::sleep(Duration::from_millis(ms)),
            [200u64],
            MapOptions::new().timeout(Duration::from_millis(20)),
        );
        assert!(map.next_async().await.unwrap().unwrap_err().is_timeout());
        assert!(map.next_async().await.is_none());
    })
    .unwrap();
}

#[test]
fn executor_trait_map_works_with_fn_pointers() {
    use taskweave_bridge::Executor;
    fn double(x: u32) -> u32 {
        x * 2
    }
    let pool = ThreadPoolExecutor::new();
    let out: Vec<u32> = Executor::map(&pool, double, vec![1, 2, 3])
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, [2, 4, 6]);
    let mut one = Executor::submit(&pool, double, 21);
    assert_eq!(one.result(None).unwrap(), 42);
    Executor::shutdown(&pool, true, false);
    assert!(pool.submit(|| ()).result(None).is_err());
}

#[test]
fn chunks_on_the_thread_pool_keep_one_result_per_input() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(3)
        .build()
        .unwrap();
    let options = MapOptions::new().chunksize(4).window(8);
    let out: Vec<Result<u32, Error>> = pool
        .map_with(
            |x: u32| {
                if x == 5 {
                    panic!("bad item {x}");
                }
                x * 10
            },
            0..11,
            options,
        )
        .collect();
    assert_eq!(out.len(), 11);
    for (i, r) in out.iter().enumerate() {
        if i == 5 {
            assert!(r.as_ref().unwrap_err().to_string().contains("bad item 5"));
        } else {
            assert_eq!(*r.as_ref().unwrap(), i as u32 * 10);
        }
    }
    let mut indices: Vec<usize> = pool
        .map_unordered_with(|x: u8| x, 0..20, MapOptions::new().chunksize(6))
        .map(|(i, r)| {
            assert_eq!(r.unwrap() as usize, i);
            i
        })
        .collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..20).collect::<Vec<_>>());
}

#[test]
fn extreme_map_options_work_or_are_refused_on_the_thread_pool() {
    let pool = ThreadPoolExecutor::new();
    let huge_window = MapOptions::new().window(1 << 40);
    assert_eq!(pool.map_with(|x: u64| x, 0..100, huge_window).count(), 100);
    let forever = MapOptions::new().timeout(Duration::MAX);
    let sum: u64 = pool
        .map_with(|x: u64| x, 0..100, forever)
        .map(Result::unwrap)
        .sum();
    assert_eq!(sum, 4950);
    let huge_chunks = MapOptions::new().chunksize(1 << 40);
    assert_eq!(pool.map_with(|x: u64| x, 0..100, huge_chunks).count(), 100);
    let mut zero = pool.map_with(|x: u64| x, 0..100, MapOptions::new().chunksize(0));
    let err = zero.next().unwrap().unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err:?}");
    assert!(zero.next().is_none());
}
