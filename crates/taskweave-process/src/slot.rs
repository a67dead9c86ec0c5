//! One worker slot: the supervising thread that starts a worker, reads its replies and replaces
//! it when it dies or retires, and the feeder thread that sends it calls.
//!
//! # Protocol between the threads
//!
//! All shared state sits in the pool's one mutex ([`State`]; its locking rules are in `shared.rs`). A call moves from the pool queue to
//! the slot's `in_flight` list (under the lock), and its claim word is marked sent, before its
//! frame is written, so a reply can never arrive for a call the reader does not know. The worker
//! runs calls in order and writes each reply before it reads the next call, so replies arrive in
//! `in_flight` order.
//!
//! When the worker ends (it died, was killed for a timeout or a corrupt reply stream, or
//! retired), the claim words say which calls in flight it started: those fail, the others are
//! taken back (a swap the worker can no longer win) and go to the front of the queue. The
//! feeder thread also watches the oldest call in flight: past its timeout it kills the worker;
//! past a multiple of the usual run time it takes back the calls behind it and holds the worker
//! (no new calls) until it has caught up; and a reply the worker finished writing that the reader
//! still waits for means the stream lost its framing, so the worker is killed. Nothing is lost
//! and nothing runs twice.
//!
//! The supervising thread is also the one that forks the worker and reaps it: the death signal a
//! worker arms is tied to the thread that created it, and a worker is reaped only after its pid
//! was removed from the slot under the lock, so signalling pids read under the lock never hits a
//! recycled pid.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Child, ExitStatus};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use taskweave_core::Error;

use crate::arena::{Arena, Pipe};
use crate::claims::Claims;
use crate::image::{Image, image};
use crate::job::{Job, Reply, settle};
use crate::shared::{Inner, SlotState, State};
use crate::sigpipe;
use crate::wire::{self, FromWorker};

/// Consecutive workers that may fail to start, in a way that would repeat, before the pool
/// gives up.
const MAX_START_FAILURES: u32 = 3;

/// A call that runs this much longer than the pool's usual call (and at least [`STALL_MIN`])
/// holds its worker: the calls queued behind it go elsewhere and it gets no new ones until it
/// is done.
const STALL_FACTOR: u64 = 16;
const STALL_MIN: Duration = Duration::from_millis(50);

/// How often a held worker is looked at to see whether it has caught up.
const STALL_POLL: Duration = Duration::from_millis(5);

/// How often a worker with calls in flight is looked at for a reply that was written but
/// never parsed, and how long such a reply may stay unparsed while the reader waits for bytes:
/// past it the reply stream has lost its framing (a lying length prefix swallowed the reply).
const FRAMING_POLL: Duration = Duration::from_millis(100);
const FRAMING_GRACE: Duration = Duration::from_secs(2);

/// How often a feeder with nothing to watch looks at its worker anyway.
const IDLE_LOOK: Duration = Duration::from_millis(500);

/// A worker that passed the handshake.
struct Worker {
    child: Child,
    pid: u32,
    to_worker: File,
    from_worker: BufReader<File>,
    claims: Arc<Claims>,
    /// The shared regions for large calls (written here) and results (read here), where the
    /// platform has them.
    regions: Option<(Arena, Arena)>,
}

enum StartError {
    /// Starting cannot succeed (wrong build, initializer failed): the pool is broken.
    Broken(Error),
    /// The worker died or could not be created; `repeats` says whether the cause would recur
    /// (an exit status, a crash, an exec error) rather than come from outside (a kill).
    Died { how: String, repeats: bool },
}

/// Whether a worker that ended with `status` before it was ready failed on its own (which a
/// new worker would repeat) rather than being killed from outside.
fn fails_on_its_own(status: Option<ExitStatus>) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.and_then(|s| s.signal()) {
            return [
                libc::SIGSEGV,
                libc::SIGBUS,
                libc::SIGILL,
                libc::SIGFPE,
                libc::SIGABRT,
                libc::SIGSYS,
            ]
            .contains(&sig);
        }
    }
    // An exit status is the worker's own doing; a worker that vanished unreaped is not.
    status.is_some()
}

