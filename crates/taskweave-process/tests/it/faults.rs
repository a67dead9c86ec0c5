//! Fault injection: workers killed by a signal, aborting or exiting in the middle of work. Only
//! the work the worker was running fails, with the right error; the pool replaces the worker.

use std::time::Duration;

use taskweave_core::Error;
use taskweave_process::ProcessPoolExecutor;

use crate::work::{abort, exit3, sleep_ms, sleep_pid, square};
use crate::{eventually, shared};

fn died(err: &Error) -> &taskweave_core::WorkerDied {
    match err.worker() {
        Some(d) => d,
        None => panic!("expected WorkerDied, got {err}"),
    }
}

#[test]
fn kill_9_of_a_busy_worker_fails_only_its_task() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    // Learn the worker's pid, then give it long work.
    let pid = pool.submit(sleep_pid, 0).result(None).unwrap();
    let mut busy = pool.submit(sleep_ms, 20_000);
    let mut queued = pool.submit(square, 9);
    assert!(eventually(Duration::from_secs(10), || busy.running()));
    // SAFETY: signalling our own worker process, which is alive (it holds `busy`).
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let err = busy.result(Some(Duration::from_secs(10))).unwrap_err();
    let d = died(&err);
    assert_eq!(
        (d.pid(), d.signal(), d.exit_code()),
        (pid, Some(libc::SIGKILL), None)
    );
    assert!(d.task().contains("task"), "{}", d.task());
    assert_eq!(queued.result(Some(Duration::from_secs(10))).unwrap(), 81);
    let new_pid = pool.submit(sleep_pid, 0).result(None).unwrap();
    assert_ne!(new_pid, pid);
    assert_eq!(pool.stats().worker_deaths, 1);
}

#[test]
fn abort_in_the_function_is_a_worker_death_by_sigabrt() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let err = pool.submit(abort, ()).result(None).unwrap_err();
    assert_eq!(died(&err).signal(), Some(libc::SIGABRT));
    assert_eq!(pool.submit(square, 3).result(None).unwrap(), 9);
}

#[test]
fn exit_in_the_function_is_a_worker_death_with_its_status() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let err = pool.submit(exit3, ()).result(None).unwrap_err();
    let d = died(&err);
    assert_eq!((d.exit_code(), d.signal()), (Some(3), None));
    assert!(err.to_string().contains(&d.pid().to_string()), "{err}");
    let later: Vec<u64> = (0..10)
        .map(|x| pool.submit(square, x).result(None).unwrap())
        .collect();
    assert_eq!(later[9], 81);
}

#[test]
fn work_queued_behind_a_dying_call_is_not_lost() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    // Short calls first, so the pool pipelines several calls per worker.
    let warm: Vec<_> = (0..200).map(|x| pool.submit(square, x)).collect();
    for mut p in warm {
        p.result(None).unwrap();
    }
    let mut doomed = pool.submit(exit3, ());
    let behind: Vec<_> = (0..50u64).map(|x| pool.submit(square, x)).collect();
    assert_eq!(died(&doomed.result(None).unwrap_err()).exit_code(), Some(3));
    for (x, mut p) in behind.into_iter().enumerate() {
        assert_eq!(p.result(None).unwrap(), (x * x) as u64);
    }
}

#[test]
fn panics_do_not_cost_a_worker() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let pid = pool.submit(sleep_pid, 0).result(None).unwrap();
    for i in 0..5 {
        let err = pool
            .submit(crate::work::panics, format!("boom {i}"))
            .result(None)
            .unwrap_err();
        assert!(err.is_panic());
    }
    assert_eq!(pool.submit(sleep_pid, 0).result(None).unwrap(), pid);
}

fn exit_at_start(_: ()) {
    std::process::exit(4)
}

#[test]
fn workers_dying_at_start_break_the_pool_instead_of_respawning_forever() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .initializer(exit_at_start, ())
        .build()
        .unwrap();
    let err = pool
        .submit(square, 1)
        .result(Some(Duration::from_secs(20)))
        .unwrap_err();
    assert!(
        err.is_broken()
            && err
                .reason()
                .is_some_and(|reason| reason.contains("keep dying") && reason.contains("status 4")),
        "{err}"
    );
    assert_eq!(pool.stats().workers_started, 0);
}
