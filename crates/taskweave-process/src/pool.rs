//! [`ProcessPoolExecutor`], its [`Builder`], and the shared state its slot threads work on.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use taskweave_core::instrument::{self, ExecutorEvent};
use taskweave_core::{Error, Promise, Resolver, TaskInfo};
use taskweave_executor::{Map, MapOptions, MapUnordered, Payload};

use crate::claims::Claims;
use crate::image;
use crate::job::{
    InitResult, InitTrampoline, Job, PromiseSink, Reply, Trampoline, run_chunk, run_init, run_thunk,
};
use crate::map::ProcessMap;
use crate::wire::{self, FnRef};

/// The largest call written directly from the submitting thread (see `Inner::try_direct`).
const DIRECT_MAX: usize = 16 * 1024;

/// The most workers a pool may have.
const MAX_WORKERS: usize = 4096;

/// The smallest frame limit: room for a call header and a small argument.
const MIN_FRAME: usize = 64;

/// The executor name in debug events.
pub(crate) const EXECUTOR_NAME: &str = "ProcessPoolExecutor";

pub(crate) struct Config {
    pub(crate) max_workers: usize,
    pub(crate) max_tasks_per_child: Option<u64>,
    pub(crate) initializer: Option<(FnRef, Vec<u8>)>,
    pub(crate) max_frame: usize,
    pub(crate) program: PathBuf,
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
    pub(crate) writer: Option<Arc<Mutex<std::fs::File>>>,
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

    /// Wakes every waiter if there is one; call with the state locked after changing it.
    pub(crate) fn notify(&self, st: &State) {
        if st.waiting > 0 {
            self.cond.notify_all();
        }
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

    pub(crate) fn notify_all_now(&self, _st: &State) {
        self.cond.notify_all();
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
        if instrument::active() {
            if let Some(info) = job.sink.info() {
                instrument::executor_event(&ExecutorEvent::Finished {
                    executor: EXECUTOR_NAME,
                    work: info,
                    duration,
                    ok,
                });
            }
        }
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
                crate::unwind::settle(job.sink, Reply::Failed(e));
            }
            None => {
                if let Err((mut st, job)) = self.try_direct(st, job) {
                    st.queue.push_back(job);
                    self.notify(&st);
                }
            }
        }
    }

    /// Writes a small call straight to an idle worker from the submitting thread, saving the
    /// feeder's wake-up on the round trip. Gives the job back when no worker is idle or its pipe
    /// is busy.
    ///
    /// An idle worker (nothing in flight) has read everything sent to it, so its pipe is empty
    /// and a write of at most [`DIRECT_MAX`] bytes does not block.
    #[allow(clippy::result_large_err)]
    fn try_direct<'a>(
        &self,
        mut st: MutexGuard<'a, State>,
        mut job: Job,
    ) -> Result<(), (MutexGuard<'a, State>, Job)> {
        if !st.queue.is_empty() || job.frame.len() > DIRECT_MAX {
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
        if !job.sink.start() {
            self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
            drop(st);
            drop(file);
            drop(job);
            return Ok(());
        }
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
            self.notify(&st);
        }
        drop(st);
        // The submitting thread's SIGPIPE disposition is the program's, so the write keeps the
        // signal away.
        let written = crate::sigpipe::write_all(&mut file, &frame);
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
            crate::unwind::settle(job.sink, Reply::Failed(error.clone()));
        }
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
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
            crate::unwind::settle(
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
    fn stop_within(&self, timeout: Duration) -> bool {
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
            self.signal_workers(libc_sigkill());
            let mut st = self.lock();
            while st.alive > 0 {
                st = self.wait(st);
            }
        }
        in_time
    }

    fn join_threads(&self) {
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
    pub(crate) fn end_worker(&self, slot: usize, pipe: &Arc<Mutex<std::fs::File>>) {
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

    fn signal_workers(&self, signal: i32) {
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

/// Options of one call: [`ProcessPoolExecutor::submit_with`].
///
/// ```
/// use std::time::Duration;
/// let options = taskweave_process::CallOptions::new().timeout(Duration::from_secs(5));
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use]
pub struct CallOptions {
    timeout: Option<Duration>,
}

impl CallOptions {
    /// No options: the call may run as long as it takes.
    ///
    /// ```
    /// assert_eq!(taskweave_process::CallOptions::new(), Default::default());
    /// ```
    pub fn new() -> CallOptions {
        CallOptions { timeout: None }
    }

    /// The longest the call may run in its worker, counted from when the worker starts it;
    /// past it the worker is ended and the call fails with [`Error::TimedOut`].
    /// [`Duration::MAX`] is no limit; zero is refused when the call is submitted.
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = taskweave_process::CallOptions::new().timeout(Duration::from_millis(250));
    /// # let _ = options;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> CallOptions {
        self.timeout = Some(timeout);
        self
    }

    pub(crate) fn limit(&self) -> Option<Duration> {
        self.timeout
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        match self.timeout {
            Some(t) if t.is_zero() => Err(zero_timeout()),
            _ => Ok(()),
        }
    }
}

pub(crate) fn zero_timeout() -> Error {
    Error::refused("a call timeout must be positive, got 0 (no call can finish in no time)")
}

fn libc_sigkill() -> i32 {
    #[cfg(unix)]
    {
        libc::SIGKILL
    }
    #[cfg(not(unix))]
    9
}

/// Counters of a pool's work, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Calls submitted (a map chunk is one call).
    pub submitted: u64,
    /// Calls that came back from a worker.
    pub succeeded: u64,
    /// Calls that failed as a whole (worker died, pool broken, wire error).
    pub failed: u64,
    /// Calls cancelled before they started.
    pub cancelled: u64,
    /// Calls waiting in the queue.
    pub queued: u64,
    /// Calls sent to workers and not answered yet.
    pub running: u64,
    /// Worker processes started so far.
    pub workers_started: u64,
    /// Workers that died while holding work.
    pub worker_deaths: u64,
}