/// A worker that ended before it was ready, described from its exit status.
fn died_at_start(child: &mut Child, pid: u32, when: &str) -> StartError {
    let status = reap(child);
    let how = status.map_or_else(|| "vanished".into(), |s| describe(s).2);
    StartError::Died {
        how: format!("worker pid {pid} {how} {when}"),
        repeats: fails_on_its_own(status),
    }
}

/// The body of a slot's supervising thread.
pub(crate) fn slot_main(inner: Arc<Inner>, slot: usize) {
    sigpipe::block_for_this_thread();
    // A bug or an unforeseen panic must not leave the slot looking alive with nobody serving.
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| serve_slot(&inner, slot))) {
        let error = Error::broken(format!(
            "a process pool thread failed: {}",
            taskweave_core::error::panic_message(&*payload)
        ));
        taskweave_core::error::drop_panic_payload(payload);
        inner.break_pool(error);
    }
    inner.slot_thread_ended(slot);
}

fn serve_slot(inner: &Arc<Inner>, slot: usize) {
    let mut backoff: u32 = 0;
    loop {
        {
            let st = inner.lock();
            if st.broken.is_some() || (st.shutdown && st.queue.is_empty()) {
                break;
            }
        }
        match start(inner) {
            Ok(worker) => {
                inner.lock().start_failures = 0;
                backoff = 0;
                inner.stats.workers_started.fetch_add(1, Ordering::Relaxed);
                let served = catch_unwind(AssertUnwindSafe(|| run(inner, slot, worker)));
                if let Err(payload) = served {
                    // A bug here must not strand futures: fail them and stop the pool.
                    let error = Error::broken(format!(
                        "a process pool thread failed: {}",
                        taskweave_core::error::panic_message(&*payload)
                    ));
                    taskweave_core::error::drop_panic_payload(payload);
                    let stranded: Vec<Job> = {
                        let mut st = inner.lock();
                        st.slots[slot].pid = None;
                        st.slots[slot].in_flight.drain(..).collect()
                    };
                    inner.break_pool(error.clone());
                    for job in stranded {
                        settle(job.sink, Reply::Failed(error.clone()));
                    }
                    break;
                }
            }
            Err(StartError::Broken(e)) => {
                inner.break_pool(e);
                break;
            }
            Err(StartError::Died { how, repeats }) => {
                let failures = {
                    let mut st = inner.lock();
                    if repeats {
                        st.start_failures += 1;
                    }
                    st.start_failures
                };
                if failures >= MAX_START_FAILURES {
                    inner.break_pool(Error::broken(format!(
                        "worker processes keep dying before they are ready ({failures} in a row); \
                         last: {how}"
                    )));
                    break;
                }
                // Killed from outside: try again, backing off while the kills go on.
                backoff = (backoff + 1).min(6);
                std::thread::sleep(Duration::from_millis(5 << backoff));
            }
        }
    }
}

fn describe(status: ExitStatus) -> (Option<i32>, Option<i32>, String) {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return (None, Some(sig), format!("killed by signal {sig}"));
        }
    }
    match status.code() {
        Some(code) => (Some(code), None, format!("exited with status {code}")),
        None => (None, None, format!("ended ({status})")),
    }
}

/// Waits for a worker that closed its pipe; kills it if it does not exit promptly.
fn reap(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut pause = Duration::from_micros(50);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                return child.wait().ok();
            }
            Err(_) => return None,
        }
    }
}

fn kill_and_reap(child: &mut Child) -> String {
    let _ = child.kill();
    match child.wait() {
        Ok(status) => describe(status).2,
        Err(e) => format!("could not be reaped: {e}"),
    }
}

/// Waits until `file` is readable or `timeout` passed; `false` on timeout.
fn readable_within(file: &File, timeout: Duration) -> bool {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // A timeout too long to add to the clock (Duration::MAX) is no deadline at all.
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            let mut pfd = libc::pollfd {
                fd: file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = if deadline.is_none() {
                -1
            } else {
                left.as_millis().min(i32::MAX as u128) as i32
            };
            // SAFETY: one valid pollfd for a descriptor this thread owns.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc > 0 {
                return true;
            }
            if rc == 0 || left.is_zero() {
                return false;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, timeout);
        true
    }
}

