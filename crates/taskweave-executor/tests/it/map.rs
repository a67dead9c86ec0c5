//! The map engine: order, indices, chunks, the window, timeouts, cancellation, lost chunks,
//! progress, the strict blocking-wait check and the async side.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use proptest::prelude::*;
use taskweave_core::Error;
use taskweave_executor::{Chunk, Dispatch, Map, MapOptions, MapUnordered, Progress};

use crate::support::Threads;

fn sleep_then(micros: u64) -> u64 {
    std::thread::sleep(Duration::from_micros(micros));
    micros
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Results come in input order whatever the delays, window and chunksize.
    #[test]
    fn ordered_results_keep_input_order(
        delays in proptest::collection::vec(0u64..300, 0..40),
        window in 1usize..10,
        chunksize in 1usize..5,
    ) {
        let options = MapOptions::new().window(window).chunksize(chunksize);
        let out: Vec<u64> = Map::new(Threads::new(sleep_then), delays.clone(), options)
            .map(Result::unwrap)
            .collect();
        prop_assert_eq!(out, delays);
    }

    /// The unordered map yields every index exactly once, with its own result.
    #[test]
    fn unordered_yields_each_index_once(
        delays in proptest::collection::vec(0u64..300, 0..40),
        window in 1usize..10,
        chunksize in 1usize..5,
    ) {
        let options = MapOptions::new().window(window).chunksize(chunksize);
        let seen: Vec<(usize, u64)> = MapUnordered::new(Threads::new(sleep_then), delays.clone(), options)
            .map(|(i, r)| (i, r.unwrap()))
            .collect();
        prop_assert_eq!(seen.len(), delays.len());
        let indices: HashSet<usize> = seen.iter().map(|&(i, _)| i).collect();
        prop_assert_eq!(indices.len(), delays.len());
        for (i, d) in seen {
            prop_assert_eq!(d, delays[i]);
        }
    }
}

#[test]
fn chunks_cover_the_input_in_order() {
    let threads = Threads::new(|x: u32| x + 1);
    let chunks = threads.chunks.clone();
    let out: Vec<u32> = Map::new(threads, 0..10u32, MapOptions::new().chunksize(4))
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, (1..=10).collect::<Vec<_>>());
    assert_eq!(*chunks.lock().unwrap(), [(0, 4), (4, 4), (8, 2)]);
}

#[test]
fn an_endless_input_never_has_more_than_the_window_in_flight() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    let endless = (0u64..).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let (window, chunksize) = (8, 3);
    let options = MapOptions::new().window(window).chunksize(chunksize);
    let mut map = Map::new(Threads::new(|x: u64| x), endless, options);
    for taken in 0..500u64 {
        assert_eq!(map.next().unwrap().unwrap(), taken);
        let in_flight = pulled.load(Ordering::SeqCst) - (taken as usize + 1);
        assert!(
            in_flight < window + chunksize,
            "{in_flight} in flight with a window of {window} and chunks of {chunksize}"
        );
    }
}

#[test]
fn nothing_is_pulled_before_the_first_result_is_asked_for() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    let inputs = (0..100).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let map = Map::new(Threads::new(|x: i32| x), inputs, MapOptions::new());
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(pulled.load(Ordering::SeqCst), 0);
    drop(map);
}

/// Item 1 blocks until released; the map times out waiting for it.
fn gated() -> (
    impl Fn(u32) -> u32 + Send + Sync + 'static,
    mpsc::Sender<()>,
    Arc<AtomicUsize>,
) {
    let (tx, rx) = mpsc::channel::<()>();
    let rx = Mutex::new(rx);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let f = move |i: u32| {
        if i == 1 {
            let _ = rx.lock().unwrap().recv_timeout(Duration::from_secs(10));
        }
        r.fetch_add(1, Ordering::SeqCst);
        i
    };
    (f, tx, ran)
}

