//! The worker side: what a copy of the executable does when it was started as a pool worker.
//!
//! It is entered before `main` (from the loader's constructor list on ELF platforms, or from
//! [`init`](crate::init) at the top of `main`), so the user's `main` never runs in a worker. It
//! removes its marker from the environment (so a pool created inside a worker starts workers of
//! its own), arranges to die with its parent, says hello, checks the pool's setup, runs the
//! initializer and then serves calls one at a time until its input pipe closes.

use std::fs::File;
use std::io::{BufReader, Write};
use std::time::Instant;

use crate::claims::{Claim, Claims};
use crate::image::{image, resolve};
use crate::job::{CaughtPanic, InitTrampoline, LAST_PANIC, Trampoline};
use crate::wire::{self, ToWorker};

/// The environment variable that marks a worker: `1:<input fd>:<output fd>:<parent pid>:<max
/// frame>:<claims fd>`. Without the claims descriptor the worker runs no call.
pub(crate) const WORKER_ENV: &str = "TASKWEAVE_PROCESS_WORKER";

/// Exit status of a worker that received a frame it could not handle.
const EXIT_PROTOCOL: i32 = 86;

struct Marker {
    input: i32,
    output: i32,
    parent: u32,
    max_frame: usize,
    claims: Option<i32>,
}

fn parse(value: &str) -> Option<Marker> {
    let mut parts = value.split(':');
    if parts.next()? != "1" {
        return None;
    }
    Some(Marker {
        input: parts.next()?.parse().ok()?,
        output: parts.next()?.parse().ok()?,
        parent: parts.next()?.parse().ok()?,
        max_frame: parts.next()?.parse().ok()?,
        claims: match parts.next() {
            Some(fd) => Some(fd.parse().ok()?),
            None => None,
        },
    })
}

/// Becomes a worker and never returns if this process was started as one; returns at once
/// otherwise.
pub(crate) fn run_if_worker() {
    let Some(value) = std::env::var_os(WORKER_ENV) else {
        return;
    };
    let Some(marker) = value.to_str().and_then(parse) else {
        eprintln!("taskweave-process: malformed {WORKER_ENV} marker, not starting as a worker");
        std::process::exit(EXIT_PROTOCOL);
    };
    // SAFETY: a worker runs this before `main` or first thing in it, while it has one thread, so
    // no other thread reads the environment concurrently.
    unsafe { std::env::remove_var(WORKER_ENV) };
    std::process::exit(serve(marker));
}

#[cfg(unix)]
fn prepare(marker: &Marker) -> Option<(File, File, Option<File>)> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscalls on this process's own state; the fds were handed to this process by
    // its parent for its exclusive use, so owning them in `File`s is sound.
    unsafe {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        }
        if libc::getppid() as u32 != marker.parent {
            // The parent died before the death signal was armed.
            return None;
        }
        // Ctrl-C in a terminal reaches the whole process group: the parent decides what it means
        // (it may shut the pool down gracefully), and a dead parent takes workers with it.
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        for fd in [marker.input, marker.output]
            .into_iter()
            .chain(marker.claims)
        {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
        Some((
            File::from_raw_fd(marker.input),
            File::from_raw_fd(marker.output),
            marker.claims.map(|fd| File::from_raw_fd(fd)),
        ))
    }
}

#[cfg(not(unix))]
fn prepare(_marker: &Marker) -> Option<(File, File, Option<File>)> {
    None
}

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| l.to_string())
            .unwrap_or_else(|| "<unknown>".into());
        let backtrace = std::backtrace::Backtrace::force_capture().to_string();
        LAST_PANIC.with(|p| {
            *p.borrow_mut() = Some(CaughtPanic {
                location,
                backtrace,
            })
        });
    }));
}

fn send(out: &mut File, frame: &[u8]) -> bool {
    out.write_all(frame).is_ok()
}

fn fatal(out: &mut File, detail: &str) -> i32 {
    let mut frame = Vec::new();
    wire::encode_text(&mut frame, true, detail);
    send(out, &frame);
    EXIT_PROTOCOL
}

