//! Durable mode (JetStream work queue, at least once) with real workers.

use std::time::{Duration, Instant};

use taskweave_nats::{LocalWorkers, Mode, NatsError, NatsExecutor};

use crate::{funcs, setup, setup_with};

const LIMIT: Option<Duration> = Some(Duration::from_secs(30));

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn durable_submit_and_map_equal_serial_results() {
    let s = setup("dbasic", Mode::Durable, 2, 2);
    assert_eq!(s.nats.submit(funcs::square, 7).result(LIMIT).unwrap(), 49);
    let inputs: Vec<u64> = (0..30).map(|i| i * 7919).collect();
    let serial: Vec<u64> = inputs.iter().copied().map(funcs::square_local).collect();
    let mapped: Vec<u64> = taskweave_executor::Executor::map(&s.nats, funcs::square, inputs)
        .map(Result::unwrap)
        .collect();
    assert_eq!(mapped, serial);
}

#[test]
fn a_worker_killed_mid_call_is_redelivered_and_its_result_arrives_once() {
    let mut s = setup_with("dkill", 2, 1, |b| {
        b.mode(Mode::Durable)
            .ack_wait(Duration::from_secs(1))
            .result_poll(Duration::from_millis(200))
    });
    let marker = crate::temp_path("dkill-marker");
    let mut call = s.nats.submit_with_id::<_, (u64, u32)>(
        "dkill-1",
        taskweave_registry::by_fn(funcs::slow_marked as fn((String, u64, u64)) -> (u64, u32))
            .unwrap()
            .name(),
        (marker.display().to_string(), 1500u64, 9u64),
    );
    let victim = crate::wait_for_marker(&marker, Duration::from_secs(10));
    s.workers.kill_pid(victim).unwrap();
    let (x, ran_on) = call.result(LIMIT).unwrap();
    assert_eq!(x, 9);
    assert_ne!(ran_on, victim, "re-delivered to the survivor");
    let record = s
        .nats
        .record_of("dkill-1")
        .unwrap()
        .expect("a stored result");
    assert_eq!(record.pid, ran_on);
    assert_eq!(record.attempt, 2, "delivered twice");
    assert_eq!(record.writes, 1, "stored once");
    let _ = std::fs::remove_file(marker);
}

#[test]
fn the_same_call_id_twice_runs_once_and_a_new_client_fetches_it_by_id() {
    let s = setup("dsame", Mode::Durable, 2, 2);
    let log = crate::temp_path("dsame-log");
    let name = taskweave_registry::by_fn(funcs::logged as fn((String, u64)) -> u64)
        .unwrap()
        .name();
    let arg = (log.display().to_string(), 41u64);
    let mut first = s
        .nats
        .submit_with_id::<_, u64>("same-id", name, arg.clone());
    let mut second = s
        .nats
        .submit_with_id::<_, u64>("same-id", name, arg.clone());
    assert_eq!(first.result(LIMIT).unwrap(), 42);
    assert_eq!(second.result(LIMIT).unwrap(), 42);
    // Long after the first finished, the same id again.
    let mut third = s.nats.submit_with_id::<_, u64>("same-id", name, arg);
    assert_eq!(third.result(LIMIT).unwrap(), 42);
    assert_eq!(lines(&log), ["41"], "ran exactly once");
    // A client that starts afresh finds the result by id.
    let again = NatsExecutor::builder()
        .server(s.server.url())
        .namespace(&s.namespace)
        .mode(Mode::Durable)
        .connect()
        .unwrap();
    assert_eq!(again.result_of::<u64>("same-id").result(LIMIT).unwrap(), 42);
    let _ = std::fs::remove_file(log);
}

