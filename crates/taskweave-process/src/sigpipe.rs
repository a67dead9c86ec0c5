//! Writing to a worker's pipe without risking `SIGPIPE`, whatever the program's disposition of
//! it: a write to a worker that just died is an error, never the death of the pool's process.
//!
//! Pipes take no `MSG_NOSIGNAL`, so the signal is blocked in the writing thread: the pool's own
//! threads block it for good, and a submitting thread blocks it around its write and takes back
//! a `SIGPIPE` that write raised (the kernel directs it at the writing thread, where it stays
//! pending while blocked) before restoring its mask.

use std::fs::File;
use std::io::{self, Write};

/// Blocks SIGPIPE in this thread for the rest of its life (the pool's own threads).
pub(crate) fn block_for_this_thread() {
    #[cfg(unix)]
    // SAFETY: changing this thread's own signal mask with a properly initialised set.
    unsafe {
        let set = sigpipe_set();
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

#[cfg(unix)]
fn sigpipe_set() -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is valid storage for sigemptyset, which initialises it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        set
    }
}

#[cfg(unix)]
fn sigpipe_pending() -> bool {
    // SAFETY: sigpending fills the zeroed set; sigismember reads it.
    unsafe {
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut pending) == 0 && libc::sigismember(&pending, libc::SIGPIPE) == 1
    }
}

/// Writes all of `bytes` from any thread (a submitting one, whose mask is the program's) with
/// SIGPIPE blocked, and leaves no SIGPIPE of its own behind.
pub(crate) fn write_all(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    #[cfg(unix)]
    {
        let set = sigpipe_set();
        // SAFETY: a zeroed sigset_t receives the old mask.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: changing this thread's own mask; `old` receives the previous one.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
        // SAFETY: reading the initialised old mask.
        let was_blocked = unsafe { libc::sigismember(&old, libc::SIGPIPE) } == 1;
        let pending_before = was_blocked && sigpipe_pending();
        let written = file.write_all(bytes);
        let broke = matches!(&written, Err(e) if e.kind() == io::ErrorKind::BrokenPipe);
        if broke && !pending_before && sigpipe_pending() {
            let mut sig = 0;
            // SAFETY: SIGPIPE is pending and blocked, so sigwait returns at once with it.
            unsafe { libc::sigwait(&set, &mut sig) };
        }
        if !was_blocked {
            // SAFETY: restoring this thread's previous mask.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        }
        written
    }
    #[cfg(not(unix))]
    file.write_all(bytes)
}
