//! The worker side, in one place: how a copy of the executable becomes a pool worker (the
//! loader constructor, the marker), its serve loop, and the typed trampolines it runs
//! ([`trampoline`]).
//!
//! It is entered before `main` (from the loader's constructor list on ELF platforms, or from
//! [`become_worker_if_spawned`](crate::become_worker_if_spawned) at the top of `main`), so the
//! user's `main` never runs in a worker. It
//! removes its marker from the environment (so a pool created inside a worker starts workers of
//! its own), arranges to die with its parent, says hello, checks the pool's setup, runs the
//! initializer and then serves calls one at a time until its input pipe closes.

use std::fs::File;
use std::io::{BufReader, Write};
use std::time::Instant;

use crate::arena::{Arena, ResultBuf};
use crate::claims::{Claim, Claims};
use crate::image::{Image, image, resolve};
use crate::wire::{self, FnRef, ToWorker};

pub(crate) mod named;
pub(crate) mod trampoline;

use trampoline::{CaughtPanic, InitTrampoline, LAST_PANIC, Trampoline};

/// Registers worker start-up with the loader, so a worker is recognised before `main`, under
/// `cargo test` (whose `main` is generated) as in any other program. Every ELF loader runs the
/// functions of `.init_array` before `main`.
// SAFETY: `.init_array` holds pointers to `extern "C" fn()` that the loader calls once, before
// `main`, with no arguments, on the main thread: exactly the type and calling convention of
// `worker_ctor`. The entry is a plain pointer, valid for the program's life, and the section
// exists with this meaning on every target this compiles for (ELF: Linux, Android, FreeBSD).
// `worker_ctor` returns at once unless the process was started as a worker, and uses nothing
// that needs `main` to have run (std's allocator, environment and I/O work before `main`).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
#[used]
#[unsafe(link_section = ".init_array")]
pub(crate) static WORKER_CTOR: extern "C" fn() = worker_ctor;

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
extern "C" fn worker_ctor() {
    run_if_worker();
}

/// `true` where [`WORKER_CTOR`] exists and
/// [`become_worker_if_spawned`](crate::become_worker_if_spawned) is optional.
pub(crate) const HAS_CTOR: bool = cfg!(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd"
));

/// The environment variable that marks a worker: `1:<input fd>:<output fd>:<parent pid>:<max
/// frame>:<claims fd>[:<calls region fd>:<results region fd>]`. Without the claims descriptor
/// the worker runs no call; without the regions every frame goes through the pipes.
pub(crate) const WORKER_ENV: &str = "TASKWEAVE_PROCESS_WORKER";

/// Exit status of a worker that received a frame it could not handle.
const EXIT_PROTOCOL: i32 = 86;

struct Marker {
    input: i32,
    output: i32,
    parent: u32,
    max_frame: usize,
    claims: Option<i32>,
    regions: Option<(i32, i32)>,
}

fn parse(value: &str) -> Option<Marker> {
    let mut parts = value.split(':');
    if parts.next()? != "1" {
        return None;
    }
    let marker = Marker {
        input: parts.next()?.parse().ok()?,
        output: parts.next()?.parse().ok()?,
        parent: parts.next()?.parse().ok()?,
        max_frame: parts.next()?.parse().ok()?,
        claims: match parts.next() {
            Some(fd) => Some(fd.parse().ok()?),
            None => None,
        },
        regions: match (parts.next(), parts.next()) {
            (Some(c), Some(r)) => Some((c.parse().ok()?, r.parse().ok()?)),
            (None, None) => None,
            _ => return None,
        },
    };
    if parts.next().is_some() || (marker.regions.is_some() && marker.claims.is_none()) {
        return None;
    }
    // The pool hands over fresh descriptors above stdio, all different: anything else is not
    // a marker the pool wrote, and taking ownership of it could close someone else's file.
    let (calls, results) = marker.regions.unzip();
    let fds = [
        Some(marker.input),
        Some(marker.output),
        marker.claims,
        calls,
        results,
    ];
    let fds: Vec<i32> = fds.into_iter().flatten().collect();
    let distinct = fds.iter().enumerate().all(|(i, a)| !fds[..i].contains(a));
    (distinct && fds.iter().all(|&fd| fd > 2)).then_some(marker)
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
    // SAFETY: this line is reached only in a process started as a worker, before its `main`:
    // on ELF targets from the loader constructor (no thread of the program exists yet), and
    // elsewhere from `become_worker_if_spawned`, which must be the first thing in `main`, before any thread starts.
    // So no other thread reads or writes the environment concurrently.
    unsafe { std::env::remove_var(WORKER_ENV) };
    std::process::exit(serve(marker));
}

