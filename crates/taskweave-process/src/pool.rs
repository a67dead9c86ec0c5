//! [`ProcessPoolExecutor`], its [`Builder`], and the shared state its slot threads work on.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use taskweave_core::instrument::{self, ExecutorEvent};
use taskweave_core::{Error, Promise, TaskInfo};
use taskweave_executor::{Map, MapOptions, MapUnordered, Payload};

use crate::image;
use crate::job::{
    InitResult, InitTrampoline, Job, PromiseSink, Reply, Trampoline, run_chunk, run_init, run_thunk,
};
use crate::map::ProcessMap;
use crate::wire::{self, FnRef};

/// The largest call written directly from the submitting thread (see `Inner::try_direct`).
const DIRECT_MAX: usize = 16 * 1024;

/// The executor name in debug events.
pub(crate) const EXECUTOR_NAME: &str = "ProcessPoolExecutor";

pub(crate) struct Config {
    pub(crate) max_workers: usize,
    pub(crate) max_tasks_per_child: Option<u64>,
    pub(crate) initializer: Option<(FnRef, Vec<u8>)>,
    pub(crate) max_frame: usize,
    pub(crate) program: PathBuf,
    pub(crate) handshake_timeout: Duration,
    /// Submitting threads may write to idle workers' pipes: only when SIGPIPE is ignored, so a
    /// worker that just died cannot kill the submitting process.
    pub(crate) direct_writes: bool,
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
}

pub(crate) struct State {
    pub(crate) queue: VecDeque<Job>,
    pub(crate) shutdown: bool,
    pub(crate) broken: Option<Error>,
    pub(crate) slots: Vec<SlotState>,
    pub(crate) start_failures: u32,
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
                job.sink.finish(Reply::Failed(e));
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
        if !self.config.direct_writes || !st.queue.is_empty() || job.frame.len() > DIRECT_MAX {
            return Err((st, job));
        }
        let quota = self.config.max_tasks_per_child;
        let idle = st.slots.iter().position(|s| {
            s.writer.is_some()
                && !s.ended
                && s.in_flight.is_empty()
                && quota.is_none_or(|q| s.sent < q)
        });
        let Some(slot) = idle else {
            return Err((st, job));
        };
        let Some(pipe) = st.slots[slot].writer.clone() else {
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
        let s = &mut st.slots[slot];
        s.sent += 1;
        s.in_flight.push_back(job);
        drop(st);
        // A failed write means the worker died; its reader settles the call.
        let _ = std::io::Write::write_all(&mut *file, &frame);
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
            job.sink.finish(Reply::Failed(error.clone()));
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
            job.sink.finish(Reply::Failed(Error::cancelled(Some(
                "the process pool was shut down with cancel_futures".into(),
            ))));
        }
        if wait
            && taskweave_core::strict::check_blocking_wait("ProcessPoolExecutor::shutdown(wait)")
                .is_ok()
        {
            self.join_threads();
        }
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

    fn signal_workers(&self, signal: i32) {
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
/// [`shutdown`](Self::shutdown) for other choices.
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
    /// Default: workers live as long as the pool.
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
                .map_err(|e| Error::wire("initializer argument", e.to_string())),
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
    pub fn max_frame(mut self, bytes: usize) -> Builder {
        self.max_frame = bytes.clamp(64, u32::MAX as usize);
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
    /// [`Error::Refused`] for `max_workers(0)`, an initializer that is not a function of this
    /// executable, or an initializer argument that cannot be serialised ([`Error::Wire`]);
    /// [`Error::Broken`] if threads cannot be created.
    ///
    /// ```
    /// use taskweave_process::ProcessPoolExecutor;
    /// assert!(ProcessPoolExecutor::builder().max_workers(0).build().is_err());
    /// ```
    pub fn build(self) -> Result<ProcessPoolExecutor, Error> {
        let max_workers = match self.max_workers {
            Some(0) => return Err(Error::refused("max_workers must be at least 1")),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let initializer = self.initializer.transpose()?;
        let config = Config {
            max_workers,
            max_tasks_per_child: self.max_tasks_per_child,
            initializer,
            max_frame: self.max_frame,
            program: self.program.unwrap_or_else(crate::spawn::default_program),
            handshake_timeout: self.handshake_timeout,
            direct_writes: sigpipe_ignored(),
        };
        let inner = Arc::new(Inner {
            config,
            secret: self.secret,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                shutdown: false,
                broken: None,
                slots: (0..max_workers)
                    .map(|_| SlotState {
                        thread_alive: true,
                        ..SlotState::default()
                    })
                    .collect(),
                start_failures: 0,
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
                    pool.inner.break_pool(err.clone());
                    return Err(err);
                }
            }
        }
        Ok(pool)
    }
}

/// `true` if this process ignores SIGPIPE (Rust programs do, unless they opt out).
fn sigpipe_ignored() -> bool {
    #[cfg(unix)]
    {
        // SAFETY: querying the disposition only (no new action), into a zeroed struct.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
        }
    }
    #[cfg(not(unix))]
    false
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
    postcard::to_io(arg, crate::bytes::FrameWriter(&mut frame))
        .map_err(|e| Error::wire(format!("argument of {what}"), e.to_string()))?;
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
        let tramp = run_chunk::<A, R> as Trampoline as usize;
        self.submit_ref::<A, R>(f as usize, tramp, &arg, std::any::type_name::<fn(A) -> R>())
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
        self.submit_ref::<(), R>(f as usize, tramp, &(), std::any::type_name::<fn() -> R>())
    }

    #[track_caller]
    fn submit_ref<A: Serialize, R: Payload>(
        &self,
        func: usize,
        trampoline: usize,
        arg: &A,
        name: &'static str,
    ) -> Promise<R> {
        let (promise, resolver) = Promise::pending_with(TaskInfo::executor(name));
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
        Map::new(ProcessMap::new(self.inner.clone(), f), inputs, options)
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
        MapUnordered::new(ProcessMap::new(self.inner.clone(), f), inputs, options)
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
        let pending = {
            let st = self.inner.lock();
            if st.shutdown {
                None
            } else {
                let n = st.queue.len() + st.slots.iter().map(|s| s.in_flight.len()).sum::<usize>();
                Some(n)
            }
        };
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
