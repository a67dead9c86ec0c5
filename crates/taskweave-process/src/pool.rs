//! The public face of the pool: [`ProcessPoolExecutor`], its [`Builder`] and [`Stats`].
//!
//! One `submit` reads straight down: the function becomes a reference through its trampoline
//! (`worker::trampoline`), the argument a call frame (`wire`), the call a [`Job`] with a
//! promise's sink (`job`), and `shared` queues it or writes it to an idle worker. A slot's
//! threads (`slot`) take it from there, and the reply settles the promise through the sink.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use taskweave_core::instrument::{self, ExecutorEvent};
use taskweave_core::{Error, Promise, TaskInfo};
use taskweave_executor::{Dispatch, Map, MapOptions, MapUnordered, Payload, Queued};

use crate::map::ProcessMap;
use crate::options::CallOptions;
use crate::shared::{Config, EXECUTOR_NAME, Inner, sigkill};
use crate::wire::{self, FnRef};
use crate::worker::trampoline::{self, InitResult};

/// The most workers a pool may have.
const MAX_WORKERS: usize = 4096;

/// The smallest frame limit: room for a call header and a small argument.
const MIN_FRAME: usize = 64;

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
/// Work is a function of this executable (a `fn` item, a closure that captures nothing, or a
/// `fn(A) -> R` pointer) with serialisable `A` and `R` ([`Payload`]). [`submit`](Self::submit)
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
    pub(crate) inner: Arc<Inner>,
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
    /// Set by `worker_args` (in `named.rs`).
    pub(crate) args: Option<Vec<std::ffi::OsString>>,
    /// Set by `named_worker_program` (in `named.rs`): workers are another build.
    pub(crate) named_only: bool,
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
    /// `initargs`). `f` returns `()` or `Result<(), E>`; an `Err` or a panic breaks the pool: its
    /// futures then fail with [`ErrorKind::Broken`](taskweave_core::ErrorKind::Broken) carrying the
    /// initializer's error.
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
    /// assert!(err.is_broken());
    /// ```
    pub fn initializer<A: Payload, O: InitResult + 'static>(
        mut self,
        f: fn(A) -> O,
        arg: A,
    ) -> Builder {
        let made = match trampoline::init_ref(f, self.secret) {
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
    /// Default: 1 GiB.
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
    /// assert!(err.is_wire());
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
        self.named_only = false;
        self
    }

    /// Sets the program workers run; used by `named_worker_program`.
    pub(crate) fn set_program(&mut self, program: PathBuf) {
        self.program = Some(program);
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
    /// [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) naming the argument for
    /// `max_workers` of 0 or above 4096, `max_tasks_per_child(0)`, a `max_frame` below 64 bytes or
    /// above `u32::MAX`, a zero `handshake_timeout`, a `worker_program` or
    /// `named_worker_program` that is not a file, an initializer that is not a function of this
    /// executable, or an initializer with a `named_worker_program`;
    /// [`ErrorKind::Wire`](taskweave_core::ErrorKind::Wire) for an initializer argument that cannot
    /// be serialised; [`ErrorKind::Broken`](taskweave_core::ErrorKind::Broken) if threads cannot be
    /// created.
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
        if let Some(program) = &self.program
            && !std::fs::metadata(program).is_ok_and(|m| m.is_file())
        {
            let option = if self.named_only {
                "named_worker_program"
            } else {
                "worker_program"
            };
            return Err(Error::refused(format!(
                "{option} {} is not a file",
                program.display()
            )));
        }
        if self.named_only && self.initializer.is_some() {
            return Err(Error::refused(crate::image::no_initializer_in_other_build()));
        }
        let initializer = self.initializer.transpose()?;
        let config = Config {
            max_workers,
            max_tasks_per_child: self.max_tasks_per_child,
            initializer,
            max_frame: self.max_frame,
            program: self.program.unwrap_or_else(crate::spawn::default_program),
            args: self.args,
            named_only: self.named_only,
            handshake_timeout: self.handshake_timeout,
        };
        let inner = Arc::new(Inner::new(config, self.secret, max_workers));
        let pool = ProcessPoolExecutor { inner };
        for slot in 0..max_workers {
            let inner = pool.inner.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("taskweave-process-{slot}"))
                .spawn(move || crate::slot::slot_main(inner, slot));
            match spawned {
                Ok(h) => pool.inner.add_thread(h),
                Err(e) => {
                    let err = Error::broken(format!("cannot start a pool thread: {e}"));
                    pool.inner.threads_not_started(slot);
                    pool.inner.break_pool(err.clone());
                    return Err(err);
                }
            }
        }
        Ok(pool)
    }
}