fn start(inner: &Inner) -> Result<Worker, StartError> {
    let cfg = &inner.config;
    let cannot = |e: std::io::Error| StartError::Died {
        how: format!("cannot start {}: {e}", cfg.program.display()),
        repeats: true,
    };
    let claims = Arc::new(Claims::create().map_err(cannot)?);
    let regions = if SHARED_REGIONS {
        Some((
            Arena::create().map_err(cannot)?,
            Arena::create().map_err(cannot)?,
        ))
    } else {
        None
    };
    let args = match (&cfg.args, cfg.named_only) {
        (given, false) => crate::spawn::WorkerArgs::Own(given.as_deref()),
        (given, true) => crate::spawn::WorkerArgs::Other(given.as_deref().unwrap_or(&[])),
    };
    let spawned = crate::spawn::spawn_worker(
        &cfg.program,
        args,
        cfg.max_frame,
        claims.file(),
        regions.as_ref().map(|(c, r)| (c.file(), r.file())),
    )
    .map_err(cannot)?;
    let mut child = spawned.child;
    let pid = child.id();
    let mut to_worker = spawned.to_worker;
    let mut reader = BufReader::with_capacity(64 * 1024, spawned.from_worker);
    let ours = image();

    if !readable_within(reader.get_ref(), cfg.handshake_timeout) {
        let how = kill_and_reap(&mut child);
        return Err(StartError::Broken(Error::broken(format!(
            "worker pid {pid} ({}) did not answer the handshake within {:?} and was {how}; \
             is it a program that uses taskweave-process?",
            cfg.program.display(),
            cfg.handshake_timeout
        ))));
    }
    let hello = match wire::read_frame(&mut reader, cfg.max_frame) {
        Ok(Some(body)) => body,
        Ok(None) => return Err(died_at_start(&mut child, pid, "at start")),
        Err(e) => {
            let how = kill_and_reap(&mut child);
            return Err(StartError::Broken(Error::broken(format!(
                "worker pid {pid} ({}) sent a malformed handshake ({e}) and was {how}",
                cfg.program.display()
            ))));
        }
    };
    match wire::decode_from_worker(&hello) {
        Ok(FromWorker::Hello {
            magic,
            version,
            build_id,
            ..
        }) if magic == wire::MAGIC && version == wire::PROTOCOL_VERSION => {
            // A worker of another build is expected to differ: its calls go by name, checked
            // one by one against its registry.
            if !cfg.named_only && build_id != ours.build_id.as_slice() {
                kill_and_reap(&mut child);
                return Err(StartError::Broken(Error::broken(format!(
                    "worker pid {pid} refused at the handshake: {} is not the same build as this \
                     program (worker build id {}, pool build id {}); workers must run the very \
                     executable of the pool",
                    cfg.program.display(),
                    Image::build_id_hex(build_id),
                    Image::build_id_hex(&ours.build_id)
                ))));
            }
        }
        Ok(other) => {
            kill_and_reap(&mut child);
            return Err(StartError::Broken(Error::broken(format!(
                "worker pid {pid} refused at the handshake: unexpected hello {other:?} \
                 (protocol version {} expected)",
                wire::PROTOCOL_VERSION
            ))));
        }
        Err(e) => {
            kill_and_reap(&mut child);
            return Err(StartError::Broken(Error::broken(format!(
                "worker pid {pid} refused at the handshake: {e}"
            ))));
        }
    }

    let mut setup = Vec::new();
    let init = cfg
        .initializer
        .as_ref()
        .map(|(f, payload)| (*f, payload.as_slice()));
    let encoded = if cfg.named_only {
        wire::encode_setup_named(&mut setup, taskweave_registry::ABI_VERSION);
        Ok(())
    } else {
        wire::encode_setup(
            &mut setup,
            &ours.build_id,
            inner.secret,
            init,
            cfg.max_frame,
        )
    };
    if let Err(e) = encoded {
        kill_and_reap(&mut child);
        return Err(StartError::Broken(e));
    }
    if to_worker.write_all(&setup).is_err() {
        return Err(died_at_start(&mut child, pid, "at start"));
    }
    let ready = match wire::read_frame(&mut reader, cfg.max_frame) {
        Ok(Some(body)) => body,
        Ok(None) => {
            return Err(died_at_start(
                &mut child,
                pid,
                "during set-up or its initializer",
            ));
        }
        Err(e) => {
            let how = kill_and_reap(&mut child);
            return Err(StartError::Broken(Error::broken(format!(
                "worker pid {pid} sent a malformed frame during set-up ({e}) and was {how}"
            ))));
        }
    };
    match wire::decode_from_worker(&ready) {
        Ok(FromWorker::Ready) => Ok(Worker {
            child,
            pid,
            to_worker,
            from_worker: reader,
            claims,
            regions,
        }),
        Ok(FromWorker::InitFailed(text)) => {
            let text = text.to_owned();
            reap(&mut child);
            Err(StartError::Broken(Error::broken(format!(
                "initializer failed in worker pid {pid}: {text}"
            ))))
        }
        Ok(FromWorker::Fatal(text)) => {
            let text = text.to_owned();
            reap(&mut child);
            Err(StartError::Broken(Error::broken(format!(
                "worker pid {pid} refused the pool's set-up: {text}"
            ))))
        }
        Ok(other) => {
            kill_and_reap(&mut child);
            Err(StartError::Broken(Error::broken(format!(
                "worker pid {pid} sent {other:?} instead of ready"
            ))))
        }
        Err(e) => {
            kill_and_reap(&mut child);
            Err(StartError::Broken(Error::broken(format!(
                "worker pid {pid} sent a malformed frame during set-up: {e}"
            ))))
        }
    }
}

