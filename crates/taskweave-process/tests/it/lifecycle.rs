//! Worker replacement, cancellation, shutdown, kill/terminate, and what is left afterwards:
//! no child processes and no descriptors.

use std::time::Duration;

use taskweave_core::State;
use taskweave_process::{ProcessPoolExecutor, Queued};

use crate::work::{pid, sleep_ms, sleep_pid, square};
use crate::{children, eventually, exclusive, open_fds, shared};

#[test]
fn max_tasks_per_child_replaces_the_worker_after_n_calls() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_tasks_per_child(3)
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..7)
        .map(|_| pool.submit(pid, ()).result(None).unwrap())
        .collect();
    assert_eq!(pids[0], pids[1]);
    assert_eq!(pids[1], pids[2]);
    assert_ne!(pids[2], pids[3]);
    assert_eq!(pids[3], pids[5]);
    assert_ne!(pids[5], pids[6]);
    assert_eq!(pool.stats().worker_deaths, 0);
}

#[test]
fn max_tasks_per_child_with_many_calls_in_flight() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .max_tasks_per_child(10)
        .build()
        .unwrap();
    let ps: Vec<_> = (0..500u64).map(|x| pool.submit(square, x)).collect();
    for (x, mut p) in ps.into_iter().enumerate() {
        assert_eq!(p.result(None).unwrap(), (x * x) as u64);
    }
    assert!(pool.stats().workers_started >= 50);
}

#[test]
fn cancel_removes_queued_work_and_leaves_running_work_alone() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let mut running = pool.submit(sleep_ms, 300);
    let mut queued = pool.submit(sleep_pid, 0);
    assert!(eventually(Duration::from_secs(10), || running.running()));
    assert!(queued.cancel());
    assert!(
        !running.cancel(),
        "running process work cannot be cancelled"
    );
    assert!(
        queued
            .result(None)
            .as_ref()
            .is_err_and(|e| e.is_cancelled())
    );
    assert_eq!(queued.state(), State::Cancelled);
    assert_eq!(running.result(None).unwrap(), 300);
    // The worker skips the cancelled call when it gets to it.
    assert!(eventually(Duration::from_secs(10), || pool
        .stats()
        .cancelled
        == 1));
    assert_eq!(pool.stats().succeeded, 1);
}

#[test]
fn dropping_an_await_cancels_queued_work() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let out = taskweave_core::run(async {
        let long = pool.submit(sleep_ms, 200);
        let queued = pool.submit(square, 3);
        let timed = taskweave_core::timeout(Duration::from_millis(20), queued).await;
        (timed, long.await)
    });
    let (timed, long) = out.unwrap();
    assert!(timed.unwrap_err().is_timeout());
    assert_eq!(long.unwrap(), 200);
    // The cancelled call is skipped when the worker gets to it.
    assert!(eventually(Duration::from_secs(10), || pool
        .stats()
        .cancelled
        == 1));
    assert_eq!(pool.submit(square, 4).result(None).unwrap(), 16);
    assert_eq!(pool.stats().succeeded, 2);
}

#[test]
fn shutdown_with_wait_finishes_pending_work() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let ps: Vec<_> = (0..6).map(|_| pool.submit(sleep_ms, 30)).collect();
    pool.shutdown(true, false);
    for mut p in ps {
        assert_eq!(p.result(Some(Duration::ZERO)).unwrap(), 30);
    }
    assert!(pool.worker_pids().is_empty());
}

#[test]
fn shutdown_with_cancel_futures_cancels_the_queue() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let mut first = pool.submit(sleep_ms, 200);
    assert!(eventually(Duration::from_secs(10), || first.running()));
    let rest: Vec<_> = (0..5).map(|_| pool.submit(sleep_ms, 200)).collect();
    pool.shutdown(true, true);
    assert_eq!(first.result(Some(Duration::ZERO)).unwrap(), 200);
    for mut p in rest {
        assert!(
            p.result(Some(Duration::ZERO))
                .as_ref()
                .is_err_and(|e| e.is_cancelled())
        );
    }
}

#[test]
fn shutdown_without_wait_returns_at_once_and_still_finishes() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let mut p = pool.submit(sleep_ms, 100);
    pool.shutdown(false, false);
    assert!(!p.done());
    assert_eq!(p.result(None).unwrap(), 100);
    assert!(
        pool.submit(square, 1)
            .result(None)
            .as_ref()
            .is_err_and(|e| e.is_shutdown())
    );
}

#[test]
fn kill_workers_fails_running_work_and_leaves_no_worker() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let (mut busy, marker) = crate::started_call(&pool, "kill", 20_000);
    pool.kill_workers();
    let _ = std::fs::remove_file(&marker);
    let err = busy.result(Some(Duration::ZERO)).unwrap_err();
    assert!(
        err.worker()
            .is_some_and(|d| d.signal() == Some(libc::SIGKILL)),
        "{err}"
    );
    assert!(pool.worker_pids().is_empty());
}

#[test]
fn terminate_workers_sends_sigterm() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let (mut busy, marker) = crate::started_call(&pool, "terminate", 20_000);
    pool.terminate_workers();
    let _ = std::fs::remove_file(&marker);
    let err = busy.result(Some(Duration::ZERO)).unwrap_err();
    assert!(
        err.worker()
            .is_some_and(|d| d.signal() == Some(libc::SIGTERM)),
        "{err}"
    );
}

