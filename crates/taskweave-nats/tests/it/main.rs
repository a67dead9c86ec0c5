//! The NATS executor against a real `nats-server` and real worker processes of this test
//! binary (started through `LocalWorkers`; on Linux they become workers before `main`).

mod durable;
mod fast;
mod funcs;
mod server;

use std::time::Duration;

use taskweave_nats::{LocalWorkers, Mode, NatsExecutor};

/// A server, an executor on a fresh namespace and `n` workers that answered a first call.
pub(crate) struct Setup {
    pub(crate) workers: LocalWorkers,
    pub(crate) nats: NatsExecutor,
    pub(crate) server: server::Server,
    pub(crate) namespace: String,
}

pub(crate) fn setup(test: &str, mode: Mode, workers: usize, concurrency: usize) -> Setup {
    setup_with(test, workers, concurrency, |b| b.mode(mode))
}

pub(crate) fn setup_with(
    test: &str,
    workers: usize,
    concurrency: usize,
    configure: impl FnOnce(taskweave_nats::Builder) -> taskweave_nats::Builder,
) -> Setup {
    let server = server::Server::start();
    let namespace = server::namespace(test);
    let nats = configure(
        NatsExecutor::builder()
            .server(server.url())
            .namespace(&namespace)
            .heartbeat_timeout(Duration::from_millis(800))
            .request_timeout(Duration::from_secs(10)),
    )
    .connect()
    .expect("connect to the test server");
    let mut local = LocalWorkers::start(workers, &server.url(), &namespace, concurrency)
        .expect("start local workers");
    if workers > 0 {
        local
            .wait_ready(&nats, funcs::whoami, Duration::from_secs(20))
            .expect("workers answer within 20 s");
    }
    Setup {
        workers: local,
        nats,
        server,
        namespace,
    }
}

/// The pid written by `funcs::slow_marked` once it started, waiting at most `limit`.
pub(crate) fn wait_for_marker(path: &std::path::Path, limit: Duration) -> u32 {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "no call started within {limit:?} (marker {})",
        path.display()
    );
}

pub(crate) fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "taskweave-nats-{}-{}",
        std::process::id(),
        server::namespace(name)
    ))
}