/// Serves calls with one worker until it dies, retires or the pool stops; then settles its work.
fn run(inner: &Arc<Inner>, slot: usize, worker: Worker) {
    let Worker {
        mut child,
        pid,
        to_worker,
        mut from_worker,
        claims,
        regions,
    } = worker;
    let (calls, mut results) = regions.unzip();
    let to_worker = Pipe {
        file: to_worker,
        calls,
    };
    {
        let mut st = inner.lock();
        let s = &mut st.slots[slot];
        s.pid = Some(pid);
        s.ended = false;
        s.sent = 0;
        s.held = false;
        s.front_since = None;
        s.timed_out = None;
        s.replied_seen = None;
        s.lost_framing = false;
        s.claims = Some(claims.clone());
        s.writer = Some(Arc::new(Mutex::new(to_worker)));
    }
    let reading = inner.lock().slots[slot].reading.clone();
    let mut broken_reply: Option<Error> = None;
    std::thread::scope(|scope| {
        let feeder = std::thread::Builder::new()
            .name(format!("taskweave-process-feed-{slot}"))
            .spawn_scoped(scope, || feed(inner, slot));
        broken_reply = if feeder.is_ok() {
            // Whatever happens while reading, the feeder must be told to stop, or the scope
            // would wait for it forever.
            match catch_unwind(AssertUnwindSafe(|| {
                read_replies(
                    inner,
                    slot,
                    &mut from_worker,
                    results.as_mut(),
                    pid,
                    &claims,
                    &reading,
                )
            })) {
                Ok(outcome) => outcome,
                Err(payload) => {
                    let message = taskweave_core::error::panic_message(&*payload);
                    taskweave_core::error::drop_panic_payload(payload);
                    Some(Error::broken(format!(
                        "reading the replies of worker pid {pid} failed: {message}"
                    )))
                }
            }
        } else {
            Some(Error::broken("cannot start a feeder thread"))
        };
        let mut st = inner.lock();
        st.slots[slot].ended = true;
        if broken_reply.is_some() {
            // A worker that talks nonsense is stopped, so the feeder's writes fail at once.
            let _ = child.kill();
        }
        inner.notify_all_now(&st);
    });

    // Every call still in flight either started in this worker (it ran, or is running as the
    // worker ends: it fails and is never run again) or is taken back before it can start (it
    // never ran, so it goes to another worker). The claim words decide, not the pipe.
    let (ran, unsent, timed_out) = {
        let mut st = inner.lock();
        let s = &mut st.slots[slot];
        s.pid = None;
        s.writer = None;
        s.claims = None;
        s.held = false;
        s.front_since = None;
        let timed_out = s.timed_out.take();
        let lost_framing = std::mem::take(&mut s.lost_framing);
        s.replied_seen = None;
        let mut ran = Vec::new();
        let mut never = VecDeque::new();
        for job in std::mem::take(&mut s.in_flight) {
            if claims.revoke(job.position, job.id) {
                never.push_back(job);
            } else {
                ran.push(job);
            }
        }
        let unsent = if st.broken.is_some() || st.killing {
            never.into_iter().collect::<Vec<_>>()
        } else {
            for job in never.into_iter().rev() {
                st.queue.push_front(job);
            }
            Vec::new()
        };
        inner.notify(&mut st);
        if lost_framing && broken_reply.is_none() {
            broken_reply = Some(Error::wire(
                format!("reply from worker pid {pid}"),
                "the reply stream lost its framing (a reply was written but never arrived whole)",
            ));
        }
        (ran, unsent, timed_out)
    };
    let status = reap(&mut child);
    let broken = inner.lock().broken.clone();
    for job in unsent {
        let never = format!(
            "{} never started (its worker pid {pid} ended first)",
            job.what
        );
        let error = match broken
            .as_ref()
            .filter(|e| e.is_broken())
            .and_then(Error::reason)
        {
            Some(reason) => Error::broken(format!("{reason}; {never}")),
            None => Error::cancelled(Some(format!(
                "the process pool's workers were stopped; {never}"
            ))),
        };
        inner.stats.failed.fetch_add(1, Ordering::Relaxed);
        settle(job.sink, Reply::Failed(error));
    }
    for job in ran {
        let error = match (timed_out, &broken_reply, job.timeout) {
            (Some(id), _, Some(after)) if id == job.id => Error::timed_out(after),
            (_, Some(e), _) => e.clone(),
            _ => {
                inner.stats.worker_deaths.fetch_add(1, Ordering::Relaxed);
                let (code, signal, _) = match status {
                    Some(s) => describe(s),
                    None => (None, None, String::new()),
                };
                Error::worker_died(pid, code, signal, job.what.to_string())
            }
        };
        inner.finished(&job, false, Duration::ZERO);
        settle(job.sink, Reply::Failed(error));
    }
}

