//! SIGPIPE never kills the pool's process, whatever its disposition: a program may set it back
//! to the default after the pool was built.

use std::process::Command;
use std::time::{Duration, Instant};

use taskweave_process::{Bytes, ProcessPoolExecutor};

use crate::shared;
use crate::work::square;

const CHILD: &str = "TASKWEAVE_PROCESS_IT_SIGPIPE_CHILD";
const NAME: &str = "signals::sigpipe_at_its_default_never_kills_the_pool_process";

/// In a worker: swaps its call pipe for a pipe nobody writes to. The pool's pipe then has no
/// reader (a write to it raises SIGPIPE) while the worker lives on, deaf, and looks idle.
fn go_deaf(_: ()) -> u32 {
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let is_pipe = std::fs::read_link(entry.path())
            .is_ok_and(|l| l.to_string_lossy().starts_with("pipe:"));
        // SAFETY: querying the flags of a descriptor of this process.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if fd > 2 && is_pipe && flags >= 0 && flags & libc::O_ACCMODE == libc::O_RDONLY {
            let mut silent = [0; 2];
            // SAFETY: `silent` has room for two descriptors; dup2 replaces `fd` (the call pipe)
            // with the silent pipe's read end, whose write end stays open and unused.
            unsafe {
                assert_eq!(libc::pipe(silent.as_mut_ptr()), 0);
                assert!(libc::dup2(silent[0], fd) >= 0);
            }
            return std::process::id();
        }
    }
    panic!("no call pipe in this worker")
}

/// In the child test process: SIGPIPE back at its default, then writes to a worker whose end
/// of the pipe is closed, from a submitting thread (a small call) and from the pool's own
/// thread (a large one).
fn writes_to_deaf_workers() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    // SAFETY: setting this process's disposition of SIGPIPE, as a program may.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let deaf = pool.submit(go_deaf, ()).result(None).unwrap();
    // The call never reached a worker that could start it: it runs on the next one.
    let small = pool.submit(square, 3).result(Some(Duration::from_secs(10)));
    assert_eq!(small.unwrap(), 9);
    assert!(!pool.worker_pids().contains(&deaf));
    pool.submit(go_deaf, ()).result(None).unwrap();
    let large = pool
        .submit(len, Bytes(vec![7; 256 * 1024]))
        .result(Some(Duration::from_secs(10)));
    assert_eq!(large.unwrap(), 256 * 1024);
}

fn len(b: Bytes) -> usize {
    b.0.len()
}

#[test]
fn sigpipe_at_its_default_never_kills_the_pool_process() {
    if std::env::var_os(CHILD).is_some() {
        writes_to_deaf_workers();
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
