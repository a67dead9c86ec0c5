//! Fast mode (core request/reply, at most once) with real workers.

use std::time::{Duration, Instant};

use taskweave_core::Error;
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
        .err()
        .expect("no server to connect to");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, Error::Broken { .. }), "{err}");
    assert!(err.to_string().contains(&url), "{err}");
}