/// Reads replies until end of file; returns the error if the worker broke the protocol.
fn read_replies(
    inner: &Inner,
    slot: usize,
    reader: &mut BufReader<File>,
    mut results: Option<&mut Arena>,
    pid: u32,
    claims: &Claims,
    reading: &std::sync::atomic::AtomicBool,
) -> Option<Error> {
    let max = inner.config.max_frame;
    let mut body = Vec::new();
    loop {
        wire::trim(&mut body);
        reading.store(true, Ordering::Relaxed);
        let read = wire::read_frame_into(reader, max, &mut body);
        reading.store(false, Ordering::Relaxed);
        match read {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(rewrap(e, pid)),
        }
        let (view, posted) = match crate::arena::resolve(&body, results.as_deref_mut(), max) {
            Ok(resolved) => resolved,
            Err(e) => return Some(rewrap(e, pid)),
        };
        let (id, outcome) = match wire::decode_from_worker(view) {
            Ok(FromWorker::Result {
                id,
                exec_nanos,
                payload,
            }) => (id, Ok((exec_nanos, payload))),
            Ok(FromWorker::Failed { id, detail }) => (id, Err(detail.to_owned())),
            Ok(FromWorker::Fatal(text)) => {
                return Some(Error::wire(format!("worker pid {pid}"), text));
            }
            Ok(other) => {
                return Some(Error::wire(
                    format!("worker pid {pid}"),
                    format!("unexpected message {other:?}"),
                ));
            }
            Err(e) => return Some(rewrap(e, pid)),
        };
        let job = {
            let mut st = inner.lock();
            let s = &mut st.slots[slot];
            let job = match s.in_flight.front() {
                Some(j) if j.id == id => s.in_flight.pop_front(),
                _ => None,
            };
            s.front_since = (!s.in_flight.is_empty()).then(Instant::now);
            if s.held && s.in_flight.is_empty() && claims.consumed() == s.sent {
                s.held = false;
            }
            // The feeder acts on a reply only to send more, to watch the next call's deadline
            // or to stop; a reply in a quiet pool (the next call comes straight from its
            // submitter) wakes nobody.
            let next_watched = s.in_flight.front().is_some_and(|j| j.timeout.is_some());
            if next_watched
                || !st.queue.is_empty()
                || st.shutdown
                || st.broken.is_some()
                || inner.config.max_tasks_per_child.is_some()
            {
                inner.notify_feeder(&mut st, slot);
            }
            job
        };
        let Some(job) = job else {
            return Some(Error::wire(
                format!("worker pid {pid}"),
                format!("reply for call {id}, which is not the oldest call sent to it"),
            ));
        };
        match outcome {
            Ok((nanos, payload)) => {
                inner.note_exec(nanos);
                inner.finished(&job, true, Duration::from_nanos(nanos));
                settle(job.sink, Reply::Outcomes { payload, pid });
                crate::bytes::recycle(job.frame);
            }
            Err(detail) => {
                inner.finished(&job, false, Duration::ZERO);
                let what = format!("{} in worker pid {pid}", job.what);
                settle(job.sink, Reply::Failed(Error::wire(what, detail)));
            }
        }
        // The results are decoded: the worker may reuse the region for its next reply.
        if let (Some(results), Some(number)) = (results.as_deref(), posted) {
            results.release(number);
        }
    }
}