/// A pool of worker processes that run plain functions of this executable: Python's
/// `ProcessPoolExecutor`.
///
/// Work is a `fn(A) -> R` with serialisable `A` and `R` ([`Payload`]). [`submit`](Self::submit)
/// returns the general future, [`Promise`], to `.await` from async code or wait on with
/// [`Promise::result`]; [`map`](Self::map) runs a function over an iterator in worker processes,
/// lazily and in order. Submitting never blocks, so it is fine on runtime threads.
///
/// Dropping the pool shuts it down and waits for the queued work (Python's `with` block); call
/// [`shutdown`](Self::shutdown), [`shutdown_async`](Self::shutdown_async) or
/// [`shutdown_within`](Self::shutdown_within) for other choices. Inside async code a pool
/// whose work is all done is dropped without waiting: its workers exit and are reaped in the
/// background.
///
/// # Examples
///
/// ```
/// use taskweave_process::ProcessPoolExecutor;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let pool = ProcessPoolExecutor::builder().max_workers(2).build().unwrap();
/// let mut p = pool.submit(square, 7);
/// assert_eq!(p.result(None).unwrap(), 49);
/// let squares: Vec<u64> = pool.map(square, 1..=5).map(Result::unwrap).collect();
/// assert_eq!(squares, [1, 4, 9, 16, 25]);
/// ```
pub struct ProcessPoolExecutor {
    inner: Arc<Inner>,
}

/// Configures a [`ProcessPoolExecutor`].
///
/// ```
/// use taskweave_process::ProcessPoolExecutor;
///
/// fn setup(level: u8) -> Result<(), String> {
///     if level > 3 { Err(format!("bad level {level}")) } else { Ok(()) }
/// }
///
/// let pool = ProcessPoolExecutor::builder()
///     .max_workers(1)
///     .initializer(setup, 2)
///     .max_tasks_per_child(100)
///     .build()
///     .unwrap();
/// # drop(pool);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    max_workers: Option<usize>,
    max_tasks_per_child: Option<u64>,
    initializer: Option<Result<(FnRef, Vec<u8>), Error>>,
    max_frame: usize,
    program: Option<PathBuf>,
    handshake_timeout: Duration,
    secret: u64,
}

impl Builder {
    /// How many worker processes run at once. Default: [`std::thread::available_parallelism`].
    /// [`build`](Self::build) refuses 0 and more than 4096.
    ///
    /// ```
    /// let pool = taskweave_process::ProcessPoolExecutor::builder().max_workers(2).build().unwrap();
    /// assert_eq!(pool.max_workers(), 2);
    /// ```
    pub fn max_workers(mut self, n: usize) -> Builder {
        self.max_workers = Some(n);
        self
    }

    /// Replaces a worker by a fresh process after it ran `n` calls (a map chunk is one call).
    /// Default: workers live as long as the pool. [`build`](Self::build) refuses 0 (as Python
    /// raises `ValueError`): a worker that may run nothing would be replaced forever.
    ///
    /// ```
    /// fn pid(_: ()) -> u32 {
    ///     std::process::id()
    /// }
    /// let pool = taskweave_process::ProcessPoolExecutor::builder()
    ///     .max_workers(1)
    ///     .max_tasks_per_child(1)
    ///     .build()
    ///     .unwrap();
    /// let first = pool.submit(pid, ()).result(None).unwrap();
    /// let second = pool.submit(pid, ()).result(None).unwrap();
    /// assert_ne!(first, second); // a fresh worker after each call
    /// ```
    pub fn max_tasks_per_child(mut self, n: u64) -> Builder {
        self.max_tasks_per_child = Some(n);
        self
    }

