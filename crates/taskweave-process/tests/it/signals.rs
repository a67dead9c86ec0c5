//! SIGPIPE never kills the pool's process, whatever its disposition: a program may set it back
//! to the default after the pool was built.

use std::process::Command;
use std::time::{Duration, Instant};

use taskweave_process::ProcessPoolExecutor;

use crate::shared;
use crate::work::square;

const CHILD: &str = "TASKWEAVE_PROCESS_IT_SIGPIPE_CHILD";
const NAME: &str = "signals::sigpipe_at_its_default_never_kills_the_pool_process";

/// In the child test process: SIGPIPE at its default, workers killed while calls are written.
fn writes_to_killed_workers() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    assert_eq!(pool.submit(square, 1).result(None).unwrap(), 1);
    // SAFETY: setting this process's disposition of SIGPIPE, as a program may.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    for i in 0..40u64 {
        let pid = loop {
            if let Some(pid) = pool.worker_pids().first() {
                break *pid;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        // SAFETY: signalling our own live worker process.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        // Write while the worker's end of the pipe is closing or closed.
        let deadline = Instant::now() + Duration::from_millis(50);
        while Instant::now() < deadline {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat
                .rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
            {
                break;
            }
        }
        let calls: Vec<_> = (0..4).map(|_| pool.submit(square, i)).collect();
        for mut p in calls {
            // Calls written to the dead worker never started: they run on its successor.
            assert_eq!(p.result(Some(Duration::from_secs(10))).unwrap(), i * i);
        }
    }
}

#[test]
fn sigpipe_at_its_default_never_kills_the_pool_process() {
    if std::env::var_os(CHILD).is_some() {
        writes_to_killed_workers();
        return;
    }
    let _g = shared();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--test-threads=1", "-q"])
        .env(CHILD, "1")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child test process did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_ne!(
        status.signal(),
        Some(libc::SIGPIPE),
        "SIGPIPE killed the process"
    );
    assert!(status.success(), "{status}");
}