fn rewrap(e: Error, pid: u32) -> Error {
    match e.wire_error() {
        Some(w) => Error::wire(format!("reply from worker pid {pid}"), w.detail()),
        None => e,
    }
}

/// Frames up to this size are gathered into one write; larger ones are written alone (their
/// body through the calls region when it is free).
const GATHER: usize = crate::arena::SHARED_MIN;

/// Whether workers get shared regions for large frames (Linux and Android, which have `memfd`).
const SHARED_REGIONS: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// The body of a slot's feeder thread: sends queued calls while the worker has room for them,
/// and watches the call it runs (its timeout, and whether it holds up the calls behind it).
///
/// The pipe is shared with [`Inner::enqueue`]'s direct path; whoever writes holds the pipe's lock
/// from before it moves calls to `in_flight` (under the pool lock) until they are written, so
/// calls reach the worker in `in_flight` order.
fn feed(inner: &Inner, slot: usize) {
    sigpipe::block_for_this_thread();
    let (pipe, claims) = {
        let st = inner.lock();
        (st.slots[slot].writer.clone(), st.slots[slot].claims.clone())
    };
    let (Some(pipe), Some(claims)) = (pipe, claims) else {
        return;
    };
    let quota = inner.config.max_tasks_per_child;
    let mut out: Vec<u8> = Vec::new();
    loop {
        let mut skipped = Vec::new();
        let (frames, mut file) = {
            let mut st = inner.lock();
            loop {
                if st.slots[slot].ended {
                    st.slots[slot].writer = None;
                    return;
                }
                let wake = watch(inner, &mut st, slot, &claims);
                let s = &st.slots[slot];
                let in_flight = s.in_flight.len();
                // Read once: the average moves while we look.
                let depth = inner.depth();
                let left = quota.map(|q| q.saturating_sub(s.sent));
                let open = !s.held && claims.has_room(s.sent);
                if left == Some(0) || (st.broken.is_some() && st.queue.is_empty()) {
                    if in_flight == 0 {
                        // Closing the pipe retires the worker; it exits when it reads the end.
                        st.slots[slot].writer = None;
                        return;
                    }
                } else if open && !st.queue.is_empty() && in_flight < depth {
                    // Only a direct write holds the pipe, and only for one small write.
                    let file = pipe.lock().unwrap_or_else(|p| p.into_inner());
                    let room = depth - in_flight;
                    let frames =
                        take_batch(inner, &mut st, slot, &claims, room, left, &mut skipped);
                    if !frames.is_empty() {
                        break (frames, file);
                    }
                    continue;
                } else if st.queue.is_empty() && st.shutdown && in_flight == 0 {
                    st.slots[slot].writer = None;
                    return;
                }
                // Calls written directly by submitting threads do not wake this thread, so it
                // also looks again now and then on its own.
                let at = wake.unwrap_or_else(|| Instant::now() + IDLE_LOOK);
                st = inner.feeder_wait_until(st, slot, at);
            }
        };
        drop(skipped);
        let written = write_frames(&mut file, &frames, &mut out);
        drop(file);
        if written.is_err() {
            // The worker cannot take calls any more (it closed its input, or is dying): end it,
            // so its reader sees the end of file and settles the work.
            inner.end_worker(slot, &pipe);
            return;
        }
    }
}