#[test]
fn after_10k_tasks_and_shutdown_no_child_and_no_descriptor_is_left() {
    let _g = exclusive();
    assert!(
        eventually(Duration::from_secs(10), || children().is_empty()),
        "{:?}",
        children()
    );
    let fds_before = open_fds();
    {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(2)
            .max_tasks_per_child(2500)
            .build()
            .unwrap();
        let ps: Vec<_> = (0..10_000u64).map(|x| pool.submit(square, x)).collect();
        for (x, mut p) in ps.into_iter().enumerate() {
            assert_eq!(p.result(None).unwrap(), (x * x) as u64);
        }
        // Workers retire at their quota, so there may be a moment with none.
        assert!(eventually(Duration::from_secs(10), || !children().is_empty()));
        pool.shutdown(true, false);
        assert!(children().is_empty(), "left behind: {:?}", children());
    }
    assert_eq!(open_fds(), fds_before);
}

#[test]
fn drop_waits_and_reaps() {
    let _g = exclusive();
    assert!(
        eventually(Duration::from_secs(10), || children().is_empty()),
        "{:?}",
        children()
    );
    let fds_before = open_fds();
    let mut p = {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(2)
            .build()
            .unwrap();
        pool.submit(sleep_ms, 50)
    };
    assert_eq!(p.result(Some(Duration::ZERO)).unwrap(), 50);
    assert!(children().is_empty(), "left behind: {:?}", children());
    assert_eq!(open_fds(), fds_before);
}

/// In a worker: starts a pool of its own, leaves it running, and reports this worker's pid and
/// its own workers' pids.
fn start_grandchildren(_: ()) -> (u32, Vec<u32>) {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while pool.worker_pids().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let pids = pool.worker_pids();
    std::mem::forget(pool);
    (std::process::id(), pids)
}

fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for its new parent to reap it is dead too.
        Ok(stat) => stat
            .rfind(')')
            .is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z')),
    }
}

#[test]
fn workers_die_with_their_parent() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let (parent, grandchildren) = pool.submit(start_grandchildren, ()).result(None).unwrap();
    assert_eq!(grandchildren.len(), 2);
    assert!(grandchildren.iter().all(|&pid| !gone(pid)));
    // SAFETY: killing our own worker, which is alive (it just answered).
    unsafe { libc::kill(parent as i32, libc::SIGKILL) };
    assert!(
        eventually(Duration::from_secs(10), || grandchildren
            .iter()
            .all(|&pid| gone(pid))),
        "orphaned workers still alive: {grandchildren:?}"
    );
}

#[test]
fn shutdown_async_waits_for_the_workers_without_blocking_the_runtime() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let long = rt.block_on(async {
        let long = pool.submit(sleep_ms, 300);
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    ticks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            })
        };
        tokio::time::timeout(Duration::from_secs(10), pool.shutdown_async(Queued::Run))
            .await
            .expect("shutdown_async did not finish");
        ticker.abort();
        long.await
    });
    // The runtime's only thread kept running the ticker while the call ran out: a blocking
    // wait would have starved it for the whole time.
    assert!(ticks.load(std::sync::atomic::Ordering::SeqCst) >= 3);
    assert_eq!(long.unwrap(), 300);
    assert!(pool.worker_pids().is_empty());
    assert!(pool.stats().running == 0);
    assert!(
        pool.submit(square, 1)
            .result(None)
            .as_ref()
            .is_err_and(|e| e.is_shutdown())
    );
}

#[derive(Default)]
struct Refusals(std::sync::atomic::AtomicUsize);

impl taskweave_core::instrument::Observer for Refusals {
    fn on_blocking_wait_refused(&self, what: &str) {
        // Other tests' refusals (they run at the same time) are not this test's business.
        if what.contains("ProcessPoolExecutor") {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

#[test]
fn dropping_a_pool_whose_work_is_done_in_async_code_waits_for_nothing() {
    let _g = shared();
    let refusals = std::sync::Arc::new(Refusals::default());
    let rt = taskweave_core::Runtime::builder()
        .observer(refusals.clone())
        .build()
        .unwrap();
    let workers = rt
        .run(async {
            let pool = ProcessPoolExecutor::builder()
                .max_workers(1)
                .build()
                .unwrap();
            assert_eq!(pool.submit(square, 3).await.unwrap(), 9);
            let workers = pool.worker_pids();
            drop(pool);

            let pool = ProcessPoolExecutor::builder()
                .max_workers(2)
                .build()
                .unwrap();
            let p = pool.submit(sleep_ms, 30);
            pool.shutdown_async(Queued::Run).await;
            assert!(pool.worker_pids().is_empty());
            drop(pool);
            assert_eq!(p.await.unwrap(), 30);
            workers
        })
        .unwrap();
    assert_eq!(refusals.0.load(std::sync::atomic::Ordering::SeqCst), 0);
    // The first pool's workers exit and are reaped in the background.
    assert!(!workers.is_empty());
    assert!(eventually(Duration::from_secs(10), || workers
        .iter()
        .all(|pid| !children().contains(pid))));
}

#[test]
fn shutdown_async_with_queued_cancel_cancels_what_has_not_started() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let (running, marker) = crate::started_call(&pool, "queued-cancel", 300);
    let queued = pool.submit(square, 3);
    let (running, queued) = taskweave_core::run(async move {
        tokio::time::timeout(Duration::from_secs(10), pool.shutdown_async(Queued::Cancel))
            .await
            .expect("shutdown_async did not finish");
        assert!(pool.worker_pids().is_empty());
        (running.await, queued.await)
    })
    .unwrap();
    let _ = std::fs::remove_file(&marker);
    // The running call ran to its end; the queued one never started.
    assert!(running.is_ok(), "{running:?}");
    assert!(
        queued.as_ref().is_err_and(|e| e.is_cancelled()),
        "{queued:?}"
    );
}
