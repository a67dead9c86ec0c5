//! Fast mode (core request/reply, at most once) with real workers.

use std::time::{Duration, Instant};

use taskweave_nats::{Mode, NatsError, NatsExecutor};

use crate::{funcs, setup};

const LIMIT: Option<Duration> = Some(Duration::from_secs(20));

#[test]
fn submit_runs_on_a_worker_and_returns_the_result() {
    let s = setup("basic", Mode::Fast, 1, 2);
    let mut p = s.nats.submit(funcs::square, 12);
    assert_eq!(p.result(LIMIT).unwrap(), 144);
    let (v, pid) = s
        .nats
        .submit(funcs::square_with_pid, (3, 0))
        .result(LIMIT)
        .unwrap();
    assert_eq!(v, 9);
    assert_eq!(pid, s.workers.pids()[0]);
}

#[test]
fn no_worker_is_a_clear_error_at_once() {
    let s = setup("noworker", Mode::Fast, 0, 1);
    let started = Instant::now();
    let err = s.nats.submit(funcs::square, 2).result(LIMIT).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(NatsError::of(&err), Some(NatsError::NoWorkers { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("square"), "{err}");
}

#[test]
fn no_server_is_a_connect_error_within_the_timeout() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let started = Instant::now();
    let err = NatsExecutor::builder()
        .server(&url)
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .expect_err("no server to connect to");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert!(err.is_broken(), "{err}");
    assert!(err.to_string().contains(&url), "{err}");
}

#[test]
fn submit_map_gather_and_as_completed_equal_serial_results() {
    use proptest::prelude::*;
    let s = setup("serial", Mode::Fast, 2, 2);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 8,
        ..ProptestConfig::default()
    });
    runner
        .run(&proptest::collection::vec(any::<u64>(), 0..40), |inputs| {
            let serial: Vec<u64> = inputs.iter().copied().map(funcs::square_local).collect();
            // submit, one promise per input
            let mut promises: Vec<_> = inputs
                .iter()
                .map(|x| s.nats.submit(funcs::square, *x))
                .collect();
            let submitted: Vec<u64> = promises
                .iter_mut()
                .map(|p| p.result(LIMIT).unwrap())
                .collect();
            prop_assert_eq!(&submitted, &serial);
            // the Executor trait's map, in input order
            let mapped: Vec<u64> =
                taskweave_executor::Executor::map(&s.nats, funcs::square, inputs.clone())
                    .map(Result::unwrap)
                    .collect();
            prop_assert_eq!(&mapped, &serial);
            // gather and as_completed on a runtime
            let nats = s.nats.clone();
            let (gathered, mut completed) = taskweave_core::run(async move {
                let gathered =
                    taskweave_core::gather(inputs.iter().map(|x| nats.submit(funcs::square, *x)))
                        .await
                        .unwrap();
                let mut stream = taskweave_core::as_completed(
                    inputs.iter().map(|x| nats.submit(funcs::square, *x)),
                );
                let mut completed = Vec::new();
                while let Some(r) = stream.next().await {
                    completed.push(r.unwrap());
                }
                (gathered, completed)
            })
            .unwrap();
            prop_assert_eq!(&gathered, &serial);
            let mut sorted = serial.clone();
            sorted.sort_unstable();
            completed.sort_unstable();
            prop_assert_eq!(completed, sorted);
            Ok(())
        })
        .unwrap();
}

#[test]
fn load_spreads_over_two_worker_processes() {
    let s = setup("spread", Mode::Fast, 2, 1);
    let mut promises: Vec<_> = (0..24u64)
        .map(|x| s.nats.submit(funcs::square_with_pid, (x, 20)))
        .collect();
    let mut pids = std::collections::BTreeSet::new();
    for (x, p) in promises.iter_mut().enumerate() {
        let (v, pid) = p.result(LIMIT).unwrap();
        assert_eq!(v, (x * x) as u64);
        pids.insert(pid);
    }
    let workers: std::collections::BTreeSet<u32> = s.workers.pids().into_iter().collect();
    assert_eq!(pids, workers, "every worker ran some calls");
}