/// Enforces the running call's timeout and takes back the calls a long call holds up; returns
/// when to look again (`None`: only when something changes).
fn watch(inner: &Inner, st: &mut State, slot: usize, claims: &Claims) -> Option<Instant> {
    let now = Instant::now();
    let stall = Duration::from_nanos(inner.avg_exec().saturating_mul(STALL_FACTOR)).max(STALL_MIN);
    let s = &mut st.slots[slot];
    if s.held && s.in_flight.is_empty() && claims.consumed() == s.sent {
        // The worker has passed every call it was sent: it is free again.
        s.held = false;
    }
    // A held worker with nothing in flight is looked at until it has skipped what was taken
    // back; with a call in flight, its reply wakes us.
    let mut wake = (s.held && s.in_flight.is_empty()).then(|| now + STALL_POLL);
    let Some(since) = s.front_since else {
        return wake;
    };
    let earliest = |wake: Option<Instant>, at: Instant| Some(wake.map_or(at, |w| w.min(at)));
    if lost_framing(s, claims, now) {
        return None;
    }
    wake = earliest(wake, now + FRAMING_POLL);
    if let Some(deadline) = overdue_at(s) {
        if now < deadline {
            wake = earliest(wake, deadline);
        } else if !time_out(s, claims) {
            // It never started, so it is not overdue: it goes elsewhere with the rest.
            hold(st, slot, claims);
            inner.notify(st);
            return Some(now + STALL_POLL);
        }
    }
    if !st.slots[slot].held {
        match since.checked_add(stall) {
            Some(held_at) if now >= held_at => {
                hold(st, slot, claims);
                inner.notify(st);
                wake = Some(now + STALL_POLL);
            }
            Some(held_at) => wake = earliest(wake, held_at),
            None => {}
        }
    }
    wake
}

/// Ends the worker if the oldest call's reply was written long ago and the reader is still
/// waiting for bytes: the stream lost its framing, and the reader would wait forever.
fn lost_framing(s: &mut SlotState, claims: &Claims, now: Instant) -> bool {
    let Some(front) = s.in_flight.front() else {
        return false;
    };
    if !claims.replied(front.position, front.id) || !s.reading.load(Ordering::Relaxed) {
        s.replied_seen = None;
        return false;
    }
    match s.replied_seen {
        Some((id, at)) if id == front.id => {
            if now.saturating_duration_since(at) < FRAMING_GRACE || s.lost_framing {
                return false;
            }
        }
        _ => {
            s.replied_seen = Some((front.id, now));
            return false;
        }
    }
    let Some(pid) = s.pid else {
        return false;
    };
    s.lost_framing = true;
    #[cfg(unix)]
    // SAFETY: the pid is read under the pool lock, and a slot clears it under that lock before
    // it reaps the process, so it is our live (or unreaped) child.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
    true
}

