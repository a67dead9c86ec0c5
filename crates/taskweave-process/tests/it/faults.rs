//! Fault injection: workers killed by a signal, aborting or exiting in the middle of work. Only
//! the work the worker was running fails, with the right error; the pool replaces the worker.

use std::time::Duration;

use taskweave_core::Error;
use taskweave_process::ProcessPoolExecutor;

use crate::work::{abort, exit3, sleep_pid, square};
use crate::{eventually, shared};

fn died(err: &Error) -> &taskweave_core::WorkerDied {
    match err {
        Error::WorkerDied(d) => d,
        other => panic!("expected WorkerDied, got {other}"),
    }
}

#[test]
fn kill_9_of_a_busy_worker_fails_only_its_task() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    // Learn the worker's pid, then give it long work and wait until it really runs it.
    let pid = pool.submit(sleep_pid, 0).result(None).unwrap();
    let marker = crate::temp_file("busy");
    let mut busy = pool.submit(crate::work::mark_then_sleep, (marker.clone(), 20_000));
    let mut queued = pool.submit(square, 9);
    assert!(eventually(Duration::from_secs(10), || {
        std::path::Path::new(&marker).exists()
    }));
    // SAFETY: signalling our own worker process, which is alive (it holds `busy`).
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let err = busy.result(Some(Duration::from_secs(10))).unwrap_err();
    let d = died(&err);
    assert_eq!(
        (d.pid, d.signal, d.exit_code),
        (pid, Some(libc::SIGKILL), None)
    );
    assert!(d.task.contains("task"), "{}", d.task);
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
    assert_eq!(died(&err).signal, Some(libc::SIGABRT));
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
    assert_eq!((d.exit_code, d.signal), (Some(3), None));
    assert!(err.to_string().contains(&d.pid.to_string()), "{err}");
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
    assert_eq!(died(&doomed.result(None).unwrap_err()).exit_code, Some(3));
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
        matches!(&err, Error::Broken { reason } if reason.contains("keep dying") && reason.contains("status 4")),
        "{err}"
    );
    assert_eq!(pool.stats().workers_started, 0);
}

/// A value whose `Deserialize` panics for 13: user code that runs on a supervising thread.
#[derive(Debug, serde::Serialize)]
struct Bomb(u8);

impl<'de> serde::Deserialize<'de> for Bomb {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Bomb, D::Error> {
        let v = u8::deserialize(d)?;
        if v == 13 {
            panic!("bomb {v} went off while deserialising");
        }
        Ok(Bomb(v))
    }
}

fn make_bomb(x: u8) -> Bomb {
    Bomb(x)
}

/// A panic payload whose own `Drop` panics.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("the panic payload panicked as it was dropped");
    }
}

fn panic_with_a_payload_that_panics_on_drop(_: ()) -> u64 {
    std::panic::panic_any(PanicsOnDrop)
}

#[test]
fn a_result_whose_deserialize_panics_fails_only_its_future() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let err = pool
        .submit(make_bomb, 13)
        .result(Some(Duration::from_secs(10)))
        .unwrap_err();
    assert!(err.is_panic(), "{err}");
    assert!(err.to_string().contains("bomb 13"), "{err}");
    let pool = crate::within(
        Duration::from_secs(10),
        "a map after the panic",
        move || {
            let out: Vec<_> = pool.map(make_bomb, [1, 13, 2]).collect();
            assert_eq!(out[0].as_ref().unwrap().0, 1);
            assert!(out[1].as_ref().unwrap_err().is_panic());
            assert_eq!(out[2].as_ref().unwrap().0, 2);
            let squares: Vec<u64> = pool
                .map_with(
                    square,
                    0..50,
                    taskweave_process::MapOptions::new().chunksize(4),
                )
                .map(Result::unwrap)
                .collect();
            assert_eq!(squares[49], 49 * 49);
            pool
        },
    );
    crate::within(Duration::from_secs(10), "dropping the pool", move || {
        drop(pool)
    });
}

