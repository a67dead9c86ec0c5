//! The state a pool's threads share: the queue, every slot's calls in flight, the counters, and
//! the scheduling decisions made on them (queueing a call, writing it straight to an idle
//! worker, breaking and shutting down the pool).
//!
//! # Locking rules
//!
//! - **One pool lock.** Everything that says where a call is (queued, in flight on a slot, done)
//!   sits in [`State`], behind `Inner::state`; a call moves between places only under it. Each
//!   slot's feeder waits on a condition variable of its own, woken only when something it acts
//!   on changed (a call queued that it may take, its own worker's reply, a stop); everyone else
//!   (`stop_within`) waits on the pool's. The claim words (`claims.rs`) and `SlotState::reading` are atomics
//!   read and written under it or alone, never a lock of their own.
//! - **Lock order: the pool lock, then a worker's pipe.** A slot's pipe (`SlotState::writer`) is
//!   taken while the pool lock is held (the feeder blocks on it, a submitting thread only tries
//!   it), so that calls are moved to `in_flight` and written in the same order; the pool lock is
//!   then released and the frames are written holding the pipe alone. Nothing takes the pool
//!   lock while it holds a pipe.
//! - **Promises are started under the lock, completed outside it.** `Sink::start` (a promise's
//!   `set_running`, a map's cancellation check) runs under the pool lock and takes only the
//!   promise's own lock; `settle`, which runs result `Deserialize`s and done-callbacks (user
//!   code that may call back into the pool), always runs after the pool lock is released.
//! - **The thread list is a leaf.** `Inner::threads` (the slots' join handles) is taken alone,
//!   never with the pool lock or a pipe.
//! - **Events may come under both.** `Started` is reported as a call is moved to `in_flight`,
//!   with the pool lock (and the pipe) held, as the observer contract allows (cheap, never
//!   blocking); an observer must not call back into the pool.
//! - **Signals only under the lock.** A worker's pid is read and signalled under the pool lock,
//!   and its slot clears the pid under the same lock before it reaps the process, so no signal
//!   can reach a recycled pid.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use taskweave_core::instrument::ExecutorEvent;
use taskweave_core::{Error, Promise, Resolver};

use crate::claims::Claims;
use crate::job::{Job, PromiseSink, Reply, settle};
use crate::wire::FnRef;

/// The largest call written directly from the submitting thread (see `Inner::try_direct`).
const DIRECT_MAX: usize = 16 * 1024;

/// The largest call whose body the submitting thread copies into an idle worker's calls region
/// itself (the copy holds the worker's pipe, so it is kept short).
const DIRECT_SHARED_MAX: usize = 4 << 20;

/// The executor name in debug events.
pub(crate) const EXECUTOR_NAME: &str = "ProcessPoolExecutor";

pub(crate) struct Config {
    pub(crate) max_workers: usize,
    pub(crate) max_tasks_per_child: Option<u64>,
    pub(crate) initializer: Option<(FnRef, Vec<u8>)>,
    pub(crate) max_frame: usize,
    pub(crate) program: PathBuf,
    /// The arguments workers start with; `None`: this process's own (after `argv[0]`), or
    /// none for a named-only program.
    pub(crate) args: Option<Vec<std::ffi::OsString>>,
    /// Workers run another build's program: calls go by name only, never as offsets.
    pub(crate) named_only: bool,
    pub(crate) handshake_timeout: Duration,
}

/// Per-slot state, guarded by the pool's mutex.
#[derive(Default)]
pub(crate) struct SlotState {
    /// The live worker's pid; `None` while none is serving (and before it is reaped).
    pub(crate) pid: Option<u32>,
    /// Calls sent to the worker and not answered yet, oldest first.
    pub(crate) in_flight: VecDeque<Job>,
    /// The current worker's reader has stopped; its feeder must stop too.
    pub(crate) ended: bool,
    /// Calls sent to the current worker.
    pub(crate) sent: u64,
    /// The supervising thread has not finished.
    pub(crate) thread_alive: bool,
    /// The pipe to the live worker, while it takes calls.
    pub(crate) writer: Option<Arc<Mutex<crate::arena::Pipe>>>,
    /// The live worker's claim words.
    pub(crate) claims: Option<Arc<Claims>>,
    /// The worker is held up by a long call: it gets no new calls until it has caught up.
    pub(crate) held: bool,
    /// Since when the oldest call in flight has been the worker's current one.
    pub(crate) front_since: Option<Instant>,
    /// The call whose timeout ended the worker.
    pub(crate) timed_out: Option<u64>,
    /// The reader is inside a frame read (not delivering a result).
    pub(crate) reading: Arc<std::sync::atomic::AtomicBool>,
    /// The oldest call in flight whose reply the worker has written, and since when that is
    /// known.
    pub(crate) replied_seen: Option<(u64, Instant)>,
    /// The worker was ended because its reply stream lost its framing.
    pub(crate) lost_framing: bool,
    /// The slot's feeder waits on its condition variable.
    pub(crate) feeder_waiting: bool,
    /// The waiting feeder was woken and has not looked at the state yet.
    pub(crate) feeder_woken: bool,
}