#[test]
fn a_timeout_yields_timed_out_once_and_ends_the_map() {
    let (f, release, ran) = gated();
    let options = MapOptions::new()
        .chunksize(5)
        .timeout(Duration::from_millis(100));
    let mut map = Map::new(Threads::new(f), 0..5u32, options);
    assert_eq!(map.next().unwrap().unwrap(), 0);
    let err = map.next().unwrap().unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(map.next().is_none());
    release.send(()).unwrap();
    // The chunk's thread sees the map cancelled after item 1 and skips items 2 to 4. (On a
    // loaded machine it may not have reached item 1 within the timeout: then it stops before.)
    std::thread::sleep(Duration::from_millis(50));
    let settled = ran.load(Ordering::SeqCst);
    assert!(settled == 1 || settled == 2, "{settled} items ran");
    assert_runs_settle_at(&ran, settled);
}

/// Waits (bounded) until `ran` reaches `n`, then checks that nothing more runs.
fn assert_runs_settle_at(ran: &AtomicUsize, n: usize) {
    let start = std::time::Instant::now();
    while ran.load(Ordering::SeqCst) < n && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(ran.load(Ordering::SeqCst), n);
}

#[test]
fn an_async_timeout_yields_timed_out_once() {
    let (f, release, _) = gated();
    let got = taskweave_core::run(async move {
        let options = MapOptions::new().timeout(Duration::from_millis(50));
        let mut map = MapUnordered::new(Threads::new(f), [1u32], options);
        let first = map.next_async().await;
        let second = map.next_async().await;
        (first, second)
    })
    .unwrap();
    release.send(()).unwrap();
    assert!(got.0.unwrap().1.unwrap_err().is_timeout());
    assert!(got.1.is_none());
}

#[test]
fn dropping_the_map_cancels_what_has_not_started() {
    let (gate, release, ran) = gated();
    let entered = Arc::new(AtomicUsize::new(0));
    let seen = entered.clone();
    let f = move |i: u32| {
        seen.fetch_add(1, Ordering::SeqCst);
        gate(i)
    };
    let mut map = Map::new(Threads::new(f), 0..10u32, MapOptions::new().chunksize(10));
    assert_eq!(map.next().unwrap().unwrap(), 0);
    // Item 1 must have started before the drop; otherwise the chunk may stop before it, which
    // is also correct but not what this test is about.
    let start = std::time::Instant::now();
    while entered.load(Ordering::SeqCst) < 2 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(map);
    release.send(()).unwrap();
    // Only items 0 and 1 ran.
    assert_runs_settle_at(&ran, 2);
}

/// Runs only the first item of each chunk and drops the rest of the chunk's results.
struct FirstOnly;

impl Dispatch for FirstOnly {
    type Input = u8;
    type Output = u8;

    fn default_window(&self, chunksize: usize) -> usize {
        chunksize
    }

    fn dispatch(&mut self, chunks: &mut Vec<Chunk<u8, u8>>) {
        for chunk in chunks.drain(..) {
            let (mut items, mut results) = chunk.into_parts();
            std::thread::spawn(move || results.push(Ok(items.next().unwrap())));
        }
    }
}

#[test]
fn results_an_executor_loses_end_abandoned_instead_of_hanging() {
    let out: Vec<Result<u8, Error>> =
        Map::new(FirstOnly, 0..6u8, MapOptions::new().chunksize(3)).collect();
    assert_eq!(out.len(), 6);
    for (i, r) in out.iter().enumerate() {
        if i % 3 == 0 {
            assert_eq!(*r.as_ref().unwrap(), i as u8);
        } else {
            assert!(matches!(r, Err(Error::Abandoned)), "{r:?}");
        }
    }
}

/// Leaves every chunk in the vector: the engine drops them.
struct Ignores;

impl Dispatch for Ignores {
    type Input = u8;
    type Output = u8;

    fn default_window(&self, chunksize: usize) -> usize {
        chunksize
    }

    fn dispatch(&mut self, _chunks: &mut Vec<Chunk<u8, u8>>) {}
}