#[test]
fn a_killed_worker_fails_only_its_call_naming_host_and_pid() {
    let mut s = setup("kill", Mode::Fast, 2, 1);
    let marker = crate::temp_path("kill-marker");
    let mut slow = s.nats.submit(
        funcs::slow_marked,
        (marker.display().to_string(), 30_000, 1),
    );
    let victim = crate::wait_for_marker(&marker, Duration::from_secs(10));
    s.workers.kill_pid(victim).unwrap();
    let started = Instant::now();
    let err = slow.result(LIMIT).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "noticed after {:?}",
        started.elapsed()
    );
    match err.worker() {
        Some(w) => {
            assert_eq!(w.pid(), victim);
            assert!(w.task().contains("slow_marked"), "{err}");
            assert!(w.task().contains("host"), "{err}");
        }
        None => panic!("expected WorkerDied, got {err}"),
    }
    // The survivor serves the rest.
    let survivor = s.workers.pids().into_iter().find(|p| *p != victim).unwrap();
    for x in 0..5u64 {
        let (v, pid) = s
            .nats
            .submit(funcs::square_with_pid, (x, 0))
            .result(LIMIT)
            .unwrap();
        assert_eq!((v, pid), (x * x, survivor));
    }
    let _ = std::fs::remove_file(marker);
}