pub(crate) struct State {
    pub(crate) queue: VecDeque<Job>,
    pub(crate) shutdown: bool,
    /// The workers are being killed: calls taken back from them are cancelled, not re-sent.
    pub(crate) killing: bool,
    pub(crate) broken: Option<Error>,
    pub(crate) slots: Vec<SlotState>,
    pub(crate) start_failures: u32,
    /// Supervising threads still running.
    alive: usize,
    /// Completed when the last supervising thread has ended (`shutdown_async`).
    stopped: Vec<Resolver<()>>,
    /// Threads waiting on the condition variable; notifications are skipped when there are none.
    waiting: usize,
}

impl State {
    /// Supervising threads still running.
    pub(crate) fn alive(&self) -> usize {
        self.alive
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) submitted: AtomicU64,
    pub(crate) succeeded: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) workers_started: AtomicU64,
    pub(crate) worker_deaths: AtomicU64,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) secret: u64,
    state: Mutex<State>,
    cond: Condvar,
    /// One per slot, for its feeder alone.
    feeders: Box<[Condvar]>,
    next_id: AtomicU64,
    /// A moving average of how long one call runs in a worker; 0 until the first reply.
    avg_exec_nanos: AtomicU64,
    pub(crate) stats: Counters,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn wait<'a>(&self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        st.waiting += 1;
        let mut st = self.cond.wait(st).unwrap_or_else(|p| p.into_inner());
        st.waiting -= 1;
        st
    }

    /// Calls were queued: wakes as many waiting feeders that can take one as there are calls
    /// nobody was woken for yet (a feeder at its depth or held would only look and wait again),
    /// and the pool's waiters. Call with the state locked after changing it.
    pub(crate) fn notify(&self, st: &mut State) {
        if st.waiting > 0 {
            self.cond.notify_all();
        }
        let woken = st.slots.iter().filter(|s| s.feeder_woken).count();
        let mut wanted = st.queue.len().saturating_sub(woken);
        if wanted == 0 {
            return;
        }
        let depth = self.depth();
        for (slot, s) in st.slots.iter_mut().enumerate() {
            if wanted == 0 {
                break;
            }
            let takes = !s.held && !s.ended && s.in_flight.len() < depth;
            if s.feeder_waiting && !s.feeder_woken && takes {
                s.feeder_woken = true;
                self.feeders[slot].notify_one();
                wanted -= 1;
            }
        }
    }

    /// Wakes the feeder of `slot` if it waits: something only it acts on changed.
    pub(crate) fn notify_feeder(&self, st: &mut State, slot: usize) {
        let s = &mut st.slots[slot];
        if s.feeder_waiting && !s.feeder_woken {
            s.feeder_woken = true;
            self.feeders[slot].notify_one();
        }
    }

    /// As [`wait_until`](Self::wait_until), for the feeder of `slot`.
    pub(crate) fn feeder_wait_until<'a>(
        &self,
        mut st: MutexGuard<'a, State>,
        slot: usize,
        at: Instant,
    ) -> MutexGuard<'a, State> {
        let left = at.saturating_duration_since(Instant::now());
        st.slots[slot].feeder_waiting = true;
        let (mut st, _) = self.feeders[slot]
            .wait_timeout(st, left)
            .unwrap_or_else(|p| p.into_inner());
        let s = &mut st.slots[slot];
        s.feeder_waiting = false;
        s.feeder_woken = false;
        st
    }

    /// As [`wait`](Self::wait), returning by `at` at the latest.
    pub(crate) fn wait_until<'a>(
        &self,
        mut st: MutexGuard<'a, State>,
        at: Instant,
    ) -> MutexGuard<'a, State> {
        let left = at.saturating_duration_since(Instant::now());
        st.waiting += 1;
        let (mut st, _) = self
            .cond
            .wait_timeout(st, left)
            .unwrap_or_else(|p| p.into_inner());
        st.waiting -= 1;
        st
    }

    /// A moving average of how long one call runs, in nanoseconds; 0 before the first reply.
    pub(crate) fn avg_exec(&self) -> u64 {
        self.avg_exec_nanos.load(Ordering::Relaxed)
    }

    /// Called by a supervising thread as it ends.
    pub(crate) fn slot_thread_ended(&self, slot: usize) {
        let stopped = {
            let mut st = self.lock();
            st.slots[slot].thread_alive = false;
            st.alive -= 1;
            self.notify_all_now(&st);
            if st.alive == 0 {
                std::mem::take(&mut st.stopped)
            } else {
                Vec::new()
            }
        };
        for r in stopped {
            r.set_result(());
        }
    }

    /// Wakes every waiter, feeders included: the pool or a slot is stopping.
    pub(crate) fn notify_all_now(&self, _st: &State) {
        self.cond.notify_all();
        for feeder in &*self.feeders {
            feeder.notify_one();
        }
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// How many calls a worker may hold at once: deep pipelines for short calls (the round
    /// trip dominates), one at a time for long ones (so a long call never holds work another
    /// worker could run).
    pub(crate) fn depth(&self) -> usize {
        match self.avg_exec_nanos.load(Ordering::Relaxed) {
            0 => 1,
            n if n < 20_000 => 64,
            n if n < 200_000 => 8,
            n if n < 2_000_000 => 2,
            _ => 1,
        }
    }

    pub(crate) fn note_exec(&self, nanos: u64) {
        let nanos = nanos.max(1);
        let old = self.avg_exec_nanos.load(Ordering::Relaxed);
        let new = if old == 0 {
            nanos
        } else {
            (old.saturating_mul(7).saturating_add(nanos)) / 8
        };
        self.avg_exec_nanos.store(new.max(1), Ordering::Relaxed);
    }

    pub(crate) fn finished(&self, job: &Job, ok: bool, duration: Duration) {
        if ok {
            self.stats.succeeded.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some((info, observer)) = job.sink.observed() {
            observer.executor_event(&ExecutorEvent::Finished {
                executor: EXECUTOR_NAME,
                work: info,
                duration,
                ok,
            });
        }
    }

    /// Queues the encoded call `frame` of one `submit`, whose result completes `resolver`,
    /// after telling the submitter's observer it was submitted.
    pub(crate) fn enqueue_call<R: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        id: u64,
        frame: Vec<u8>,
        what: Arc<str>,
        resolver: Resolver<R>,
        timeout: Option<Duration>,
    ) {
        if let Some(info) = resolver.info() {
            (resolver.observer()).executor_event(&ExecutorEvent::Submitted {
                executor: EXECUTOR_NAME,
                work: info,
            });
        }
        self.enqueue(Job {
            id,
            frame: Arc::new(frame),
            what: what.clone(),
            sink: Box::new(PromiseSink { resolver, what }),
            position: 0,
            timeout,
            started_on: None,
        });
    }

    /// Queues a job, or fails it at once if the pool takes no more work.
    pub(crate) fn enqueue(&self, job: Job) {
        self.stats.submitted.fetch_add(1, Ordering::Relaxed);
        let st = self.lock();
        let refusal = if let Some(e) = &st.broken {
            Some(e.clone())
        } else if st.shutdown {
            Some(Error::shutdown("the process pool is shut down"))
        } else {
            None
        };
        match refusal {
            Some(e) => {
                drop(st);
                settle(job.sink, Reply::Failed(e));
            }
            None => {
                if let Err((mut st, job)) = self.try_direct(st, job) {
                    st.queue.push_back(job);
                    self.notify(&mut st);
                }
            }
        }
    }

    /// Writes a small call straight to an idle worker from the submitting thread, saving the
    /// feeder's wake-up on the round trip. Gives the job back when no worker is idle or its pipe
    /// is busy.
    ///
    /// An idle worker (nothing in flight) has read everything sent to it, so its pipe is empty
    /// and a write of at most [`DIRECT_MAX`] bytes does not block. A larger call (up to
    /// [`DIRECT_SHARED_MAX`]) goes direct only when the worker's calls region is free: its body
    /// is copied there and the pipe gets a small envelope.
    #[allow(clippy::result_large_err)]
    fn try_direct<'a>(
        &self,
        mut st: MutexGuard<'a, State>,
        mut job: Job,
    ) -> Result<(), (MutexGuard<'a, State>, Job)> {
        let len = job.frame.len();
        let shared = (crate::arena::SHARED_MIN + 4..=DIRECT_SHARED_MAX).contains(&len);
        if !st.queue.is_empty() || (len > DIRECT_MAX && !shared) {
            return Err((st, job));
        }
        let quota = self.config.max_tasks_per_child;
        let idle = st.slots.iter().position(|s| {
            s.writer.is_some()
                && !s.ended
                && !s.held
                && s.in_flight.is_empty()
                && quota.is_none_or(|q| s.sent < q)
                && s.claims.as_ref().is_some_and(|c| c.has_room(s.sent))
        });
        let Some(slot) = idle else {
            return Err((st, job));
        };
        let (Some(pipe), Some(claims)) =
            (st.slots[slot].writer.clone(), st.slots[slot].claims.clone())
        else {
            return Err((st, job));
        };
        let Ok(mut file) = pipe.try_lock() else {
            return Err((st, job));
        };
        // A large call goes direct only through a free region: its envelope is as small a
        // write as a small call.
        if len > DIRECT_MAX && !file.takes_shared(len) {
            return Err((st, job));
        }
        if !job.sink.start() {
            self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
            drop(st);
            drop(file);
            drop(job);
            return Ok(());
        }
        self.started(&mut job, st.slots[slot].pid);
        let frame = job.frame.clone();
        let watched = job.timeout.is_some();
        let s = &mut st.slots[slot];
        job.position = s.sent;
        claims.sent(job.position, job.id);
        s.sent += 1;
        s.front_since = Some(Instant::now());
        s.in_flight.push_back(job);
        if watched {
            // The slot's feeder keeps the call's deadline.
            self.notify_feeder(&mut st, slot);
        }
        drop(st);
        // The submitting thread's SIGPIPE disposition is the program's, so the write keeps the
        // signal away.
        let written = file.write_frame(&frame, true);
        drop(file);
        if written.is_err() {
            // The worker cannot take calls: it is ended, and its reader settles the call.
            self.end_worker(slot, &pipe);
        }
        Ok(())
    }

    /// Marks the pool broken with `error` and fails everything queued with it.
    pub(crate) fn break_pool(&self, error: Error) {
        let drained: Vec<Job> = {
            let mut st = self.lock();
            if st.broken.is_none() {
                st.broken = Some(error.clone());
            }
            let drained = st.queue.drain(..).collect();
            self.notify_all_now(&st);
            drained
        };
        for job in drained {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            settle(job.sink, Reply::Failed(error.clone()));
        }
    }

    pub(crate) fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let cancelled: Vec<Job> = {
            let mut st = self.lock();
            st.shutdown = true;
            let drained = if cancel_futures {
                st.queue.drain(..).collect()
            } else {
                Vec::new()
            };
            self.notify_all_now(&st);
            drained
        };
        for job in cancelled {
            self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
            settle(
                job.sink,
                Reply::Failed(Error::cancelled(Some(
                    "the process pool was shut down with cancel_futures".into(),
                ))),
            );
        }
        if wait
            && taskweave_core::strict::check_blocking_wait("ProcessPoolExecutor::shutdown(wait)")
                .is_ok()
        {
            self.join_threads();
        }
    }

    /// Waits up to `timeout` for every supervising thread to end; then kills the workers and
    /// waits for the threads, which end promptly once their workers are dead.
    pub(crate) fn stop_within(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut st = self.lock();
        while st.alive > 0 {
            match deadline {
                Some(d) if Instant::now() >= d => break,
                Some(d) => st = self.wait_until(st, d),
                None => st = self.wait(st),
            }
        }
        let in_time = st.alive == 0;
        drop(st);
        if !in_time {
            self.signal_workers(sigkill());
            let mut st = self.lock();
            while st.alive > 0 {
                st = self.wait(st);
            }
        }
        in_time
    }

    pub(crate) fn join_threads(&self) {
        let handles: Vec<JoinHandle<()>> = {
            let mut threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *threads)
        };
        let me = std::thread::current().id();
        let mut own = Vec::new();
        for h in handles {
            if h.thread().id() == me {
                // Shutdown from a done-callback on a slot thread: that thread cannot wait for
                // itself; it finishes after the callback returns.
                own.push(h);
            } else {
                let _ = h.join();
            }
        }
        if !own.is_empty() {
            self.threads
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(own);
        }
    }

    /// Kills the worker of `slot` if it is still the one behind `pipe`, after a write to it
    /// failed.
    pub(crate) fn end_worker(&self, slot: usize, pipe: &Arc<Mutex<crate::arena::Pipe>>) {
        let st = self.lock();
        let s = &st.slots[slot];
        let same = s.writer.as_ref().is_some_and(|w| Arc::ptr_eq(w, pipe));
        if let (true, Some(pid)) = (same, s.pid) {
            #[cfg(unix)]
            // SAFETY: the pid is read under the pool lock, and a slot clears it under that lock
            // before it reaps the process, so it is our live (or unreaped) child.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            #[cfg(not(unix))]
            let _ = pid;
        }
    }

    pub(crate) fn signal_workers(&self, signal: i32) {
        self.lock().killing = true;
        self.shutdown(false, true);
        let st = self.lock();
        // The pids are read and signalled under the lock: a slot clears its pid under the same
        // lock before it reaps the process, so none of these pids can have been recycled.
        for s in &st.slots {
            if let Some(pid) = s.pid {
                #[cfg(unix)]
                // SAFETY: sending a signal to a child process of ours that is not reaped yet.
                unsafe {
                    libc::kill(pid as libc::pid_t, signal);
                }
                #[cfg(not(unix))]
                let _ = (pid, signal);
            }
        }
    }
}