#[test]
fn chunks_left_undispatched_end_abandoned() {
    let out: Vec<Result<u8, Error>> = Map::new(Ignores, 0..3u8, MapOptions::new()).collect();
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|r| matches!(r, Err(Error::Abandoned))));
}

#[test]
fn progress_counts_done_and_failed_and_ends_its_stream() {
    let reports = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let r = reports.clone();
    let (options, mut stream) = MapOptions::new()
        .chunksize(4)
        .on_progress(move |p| r.lock().unwrap().push(p))
        .progress_stream();
    let out: Vec<_> = Map::new(Threads::new(|x: u32| x), 0..20u32, options).collect();
    assert!(out.iter().all(Result::is_ok));
    let reports = reports.lock().unwrap();
    let last = reports.iter().max_by_key(|p| p.done()).unwrap();
    assert_eq!((last.done(), last.total()), (20, Some(20)));
    assert_eq!(last.fraction(), Some(1.0));
    assert_eq!(stream.latest().done(), 20);
    let ended = taskweave_core::run(async move {
        tokio::time::timeout(Duration::from_secs(5), async {
            while stream.next().await.is_some() {}
        })
        .await
        .is_ok()
    })
    .unwrap();
    assert!(ended, "the progress stream ends with the map");
}

/// Delivers an error for odd inputs: the executor's way of reporting a failed call.
struct OddFails;

impl Dispatch for OddFails {
    type Input = u32;
    type Output = u32;

    fn default_window(&self, chunksize: usize) -> usize {
        chunksize
    }

    fn dispatch(&mut self, chunks: &mut Vec<Chunk<u32, u32>>) {
        for chunk in chunks.drain(..) {
            let (items, mut results) = chunk.into_parts();
            results.extend(items.map(|x| {
                if x % 2 == 1 {
                    Err(Error::refused(format!("odd {x}")))
                } else {
                    Ok(x)
                }
            }));
        }
    }
}

#[test]
fn errors_stay_at_their_item_and_are_counted_as_failed() {
    let last = Arc::new(Mutex::new(Progress::default()));
    let l = last.clone();
    let options = MapOptions::new().chunksize(3).on_progress(move |p| {
        let mut last = l.lock().unwrap();
        if p.done() >= last.done() {
            *last = p;
        }
    });
    let out: Vec<_> = Map::new(OddFails, 0..7u32, options).collect();
    for (i, r) in out.iter().enumerate() {
        assert_eq!(r.is_err(), i % 2 == 1, "item {i}: {r:?}");
    }
    let p = *last.lock().unwrap();
    assert_eq!((p.done(), p.failed()), (7, 3));
}

#[test]
fn iterating_inside_a_task_is_refused_and_ends_the_map() {
    let (first, second) = taskweave_core::run(async {
        let mut map = Map::new(Threads::new(|x: u8| x), 0..3u8, MapOptions::new());
        (map.next(), map.next())
    })
    .unwrap();
    let err = first.unwrap().unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err:?}");
    assert!(second.is_none());
}

#[test]
fn async_side_stream_and_collect() {
    use futures_util::StreamExt;

    let (streamed, collected, failed) = taskweave_core::run(async {
        let map = Map::new(Threads::new(|x: u64| x * x), 0..10u64, MapOptions::new());
        let streamed: Vec<u64> = StreamExt::map(map, Result::unwrap).collect().await;
        let collected = Map::new(
            Threads::new(|x: u64| x + 1),
            0..10u64,
            MapOptions::new().chunksize(3),
        )
        .collect_async()
        .await;
        let failed = Map::new(OddFails, 0..10u32, MapOptions::new())
            .collect_async()
            .await;
        (streamed, collected, failed)
    })
    .unwrap();
    assert_eq!(streamed, (0..10u64).map(|x| x * x).collect::<Vec<_>>());
    assert_eq!(collected.unwrap(), (1..=10u64).collect::<Vec<_>>());
    assert!(failed.unwrap_err().to_string().contains("odd 1"));
}