fn outside_image() -> Error {
    Error::refused(crate::image::not_in_code())
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
            args: None,
            named_only: false,
            handshake_timeout: Duration::from_secs(30),
            secret: crate::image::random_secret(),
        }
    }

    /// Runs `f(arg)` in a worker process and returns its future.
    ///
    /// `f` is what a worker can find again in its own copy of the executable: a `fn` item
    /// (`square`, `mycrate::square`), a closure that captures nothing (`|x: u64| x * x`), or a
    /// `fn(A) -> R` pointer. Errors name it by its path
    /// (`task 'task 3 (mycrate::square) in worker pid 41' panicked: …`), a closure by the function it is written in, a pointer only by its
    /// type. A closure that captures is refused: a worker process has none of the captured
    /// values. One larger than a pointer fails to build ("a process pool runs functions, not
    /// closures that capture"); one the size of a pointer (a single reference, say) gets a
    /// future that fails with [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) saying
    /// the same. Pass the data as `arg` instead.
    ///
    /// ```compile_fail
    /// # let pool = taskweave_process::ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// let (a, b) = (1u64, 2u64);
    /// // Captures two `u64`s: refused when the program is built.
    /// pool.submit(move |x: u64| x + a + b, 1);
    /// ```
    ///
    /// Never blocks. The future fails with
    /// [`ErrorKind::Panicked`](taskweave_core::ErrorKind::Panicked) (message and the worker's
    /// backtrace) if `f` panics, [`ErrorKind::WorkerDied`](taskweave_core::ErrorKind::WorkerDied)
    /// if the worker died running it (killed, aborted or exited; the pool replaces the worker and
    /// keeps serving), [`ErrorKind::Wire`](taskweave_core::ErrorKind::Wire) if `arg` cannot be
    /// serialised or the result cannot be carried back,
    /// [`ErrorKind::Shutdown`](taskweave_core::ErrorKind::Shutdown) after shutdown,
    /// [`ErrorKind::Broken`](taskweave_core::ErrorKind::Broken) if the pool is broken, and
    /// [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) if `f` is not a function of the
    /// main executable or is a closure that captures.
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
    /// // A closure that captures nothing runs in a worker too.
    /// assert_eq!(pool.submit(|x: u64| x * x, 7).result(None).unwrap(), 49);
    /// let got = taskweave_core::run(async move { pool.submit(shout, "hi".to_string()).await });
    /// assert_eq!(got.unwrap().unwrap(), "HI");
    /// ```
    #[track_caller]
    pub fn submit<F, A, R>(&self, f: F, arg: A) -> Promise<R>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Payload,
        R: Payload,
    {
        self.submit_with(f, arg, CallOptions::new())
    }

    /// As [`submit`](Self::submit), with per-call [`CallOptions`] (a timeout).
    ///
    /// With a timeout, a call that runs longer than it in its worker ends that worker (`SIGKILL`):
    /// the future fails with [`ErrorKind::TimedOut`](taskweave_core::ErrorKind::TimedOut) and a
    /// fresh worker takes the worker's place, as pebble's `schedule(timeout=)` does. Time spent
    /// queued does not count.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit), plus
    /// [`ErrorKind::TimedOut`](taskweave_core::ErrorKind::TimedOut) for an overdue call and
    /// [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) for a zero timeout.
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
    pub fn submit_with<F, A, R>(&self, f: F, arg: A, options: CallOptions) -> Promise<R>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Payload,
        R: Payload,
    {
        let fref = trampoline::as_fn(&f).map(|f| trampoline::call_ref(f, self.inner.secret));
        self.submit_ref::<A, R>(fref, &arg, trampoline::work_name::<F>(), options)
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
    pub fn call<F, R>(&self, f: F) -> Promise<R>
    where
        F: Fn() -> R + Copy + 'static,
        R: Payload,
    {
        let fref = trampoline::as_thunk(&f).map(|f| trampoline::thunk_ref(f, self.inner.secret));
        self.submit_ref::<(), R>(fref, &(), trampoline::work_name::<F>(), CallOptions::new())
    }

    /// Queues a call of the function `fref` names (`Ok(None)`: one outside the executable's
    /// code; `Err`: one that cannot be sent at all) with `arg`, as `name`.
    #[track_caller]
    fn submit_ref<A: Serialize, R: Payload>(
        &self,
        fref: Result<Option<FnRef>, Error>,
        arg: &A,
        name: String,
        options: CallOptions,
    ) -> Promise<R> {
        let (promise, resolver) = Promise::pending_with(TaskInfo::executor(name.as_str()));
        if let Err(e) = options.check() {
            resolver.set_error(e);
            return promise;
        }
        let inner = &*self.inner;
        let id = inner.next_id();
        let what: Arc<str> = format!("task {id} ({name})").into();
        if inner.config.named_only {
            resolver.set_error(Error::refused(crate::image::other_build()));
            return promise;
        }
        let fref = match fref {
            Ok(Some(fref)) => fref,
            Ok(None) => {
                resolver.set_error(outside_image());
                return promise;
            }
            Err(e) => {
                resolver.set_error(e);
                return promise;
            }
        };
        let frame = match wire::encode_call(id, fref, arg, inner.config.max_frame, &what) {
            Ok(frame) => frame,
            Err(e) => {
                resolver.set_error(e);
                return promise;
            }
        };
        inner.enqueue_call(id, frame, what, resolver, options.limit());
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
    pub fn map<F, A, R, I>(&self, f: F, inputs: I) -> Map<R>
    where
        F: Fn(A) -> R + Copy + 'static,
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
    /// [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) instead of raising `ValueError`.
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
    pub fn map_with<F, A, R, I>(&self, f: F, inputs: I, options: MapOptions) -> Map<R>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        self.map_with_calls(f, inputs, options, CallOptions::new())
    }

    /// [`map_with`](Self::map_with), with [`CallOptions`] for every call the map makes (one per
    /// chunk): with a call timeout, a chunk that runs longer than it in its worker ends that worker
    /// and its items fail with [`ErrorKind::TimedOut`](taskweave_core::ErrorKind::TimedOut), while
    /// the other chunks go on (as pebble's `map(timeout=)`). [`MapOptions::timeout`] is something
    /// else: a limit on the whole map, counted from its start, as in Python.
    ///
    /// # Errors
    ///
    /// As [`map_with`](Self::map_with), plus
    /// [`ErrorKind::TimedOut`](taskweave_core::ErrorKind::TimedOut) for the items of an overdue
    /// chunk and [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) for every item with a
    /// zero call timeout.
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
    pub fn map_with_calls<F, A, R, I>(
        &self,
        f: F,
        inputs: I,
        options: MapOptions,
        calls: CallOptions,
    ) -> Map<R>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        Map::new(self.dispatcher_of(f, calls), inputs, options)
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
    pub fn map_unordered<F, A, R, I>(&self, f: F, inputs: I) -> MapUnordered<R>
    where
        F: Fn(A) -> R + Copy + 'static,
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
    pub fn map_unordered_with<F, A, R, I>(
        &self,
        f: F,
        inputs: I,
        options: MapOptions,
    ) -> MapUnordered<R>
    where
        F: Fn(A) -> R + Copy + 'static,
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
    pub fn map_unordered_with_calls<F, A, R, I>(
        &self,
        f: F,
        inputs: I,
        options: MapOptions,
        calls: CallOptions,
    ) -> MapUnordered<R>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        MapUnordered::new(self.dispatcher_of(f, calls), inputs, options)
    }

    /// The dispatcher of a map of `f` whose calls take `calls`.
    fn dispatcher_of<F, A, R>(&self, f: F, calls: CallOptions) -> ProcessMap<A, R>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Payload,
        R: Payload,
    {
        let fref = trampoline::as_fn(&f).map(|f| trampoline::call_ref(f, self.inner.secret));
        ProcessMap::new(
            self.inner.clone(),
            fref,
            &trampoline::work_name::<F>(),
            calls,
        )
    }

    /// Stops taking work; submissions afterwards fail with
    /// [`ErrorKind::Shutdown`](taskweave_core::ErrorKind::Shutdown).
    ///
    /// The two bools mirror Python's `shutdown(wait=True, cancel_futures=False)`, so code
    /// ported from Python reads the same; [`shutdown_async`](Self::shutdown_async) names its
    /// choice with [`Queued`] instead.
    ///
    /// With `cancel_futures`, queued calls are cancelled
    /// ([`ErrorKind::Cancelled`](taskweave_core::ErrorKind::Cancelled)); otherwise they still run.
    /// With `wait`, blocks until every worker has finished its work, exited and been reaped;
    /// without, returns at once and the pool winds down in the background. Inside an async task
    /// `wait` is skipped (blocking there could stall the runtime): await the futures instead.
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
    /// assert!(pool.submit(id, 1).result(None).as_ref().is_err_and(|e| e.is_shutdown()));
    /// ```
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.inner.shutdown(wait, cancel_futures);
    }

    /// Shuts down like [`shutdown`](Self::shutdown) and waits, without blocking the runtime,
    /// until every worker has finished its work, exited and been reaped. `queued` says what
    /// becomes of calls not yet started: [`Queued::Run`] runs them first, [`Queued::Cancel`]
    /// cancels them ([`ErrorKind::Cancelled`](taskweave_core::ErrorKind::Cancelled)).
    ///
    /// Once it has returned, dropping the pool waits for nothing.
    ///
    /// ```
    /// use taskweave_process::{ProcessPoolExecutor, Queued};
    ///
    /// fn id(x: u8) -> u8 {
    ///     x
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// taskweave_core::run(async move {
    ///     let p = pool.submit(id, 5);
    ///     pool.shutdown_async(Queued::Run).await;
    ///     assert_eq!(p.await.unwrap(), 5);
    ///     assert!(pool.worker_pids().is_empty());
    /// })
    /// .unwrap();
    /// ```
    pub async fn shutdown_async(&self, queued: Queued) {
        self.inner.shutdown(false, queued.cancels());
        if let Some(stopped) = self.inner.stopped() {
            let _ = stopped.await;
        }
    }

    /// Shuts down and lets queued and running work finish for up to `timeout`; then cancels what is
    /// still queued and kills (`SIGKILL`) the workers still running calls, which fail with
    /// [`ErrorKind::WorkerDied`](taskweave_core::ErrorKind::WorkerDied). Returns `true` if
    /// everything finished in time.
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
                self.inner.signal_workers(sigkill());
            }
            return false;
        }
        let in_time = self.inner.stop_within(timeout);
        self.inner.join_threads();
        in_time
    }

    /// Shuts the pool down, cancelling queued work, and terminates every worker with `SIGTERM`
    /// (Python 3.14's `terminate_workers`). Running calls fail with
    /// [`ErrorKind::WorkerDied`](taskweave_core::ErrorKind::WorkerDied). Returns once every worker
    /// is reaped (except inside an async task, see [`shutdown`](Self::shutdown)).
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
            ((!st.shutdown).then_some(n), n, st.alive())
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