impl Inner {
    /// The shared state of a new pool with `slots` supervising threads about to start.
    pub(crate) fn new(config: Config, secret: u64, slots: usize) -> Inner {
        Inner {
            config,
            secret,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                shutdown: false,
                killing: false,
                broken: None,
                slots: (0..slots)
                    .map(|_| SlotState {
                        thread_alive: true,
                        ..SlotState::default()
                    })
                    .collect(),
                start_failures: 0,
                alive: slots,
                stopped: Vec::new(),
                waiting: 0,
            }),
            cond: Condvar::new(),
            feeders: (0..slots).map(|_| Condvar::new()).collect(),
            next_id: AtomicU64::new(1),
            avg_exec_nanos: AtomicU64::new(0),
            stats: Counters::default(),
            threads: Mutex::new(Vec::new()),
        }
    }

    /// Keeps a started supervising thread's handle, to join it at shutdown.
    pub(crate) fn add_thread(&self, handle: JoinHandle<()>) {
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle);
    }

    /// The supervising threads of `from..` could not be started: they count as ended.
    pub(crate) fn threads_not_started(&self, from: usize) {
        let mut st = self.lock();
        let missing = st.slots.len() - from;
        st.alive -= missing;
        for s in &mut st.slots[from..] {
            s.thread_alive = false;
        }
    }

    /// A future of the end of the last supervising thread, or `None` if they have all ended.
    pub(crate) fn stopped(&self) -> Option<Promise<()>> {
        let mut st = self.lock();
        if st.alive == 0 {
            return None;
        }
        let (promise, resolver) = Promise::pending();
        st.stopped.push(resolver);
        Some(promise)
    }

    /// Reports that `job` was taken by the worker `pid`: the `Started` event, on every path
    /// that sends a call (the direct write and the feeder alike). A call taken back from a
    /// stuck worker before it began is reported again only if another worker takes it.
    pub(crate) fn started(&self, job: &mut Job, pid: Option<u32>) {
        let pid = pid.unwrap_or(0);
        if job.started_on.replace(pid) == Some(pid) {
            return;
        }
        if let Some((info, observer)) = job.sink.observed() {
            let worker = pid.to_string();
            observer.executor_event(&ExecutorEvent::Started {
                executor: EXECUTOR_NAME,
                work: info,
                worker: &worker,
            });
        }
    }
}

/// The signal that ends a worker for good.
pub(crate) fn sigkill() -> i32 {
    #[cfg(unix)]
    {
        libc::SIGKILL
    }
    #[cfg(not(unix))]
    9
}
