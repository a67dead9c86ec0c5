//! Integration tests of the process pool: real worker processes (this test binary started
//! again, recognised as a worker before the test harness runs), real pipes, real runtimes.
//! One module per area.

mod basics;
mod build;
mod corrupt;
mod errors;
mod events;
mod faults;
mod lifecycle;
mod map;
mod named;
mod payloads;
mod props;
mod signals;
mod stuck;

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// Tests that count this process's children or descriptors take the gate exclusively; every
/// other test holds it shared, so the counts are not disturbed by neighbours.
static GATE: RwLock<()> = RwLock::new(());

pub(crate) fn shared() -> RwLockReadGuard<'static, ()> {
    GATE.read().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn exclusive() -> RwLockWriteGuard<'static, ()> {
    GATE.write().unwrap_or_else(|p| p.into_inner())
}

/// Open descriptors of this process.
pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Processes whose parent is this process (zombies included).
pub(crate) fn children() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The fields after the command name (which may hold spaces) start after the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(me) {
            out.push(pid);
        }
    }
    out
}

/// Polls `cond` until it holds or `limit` passes; returns whether it held.
pub(crate) fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Work functions shared by the modules: each runs in a worker process.
pub(crate) mod work {
    use std::time::Duration;

    pub(crate) fn square(x: u64) -> u64 {
        x * x
    }

    pub(crate) fn pid(_: ()) -> u32 {
        std::process::id()
    }

    pub(crate) fn sleep_ms(ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        ms
    }

    /// Sleeps, then reports the worker's pid.
    pub(crate) fn sleep_pid(ms: u64) -> u32 {
        std::thread::sleep(Duration::from_millis(ms));
        std::process::id()
    }

    pub(crate) fn exit3(_: ()) -> u64 {
        std::process::exit(3)
    }

    pub(crate) fn abort(_: ()) -> u64 {
        std::process::abort()
    }

    pub(crate) fn panics(msg: String) -> u64 {
        panic!("{msg}")
    }

    /// Creates the file `path` (so the test knows the call has started), then sleeps.
    pub(crate) fn mark_then_sleep((path, ms): (String, u64)) -> u32 {
        std::fs::write(&path, b"started").unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        std::process::id()
    }

    /// Appends `x` to the file `path` (so the test can count how often each call ran).
    pub(crate) fn record((path, x): (String, u64)) -> u64 {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .unwrap();
        f.write_all(format!("{x}\n").as_bytes()).unwrap();
        x
    }
}

/// Submits `mark_then_sleep` for `ms` and waits until a worker has started it; returns its
/// future and the marker file (the caller removes it).
pub(crate) fn started_call(
    pool: &taskweave_process::ProcessPoolExecutor,
    name: &str,
    ms: u64,
) -> (taskweave_core::Promise<u32>, String) {
    let marker = temp_file(name);
    let call = pool.submit(work::mark_then_sleep, (marker.clone(), ms));
    assert!(
        eventually(Duration::from_secs(10), || std::path::Path::new(&marker)
            .exists()),
        "the call never started"
    );
    (call, marker)
}

/// A fresh path in the temporary directory for one test's marker or log file.
pub(crate) fn temp_file(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "taskweave-process-it-{}-{name}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path.to_string_lossy().into_owned()
}

/// Runs `f` on a thread and fails the test if it does not return within `limit` (a hang is a
/// failure, not a stuck test run).
pub(crate) fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(_) => panic!("{what} did not finish within {limit:?}"),
    }
}