fn serve(marker: Marker) -> i32 {
    let Some((input, mut out, claims)) = prepare(&marker) else {
        return 0;
    };
    let claims = claims.and_then(|f| Claims::open(f).ok());
    // Call frames read so far: the position of the next call's claim word.
    let mut position: u64 = 0;
    install_panic_hook();
    let img = image();
    let mut frame = Vec::new();
    wire::encode_hello(&mut frame, std::process::id(), &img.build_id);
    if !send(&mut out, &frame) {
        return 0;
    }
    let mut input = BufReader::with_capacity(64 * 1024, input);
    let mut body = Vec::new();

    // Setup: the pool's build must be ours before any offset is trusted.
    let secret = match wire::read_frame_into(&mut input, marker.max_frame, &mut body) {
        Ok(true) => match wire::decode_to_worker(&body) {
            Ok(ToWorker::Setup {
                build_id,
                secret,
                initializer,
            }) => {
                if build_id != img.build_id.as_slice() {
                    return fatal(
                        &mut out,
                        "pool and worker are different builds of the executable",
                    );
                }
                if let Some((f, payload)) = initializer {
                    let outcome = resolve(f, secret).and_then(|(func, tramp)| {
                        // SAFETY: `tramp` is a checked reference into this build's code, made by
                        // the pool from an `InitTrampoline` (setup frames carry no other kind).
                        let tramp = unsafe {
                            std::mem::transmute::<*const (), InitTrampoline>(tramp as *const ())
                        };
                        tramp(func, payload)
                    });
                    if let Err(text) = outcome {
                        frame.clear();
                        wire::encode_text(&mut frame, false, &text);
                        send(&mut out, &frame);
                        return 0;
                    }
                }
                secret
            }
            Ok(other) => return fatal(&mut out, &format!("expected setup, got {other:?}")),
            Err(e) => return fatal(&mut out, &e.to_string()),
        },
        Ok(false) => return 0,
        Err(e) => return fatal(&mut out, &e.to_string()),
    };
    frame.clear();
    wire::encode_ready(&mut frame);
    if !send(&mut out, &frame) {
        return 0;
    }

    loop {
        match wire::read_frame_into(&mut input, marker.max_frame, &mut body) {
            Ok(true) => {}
            Ok(false) => return 0,
            Err(e) => return fatal(&mut out, &e.to_string()),
        }
        let (id, func, count, payload) = match wire::decode_to_worker(&body) {
            Ok(ToWorker::Call {
                id,
                func,
                count,
                payload,
            }) => (id, func, count, payload),
            Ok(other) => return fatal(&mut out, &format!("expected a call, got {other:?}")),
            Err(e) => return fatal(&mut out, &e.to_string()),
        };
        let Some(claims) = &claims else {
            return fatal(
                &mut out,
                "a call arrived but the pool shared no claims ring",
            );
        };
        match claims.claim(position, id) {
            Claim::Run => {}
            // The pool took this call back (it is running elsewhere): no reply.
            Claim::Skip => {
                position += 1;
                continue;
            }
            Claim::Mismatch => {
                return fatal(
                    &mut out,
                    &format!("call {id} is not the one the pool sent here"),
                );
            }
        }
        let claimed_at = position;
        position += 1;
        frame.clear();
        match resolve(func, secret) {
            Ok((func, tramp)) => {
                // SAFETY: `tramp` is a checked reference into this build's code, made by the pool
                // from a `Trampoline` (call frames carry no other kind).
                let tramp =
                    unsafe { std::mem::transmute::<*const (), Trampoline>(tramp as *const ()) };
                let started = Instant::now();
                let start = wire::begin_result(&mut frame, id, 0);
                tramp(func, count, payload, &mut frame);
                let nanos = started.elapsed().as_nanos() as u64;
                wire::set_result_nanos(&mut frame, start, nanos);
                if let Err(e) = wire::finish(&mut frame, start, marker.max_frame) {
                    frame.clear();
                    wire::encode_failed(&mut frame, id, &format!("result too large: {e}"));
                }
            }
            Err(detail) => wire::encode_failed(&mut frame, id, &detail),
        }
        // Each reply is written before the next call starts, so when a worker dies the pool
        // knows exactly which call it was running.
        if !send(&mut out, &frame) {
            return 0;
        }
        claims.mark_replied(claimed_at, id);
        wire::trim(&mut frame);
        wire::trim(&mut body);
    }
}
