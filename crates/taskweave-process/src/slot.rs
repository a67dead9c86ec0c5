//! One worker slot: the supervising thread that starts a worker, reads its replies and replaces
//! it when it dies or retires, and the feeder thread that sends it calls.
//!
//! # Protocol between the threads
//!
//! All shared state sits in the pool's one mutex ([`State`]). A call moves from the pool queue to
//! the slot's `in_flight` list (under the lock) before its frame is written, so a reply can never
//! arrive for a call the reader does not know. The worker runs calls in order and writes each
//! reply before it reads the next call, so when its pipe reaches end of file every reply it wrote
//! has been read: the first call still in flight is the one it was running (it fails with
//! [`ErrorKind::WorkerDied`](taskweave_core::ErrorKind::WorkerDied)), and the calls behind it never started and go back to the front of the
//! queue. Nothing is lost and nothing runs twice.
//!
//! The supervising thread is also the one that forks the worker and reaps it: the death signal a
//! worker arms is tied to the thread that created it, and a worker is reaped only after its pid
//! was removed from the slot under the lock, so signalling pids read under the lock never hits a
//! recycled pid.

use std::fs::File;
use std::io::{BufReader, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Child, ExitStatus};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use taskweave_core::Error;
use taskweave_core::instrument::{self, ExecutorEvent};

use crate::image::{Image, image};
use crate::job::{Job, Reply};
use crate::pool::{EXECUTOR_NAME, Inner, State};
use crate::wire::{self, FromWorker};

/// Consecutive workers that may die before they are ready before the pool gives up.
const MAX_START_FAILURES: u32 = 3;

/// A worker that passed the handshake.
struct Worker {
    child: Child,
    pid: u32,
    to_worker: File,
    from_worker: BufReader<File>,
}

enum StartError {
    /// Starting cannot succeed (wrong build, initializer failed): the pool is broken.
    Broken(Error),
    /// The worker died or could not be created; trying again may help.
    Died(String),
}