    /// Runs `f(arg)` once in every worker before it takes work (Python's `initializer` and
    /// `initargs`). `f` returns `()` or `Result<(), E>`; an `Err` or a panic breaks the pool:
    /// its futures then fail with [`Error::Broken`] carrying the initializer's error.
    ///
    /// ```
    /// fn setup(level: u8) -> Result<(), std::io::Error> {
    ///     if level > 3 { Err(std::io::Error::other("level too high")) } else { Ok(()) }
    /// }
    /// fn id(x: u8) -> u8 {
    ///     x
    /// }
    /// let pool = taskweave_process::ProcessPoolExecutor::builder()
    ///     .max_workers(1)
    ///     .initializer(setup, 9)
    ///     .build()
    ///     .unwrap();
    /// let err = pool.submit(id, 1).result(None).unwrap_err();
    /// assert!(matches!(err, taskweave_core::Error::Broken { .. }));
    /// ```
    pub fn initializer<A: Payload, O: InitResult + 'static>(
        mut self,
        f: fn(A) -> O,
        arg: A,
    ) -> Builder {
        let tramp = run_init::<A, O> as InitTrampoline as usize;
        let made = match image::fn_ref(f as usize, tramp, self.secret) {
            None => Err(outside_image()),
            Some(fref) => postcard::to_stdvec(&arg)
                .map(|payload| (fref, payload))
                .map_err(|e| {
                    Error::wire("initializer argument", wire::serialise_failure(&arg, &e))
                }),
        };
        self.initializer = Some(made);
        self
    }

    /// The largest frame (one call's arguments or results, serialised) either side accepts.
    /// Default: [`wire::DEFAULT_MAX_FRAME`] (1 GiB).
    ///
    /// ```
    /// fn len(b: taskweave_process::Bytes) -> usize {
    ///     b.0.len()
    /// }
    /// let pool = taskweave_process::ProcessPoolExecutor::builder()
    ///     .max_workers(1)
    ///     .max_frame(1024)
    ///     .build()
    ///     .unwrap();
    /// let err = pool.submit(len, taskweave_process::Bytes(vec![0; 4096])).result(None).unwrap_err();
    /// assert!(matches!(err, taskweave_core::Error::Wire(_)));
    /// ```
    ///
    /// [`build`](Self::build) refuses a limit below 64 bytes or above `u32::MAX` (a frame's
    /// length prefix is 32 bits).
    pub fn max_frame(mut self, bytes: usize) -> Builder {
        self.max_frame = bytes;
        self
    }

    /// Runs workers from `program` instead of this process's own image. The program must be the
    /// very same build (for example a copy of it): anything else is refused at the handshake and
    /// breaks the pool. Meant for tests and unusual deployments.
    ///
    /// ```
    /// let pool = taskweave_process::ProcessPoolExecutor::builder()
    ///     .worker_program(std::env::current_exe().unwrap())
    ///     .max_workers(1)
    ///     .build()
    ///     .unwrap();
    /// fn one(_: ()) -> u8 {
    ///     1
    /// }
    /// assert_eq!(pool.submit(one, ()).result(None).unwrap(), 1);
    /// ```
    pub fn worker_program(mut self, program: impl Into<PathBuf>) -> Builder {
        self.program = Some(program.into());
        self
    }

    /// How long a new worker may take to answer the handshake. Default: 30 s.
    /// [`Duration::MAX`] waits without limit; [`build`](Self::build) refuses zero.
    ///
    /// ```
    /// let pool = taskweave_process::ProcessPoolExecutor::builder()
    ///     .handshake_timeout(std::time::Duration::from_secs(5))
    ///     .build();
    /// assert!(pool.is_ok());
    /// ```
    pub fn handshake_timeout(mut self, timeout: Duration) -> Builder {
        self.handshake_timeout = timeout;
        self
    }

    /// Starts the pool: one supervising thread per worker, which starts its process at once.
    ///
    /// Workers start in the background: a failure to start them (a wrong build, a failing
    /// initializer) breaks the pool and shows in its futures.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] naming the argument for `max_workers` of 0 or above 4096,
    /// `max_tasks_per_child(0)`, a `max_frame` below 64 bytes or above `u32::MAX`, a zero
    /// `handshake_timeout`, a `worker_program` that is not a file, or an initializer that is not
    /// a function of this executable; [`Error::Wire`] for an initializer argument that cannot be
    /// serialised; [`Error::Broken`] if threads cannot be created.
    ///
    /// ```
    /// use taskweave_process::ProcessPoolExecutor;
    /// assert!(ProcessPoolExecutor::builder().max_workers(0).build().is_err());
    /// ```
    pub fn build(self) -> Result<ProcessPoolExecutor, Error> {
        let max_workers = match self.max_workers {
            Some(0) => return Err(Error::refused("max_workers must be at least 1, got 0")),
            Some(n) if n > MAX_WORKERS => {
                return Err(Error::refused(format!(
                    "max_workers must be at most {MAX_WORKERS} (two threads and two pipes per \
                     worker), got {n}"
                )));
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if self.max_tasks_per_child == Some(0) {
            return Err(Error::refused(
                "max_tasks_per_child must be at least 1, got 0 (a worker that may run no call \
                 would be replaced forever)",
            ));
        }
        if !(MIN_FRAME..=u32::MAX as usize).contains(&self.max_frame) {
            return Err(Error::refused(format!(
                "max_frame must be between {MIN_FRAME} and {} bytes, got {}",
                u32::MAX,
                self.max_frame
            )));
        }
        if self.handshake_timeout.is_zero() {
            return Err(Error::refused(
                "handshake_timeout must be positive, got 0 (no worker can answer in no time)",
            ));
        }
        if let Some(program) = &self.program {
            if !std::fs::metadata(program).is_ok_and(|m| m.is_file()) {
                return Err(Error::refused(format!(
                    "worker_program {} is not a file",
                    program.display()
                )));
            }
        }
        let initializer = self.initializer.transpose()?;
        let config = Config {
            max_workers,
            max_tasks_per_child: self.max_tasks_per_child,
            initializer,
            max_frame: self.max_frame,
            program: self.program.unwrap_or_else(crate::spawn::default_program),
            handshake_timeout: self.handshake_timeout,
        };
        let inner = Arc::new(Inner {
            config,
            secret: self.secret,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                shutdown: false,
                killing: false,
                broken: None,
                slots: (0..max_workers)
                    .map(|_| SlotState {
                        thread_alive: true,
                        ..SlotState::default()
                    })
                    .collect(),
                start_failures: 0,
                alive: max_workers,
                stopped: Vec::new(),
                waiting: 0,
            }),
            cond: Condvar::new(),
            next_id: AtomicU64::new(1),
            avg_exec_nanos: AtomicU64::new(0),
            stats: Counters::default(),
            threads: Mutex::new(Vec::new()),
        });
        let pool = ProcessPoolExecutor { inner };
        for slot in 0..max_workers {
            let inner = pool.inner.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("taskweave-process-{slot}"))
                .spawn(move || crate::slot::slot_main(inner, slot));
            match spawned {
                Ok(h) => pool
                    .inner
                    .threads
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(h),
                Err(e) => {
                    let err = Error::broken(format!("cannot start a pool thread: {e}"));
                    {
                        let mut st = pool.inner.lock();
                        st.alive -= max_workers - slot;
                        for s in &mut st.slots[slot..] {
                            s.thread_alive = false;
                        }
                    }
                    pool.inner.break_pool(err.clone());
                    return Err(err);
                }
            }
        }
        Ok(pool)
    }
}