/// `run_in_executor(&pool, f)`: asyncio's `loop.run_in_executor(ProcessPoolExecutor(), f)`.
///
/// Only a plain function can be found again in another process, so `f` is what
/// [`call`](ProcessPoolExecutor::call) takes: a `fn` item, a closure that captures nothing, or a
/// `fn() -> R` pointer. A closure that captures is refused when the program is built (see
/// [`submit`](ProcessPoolExecutor::submit)); pass its data as the argument of `submit` instead.
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
///     let a = run_in_executor(&pool, answer).await?;
///     let b = run_in_executor(&pool, || 7u32).await?;
///     Ok::<_, taskweave_core::Error>(a + b)
/// });
/// assert_eq!(got.unwrap().unwrap(), 49);
/// ```
impl<F, R> taskweave_executor::Runs<F> for ProcessPoolExecutor
where
    F: Fn() -> R + Copy + 'static,
    R: Payload,
{
    type Output = R;

    #[track_caller]
    fn run(&self, f: F) -> Promise<R> {
        self.call(f)
    }
}

/// Through the trait `f` is a function pointer, which carries no name: a panic names the work
/// by its type (`fn(u64) -> u64`). The inherent [`submit`](ProcessPoolExecutor::submit) names
/// the function itself.
impl taskweave_executor::Executor for ProcessPoolExecutor {
    #[track_caller]
    fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Promise<R> {
        ProcessPoolExecutor::submit(self, f, arg)
    }

    fn dispatcher<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
    ) -> impl Dispatch<Input = A, Output = R> {
        self.dispatcher_of(f, CallOptions::new())
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        ProcessPoolExecutor::shutdown(self, wait, cancel_futures);
    }
}
