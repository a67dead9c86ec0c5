//! A worker whose reply stream loses its framing (a lying length prefix, random bytes): the
//! worker is ended, the calls it ran fail with `ErrorKind::Wire`, the calls it never started run
//! elsewhere, nothing runs twice and nothing waits forever.

use std::collections::HashMap;
use std::time::Duration;

use taskweave_process::ProcessPoolExecutor;

use crate::shared;
use crate::work::{record, square};

/// The worker's reply pipe: its only write-only pipe above the standard descriptors.
fn reply_pipe() -> i32 {
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
        if fd > 2 && is_pipe && flags >= 0 && flags & libc::O_ACCMODE == libc::O_WRONLY {
            return fd;
        }
    }
    panic!("no reply pipe in this worker")
}

pub(crate) fn write_to_reply_pipe(bytes: &[u8]) {
    let fd = reply_pipe();
    // SAFETY: writing a live buffer to a descriptor of this process.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    assert_eq!(n, bytes.len() as isize);
}

/// Claims a 1 MiB frame and sends two bytes of it: the real reply that follows is swallowed.
fn lie_about_length(x: u64) -> u64 {
    write_to_reply_pipe(&[0, 0, 0x10, 0, 13, 13]);
    x
}

/// Sends bytes that are no frame at all.
fn spray_random_bytes(x: u64) -> u64 {
    let mut state = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let bytes: Vec<u8> = (0..64)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    write_to_reply_pipe(&bytes);
    x
}

fn nothing_lost_or_run_twice(corrupt: fn(u64) -> u64) {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let log = crate::temp_file("record");
    let before: Vec<_> = (0..60u64)
        .map(|x| pool.submit(record, (log.clone(), x)))
        .collect();
    let mut bad = pool.submit(corrupt, 1000);
    let after: Vec<_> = (60..150u64)
        .map(|x| pool.submit(record, (log.clone(), x)))
        .collect();
    let err = bad.result(Some(Duration::from_secs(15))).unwrap_err();
    assert!(err.is_wire(), "{err}");
    let mut ok = Vec::new();
    for (x, mut p) in (0u64..).zip(before.into_iter().chain(after)) {
        match p.result(Some(Duration::from_secs(15))) {
            Ok(v) => {
                assert_eq!(v, x);
                ok.push(x);
            }
            // It ran on the worker after the stream broke: its reply was lost, and it is not
            // run again.
            Err(e) if e.is_wire() => {}
            Err(e) => panic!("call {x} failed with {e}"),
        }
    }
    let mut runs: HashMap<u64, usize> = HashMap::new();
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        *runs.entry(line.parse().unwrap()).or_default() += 1;
    }
    let _ = std::fs::remove_file(&log);
    assert!(runs.values().all(|n| *n == 1), "a call ran twice: {runs:?}");
    assert!(ok.iter().all(|x| runs.contains_key(x)));
    // The other worker kept serving throughout.
    assert!(ok.len() >= 50, "only {} of 150 calls came back", ok.len());
    assert_eq!(
        pool.submit(square, 12)
            .result(Some(Duration::from_secs(10)))
            .unwrap(),
        144
    );
    crate::within(Duration::from_secs(10), "dropping the pool", move || {
        drop(pool)
    });
}

#[test]
fn a_lying_length_prefix_loses_nothing_and_runs_nothing_twice() {
    let _g = shared();
    nothing_lost_or_run_twice(lie_about_length);
}

#[test]
fn random_bytes_in_the_reply_stream_lose_nothing_and_run_nothing_twice() {
    let _g = shared();
    nothing_lost_or_run_twice(spray_random_bytes);
}
