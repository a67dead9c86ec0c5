//! The remote functions the tests call; the worker processes (this same binary) serve them.

use std::io::Write;
use std::time::Duration;

#[taskweave_macros::remote(crate = taskweave_registry)]
pub(crate) fn whoami(_: ()) -> u32 {
    std::process::id()
}

/// A function without argument, for `run_in_executor`.
#[taskweave_macros::remote(crate = taskweave_registry)]
pub(crate) fn answer() -> u32 {
    42
}

#[taskweave_macros::remote(crate = taskweave_registry)]
pub(crate) fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

/// The serial twin of `square`, for comparing.
pub(crate) fn square_local(x: u64) -> u64 {
    x.wrapping_mul(x)
}

#[taskweave_macros::remote(crate = taskweave_registry)]
pub(crate) fn square_with_pid((x, ms): (u64, u64)) -> (u64, u32) {
    std::thread::sleep(Duration::from_millis(ms));
    (x * x, std::process::id())
}

/// Writes its pid to `marker` once it runs, sleeps `ms`, returns `x` and its pid.
#[taskweave_macros::remote(crate = taskweave_registry)]
pub(crate) fn slow_marked((marker, ms, x): (String, u64, u64)) -> (u64, u32) {
    let _ = std::fs::write(&marker, std::process::id().to_string());
    std::thread::sleep(Duration::from_millis(ms));
    (x, std::process::id())
}

/// Length and a checksum, so a large argument is seen whole.
#[taskweave_macros::remote(crate = taskweave_registry)]
pub(crate) fn digest(bytes: Vec<u8>) -> (usize, u64) {
    (bytes.len(), checksum(&bytes))
}

pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(*b)))
}

/// `n` bytes of a known pattern, so a large result is seen whole.
#[taskweave_macros::remote(crate = taskweave_registry)]
pub(crate) fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// Appends one line to `log` per run, so a test can count how often a call ran.
#[taskweave_macros::remote(crate = taskweave_registry)]
pub(crate) fn logged((log, x): (String, u64)) -> u64 {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
    {
        // One write per line: appends from several processes do not interleave.
        let _ = f.write_all(format!("{x}\n").as_bytes());
    }
    x + 1
}

#[taskweave_macros::remote(crate = taskweave_registry)]
pub(crate) fn fails(message: String) -> u8 {
    panic!("{message}")
}

/// As `logged`, taking 30 ms.
#[taskweave_macros::remote(crate = taskweave_registry)]
pub(crate) fn logged_slowly(arg: (String, u64)) -> u64 {
    std::thread::sleep(Duration::from_millis(30));
    logged(arg)
}

/// As `logged`, taking `ms` milliseconds.
#[taskweave_macros::remote(crate = taskweave_registry)]
pub(crate) fn logged_for((log, ms, x): (String, u64, u64)) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    logged((log, x))
}