#[test]
fn a_done_callback_panic_whose_payload_panics_on_drop_fails_nothing_else() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let mut p = pool.submit(square, 6);
    p.add_done_callback(|_| std::panic::panic_any(PanicsOnDrop));
    assert_eq!(p.result(Some(Duration::from_secs(10))).unwrap(), 36);
    let pool = crate::within(
        Duration::from_secs(10),
        "calls after the callback",
        move || {
            assert_eq!(pool.submit(square, 7).result(None).unwrap(), 49);
            let squares: Vec<u64> = pool.map(square, 0..20).map(Result::unwrap).collect();
            assert_eq!(squares[19], 361);
            pool
        },
    );
    crate::within(Duration::from_secs(10), "dropping the pool", move || {
        drop(pool)
    });
}

#[test]
fn a_panic_payload_whose_drop_panics_is_a_panic_and_the_worker_lives_on() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let pid = pool.submit(sleep_pid, 0).result(None).unwrap();
    let err = pool
        .submit(panic_with_a_payload_that_panics_on_drop, ())
        .result(Some(Duration::from_secs(10)))
        .unwrap_err();
    assert!(err.is_panic(), "{err}");
    assert_eq!(pool.submit(sleep_pid, 0).result(None).unwrap(), pid);
    assert_eq!(pool.stats().worker_deaths, 0);
}

#[test]
fn a_call_whose_worker_died_before_starting_it_runs_elsewhere() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let pid = pool.submit(sleep_pid, 0).result(None).unwrap();
    // A stopped worker cannot start the call it is sent.
    // SAFETY: signalling our own live worker process.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGSTOP) }, 0);
    let mut p = pool.submit(square, 7);
    assert!(eventually(Duration::from_secs(10), || pool.stats().running
        + pool.stats().queued
        == 1));
    // SAFETY: as above; SIGKILL ends a stopped process too.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    assert_eq!(p.result(Some(Duration::from_secs(10))).unwrap(), 49);
    assert_eq!(pool.stats().worker_deaths, 0);
}

#[test]
fn a_call_that_cannot_be_resent_says_it_never_ran() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let pid = pool.submit(sleep_pid, 0).result(None).unwrap();
    // SAFETY: signalling our own live worker process.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGSTOP) }, 0);
    let mut p = pool.submit(square, 7);
    assert!(eventually(Duration::from_secs(10), || pool.stats().running == 1));
    pool.kill_workers();
    let err = p.result(Some(Duration::from_secs(10))).unwrap_err();
    assert!(
        matches!(&err, Error::Cancelled { .. }) && err.to_string().contains("never started"),
        "{err}"
    );
}

/// The command name of a process, as the kernel keeps it.
fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default()
}

#[test]
fn a_kill_storm_on_starting_workers_does_not_break_the_pool() {
    let _g = shared();
    // Workers started through a link of their own carry its name, so the storm hits this
    // pool's workers only, and only while they start (the pool lists a worker once it is
    // ready).
    let name = format!("twstorm{}", std::process::id() % 100_000);
    let link = std::env::temp_dir().join(&name);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(std::env::current_exe().unwrap(), &link).unwrap();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .max_tasks_per_child(1)
        .worker_program(&link)
        .build()
        .unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (during, kills) = std::thread::scope(|scope| {
        let killer = scope.spawn(|| {
            // Only workers that are starting: a worker is listed by the pool once it is ready.
            let mut kills = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let ready = pool.worker_pids();
                for pid in crate::children() {
                    if !ready.contains(&pid) && comm(pid).starts_with(&name) {
                        // SAFETY: signalling a starting worker of this pool, a child of ours.
                        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                        kills += 1;
                    }
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            kills
        });
        let during: Vec<_> = (0..40).map(|x| pool.submit(square, x)).collect();
        std::thread::sleep(Duration::from_millis(1500));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (during, killer.join().unwrap())
    });
    assert!(pool.broken().is_none(), "{:?}", pool.broken());
    assert!(kills >= 3, "only {kills} starting workers were killed");
    for mut p in during {
        match p.result(Some(Duration::from_secs(20))) {
            Ok(_) | Err(Error::WorkerDied(_)) => {}
            Err(e) => panic!("a call during the storm failed with {e}"),
        }
    }
    assert!(pool.broken().is_none(), "{:?}", pool.broken());
    for x in 0..10u64 {
        assert_eq!(
            pool.submit(square, x)
                .result(Some(Duration::from_secs(10)))
                .unwrap(),
            x * x
        );
    }
    let _ = std::fs::remove_file(&link);
}