/// When the running call's timeout expires, if it has one.
fn overdue_at(s: &SlotState) -> Option<Instant> {
    let front = s.in_flight.front()?;
    s.front_since?.checked_add(front.timeout?)
}

/// Ends the worker running an overdue call; its reader then fails the call with
/// [`ErrorKind::TimedOut`](taskweave_core::ErrorKind::TimedOut) and a new worker replaces it. Returns `false` if the call had not
/// started (it is taken back instead: a call that never ran is not overdue).
fn time_out(s: &mut SlotState, claims: &Claims) -> bool {
    if s.timed_out.is_some() {
        return true;
    }
    let (Some(front), Some(pid)) = (s.in_flight.front(), s.pid) else {
        return true;
    };
    if claims.revoke(front.position, front.id) {
        return false;
    }
    s.timed_out = Some(front.id);
    // The worker may have finished the call this very moment and started the next one, which
    // the kill then ends too: that call reports the kill (it did start, so it is not re-run).
    #[cfg(unix)]
    // SAFETY: the pid is read under the pool lock, and a slot clears it under that lock before
    // it reaps the process, so it is our live (or unreaped) child.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
    #[cfg(not(unix))]
    let _ = pid;
    true
}

/// Takes back every call sent to this slot's worker that it has not started, puts them at the
/// front of the queue, and sends it nothing more until it has caught up.
fn hold(st: &mut State, slot: usize, claims: &Claims) {
    let s = &mut st.slots[slot];
    s.held = true;
    let front = s.in_flight.front().map(|j| j.id);
    let mut back = Vec::new();
    let mut kept = VecDeque::new();
    for job in std::mem::take(&mut s.in_flight) {
        if claims.revoke(job.position, job.id) {
            back.push(job);
        } else {
            kept.push_back(job);
        }
    }
    if kept.front().map(|j| j.id) != front {
        s.front_since = (!kept.is_empty()).then(Instant::now);
    }
    s.in_flight = kept;
    for job in back.into_iter().rev() {
        st.queue.push_front(job);
    }
}

fn take_batch(
    inner: &Inner,
    st: &mut State,
    slot: usize,
    claims: &Claims,
    room: usize,
    left: Option<u64>,
    skipped: &mut Vec<Job>,
) -> Vec<Arc<Vec<u8>>> {
    let live = st
        .slots
        .iter()
        .filter(|s| s.pid.is_some() && !s.held)
        .count()
        .max(1);
    let fair = st.queue.len().div_ceil(live);
    let n = room.min(fair).min(left.unwrap_or(u64::MAX) as usize).max(1);
    let mut frames = Vec::with_capacity(n);
    let mut bytes = 0;
    while frames.len() < n && claims.has_room(st.slots[slot].sent) {
        let Some(mut job) = st.queue.pop_front() else {
            break;
        };
        if !job.sink.start() {
            inner.stats.cancelled.fetch_add(1, Ordering::Relaxed);
            skipped.push(job);
            continue;
        }
        inner.started(&mut job, st.slots[slot].pid);
        bytes += job.frame.len();
        frames.push(job.frame.clone());
        let s = &mut st.slots[slot];
        job.position = s.sent;
        claims.sent(job.position, job.id);
        s.sent += 1;
        if s.in_flight.is_empty() {
            s.front_since = Some(Instant::now());
        }
        s.in_flight.push_back(job);
        if bytes > GATHER {
            break;
        }
    }
    frames
}

fn write_frames(
    pipe: &mut Pipe,
    frames: &[Arc<Vec<u8>>],
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    if let [one] = frames {
        return pipe.write_frame(one, false);
    }
    out.clear();
    for f in frames {
        if f.len() > GATHER {
            if !out.is_empty() {
                pipe.file.write_all(out)?;
                out.clear();
            }
            pipe.write_frame(f, false)?;
        } else {
            out.extend_from_slice(f);
        }
    }
    if !out.is_empty() {
        pipe.file.write_all(out)?;
    }
    if out.capacity() > 4 * GATHER {
        *out = Vec::new();
    }
    Ok(())
}