/// Blocks SIGPIPE in this thread, so writing to a dead worker is an error, not process death,
/// whatever the program's disposition of SIGPIPE.
pub(crate) fn block_sigpipe() {
    #[cfg(unix)]
    // SAFETY: manipulating this thread's own signal mask with a properly initialised set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// The body of a slot's supervising thread.
pub(crate) fn slot_main(inner: Arc<Inner>, slot: usize) {
    block_sigpipe();
    loop {
        {
            let st = inner.lock();
            if st.broken.is_some() || (st.shutdown && st.queue.is_empty()) {
                break;
            }
        }
        match start(&inner) {
            Ok(worker) => {
                inner.lock().start_failures = 0;
                inner.stats.workers_started.fetch_add(1, Ordering::Relaxed);
                let served = catch_unwind(AssertUnwindSafe(|| run(&inner, slot, worker)));
                if let Err(payload) = served {
                    // A bug here must not strand futures: fail them and stop the pool.
                    let error = Error::broken(format!(
                        "a process pool thread failed: {}",
                        taskweave_core::error::panic_message(&*payload)
                    ));
                    let stranded: Vec<Job> = {
                        let mut st = inner.lock();
                        st.slots[slot].pid = None;
                        st.slots[slot].in_flight.drain(..).collect()
                    };
                    inner.break_pool(error.clone());
                    for job in stranded {
                        job.sink.finish(Reply::Failed(error.clone()));
                    }
                    break;
                }
            }
            Err(StartError::Broken(e)) => {
                inner.break_pool(e);
                break;
            }
            Err(StartError::Died(how)) => {
                let failures = {
                    let mut st = inner.lock();
                    st.start_failures += 1;
                    st.start_failures
                };
                if failures >= MAX_START_FAILURES {
                    inner.break_pool(Error::broken(format!(
                        "worker processes keep dying before they are ready ({failures} in a row); \
                         last: {how}"
                    )));
                    break;
                }
                std::thread::sleep(Duration::from_millis(10 << failures));
            }
        }
    }
    let mut st = inner.lock();
    st.slots[slot].thread_alive = false;
    inner.notify(&st);
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
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut pfd = libc::pollfd {
                fd: file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
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
    let spawned = crate::spawn::spawn_worker(&cfg.program, cfg.max_frame)
        .map_err(|e| StartError::Died(format!("cannot start {}: {e}", cfg.program.display())))?;
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
        Ok(None) => {
            let how = reap(&mut child).map_or_else(|| "vanished".into(), |s| describe(s).2);
            return Err(StartError::Died(format!("worker pid {pid} {how} at start")));
        }
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
            if build_id != ours.build_id.as_slice() {
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
    if let Err(e) = wire::encode_setup(
        &mut setup,
        &ours.build_id,
        inner.secret,
        init,
        cfg.max_frame,
    ) {
        kill_and_reap(&mut child);
        return Err(StartError::Broken(e));
    }
    if to_worker.write_all(&setup).is_err() {
        let how = reap(&mut child).map_or_else(|| "vanished".into(), |s| describe(s).2);
        return Err(StartError::Died(format!("worker pid {pid} {how} at start")));
    }
    let ready = match wire::read_frame(&mut reader, cfg.max_frame) {
        Ok(Some(body)) => body,
        Ok(None) => {
            let how = reap(&mut child).map_or_else(|| "vanished".into(), |s| describe(s).2);
            return Err(StartError::Died(format!(
                "worker pid {pid} {how} during set-up or its initializer"
            )));
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
    } = worker;
    {
        let mut st = inner.lock();
        let s = &mut st.slots[slot];
        s.pid = Some(pid);
        s.ended = false;
        s.sent = 0;
        s.writer = Some(Arc::new(Mutex::new(to_worker)));
    }
    let mut broken_reply: Option<Error> = None;
    std::thread::scope(|scope| {
        let feeder = std::thread::Builder::new()
            .name(format!("taskweave-process-feed-{slot}"))
            .spawn_scoped(scope, || feed(inner, slot));
        if feeder.is_ok() {
            broken_reply = read_replies(inner, slot, &mut from_worker, pid);
        } else {
            broken_reply = Some(Error::broken("cannot start a feeder thread"));
        }
        let mut st = inner.lock();
        st.slots[slot].ended = true;
        if broken_reply.is_some() {
            // A worker that talks nonsense is stopped, so the feeder's writes fail at once.
            let _ = child.kill();
        }
        inner.notify_all_now(&st);
    });

    let (running, requeued) = {
        let mut st = inner.lock();
        let s = &mut st.slots[slot];
        s.pid = None;
        s.writer = None;
        let mut in_flight = std::mem::take(&mut s.in_flight);
        let running = in_flight.pop_front();
        let requeued = if st.broken.is_some() {
            in_flight.into_iter().collect::<Vec<_>>()
        } else {
            for job in in_flight.into_iter().rev() {
                st.queue.push_front(job);
            }
            Vec::new()
        };
        inner.notify(&st);
        (running, requeued)
    };
    let status = reap(&mut child);
    let broken = inner.lock().broken.clone();
    for job in requeued {
        let e = broken.clone().unwrap_or(Error::abandoned());
        job.sink.finish(Reply::Failed(e));
    }
    if let Some(job) = running {
        inner.stats.worker_deaths.fetch_add(1, Ordering::Relaxed);
        let error = match broken_reply {
            Some(e) => e,
            None => {
                let (code, signal, _) = match status {
                    Some(s) => describe(s),
                    None => (None, None, String::new()),
                };
                Error::worker_died(pid, code, signal, job.what.to_string())
            }
        };
        inner.finished(&job, false, Duration::ZERO);
        job.sink.finish(Reply::Failed(error));
    }
}

/// Reads replies until end of file; returns the error if the worker broke the protocol.
fn read_replies(
    inner: &Inner,
    slot: usize,
    reader: &mut BufReader<File>,
    pid: u32,
) -> Option<Error> {
    let max = inner.config.max_frame;
    let mut body = Vec::new();
    loop {
        wire::trim(&mut body);
        match wire::read_frame_into(reader, max, &mut body) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(rewrap(e, pid)),
        }
        let (id, outcome) = match wire::decode_from_worker(&body) {
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
            inner.notify(&st);
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
                job.sink.finish(Reply::Outcomes { payload, pid });
            }
            Err(detail) => {
                inner.finished(&job, false, Duration::ZERO);
                let what = format!("{} in worker pid {pid}", job.what);
                job.sink.finish(Reply::Failed(Error::wire(what, detail)));
            }
        }
    }
}

fn rewrap(e: Error, pid: u32) -> Error {
    match e.wire_error() {
        Some(w) => Error::wire(format!("reply from worker pid {pid}"), w.detail()),
        None => e,
    }
}

/// Frames up to this size are gathered into one write.
const GATHER: usize = 256 * 1024;

/// The body of a slot's feeder thread: sends queued calls while the worker has room for them.
///
/// The pipe is shared with [`Inner::enqueue`]'s direct path; whoever writes holds the pipe's lock
/// from before it moves calls to `in_flight` (under the pool lock) until they are written, so
/// calls reach the worker in `in_flight` order.
fn feed(inner: &Inner, slot: usize) {
    block_sigpipe();
    let Some(pipe) = inner.lock().slots[slot].writer.clone() else {
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
                let in_flight = st.slots[slot].in_flight.len();
                // Read once: the average moves while we look.
                let depth = inner.depth();
                let left = quota.map(|q| q.saturating_sub(st.slots[slot].sent));
                if left == Some(0) || (st.broken.is_some() && st.queue.is_empty()) {
                    if in_flight == 0 {
                        // Closing the pipe retires the worker; it exits when it reads the end.
                        st.slots[slot].writer = None;
                        return;
                    }
                } else if !st.queue.is_empty() && in_flight < depth {
                    // Only a direct write holds the pipe, and only for one small write.
                    let file = pipe.lock().unwrap_or_else(|p| p.into_inner());
                    let room = depth - in_flight;
                    let frames = take_batch(inner, &mut st, slot, room, left, &mut skipped);
                    if !frames.is_empty() {
                        break (frames, file);
                    }
                    continue;
                } else if st.queue.is_empty() && st.shutdown && in_flight == 0 {
                    st.slots[slot].writer = None;
                    return;
                }
                st = inner.wait(st);
            }
        };
        drop(skipped);
        let written = write_frames(&mut file, &frames, &mut out);
        drop(file);
        if written.is_err() {
            // The worker is gone; its reader sees the end of file and settles the work.
            return;
        }
    }
}