#[test]
fn a_call_that_exhausts_max_deliver_fails_saying_so() {
    let mut s = setup_with("dmax", 1, 1, |b| {
        b.mode(Mode::Durable)
            .ack_wait(Duration::from_secs(1))
            .max_deliver(1)
    });
    let marker = crate::temp_path("dmax-marker");
    let mut call = s.nats.submit(
        funcs::slow_marked,
        (marker.display().to_string(), 60_000, 1),
    );
    let victim = crate::wait_for_marker(&marker, Duration::from_secs(10));
    s.workers.kill_pid(victim).unwrap();
    let started = Instant::now();
    let err = call.result(LIMIT).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            NatsError::of(&err),
            Some(NatsError::MaxDeliveries { max_deliver: 1, .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("max_deliver"), "{err}");
    let _ = std::fs::remove_file(marker);
}

#[test]
fn an_8_mib_durable_argument_crosses_through_the_object_store() {
    let s = setup("dlarge", Mode::Durable, 1, 1);
    let big: Vec<u8> = (0..8usize << 20).map(|i| (i * 13 % 256) as u8).collect();
    let want = (big.len(), funcs::checksum(&big));
    assert_eq!(
        s.nats.submit(funcs::digest, big).result(LIMIT).unwrap(),
        want
    );
    let out = s
        .nats
        .submit(funcs::pattern, 2 << 20)
        .result(LIMIT)
        .unwrap();
    assert_eq!(out.len(), 2 << 20);
}

#[test]
fn cancelling_a_queued_durable_call_removes_it() {
    let mut s = setup_with("dcancel", 0, 1, |b| b.mode(Mode::Durable));
    let log = crate::temp_path("dcancel-log");
    let mut queued = s.nats.submit(funcs::logged, (log.display().to_string(), 1));
    // Give the call time to reach the stream; nobody is there to run it.
    std::thread::sleep(Duration::from_millis(500));
    assert!(queued.cancel(), "a queued call can be cancelled");
    assert!(queued.result(LIMIT).unwrap_err().is_cancelled());
    std::thread::sleep(Duration::from_millis(500));
    s.workers = LocalWorkers::start(1, &s.server.url(), &s.namespace, 1).unwrap();
    s.workers
        .wait_ready(&s.nats, funcs::whoami, Duration::from_secs(20))
        .unwrap();
    let mut later = s.nats.submit(funcs::logged, (log.display().to_string(), 2));
    assert_eq!(later.result(LIMIT).unwrap(), 3);
    assert_eq!(lines(&log), ["2"], "the cancelled call never ran");
    let _ = std::fs::remove_file(log);
}

#[test]
fn a_server_restart_mid_map_loses_and_duplicates_no_result() {
    let mut s = setup_with("drestart", 2, 2, |b| {
        b.mode(Mode::Durable)
            .ack_wait(Duration::from_secs(2))
            .result_poll(Duration::from_millis(200))
            .request_timeout(Duration::from_secs(20))
    });
    let log = crate::temp_path("drestart-log");
    let inputs: Vec<(String, u64)> = (0..40u64).map(|x| (log.display().to_string(), x)).collect();
    let nats = s.nats.clone();
    let mapper = std::thread::spawn(move || {
        taskweave_executor::Executor::map(&nats, funcs::logged_slowly, inputs).collect::<Vec<_>>()
    });
    // Let part of the map run, then take the server away and bring it back on the same store.
    let started = Instant::now();
    while lines(&log).len() < 5 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    s.server.kill();
    std::thread::sleep(Duration::from_millis(500));
    s.server.restart();
    let results = mapper.join().unwrap();
    let values: Vec<u64> = results
        .into_iter()
        .map(|r| r.expect("no call lost"))
        .collect();
    assert_eq!(
        values,
        (1..=40).collect::<Vec<u64>>(),
        "each result once, in order"
    );
    let ran: std::collections::BTreeSet<u64> =
        lines(&log).iter().map(|l| l.parse().unwrap()).collect();
    assert_eq!(
        ran.len(),
        40,
        "every call ran (some perhaps twice: at least once)"
    );
    let _ = std::fs::remove_file(log);
}

#[test]
fn a_call_longer_than_ack_wait_is_not_redelivered_while_it_runs() {
    let s = setup_with("dlong", 2, 1, |b| {
        b.mode(Mode::Durable).ack_wait(Duration::from_millis(600))
    });
    let log = crate::temp_path("dlong-log");
    let name = taskweave_registry::by_fn(funcs::logged_for as fn((String, u64, u64)) -> u64)
        .unwrap()
        .name();
    let mut call = s.nats.submit_with_id::<_, u64>(
        "dlong-1",
        name,
        (log.display().to_string(), 2_000u64, 7u64),
    );
    assert_eq!(call.result(LIMIT).unwrap(), 8);
    assert_eq!(lines(&log), ["7"], "ran once: progress heartbeats kept it");
    let record = s.nats.record_of("dlong-1").unwrap().unwrap();
    assert_eq!(record.attempt, 1);
    let _ = std::fs::remove_file(log);
}

#[test]
fn the_debug_timeline_puts_a_durable_call_on_the_lane_of_the_worker_that_ran_it() {
    let s = setup("dtimeline", Mode::Durable, 1, 1);
    let debug = taskweave_debug::Debug::new().timeline(true).build();
    let guard = taskweave_core::instrument::enter(debug.clone());
    let (_, pid) = s
        .nats
        .submit(funcs::square_with_pid, (5, 20))
        .result(LIMIT)
        .unwrap();
    drop(guard);
    let trace: serde_json::Value =
        serde_json::from_str(&debug.trace_json().expect("the timeline is on")).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let function =
        taskweave_registry::by_fn(funcs::square_with_pid as fn((u64, u64)) -> (u64, u32))
            .unwrap()
            .name();
    let span = events
        .iter()
        .find(|e| e["ph"] == "X" && e["name"].as_str().is_some_and(|n| n.ends_with(function)))
        .unwrap_or_else(|| panic!("no worker span for {function}: {trace}"));
    let lane = events
        .iter()
        .find(|e| e["ph"] == "M" && e["name"] == "thread_name" && e["tid"] == span["tid"])
        .and_then(|e| e["args"]["name"].as_str())
        .unwrap_or_else(|| panic!("the span's lane has no name: {trace}"));
    assert!(
        lane.ends_with(&format!("pid {pid}")),
        "the lane names the worker that ran the call (pid {pid}): {lane}"
    );
    assert!(span["dur"].as_f64().unwrap() > 0.0, "{span}");
}

#[test]
fn worker_settings_out_of_range_are_refused_before_connecting() {
    use taskweave_nats::Worker;
    // Port 1: nothing listens there, so an error about the server would mean no check ran.
    let worker = || Worker::builder().server("nats://127.0.0.1:1");
    for (settings, what) in [
        (worker().ack_wait(Duration::ZERO), "ack_wait"),
        (worker().ack_wait(Duration::from_millis(10)), "ack_wait"),
        (worker().ack_wait(Duration::MAX), "ack_wait"),
        (worker().max_deliver(0), "max_deliver"),
        (worker().max_deliver(u32::MAX), "max_deliver"),
    ] {
        let err = settings.run().unwrap_err();
        assert!(err.is_refused(), "{what}: {err}");
        assert!(err.to_string().contains(what), "{err}");
    }
}

#[test]
fn a_worker_makes_its_consumers_with_its_ack_wait_and_max_deliver() {
    let server = crate::server::Server::start();
    let namespace = crate::server::namespace("wsettings");
    let url = server.url();
    {
        let (url, namespace) = (url.clone(), namespace.clone());
        // In this process, so it can be told its settings; it serves until the process ends
        // (a worker leaves on SIGTERM or SIGINT only).
        std::thread::spawn(move || {
            let _ = taskweave_nats::Worker::builder()
                .server(url)
                .namespace(namespace)
                .concurrency(1)
                .ack_wait(Duration::from_secs(7))
                .max_deliver(3)
                .run();
        });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use futures_util::StreamExt;
        let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut infos = Vec::new();
            if let Ok(stream) = js.get_stream(format!("TASKWEAVE_{namespace}_JOBS")).await {
                let mut consumers = stream.consumers();
                while let Some(Ok(info)) = consumers.next().await {
                    infos.push(info);
                }
            }
            if !infos.is_empty() {
                for info in &infos {
                    assert_eq!(
                        info.config.ack_wait,
                        Duration::from_secs(7),
                        "{}",
                        info.name
                    );
                    assert_eq!(info.config.max_deliver, 3, "{}", info.name);
                }
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the worker made no consumer within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}