#[test]
fn an_unknown_function_is_refused_naming_it() {
    let s = setup("unknown", Mode::Fast, 1, 1);
    let err = s
        .nats
        .submit_named::<u64, u64>("nowhere::to_be_found", 1)
        .result(LIMIT)
        .unwrap_err();
    assert!(
        matches!(NatsError::of(&err), Some(NatsError::NoWorkers { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("nowhere::to_be_found"), "{err}");
    // A plain function, not marked #[remote], is refused before anything is sent.
    fn not_remote(x: u64) -> u64 {
        x
    }
    let err = s.nats.submit(not_remote, 1).result(LIMIT).unwrap_err();
    assert!(err.is_refused(), "{err}");
    assert_eq!(not_remote(3), 3);
}

#[test]
fn a_signature_mismatch_is_refused_naming_both_sides() {
    let s = setup("mismatch", Mode::Fast, 1, 1);
    let name = taskweave_registry::by_fn(funcs::square as fn(u64) -> u64)
        .unwrap()
        .name();
    let err = s
        .nats
        .submit_named::<String, u64>(name, "seven".into())
        .result(LIMIT)
        .unwrap_err();
    let text = err.to_string();
    assert!(err.is_refused(), "{text}");
    assert!(text.contains("fn(alloc::string::String) -> u64"), "{text}");
    assert!(text.contains("fn(u64) -> u64"), "{text}");
    assert!(
        text.contains(&s.workers.pids()[0].to_string()),
        "names the worker: {text}"
    );
}

#[test]
fn an_8_mib_argument_and_a_3_mib_result_cross_through_the_object_store() {
    let s = setup("large", Mode::Fast, 1, 1);
    assert!(s.nats.max_payload() < 8 << 20);
    let big: Vec<u8> = (0..8usize << 20).map(|i| (i * 7 % 256) as u8).collect();
    let want = (big.len(), funcs::checksum(&big));
    assert_eq!(
        s.nats.submit(funcs::digest, big).result(LIMIT).unwrap(),
        want
    );
    let out = s
        .nats
        .submit(funcs::pattern, 3 << 20)
        .result(LIMIT)
        .unwrap();
    assert_eq!(out.len(), 3 << 20);
    assert!(out.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
}

#[test]
fn a_panic_on_the_worker_is_a_panic_error_with_its_message() {
    let s = setup("panic", Mode::Fast, 1, 1);
    let err = s
        .nats
        .submit(funcs::fails, "boom 42".to_owned())
        .result(LIMIT)
        .unwrap_err();
    assert!(err.is_panic(), "{err}");
    assert!(err.to_string().contains("boom 42"), "{err}");
    // The worker lives on.
    assert_eq!(s.nats.submit(funcs::square, 3).result(LIMIT).unwrap(), 9);
}

#[test]
fn sigterm_drains_running_calls_before_the_worker_exits() {
    let mut s = setup("drain", Mode::Fast, 1, 1);
    let marker = crate::temp_path("drain-marker");
    let mut slow = s
        .nats
        .submit(funcs::slow_marked, (marker.display().to_string(), 700, 5));
    crate::wait_for_marker(&marker, Duration::from_secs(10));
    assert_eq!(
        s.workers.stop(Duration::from_secs(10)),
        1,
        "exited on its own"
    );
    assert_eq!(slow.result(LIMIT).unwrap().0, 5);
    let _ = std::fs::remove_file(marker);
}

#[test]
fn the_in_flight_limit_queues_calls_inside_the_executor() {
    let s = crate::setup_with("inflight", 1, 4, |b| b.in_flight(2));
    let mut promises: Vec<_> = (0..10u64)
        .map(|x| s.nats.submit(funcs::square_with_pid, (x, 10)))
        .collect();
    for (x, p) in promises.iter_mut().enumerate() {
        assert_eq!(p.result(LIMIT).unwrap().0, (x * x) as u64);
    }
}

#[test]
fn debug_mode_sees_remote_calls_and_the_worker_that_ran_them() {
    use std::sync::{Arc, Mutex};
    use taskweave_core::instrument::{self, ExecutorEvent, Observer};

    #[derive(Default)]
    struct Record(Mutex<Vec<(String, String)>>);
    impl Observer for Record {
        fn on_executor(&self, event: &ExecutorEvent<'_>) {
            let entry = match event {
                ExecutorEvent::Submitted { executor, work } => {
                    (format!("submitted {executor}"), work.name().to_owned())
                }
                ExecutorEvent::Started { work, worker, .. } => {
                    (format!("started {worker}"), work.name().to_owned())
                }
                ExecutorEvent::Finished { work, ok, .. } => {
                    (format!("finished ok={ok}"), work.name().to_owned())
                }
                _ => return,
            };
            if let Ok(mut v) = self.0.lock() {
                v.push(entry);
            }
        }
    }

    let s = setup("debug", Mode::Fast, 1, 1);
    let record = Arc::new(Record::default());
    let guard = instrument::enter(record.clone());
    let name = taskweave_registry::by_fn(funcs::square_with_pid as fn((u64, u64)) -> (u64, u32))
        .unwrap()
        .name();
    let (_, pid) = s
        .nats
        .submit_named::<_, (u64, u32)>(name, (4u64, 0u64))
        .result(LIMIT)
        .unwrap();
    drop(guard);
    let events = record.0.lock().unwrap().clone();
    let ours: Vec<&str> = events
        .iter()
        .filter(|(_, work)| work == name)
        .map(|(what, _)| what.as_str())
        .collect();
    assert!(ours.contains(&"submitted NatsExecutor"), "{events:?}");
    assert!(
        ours.iter()
            .any(|e| e.starts_with("started ") && e.ends_with(&format!("pid {pid}"))),
        "the span names the worker: {events:?}"
    );
    assert!(ours.contains(&"finished ok=true"), "{events:?}");
}

#[test]
fn shutdown_waits_for_calls_out_and_refuses_new_ones() {
    let s = setup("shutdown", Mode::Fast, 1, 1);
    let mut slow = s.nats.submit(funcs::square_with_pid, (3, 300));
    s.nats.shutdown(true, false);
    assert!(slow.done(), "shutdown(wait) returned before the call ended");
    assert_eq!(slow.result(LIMIT).unwrap().0, 9);
    let err = s.nats.submit(funcs::square, 1).result(LIMIT).unwrap_err();
    assert!(err.is_shutdown(), "{err}");
}

#[test]
fn a_bad_namespace_or_function_name_is_refused_clearly() {
    let err = NatsExecutor::builder()
        .namespace("has.dots")
        .connect()
        .expect_err("a namespace with dots");
    assert!(err.to_string().contains("has.dots"), "{err}");
    let s = setup("badname", Mode::Fast, 0, 1);
    let err = s
        .nats
        .submit_named::<u8, u8>("a.b", 1)
        .result(LIMIT)
        .unwrap_err();
    assert!(err.is_refused(), "{err}");
    assert!(err.to_string().contains("a.b"), "{err}");
}

#[test]
fn run_in_executor_runs_a_registered_function_without_argument_on_a_worker() {
    let s = setup("runs", Mode::Fast, 1, 1);
    let got = taskweave_core::run(async {
        let answer = taskweave_bridge::run_in_executor(&s.nats, funcs::answer).await;
        // A closure is not registered: other builds could not find it.
        let closure = taskweave_bridge::run_in_executor(&s.nats, || 7u32).await;
        (answer, closure)
    })
    .unwrap();
    assert_eq!(got.0.unwrap(), 42);
    let err = got.1.unwrap_err();
    assert!(err.is_refused(), "{err}");
    assert!(err.to_string().contains("#[taskweave::remote]"), "{err}");
    // The same function by name, as another build would call it.
    let name = taskweave_registry::by_nullary_fn(funcs::answer)
        .unwrap()
        .name();
    let by_name: u32 = s.nats.submit_named(name, ()).result(LIMIT).unwrap();
    assert_eq!(by_name, 42);
}

#[test]
fn a_call_longer_than_the_heartbeat_timeout_is_kept_alive_by_heartbeats() {
    // Heartbeats every 200 ms of an 800 ms timeout: without them, this 2.5 s call would fail
    // as WorkerDied after 800 ms.
    let s = setup("slowbeat", Mode::Fast, 1, 1);
    let mut p = s.nats.submit(funcs::square_with_pid, (7, 2_500));
    let (v, pid) = p.result(LIMIT).unwrap();
    assert_eq!((v, pid), (49, s.workers.pids()[0]));
}

#[test]
fn calls_queued_behind_a_running_one_fail_naming_the_worker_that_died() {
    // One worker running one call at a time: the quick calls are accepted together (a batch)
    // and wait behind the slow one; the worker dies while the slow one runs.
    let mut s = setup("queuedkill", Mode::Fast, 1, 1);
    for x in 0..5u64 {
        assert_eq!(
            s.nats.submit(funcs::square, x).result(LIMIT).unwrap(),
            x * x
        );
    }
    let marker = crate::temp_path("queued-marker");
    let slow = s.nats.submit(
        funcs::slow_marked,
        (marker.display().to_string(), 30_000, 1),
    );
    // Submitted once the slow call runs, so they wait behind it on the worker's one thread.
    let victim = crate::wait_for_marker(&marker, Duration::from_secs(10));
    let queued: Vec<_> = (0..20u64)
        .map(|x| s.nats.submit(funcs::square, x))
        .collect();
    // Killed once all are accepted (a call not yet read by the worker would end as not run).
    let accepted = Instant::now();
    while !queued.iter().all(|p| p.running()) {
        assert!(
            accepted.elapsed() < Duration::from_secs(10),
            "not accepted in 10 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    s.workers.kill_pid(victim).unwrap();
    let died = |err: taskweave_core::Error| match err.worker() {
        Some(w) => {
            assert_eq!(w.pid(), victim, "{err}");
            assert!(w.task().contains("may have run"), "{err}");
        }
        None => panic!("expected WorkerDied, got {err}"),
    };
    let mut slow = slow;
    died(slow.result(LIMIT).unwrap_err());
    for mut p in queued {
        died(p.result(LIMIT).unwrap_err());
    }
    let _ = std::fs::remove_file(marker);
}

/// Set in the environment of the child below: the server URL and namespace its worker serves.
const OWN_WORKER: &str = "TASKWEAVE_TEST_OWN_WORKER";

/// The run threads (`tw-nats-run-*`: a thread name keeps 15 bytes in `/proc`) of this process.
fn run_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|name| name.starts_with("tw-nats-run-"))
        .count()
}

/// The child of `a_worker_that_returned_from_run_leaves_no_run_threads`: a program that runs
/// `Worker::run` itself (not through `--taskweave-worker`) and goes on after it returned. Run
/// without `OWN_WORKER` (by the harness, beside the other tests) it has nothing to serve.
#[test]
fn child_own_worker_then_count_run_threads() {
    let Ok(spec) = std::env::var(OWN_WORKER) else {
        return;
    };
    let (url, namespace) = spec.split_once(' ').expect("url and namespace");
    taskweave_nats::Worker::builder()
        .server(url)
        .namespace(namespace)
        .concurrency(3)
        .run()
        .expect("the worker runs until SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while run_threads() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("run threads left: {}", run_threads());
}

#[test]
fn a_worker_that_returned_from_run_leaves_no_run_threads() {
    use std::process::{Command, Stdio};
    let s = setup("ownworker", Mode::Fast, 0, 1);
    let exe = std::env::current_exe().expect("the test binary's path");
    let child = Command::new(exe)
        .args([
            "fast::child_own_worker_then_count_run_threads",
            "--exact",
            "--nocapture",
        ])
        .env(OWN_WORKER, format!("{} {}", s.server.url(), s.namespace))
        .stdout(Stdio::piped())
        .spawn()
        .expect("the child starts");
    let pid = child.id();
    // Served calls show that its run threads exist.
    let deadline = Instant::now() + Duration::from_secs(20);
    let answered = loop {
        match s.nats.submit(funcs::whoami, ()).result(LIMIT) {
            Ok(p) => break p,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("the child's worker never answered: {e}"),
        }
    };
    assert_eq!(answered, pid);
    for x in 0..20u64 {
        assert_eq!(
            s.nats.submit(funcs::square, x).result(LIMIT).unwrap(),
            x * x
        );
    }
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the child ends within 30 s")
        .expect("its output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}: {stdout}", out.status);
    assert!(stdout.contains("run threads left: 0"), "{stdout}");
}