fn outside_image() -> Error {
    Error::refused(
        "the function is not part of the main executable's code (for example it comes from a \
         dynamically loaded library), so a worker process cannot find it",
    )
}

/// Encodes a single-argument call frame.
fn call_frame<A: Serialize>(
    id: u64,
    fref: FnRef,
    arg: &A,
    max_frame: usize,
    what: &str,
) -> Result<Vec<u8>, Error> {
    let mut frame = Vec::with_capacity(wire::CALL_HEADER + 16);
    let start = wire::begin_call(&mut frame, id, fref, 1);
    postcard::to_io(arg, crate::bytes::FrameWriter(&mut frame)).map_err(|e| {
        Error::wire(
            format!("argument of {what}"),
            wire::serialise_failure(arg, &e),
        )
    })?;
    wire::finish(&mut frame, start, max_frame)
        .map_err(|e| Error::wire(format!("argument of {what}"), e.to_string()))?;
    Ok(frame)
}

pub(crate) fn fn_ref_for<A: DeserializeOwned, R: Serialize>(
    inner: &Inner,
    f: fn(A) -> R,
) -> Option<FnRef> {
    image::fn_ref(
        f as usize,
        run_chunk::<A, R> as Trampoline as usize,
        inner.secret,
    )
}

impl ProcessPoolExecutor {
    /// A pool with the default settings (one worker per available core).
    ///
    /// # Errors
    ///
    /// As [`Builder::build`].
    ///
    /// ```
    /// let pool = taskweave_process::ProcessPoolExecutor::new().unwrap();
    /// # drop(pool);
    /// ```
    pub fn new() -> Result<ProcessPoolExecutor, Error> {
        ProcessPoolExecutor::builder().build()
    }

    /// A builder to configure a pool.
    ///
    /// ```
    /// let pool = taskweave_process::ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// assert_eq!(pool.max_workers(), 1);
    /// ```
    pub fn builder() -> Builder {
        Builder {
            max_workers: None,
            max_tasks_per_child: None,
            initializer: None,
            max_frame: wire::DEFAULT_MAX_FRAME,
            program: None,
            handshake_timeout: Duration::from_secs(30),
            secret: image::random_secret(),
        }
    }

    /// Runs `f(arg)` in a worker process and returns its future.
    ///
    /// Never blocks. The future fails with [`Error::Panicked`] (message and the worker's
    /// backtrace) if `f` panics, [`Error::WorkerDied`] if the worker died running it (killed,
    /// aborted or exited; the pool replaces the worker and keeps serving), [`Error::Wire`] if
    /// `arg` cannot be serialised or the result cannot be carried back, [`Error::Shutdown`] after
    /// shutdown, [`Error::Broken`] if the pool is broken, and [`Error::Refused`] if `f` is not a
    /// function of the main executable.
    ///
    /// [`Promise::cancel`] succeeds while the call is queued. A running call is not interrupted
    /// (as in Python): `cancel` returns `false` and the call runs to its end, its result
    /// discarded if nobody takes it. [`kill_workers`](Self::kill_workers) stops running work.
    ///
    /// ```
    /// use taskweave_process::ProcessPoolExecutor;
    ///
    /// fn shout(s: String) -> String {
    ///     s.to_uppercase()
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// let got = taskweave_core::run(async move { pool.submit(shout, "hi".to_string()).await });
    /// assert_eq!(got.unwrap().unwrap(), "HI");
    /// ```
    #[track_caller]
    pub fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Promise<R> {
        self.submit_with(f, arg, CallOptions::new())
    }