fn take_batch(
    inner: &Inner,
    st: &mut State,
    slot: usize,
    room: usize,
    left: Option<u64>,
    skipped: &mut Vec<Job>,
) -> Vec<Arc<Vec<u8>>> {
    let live = st.slots.iter().filter(|s| s.pid.is_some()).count().max(1);
    let fair = st.queue.len().div_ceil(live);
    let n = room.min(fair).min(left.unwrap_or(u64::MAX) as usize).max(1);
    let mut frames = Vec::with_capacity(n);
    let mut bytes = 0;
    while frames.len() < n {
        let Some(mut job) = st.queue.pop_front() else {
            break;
        };
        if !job.sink.start() {
            inner.stats.cancelled.fetch_add(1, Ordering::Relaxed);
            skipped.push(job);
            continue;
        }
        if instrument::active() {
            if let Some(info) = job.sink.info() {
                let worker = st.slots[slot].pid.unwrap_or(0).to_string();
                instrument::executor_event(&ExecutorEvent::Started {
                    executor: EXECUTOR_NAME,
                    work: info,
                    worker: &worker,
                });
            }
        }
        bytes += job.frame.len();
        frames.push(job.frame.clone());
        let s = &mut st.slots[slot];
        s.sent += 1;
        s.in_flight.push_back(job);
        if bytes > GATHER {
            break;
        }
    }
    frames
}

fn write_frames(
    pipe: &mut File,
    frames: &[Arc<Vec<u8>>],
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    if let [one] = frames {
        return pipe.write_all(one);
    }
    out.clear();
    for f in frames {
        if f.len() > GATHER {
            if !out.is_empty() {
                pipe.write_all(out)?;
                out.clear();
            }
            pipe.write_all(f)?;
        } else {
            out.extend_from_slice(f);
        }
    }
    if !out.is_empty() {
        pipe.write_all(out)?;
    }
    if out.capacity() > 4 * GATHER {
        *out = Vec::new();
    }
    Ok(())
}