/// The descriptors a worker was handed: input, output, claims, and the shared regions for
/// calls and results.
type Handed = (File, File, Option<File>, Option<(File, File)>);

#[cfg(unix)]
fn prepare(marker: &Marker) -> Option<Handed> {
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
        let regions = marker.regions.map(|(c, r)| [c, r]).unwrap_or([-1, -1]);
        for fd in [marker.input, marker.output]
            .into_iter()
            .chain(marker.claims)
            .chain(regions.into_iter().filter(|&fd| fd >= 0))
        {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
        Some((
            File::from_raw_fd(marker.input),
            File::from_raw_fd(marker.output),
            marker.claims.map(|fd| File::from_raw_fd(fd)),
            marker
                .regions
                .map(|(c, r)| (File::from_raw_fd(c), File::from_raw_fd(r))),
        ))
    }
}

#[cfg(not(unix))]
fn prepare(_marker: &Marker) -> Option<Handed> {
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

/// A setup frame the worker accepted: the tag key, and the initializer resolved to
/// `(function, trampoline, argument)`, not yet run.
pub(crate) struct Setup<'a> {
    pub(crate) secret: u64,
    pub(crate) initializer: Option<(usize, usize, &'a [u8])>,
    /// The pool is another build: only named calls may run, never an offset.
    pub(crate) named_only: bool,
}

/// Why a setup frame was refused.
#[derive(Debug)]
pub(crate) enum SetupRefused {
    /// Not a setup frame, or another build's: the worker reports a protocol error and exits.
    Fatal(String),
    /// The initializer's reference fails its checks: reported as the initializer's failure.
    Init(String),
}

/// Checks the pool's setup frame against this image before any offset is trusted: the build id
/// must be ours, and the initializer's reference must pass its tag and code checks. Runs
/// nothing; any bytes give a [`Setup`] or a refusal.
pub(crate) fn accept_setup<'a>(body: &'a [u8], img: &Image) -> Result<Setup<'a>, SetupRefused> {
    match wire::decode_to_worker(body) {
        Ok(ToWorker::Setup {
            build_id,
            secret,
            initializer,
        }) => {
            if build_id != img.build_id.as_slice() {
                return Err(SetupRefused::Fatal(
                    "pool and worker are different builds of the executable".into(),
                ));
            }
            let initializer = match initializer {
                None => None,
                Some((f, payload)) => {
                    let (func, tramp) = resolve(f, secret).map_err(SetupRefused::Init)?;
                    Some((func, tramp, payload))
                }
            };
            Ok(Setup {
                secret,
                initializer,
                named_only: false,
            })
        }
        // Another build's pool trusts no offset of ours and sends none; its names are checked
        // one by one against the registry.
        Ok(ToWorker::SetupNamed { abi }) if abi == taskweave_registry::ABI_VERSION => Ok(Setup {
            secret: 0,
            initializer: None,
            named_only: true,
        }),
        Ok(ToWorker::SetupNamed { abi }) => Err(SetupRefused::Fatal(format!(
            "the pool calls registered functions with registry version {abi}, this worker with \
             version {}: build both with the same taskweave-registry",
            taskweave_registry::ABI_VERSION
        ))),
        Ok(other) => Err(SetupRefused::Fatal(format!(
            "expected setup, got {other:?}"
        ))),
        Err(e) => Err(SetupRefused::Fatal(e.to_string())),
    }
}

/// Hands post `posted` of the calls region back to the pool, if the call came through it.
fn release(calls: &Option<Arena>, posted: Option<u64>) {
    if let (Some(calls), Some(number)) = (calls, posted) {
        calls.release(number);
    }
}

/// Checks a call's function reference; `Ok((function, trampoline))` is safe to run.
pub(crate) fn accept_call(func: FnRef, secret: u64) -> Result<(usize, usize), String> {
    resolve(func, secret)
}

/// What a call frame asks the worker to run, before any check.
enum Target<'a> {
    /// A code offset.
    Offset(FnRef),
    /// A registered function, by name (checked against the registry as it runs).
    Named {
        name: &'a str,
        hash: u64,
        caller: &'a str,
    },
}

/// A call that may run: a checked `(function, trampoline)` pair of this image, or a name.
enum Runnable<'a> {
    Offset(usize, usize),
    Named {
        name: &'a str,
        hash: u64,
        caller: &'a str,
    },
}