    /// As [`submit`](Self::submit), with per-call [`CallOptions`] (a timeout).
    ///
    /// With a timeout, a call that runs longer than it in its worker ends that worker
    /// (`SIGKILL`): the future fails with [`Error::TimedOut`] and a fresh worker takes the
    /// worker's place, as pebble's `schedule(timeout=)` does. Time spent queued does not count.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit), plus [`Error::TimedOut`] for an overdue call and
    /// [`Error::Refused`] for a zero timeout.
    ///
    /// # Differences from Python
    ///
    /// `concurrent.futures` has no per-call timeout (`result(timeout)` only stops waiting);
    /// this one stops the call itself.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskweave_process::{CallOptions, ProcessPoolExecutor};
    ///
    /// fn forever(_: ()) {
    ///     loop {
    ///         std::thread::sleep(Duration::from_secs(1));
    ///     }
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// let options = CallOptions::new().timeout(Duration::from_millis(100));
    /// let err = pool.submit_with(forever, (), options).result(None).unwrap_err();
    /// assert!(err.is_timeout());
    /// ```
    #[track_caller]
    pub fn submit_with<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
        arg: A,
        options: CallOptions,
    ) -> Promise<R> {
        let tramp = run_chunk::<A, R> as Trampoline as usize;
        self.submit_ref::<A, R>(
            f as usize,
            tramp,
            &arg,
            std::any::type_name::<fn(A) -> R>(),
            options,
        )
    }

    /// Runs `f()` in a worker process and returns its future: the form of
    /// `loop.run_in_executor(pool, f)` without arguments.
    ///
    /// Errors as for [`submit`](Self::submit).
    ///
    /// ```
    /// use taskweave_process::ProcessPoolExecutor;
    ///
    /// fn blocking_function() -> u32 {
    ///     42
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// assert_eq!(pool.call(blocking_function).result(None).unwrap(), 42);
    /// ```
    #[track_caller]
    pub fn call<R: Payload>(&self, f: fn() -> R) -> Promise<R> {
        let tramp = run_thunk::<R> as Trampoline as usize;
        self.submit_ref::<(), R>(
            f as usize,
            tramp,
            &(),
            std::any::type_name::<fn() -> R>(),
            CallOptions::new(),
        )
    }

    #[track_caller]
    fn submit_ref<A: Serialize, R: Payload>(
        &self,
        func: usize,
        trampoline: usize,
        arg: &A,
        name: &'static str,
        options: CallOptions,
    ) -> Promise<R> {
        let (promise, resolver) = Promise::pending_with(TaskInfo::executor(name));
        if let Err(e) = options.check() {
            resolver.set_error(e);
            return promise;
        }
        let inner = &*self.inner;
        let id = inner.next_id();
        let what: Arc<str> = format!("task {id} ({name})").into();
        let Some(fref) = image::fn_ref(func, trampoline, inner.secret) else {
            resolver.set_error(outside_image());
            return promise;
        };
        let frame = match call_frame(id, fref, arg, inner.config.max_frame, &what) {
            Ok(frame) => frame,
            Err(e) => {
                resolver.set_error(e);
                return promise;
            }
        };
        if instrument::active() {
            if let Some(info) = promise.info() {
                instrument::executor_event(&ExecutorEvent::Submitted {
                    executor: EXECUTOR_NAME,
                    work: info,
                });
            }
        }
        inner.enqueue(Job {
            id,
            frame: Arc::new(frame),
            what: what.clone(),
            sink: Box::new(PromiseSink { resolver, what }),
            position: 0,
            timeout: options.timeout,
        });
        promise
    }

    /// Runs `f` over `inputs` in worker processes and yields the results in input order
    /// (Python's `ProcessPoolExecutor.map`), one input per call; [`map_with`](Self::map_with)
    /// takes a chunksize and the other [`MapOptions`].
    ///
    /// Lazy: inputs are pulled only as calls go out, with a bounded number in flight, so an
    /// endless iterator works in bounded memory. Each input gets its own result: a panic or an
    /// unserialisable value fails only that item, a dying worker fails the items of the chunk it
    /// held. Dropping the map cancels the chunks not yet started. It is the same [`Map`] every
    /// executor returns: `next` blocks the calling thread; from async code use
    /// [`Map::next_async`], [`Map::collect_async`] or the map as a `Stream`.
    ///
    /// ```
    /// use taskweave_process::ProcessPoolExecutor;
    ///
    /// fn double(x: u32) -> u32 {
    ///     2 * x
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(2).build().unwrap();
    /// let out: Vec<u32> = pool.map(double, 0..10).map(Result::unwrap).collect();
    /// assert_eq!(out[9], 18);
    /// ```
    pub fn map<A, R, I>(&self, f: fn(A) -> R, inputs: I) -> Map<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        self.map_with(f, inputs, MapOptions::new())
    }

    /// [`map`](Self::map) with options: chunksize (inputs per call; larger chunks save round
    /// trips for cheap items), window, timeout, progress.
    ///
    /// # Differences from Python
    ///
    /// The chunksize is an option rather than an argument, and 0 makes the map's first item an
    /// [`Error::Refused`] instead of raising `ValueError`.
    ///
    /// ```
    /// use taskweave_process::{MapOptions, ProcessPoolExecutor};
    ///
    /// fn double(x: u32) -> u32 {
    ///     2 * x
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(2).build().unwrap();
    /// let options = MapOptions::new().chunksize(100);
    /// let out: Vec<u32> = pool.map_with(double, 0..1000, options).map(Result::unwrap).collect();
    /// assert_eq!(out[999], 1998);
    /// ```
    pub fn map_with<A, R, I>(&self, f: fn(A) -> R, inputs: I, options: MapOptions) -> Map<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        self.map_with_calls(f, inputs, options, CallOptions::new())
    }

    /// [`map_with`](Self::map_with), with [`CallOptions`] for every call the map makes (one per
    /// chunk): with a call timeout, a chunk that runs longer than it in its worker ends that
    /// worker and its items fail with [`Error::TimedOut`], while the other chunks go on (as
    /// pebble's `map(timeout=)`). [`MapOptions::timeout`] is something else: a limit on the
    /// whole map, counted from its start, as in Python.
    ///
    /// # Errors
    ///
    /// As [`map_with`](Self::map_with), plus [`Error::TimedOut`] for the items of an overdue
    /// chunk and [`Error::Refused`] for every item with a zero call timeout.
    ///
    /// # Differences from Python
    ///
    /// `concurrent.futures` has no per-call timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskweave_process::{CallOptions, MapOptions, ProcessPoolExecutor};
    ///
    /// fn nap(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// let calls = CallOptions::new().timeout(Duration::from_millis(300));
    /// let out: Vec<_> = pool.map_with_calls(nap, [1, 60_000, 2], MapOptions::new(), calls).collect();
    /// assert!(out[1].as_ref().unwrap_err().is_timeout());
    /// assert_eq!(*out[2].as_ref().unwrap(), 2);
    /// ```
    pub fn map_with_calls<A, R, I>(
        &self,
        f: fn(A) -> R,
        inputs: I,
        options: MapOptions,
        calls: CallOptions,
    ) -> Map<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        Map::new(
            ProcessMap::new(self.inner.clone(), f, calls),
            inputs,
            options,
        )
    }

    /// As [`map`](Self::map), but yields `(input index, result)` as soon as each is done,
    /// whatever its position.
    ///
    /// ```
    /// use taskweave_process::ProcessPoolExecutor;
    ///
    /// fn double(x: u32) -> u32 {
    ///     2 * x
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(2).build().unwrap();
    /// for (i, r) in pool.map_unordered(double, 0..10) {
    ///     assert_eq!(r.unwrap(), 2 * i as u32);
    /// }
    /// ```
    pub fn map_unordered<A, R, I>(&self, f: fn(A) -> R, inputs: I) -> MapUnordered<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        self.map_unordered_with(f, inputs, MapOptions::new())
    }

    /// [`map_unordered`](Self::map_unordered) with options; with a chunksize, the items of a
    /// chunk arrive together.
    ///
    /// ```
    /// use taskweave_process::{MapOptions, ProcessPoolExecutor};
    ///
    /// fn double(x: u32) -> u32 {
    ///     2 * x
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(2).build().unwrap();
    /// let options = MapOptions::new().chunksize(10);
    /// let mut out: Vec<u32> = pool.map_unordered_with(double, 0..100, options).map(|(_, r)| r.unwrap()).collect();
    /// out.sort();
    /// assert_eq!(out, (0..100).map(|x| 2 * x).collect::<Vec<_>>());
    /// ```
    pub fn map_unordered_with<A, R, I>(
        &self,
        f: fn(A) -> R,
        inputs: I,
        options: MapOptions,
    ) -> MapUnordered<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        self.map_unordered_with_calls(f, inputs, options, CallOptions::new())
    }

    /// [`map_unordered_with`](Self::map_unordered_with), with [`CallOptions`] for every call
    /// the map makes, as [`map_with_calls`](Self::map_with_calls).
    ///
    /// # Errors
    ///
    /// As [`map_with_calls`](Self::map_with_calls).
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskweave_process::{CallOptions, MapOptions, ProcessPoolExecutor};
    ///
    /// fn nap(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(2).build().unwrap();
    /// let calls = CallOptions::new().timeout(Duration::from_millis(300));
    /// let map = pool.map_unordered_with_calls(nap, [60_000, 1], MapOptions::new(), calls);
    /// for (i, r) in map {
    ///     assert_eq!(r.is_err(), i == 0);
    /// }
    /// ```
    pub fn map_unordered_with_calls<A, R, I>(
        &self,
        f: fn(A) -> R,
        inputs: I,
        options: MapOptions,
        calls: CallOptions,
    ) -> MapUnordered<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        MapUnordered::new(
            ProcessMap::new(self.inner.clone(), f, calls),
            inputs,
            options,
        )
    }

    /// Stops taking work; submissions afterwards fail with [`Error::Shutdown`].
    ///
    /// With `cancel_futures`, queued calls are cancelled ([`Error::Cancelled`]); otherwise they
    /// still run. With `wait`, blocks until every worker has finished its work, exited and been
    /// reaped; without, returns at once and the pool winds down in the background. Inside an
    /// async task `wait` is skipped (blocking there could stall the runtime): await the futures
    /// instead.
    ///
    /// ```
    /// use taskweave_core::Error;
    /// use taskweave_process::ProcessPoolExecutor;
    ///
    /// fn id(x: u8) -> u8 {
    ///     x
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// pool.shutdown(true, false);
    /// assert!(matches!(pool.submit(id, 1).result(None), Err(Error::Shutdown { .. })));
    /// ```
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.inner.shutdown(wait, cancel_futures);
    }

    /// Shuts down like [`shutdown`](Self::shutdown) and waits, without blocking the runtime,
    /// until every worker has finished its work, exited and been reaped.
    ///
    /// Once it has returned, dropping the pool waits for nothing.
    ///
    /// ```
    /// use taskweave_process::ProcessPoolExecutor;
    ///
    /// fn id(x: u8) -> u8 {
    ///     x
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// taskweave_core::run(async move {
    ///     let p = pool.submit(id, 5);
    ///     pool.shutdown_async(false).await;
    ///     assert_eq!(p.await.unwrap(), 5);
    ///     assert!(pool.worker_pids().is_empty());
    /// })
    /// .unwrap();
    /// ```
    pub async fn shutdown_async(&self, cancel_futures: bool) {
        self.inner.shutdown(false, cancel_futures);
        let stopped = {
            let mut st = self.inner.lock();
            if st.alive == 0 {
                None
            } else {
                let (promise, resolver) = Promise::pending();
                st.stopped.push(resolver);
                Some(promise)
            }
        };
        if let Some(stopped) = stopped {
            let _ = stopped.await;
        }
    }

    /// Shuts down and lets queued and running work finish for up to `timeout`; then cancels
    /// what is still queued and kills (`SIGKILL`) the workers still running calls, which fail
    /// with [`Error::WorkerDied`]. Returns `true` if everything finished in time.
    ///
    /// Blocks until the workers are gone, like `shutdown(wait = true)`; inside an async task
    /// it returns at once (`false`) and the deadline is kept by a background thread.
    ///
    /// # Differences from Python
    ///
    /// Python's `shutdown` has no time limit; this is `shutdown(wait=True)` bounded, then
    /// Python 3.14's `kill_workers`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskweave_process::ProcessPoolExecutor;
    ///
    /// fn nap(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// let mut long = pool.submit(nap, 60_000);
    /// assert!(!pool.shutdown_within(Duration::from_millis(200)));
    /// assert!(long.result(None).is_err());
    /// assert!(pool.worker_pids().is_empty());
    /// ```
    pub fn shutdown_within(&self, timeout: Duration) -> bool {
        self.inner.shutdown(false, false);
        if taskweave_core::strict::check_blocking_wait("ProcessPoolExecutor::shutdown_within")
            .is_err()
        {
            let inner = self.inner.clone();
            let keeper = std::thread::Builder::new()
                .name("taskweave-process-shutdown".into())
                .spawn(move || inner.stop_within(timeout));
            if keeper.is_err() {
                // No thread to keep the deadline: keep it the hard way now.
                self.inner.signal_workers(libc_sigkill());
            }
            return false;
        }
        let in_time = self.inner.stop_within(timeout);
        self.inner.join_threads();
        in_time
    }

    /// Shuts the pool down, cancelling queued work, and terminates every worker with `SIGTERM`
    /// (Python 3.14's `terminate_workers`). Running calls fail with [`Error::WorkerDied`].
    /// Returns once every worker is reaped (except inside an async task, see
    /// [`shutdown`](Self::shutdown)).
    ///
    /// ```
    /// let pool = taskweave_process::ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// pool.terminate_workers();
    /// assert!(pool.worker_pids().is_empty());
    /// ```
    pub fn terminate_workers(&self) {
        #[cfg(unix)]
        self.inner.signal_workers(libc::SIGTERM);
        self.inner.shutdown(true, true);
    }

    /// As [`terminate_workers`](Self::terminate_workers) with `SIGKILL`, which a worker cannot
    /// catch or ignore.
    ///
    /// ```
    /// use taskweave_process::ProcessPoolExecutor;
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// pool.kill_workers();
    /// assert!(pool.worker_pids().is_empty());
    /// ```
    pub fn kill_workers(&self) {
        #[cfg(unix)]
        self.inner.signal_workers(libc::SIGKILL);
        self.inner.shutdown(true, true);
    }

    /// The process ids of the workers serving right now.
    ///
    /// ```
    /// fn pid(_: ()) -> u32 {
    ///     std::process::id()
    /// }
    /// let pool = taskweave_process::ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// let worker = pool.submit(pid, ()).result(None).unwrap();
    /// assert_eq!(pool.worker_pids(), vec![worker]);
    /// ```
    pub fn worker_pids(&self) -> Vec<u32> {
        self.inner
            .lock()
            .slots
            .iter()
            .filter_map(|s| s.pid)
            .collect()
    }

    /// The number of worker processes the pool runs at most.
    ///
    /// ```
    /// let pool = taskweave_process::ProcessPoolExecutor::builder().max_workers(3).build().unwrap();
    /// assert_eq!(pool.max_workers(), 3);
    /// ```
    pub fn max_workers(&self) -> usize {
        self.inner.config.max_workers
    }

    /// The error that broke the pool, if it is broken.
    ///
    /// ```
    /// let pool = taskweave_process::ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// assert!(pool.broken().is_none());
    /// ```
    pub fn broken(&self) -> Option<Error> {
        self.inner.lock().broken.clone()
    }

    /// Counters of the pool's work so far, for progress reports.
    ///
    /// ```
    /// use taskweave_process::ProcessPoolExecutor;
    ///
    /// fn one(_: ()) -> u8 {
    ///     1
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// pool.submit(one, ()).result(None).unwrap();
    /// let stats = pool.stats();
    /// assert_eq!((stats.submitted, stats.succeeded), (1, 1));
    /// ```
    pub fn stats(&self) -> Stats {
        let s = &self.inner.stats;
        let (queued, running) = {
            let st = self.inner.lock();
            let running: usize = st.slots.iter().map(|s| s.in_flight.len()).sum();
            (st.queue.len() as u64, running as u64)
        };
        Stats {
            submitted: s.submitted.load(Ordering::Relaxed),
            succeeded: s.succeeded.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            cancelled: s.cancelled.load(Ordering::Relaxed),
            queued,
            running,
            workers_started: s.workers_started.load(Ordering::Relaxed),
            worker_deaths: s.worker_deaths.load(Ordering::Relaxed),
        }
    }
}

