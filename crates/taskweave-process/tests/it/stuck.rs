//! Stuck workers (stopped with SIGSTOP, or in an endless call) strand nothing but their own
//! call; call and map timeouts end an overdue worker; a bounded shutdown kills what is left.

use std::time::{Duration, Instant};

use taskweave_core::Error;
use taskweave_process::{CallOptions, MapOptions, ProcessPoolExecutor};

use crate::work::{mark_then_sleep, sleep_ms, sleep_pid, square};
use crate::{eventually, shared};

/// A pool of two workers whose pipelines are deep (short calls have run), and the pids.
fn warm_pool() -> (ProcessPoolExecutor, Vec<u32>) {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let warm: Vec<_> = (0..400).map(|x| pool.submit(square, x)).collect();
    for mut p in warm {
        p.result(Some(Duration::from_secs(10))).unwrap();
    }
    assert!(eventually(Duration::from_secs(10), || pool
        .worker_pids()
        .len()
        == 2));
    let pids = pool.worker_pids();
    (pool, pids)
}

#[test]
fn calls_queued_behind_an_endless_call_run_on_another_worker() {
    let _g = shared();
    let (pool, _) = warm_pool();
    let marker = crate::temp_file("endless");
    let mut endless = pool.submit(mark_then_sleep, (marker.clone(), 60_000));
    let behind: Vec<_> = (0..200u64).map(|x| pool.submit(square, x)).collect();
    let started = Instant::now();
    for (x, mut p) in behind.into_iter().enumerate() {
        assert_eq!(
            p.result(Some(Duration::from_secs(5))).unwrap(),
            (x * x) as u64
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(std::path::Path::new(&marker).exists());
    assert!(!endless.done());
    // The worker that runs the endless call gets nothing new.
    let pids: Vec<u32> = (0..20)
        .map(|_| {
            pool.submit(sleep_pid, 0)
                .result(Some(Duration::from_secs(5)))
                .unwrap()
        })
        .collect();
    assert!(pids.windows(2).all(|w| w[0] == w[1]), "{pids:?}");
    pool.kill_workers();
    assert!(endless.result(Some(Duration::from_secs(5))).is_err());
}

#[test]
fn calls_sent_to_a_stopped_worker_run_on_another_worker() {
    let _g = shared();
    let (pool, pids) = warm_pool();
    // SAFETY: signalling our own live worker process.
    assert_eq!(unsafe { libc::kill(pids[0] as i32, libc::SIGSTOP) }, 0);
    let calls: Vec<_> = (0..200u64).map(|x| pool.submit(sleep_pid, x % 2)).collect();
    let mut served_by = Vec::new();
    for mut p in calls {
        served_by.push(p.result(Some(Duration::from_secs(5))).unwrap());
    }
    assert!(served_by.iter().all(|pid| *pid == pids[1]), "{served_by:?}");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pids[0] as i32, libc::SIGCONT) }, 0);
    for x in 0..50u64 {
        assert_eq!(
            pool.submit(square, x)
                .result(Some(Duration::from_secs(5)))
                .unwrap(),
            x * x
        );
    }
}

#[test]
fn a_call_timeout_ends_the_worker_and_fails_with_timed_out() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let pid = pool.submit(sleep_pid, 0).result(None).unwrap();
    let options = CallOptions::new().timeout(Duration::from_millis(200));
    let started = Instant::now();
    let err = pool
        .submit_with(sleep_ms, 60_000, options)
        .result(Some(Duration::from_secs(10)))
        .unwrap_err();
    assert!(matches!(err, Error::TimedOut { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A fresh worker replaced the one that was ended.
    let new_pid = pool
        .submit(sleep_pid, 0)
        .result(Some(Duration::from_secs(10)))
        .unwrap();
    assert_ne!(new_pid, pid);
    // A call within its timeout is untouched, and an endless limit is no limit.
    let ok = CallOptions::new().timeout(Duration::from_secs(30));
    assert_eq!(pool.submit_with(sleep_ms, 20, ok).result(None).unwrap(), 20);
    let max = CallOptions::new().timeout(Duration::MAX);
    assert_eq!(pool.submit_with(square, 5, max).result(None).unwrap(), 25);
    let zero = CallOptions::new().timeout(Duration::ZERO);
    assert!(matches!(
        pool.submit_with(square, 5, zero).result(None),
        Err(Error::Refused { .. })
    ));
}

#[test]
fn a_timeout_also_ends_a_stopped_worker() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let marker = crate::temp_file("stopped");
    let options = CallOptions::new().timeout(Duration::from_millis(300));
    let mut p = pool.submit_with(mark_then_sleep, (marker.clone(), 2_000), options);
    assert!(eventually(Duration::from_secs(10), || {
        std::path::Path::new(&marker).exists()
    }));
    let pid = pool.worker_pids()[0];
    // SAFETY: signalling our own live worker process.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGSTOP) }, 0);
    let err = p.result(Some(Duration::from_secs(10))).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(
        pool.submit(square, 3)
            .result(Some(Duration::from_secs(10)))
            .unwrap(),
        9
    );
}

#[test]
fn a_map_timeout_fails_only_the_overdue_chunk() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let calls = CallOptions::new().timeout(Duration::from_millis(300));
    let items = [5, 60_000, 5, 5, 5, 5];
    let out: Vec<_> = pool
        .map_with_calls(sleep_ms, items, MapOptions::new(), calls)
        .collect();
    assert!(out[1].as_ref().unwrap_err().is_timeout(), "{:?}", out[1]);
    for (i, r) in out.iter().enumerate().filter(|(i, _)| *i != 1) {
        assert_eq!(*r.as_ref().unwrap(), 5, "item {i}");
    }
    let zero = CallOptions::new().timeout(Duration::ZERO);
    let refused: Vec<_> = pool
        .map_with_calls(square, [1, 2], MapOptions::new(), zero)
        .collect();
    assert!(
        refused
            .iter()
            .all(|r| matches!(r, Err(Error::Refused { .. })))
    );
}

#[test]
fn shutdown_within_kills_the_workers_after_the_deadline() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let marker = crate::temp_file("shutdown");
    let mut endless = pool.submit(mark_then_sleep, (marker.clone(), 60_000));
    let mut queued = pool.submit(square, 2);
    assert!(eventually(Duration::from_secs(10), || {
        std::path::Path::new(&marker).exists()
    }));
    let started = Instant::now();
    assert!(!pool.shutdown_within(Duration::from_millis(300)));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(pool.worker_pids().is_empty());
    assert!(matches!(
        endless.result(Some(Duration::ZERO)),
        Err(Error::WorkerDied(_))
    ));
    assert!(queued.result(Some(Duration::ZERO)).is_err());

    let quick = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let mut p = quick.submit(sleep_ms, 20);
    assert!(quick.shutdown_within(Duration::from_secs(10)));
    assert_eq!(p.result(Some(Duration::ZERO)).unwrap(), 20);
}