/// Checks a call's target: an offset must pass its tag and code checks, and is refused
/// outright when the pool is another build (its offsets mean nothing here).
fn accept_target(
    target: Target<'_>,
    secret: u64,
    named_only: bool,
) -> Result<Runnable<'_>, String> {
    match target {
        Target::Offset(_) if named_only => Err(
            "a code offset from a pool of another build: this worker runs only named calls".into(),
        ),
        Target::Offset(func) => accept_call(func, secret).map(|(f, t)| Runnable::Offset(f, t)),
        Target::Named { name, hash, caller } => Ok(Runnable::Named { name, hash, caller }),
    }
}

fn serve(marker: Marker) -> i32 {
    let Some((input, mut out, claims, regions)) = prepare(&marker) else {
        return 0;
    };
    let claims = claims.and_then(|f| Claims::open(f).ok());
    // The pool sends large calls through `calls` only because it handed it over: a region that
    // cannot be opened is a protocol error, reported before the pool sends anything.
    let (mut calls, mut results) = match regions.map(|(c, r)| (Arena::open(c), Arena::open(r))) {
        None => (None, None),
        Some((Ok(c), Ok(r))) => (Some(c), Some(r)),
        Some((Err(e), _) | (_, Err(e))) => {
            return fatal(&mut out, &format!("cannot map a shared region: {e}"));
        }
    };
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
    let (secret, named_only) = match wire::read_frame_into(&mut input, marker.max_frame, &mut body)
    {
        Ok(true) => match accept_setup(&body, img) {
            Ok(Setup {
                secret,
                initializer,
                named_only,
            }) => {
                if let Some((func, tramp, payload)) = initializer {
                    // SAFETY: `tramp` is a checked reference into this build's code, made by
                    // the pool from an `InitTrampoline` (setup frames carry no other kind).
                    let tramp = unsafe {
                        std::mem::transmute::<*const (), InitTrampoline>(tramp as *const ())
                    };
                    if let Err(text) = tramp(func, payload) {
                        frame.clear();
                        wire::encode_text(&mut frame, false, &text);
                        send(&mut out, &frame);
                        return 0;
                    }
                }
                (secret, named_only)
            }
            Err(SetupRefused::Fatal(text)) => return fatal(&mut out, &text),
            Err(SetupRefused::Init(text)) => {
                frame.clear();
                wire::encode_text(&mut frame, false, &text);
                send(&mut out, &frame);
                return 0;
            }
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
        let (view, posted) = match crate::arena::resolve(&body, calls.as_mut(), marker.max_frame) {
            Ok(resolved) => resolved,
            Err(e) => return fatal(&mut out, &e.to_string()),
        };
        let (id, target, count, payload) = match wire::decode_to_worker(view) {
            Ok(ToWorker::Call {
                id,
                func,
                count,
                payload,
            }) => (id, Target::Offset(func), count, payload),
            Ok(ToWorker::NamedCall {
                id,
                hash,
                count,
                name,
                caller,
                payload,
            }) => (id, Target::Named { name, hash, caller }, count, payload),
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
                release(&calls, posted);
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
        // A large result is written straight into the results region, where the pool reads it.
        let mut reply = ResultBuf::new(std::mem::take(&mut frame), results.as_mut());
        match accept_target(target, secret, named_only) {
            Ok(runnable) => {
                let started = Instant::now();
                let start = wire::begin_result(reply.vec_mut(), id, 0);
                match runnable {
                    Runnable::Offset(func, tramp) => {
                        // SAFETY: `tramp` is a checked reference into this build's code, made
                        // by the pool from a `Trampoline` (call frames carry no other kind).
                        let tramp = unsafe {
                            std::mem::transmute::<*const (), Trampoline>(tramp as *const ())
                        };
                        tramp(func, count, payload, &mut reply);
                    }
                    Runnable::Named { name, hash, caller } => {
                        named::run(name, hash, caller, count, payload, reply.vec_mut());
                    }
                }
                // The arguments are decoded: the pool may reuse the region for the next call.
                release(&calls, posted);
                let nanos = started.elapsed().as_nanos() as u64;
                reply.patch(start + wire::RESULT_NANOS_AT, &nanos.to_le_bytes());
                if let Err(e) = reply.finish(marker.max_frame) {
                    reply.clear();
                    wire::encode_failed(reply.vec_mut(), id, &format!("result too large: {e}"));
                }
            }
            Err(detail) => {
                release(&calls, posted);
                wire::encode_failed(reply.vec_mut(), id, &detail);
            }
        }
        // Each reply is written before the next call starts, so when a worker dies the pool
        // knows exactly which call it was running.
        let (sent, buf) = reply.send(&mut out);
        frame = buf;
        if sent.is_err() {
            return 0;
        }
        claims.mark_replied(claimed_at, id);
        wire::trim(&mut frame);
        wire::trim(&mut body);
    }
}
