//! Valid but extreme map options: huge windows, chunksizes and timeouts work, a zero chunksize
//! is a clear error; none of them aborts, panics or hangs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use taskweave_core::Error;
use taskweave_executor::{Map, MapOptions, MapUnordered};

use crate::support::Threads;

fn double(x: u64) -> u64 {
    x * 2
}

#[test]
fn a_huge_window_reserves_nothing_up_front() {
    let options = MapOptions::new().window(1 << 40);
    let out: Vec<u64> = Map::new(Threads::new(double), 0..1000u64, options)
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, (0..1000u64).map(double).collect::<Vec<_>>());
    let options = MapOptions::new().window(usize::MAX);
    let n = MapUnordered::new(Threads::new(double), 0..100u64, options).count();
    assert_eq!(n, 100);
}

#[test]
fn a_huge_chunksize_makes_one_chunk_of_what_there_is() {
    let threads = Threads::new(double);
    let chunks = threads.chunks.clone();
    let options = MapOptions::new().chunksize(1 << 40);
    let out: Vec<u64> = Map::new(threads, 0..10u64, options)
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, (0..10u64).map(double).collect::<Vec<_>>());
    assert_eq!(*chunks.lock().unwrap(), [(0, 10)]);
    // An input whose size hint claims far more than a chunk could hold in memory.
    let options = MapOptions::new().chunksize(usize::MAX).window(usize::MAX);
    let first = Map::new(Threads::new(double), (0..u64::MAX).take(5), options)
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(first, 0);
}

#[test]
fn chunksize_zero_is_refused_before_anything_runs() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    let inputs = (0..10u64).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let threads = Threads::new(double);
    let chunks = threads.chunks.clone();
    let mut map = Map::new(threads, inputs, MapOptions::new().chunksize(0));
    let err = map.next().unwrap().unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err:?}");
    assert!(err.to_string().contains("chunksize"), "{err}");
    assert!(map.next().is_none());
    assert_eq!(pulled.load(Ordering::SeqCst), 0);
    assert!(chunks.lock().unwrap().is_empty());

    let refused = taskweave_core::run(async {
        let map = MapUnordered::new(
            Threads::new(double),
            0..3u64,
            MapOptions::new().chunksize(0),
        );
        map.collect_async().await
    })
    .unwrap();
    assert!(matches!(refused, Err(Error::Refused { .. })));
}

#[test]
fn the_longest_timeout_never_fires_and_never_overflows() {
    let options = MapOptions::new().timeout(Duration::MAX);
    let out: Vec<u64> = Map::new(Threads::new(double), 0..20u64, options)
        .map(Result::unwrap)
        .collect();
    assert_eq!(out.len(), 20);
    let got = taskweave_core::run(async {
        let options = MapOptions::new().timeout(Duration::MAX);
        let a = Map::new(Threads::new(double), 0..20u64, options.clone())
            .collect_async()
            .await;
        // Long, but still a deadline tokio's timer is given.
        let b = MapUnordered::new(
            Threads::new(double),
            0..20u64,
            MapOptions::new().timeout(Duration::from_secs(50 * 365 * 24 * 3600)),
        )
        .collect_async()
        .await;
        (a, b)
    })
    .unwrap();
    assert_eq!(got.0.unwrap().len(), 20);
    assert_eq!(got.1.unwrap().len(), 20);
}