impl Drop for ProcessPoolExecutor {
    fn drop(&mut self) {
        let (pending, unfinished, alive) = {
            let st = self.inner.lock();
            let n = st.queue.len() + st.slots.iter().map(|s| s.in_flight.len()).sum::<usize>();
            ((!st.shutdown).then_some(n), n, st.alive)
        };
        if alive == 0 {
            // Every supervising thread has ended (after `shutdown_async`, say): joining them
            // waits for nothing.
            self.inner.join_threads();
            return;
        }
        if unfinished == 0 && taskweave_core::strict::in_task_poll() {
            // All work is done: the workers exit and are reaped in the background, so async
            // code need not wait for them (and no blocking wait is attempted, or reported).
            self.inner.shutdown(false, false);
            return;
        }
        if let Some(n) = pending.filter(|n| *n > 0) {
            instrument::executor_event(&ExecutorEvent::DroppedWithPending {
                executor: EXECUTOR_NAME,
                pending: n,
            });
        }
        self.inner.shutdown(true, false);
    }
}

impl std::fmt::Debug for ProcessPoolExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessPoolExecutor")
            .field("max_workers", &self.inner.config.max_workers)
            .field("workers", &self.worker_pids())
            .finish()
    }
}

/// `run_in_executor(&pool, f as fn() -> R)`: the seed's `loop.run_in_executor(ProcessPoolExecutor(),
/// f)`. Only plain functions can run in another process, so `F` is a function pointer; write
/// `f as fn() -> R`, since trait selection does not turn a function item into a pointer.
///
/// ```
/// use taskweave_bridge::run_in_executor;
/// use taskweave_process::ProcessPoolExecutor;
///
/// fn answer() -> u32 {
///     42
/// }
///
/// let pool = ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
/// let got = taskweave_core::run(async {
///     run_in_executor(&pool, answer as fn() -> u32).await
/// });
/// assert_eq!(got.unwrap().unwrap(), 42);
/// ```
impl<R: Payload> taskweave_executor::Runs<fn() -> R> for ProcessPoolExecutor {
    type Output = R;

    #[track_caller]
    fn run(&self, f: fn() -> R) -> Promise<R> {
        self.call(f)
    }
}

impl taskweave_executor::Executor for ProcessPoolExecutor {
    #[track_caller]
    fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Promise<R> {
        ProcessPoolExecutor::submit(self, f, arg)
    }

    fn map_with<A, R, I>(&self, f: fn(A) -> R, inputs: I, options: MapOptions) -> Map<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        ProcessPoolExecutor::map_with(self, f, inputs, options)
    }

    fn map_unordered_with<A, R, I>(
        &self,
        f: fn(A) -> R,
        inputs: I,
        options: MapOptions,
    ) -> MapUnordered<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        ProcessPoolExecutor::map_unordered_with(self, f, inputs, options)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        ProcessPoolExecutor::shutdown(self, wait, cancel_futures);
    }
}
