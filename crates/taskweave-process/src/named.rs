//! Registered functions by name: the pool's half of named calls (the worker's is
//! `worker/named.rs`), and pools whose workers run another build's program.
//!
//! A named call carries the function's registered name (`#[taskweave::remote]`, kept by
//! `taskweave-registry`) and the hash of the signature the caller expects, instead of a code
//! offset, so any build that registers the name with the same types can run it. Each argument
//! travels behind its own length, because the worker decodes it through the registry's
//! trampoline, which takes one argument's bytes.

use std::ffi::OsString;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use taskweave_core::{Error, Promise, TaskInfo};
use taskweave_executor::{Chunk, Dispatch, Map, MapOptions, MapUnordered, Payload};
use taskweave_registry::Signature;

use crate::map::EncodedChunk;
use crate::options::CallOptions;
use crate::pool::{Builder, ProcessPoolExecutor};
use crate::shared::Inner;
use crate::wire;

fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > wire::MAX_NAME {
        return Err(Error::refused(format!(
            "a remote function name must be 1 to {} bytes long, got {} bytes",
            wire::MAX_NAME,
            name.len()
        )));
    }
    Ok(())
}

fn argument_error<A: Serialize>(what: &str, arg: &A, e: Option<postcard::Error>) -> Error {
    Error::wire(what.to_owned(), argument_detail(arg, e))
}

/// Why `arg` could not be encoded as a named call's argument.
fn argument_detail<A: Serialize>(arg: &A, e: Option<postcard::Error>) -> String {
    match e {
        Some(e) => wire::serialise_failure(arg, &e),
        None => "a serialised argument may be at most 4 GiB".to_owned(),
    }
}

impl Builder {
    /// Runs workers from `program`, a program of another build that registers the functions
    /// this pool calls by name (`#[taskweave::remote]`): for example a separate worker binary,
    /// or an older or newer build of this one.
    ///
    /// The program calls [`become_worker_if_spawned`](crate::become_worker_if_spawned) first in
    /// `main` (or uses `#[taskweave::main]`), which also makes sure the worker is linked into a
    /// program that otherwise only registers functions. The handshake then checks the protocol and registry versions instead of the build identity,
    /// and the pool makes only by-name calls: [`submit_remote`](ProcessPoolExecutor::submit_remote),
    /// [`submit_named`](ProcessPoolExecutor::submit_named), [`map_remote`](ProcessPoolExecutor::map_remote)
    /// and [`map_named`](ProcessPoolExecutor::map_named). An offset call (`submit`, `call`,
    /// `map`, `run_in_executor`) to such a pool fails with
    /// [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused), and a name the program does
    /// not register, or registers with other types, fails that call with
    /// [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) naming both sides.
    ///
    /// The program starts with no arguments unless [`worker_args`](Self::worker_args) gives
    /// some. This replaces [`worker_program`](Self::worker_program) (the last call wins).
    ///
    /// # Errors
    ///
    /// [`build`](Self::build) refuses a path that is not a file and an
    /// [`initializer`](Self::initializer) (it travels as a code offset). A program that is not a
    /// taskweave worker, or speaks another protocol version, breaks the pool at its first
    /// worker, with [`ErrorKind::Broken`](taskweave_core::ErrorKind::Broken) saying why.
    ///
    /// ```
    /// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::cube")]
    /// fn cube(x: u64) -> u64 {
    ///     x * x * x
    /// }
    ///
    /// // Here the other program is this very one; typically it is a worker binary of its own.
    /// let pool = taskweave_process::ProcessPoolExecutor::builder()
    ///     .named_worker_program(std::env::current_exe().unwrap())
    ///     .max_workers(1)
    ///     .build()
    ///     .unwrap();
    /// assert!(pool.is_named_only());
    /// assert_eq!(pool.submit_remote(cube, 3).result(None).unwrap(), 27);
    /// assert!(pool.submit(cube, 3).result(None).unwrap_err().is_refused());
    /// ```
    pub fn named_worker_program(mut self, program: impl Into<PathBuf>) -> Builder {
        self.set_program(program.into());
        self.named_only = true;
        self
    }

    /// The arguments each worker process is started with. Default: this process's own arguments
    /// for workers of this program (they never reach its `main`), none for a
    /// [`named_worker_program`](Self::named_worker_program).
    ///
    /// ```
    /// let pool = taskweave_process::ProcessPoolExecutor::builder()
    ///     .worker_args(["--worker", "--quiet"])
    ///     .max_workers(1)
    ///     .build()
    ///     .unwrap();
    /// fn two(_: ()) -> u8 {
    ///     2
    /// }
    /// assert_eq!(pool.submit(two, ()).result(None).unwrap(), 2);
    /// ```
    pub fn worker_args<I, S>(mut self, args: I) -> Builder
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args = Some(args.into_iter().map(Into::into).collect());
        self
    }
}

impl ProcessPoolExecutor {
    /// `true` if the workers run another build's program
    /// ([`Builder::named_worker_program`]), so only by-name calls can run.
    ///
    /// ```
    /// let pool = taskweave_process::ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// assert!(!pool.is_named_only());
    /// ```
    pub fn is_named_only(&self) -> bool {
        self.inner.config.named_only
    }

    /// Runs the registered function `f` (marked `#[taskweave::remote]`) in a worker, sending it
    /// by its registered name rather than as a code offset, so the worker may be another build
    /// ([`Builder::named_worker_program`]). On a pool of this program's own workers it runs
    /// like [`submit`](Self::submit), through the registry.
    ///
    /// Never blocks.
    ///
    /// # Errors
    ///
    /// Carried by the promise: [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) when `f`
    /// is not registered in this program, or the worker does not register its name or registers
    /// it with other types (the message names both signatures); otherwise as
    /// [`submit`](Self::submit) (a panic, a dead worker, a wire error, shutdown, a broken pool).
    ///
    /// ```
    /// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::square")]
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// let pool = taskweave_process::ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// let got = taskweave_core::run(async move { pool.submit_remote(square, 7).await });
    /// assert_eq!(got.unwrap().unwrap(), 49);
    /// ```
    #[track_caller]
    pub fn submit_remote<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Promise<R> {
        match taskweave_registry::by_fn(f) {
            Ok(entry) => self.submit_named_with(entry.name(), arg, CallOptions::new()),
            Err(e) => {
                let info = TaskInfo::executor(std::any::type_name::<fn(A) -> R>());
                let (promise, resolver) = Promise::pending_with(info);
                resolver.set_error(Error::refused(e.to_string()));
                promise
            }
        }
    }

    /// Runs the function registered as `name` in a worker; this program need not register it
    /// (its workers may be another build). `A` and `R` must be the types the worker registers.
    ///
    /// # Errors
    ///
    /// As [`submit_remote`](Self::submit_remote); an empty name or one longer than 65535 bytes
    /// is [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused).
    ///
    /// ```
    /// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::shout")]
    /// fn shout(s: String) -> String {
    ///     s.to_uppercase()
    /// }
    ///
    /// let pool = taskweave_process::ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// let loud: String = pool.submit_named("doc::shout", "hi".to_string()).result(None).unwrap();
    /// assert_eq!(loud, "HI");
    /// let err = pool.submit_named::<u8, u8>("doc::nothing", 1).result(None).unwrap_err();
    /// assert!(err.is_refused());
    /// ```
    #[track_caller]
    pub fn submit_named<A: Payload, R: Payload>(&self, name: &str, arg: A) -> Promise<R> {
        self.submit_named_with(name, arg, CallOptions::new())
    }

    /// As [`submit_named`](Self::submit_named), with per-call [`CallOptions`] (a timeout, as
    /// for [`submit_with`](Self::submit_with)).
    ///
    /// # Errors
    ///
    /// As [`submit_named`](Self::submit_named), plus
    /// [`ErrorKind::TimedOut`](taskweave_core::ErrorKind::TimedOut) for an overdue call.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskweave_process::{CallOptions, ProcessPoolExecutor};
    ///
    /// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::nap")]
    /// fn nap(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// let options = CallOptions::new().timeout(Duration::from_millis(100));
    /// let err = pool.submit_named_with::<u64, u64>("doc::nap", 60_000, options).result(None);
    /// assert!(err.unwrap_err().is_timeout());
    /// ```
    #[track_caller]
    pub fn submit_named_with<A: Payload, R: Payload>(
        &self,
        name: &str,
        arg: A,
        options: CallOptions,
    ) -> Promise<R> {
        let (promise, resolver) = Promise::pending_with(TaskInfo::executor(name));
        if let Err(e) = options.check().and_then(|()| check_name(name)) {
            resolver.set_error(e);
            return promise;
        }
        let inner = &*self.inner;
        let id = inner.next_id();
        let what: Arc<str> = format!("task {id} (remote `{name}`)").into();
        let signature = Signature::of::<A, R>();
        let caller = signature.to_string();
        let mut frame = Vec::with_capacity(wire::NAMED_HEADER + name.len() + caller.len() + 24);
        let start = wire::begin_named_call(&mut frame, id, signature.hash, 1, name, &caller);
        let argument = format!("argument of {what}");
        let encoded = wire::push_named_item(&mut frame, &arg)
            .map_err(|e| argument_error(&argument, &arg, e))
            .and_then(|()| {
                wire::finish(&mut frame, start, inner.config.max_frame)
                    .map_err(|e| Error::wire(argument.clone(), e.to_string()))
            });
        if let Err(e) = encoded {
            resolver.set_error(e);
            return promise;
        }
        inner.enqueue_call(id, frame, what, resolver, options.limit());
        promise
    }

    /// Runs the registered function `f` over `inputs` in workers, by its registered name, and
    /// yields the results in input order: [`map`](Self::map) for registered functions, which
    /// also works on a pool of another build's workers.
    ///
    /// # Errors
    ///
    /// Per item, as [`submit_remote`](Self::submit_remote): if `f` is not registered here, or
    /// the workers refuse its name or signature, every item is
    /// [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused).
    ///
    /// ```
    /// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::double")]
    /// fn double(x: u32) -> u32 {
    ///     2 * x
    /// }
    ///
    /// let pool = taskweave_process::ProcessPoolExecutor::builder().max_workers(2).build().unwrap();
    /// let out: Vec<u32> = pool.map_remote(double, 0..10).map(Result::unwrap).collect();
    /// assert_eq!(out[9], 18);
    /// ```
    pub fn map_remote<A, R, I>(&self, f: fn(A) -> R, inputs: I) -> Map<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        self.map_remote_with(f, inputs, MapOptions::new())
    }

    /// [`map_remote`](Self::map_remote) with [`MapOptions`] (chunksize, window, timeout,
    /// progress).
    ///
    /// # Errors
    ///
    /// Per item, as [`map_remote`](Self::map_remote).
    ///
    /// ```
    /// use taskweave_process::{MapOptions, ProcessPoolExecutor};
    ///
    /// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::halve")]
    /// fn halve(x: u32) -> u32 {
    ///     x / 2
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(2).build().unwrap();
    /// let options = MapOptions::new().chunksize(50);
    /// let out: Vec<u32> = pool.map_remote_with(halve, 0..100, options).map(Result::unwrap).collect();
    /// assert_eq!(out[99], 49);
    /// ```
    pub fn map_remote_with<A, R, I>(&self, f: fn(A) -> R, inputs: I, options: MapOptions) -> Map<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        let name = taskweave_registry::by_fn(f)
            .map(|entry| entry.name())
            .map_err(|e| Error::refused(e.to_string()));
        Map::new(NamedMap::new(self.inner.clone(), name), inputs, options)
    }

    /// Runs the function registered as `name` over `inputs` and yields the results in input
    /// order; as [`map_remote`](Self::map_remote), for a name this program need not register.
    ///
    /// # Errors
    ///
    /// Per item, as [`submit_named`](Self::submit_named).
    ///
    /// ```
    /// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::inc")]
    /// fn inc(x: u32) -> u32 {
    ///     x + 1
    /// }
    ///
    /// let pool = taskweave_process::ProcessPoolExecutor::builder().max_workers(2).build().unwrap();
    /// let out: Vec<u32> = pool.map_named("doc::inc", 0..5u32).map(Result::unwrap).collect();
    /// assert_eq!(out, [1, 2, 3, 4, 5]);
    /// ```
    pub fn map_named<A, R, I>(&self, name: &str, inputs: I) -> Map<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        self.map_named_with(name, inputs, MapOptions::new())
    }

    /// [`map_named`](Self::map_named) with [`MapOptions`]: with a chunksize, one call carries
    /// that many inputs, and the worker resolves the name once per call.
    ///
    /// # Errors
    ///
    /// Per item, as [`submit_named`](Self::submit_named).
    ///
    /// ```
    /// use taskweave_process::{MapOptions, ProcessPoolExecutor};
    ///
    /// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::triple")]
    /// fn triple(x: u32) -> u32 {
    ///     3 * x
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(2).build().unwrap();
    /// let options = MapOptions::new().chunksize(100);
    /// let out: Vec<u32> =
    ///     pool.map_named_with("doc::triple", 0..1000u32, options).map(Result::unwrap).collect();
    /// assert_eq!(out[999], 2997);
    /// ```
    pub fn map_named_with<A, R, I>(&self, name: &str, inputs: I, options: MapOptions) -> Map<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        let name = check_name(name).map(|()| name);
        Map::new(NamedMap::new(self.inner.clone(), name), inputs, options)
    }

    /// As [`map_named_with`](Self::map_named_with), but yields `(input index, result)` as soon
    /// as each is done, whatever its position.
    ///
    /// # Errors
    ///
    /// Per item, as [`submit_named`](Self::submit_named).
    ///
    /// ```
    /// use taskweave_process::{MapOptions, ProcessPoolExecutor};
    ///
    /// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::negate")]
    /// fn negate(x: i32) -> i32 {
    ///     -x
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(2).build().unwrap();
    /// let map = pool.map_named_unordered_with("doc::negate", 0..10i32, MapOptions::new());
    /// for (i, r) in map {
    ///     let r: i32 = r.unwrap();
    ///     assert_eq!(r, -(i as i32));
    /// }
    /// ```
    pub fn map_named_unordered_with<A, R, I>(
        &self,
        name: &str,
        inputs: I,
        options: MapOptions,
    ) -> MapUnordered<R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        let name = check_name(name).map(|()| name);
        MapUnordered::new(NamedMap::new(self.inner.clone(), name), inputs, options)
    }
}

/// One named map's dispatcher: the pool, the function's name (or why there is none) and the
/// signature the caller expects; one named call per chunk.
struct NamedMap<A, R> {
    pool: Arc<Inner>,
    name: Result<Arc<str>, Error>,
    caller: String,
    hash: u64,
    what: Arc<str>,
    _types: PhantomData<fn(A) -> R>,
}

impl<A: Payload, R: Payload> NamedMap<A, R> {
    fn new(pool: Arc<Inner>, name: Result<&str, Error>) -> NamedMap<A, R> {
        let signature = Signature::of::<A, R>();
        let what = match &name {
            Ok(name) => format!("map of remote `{name}`"),
            Err(_) => format!("map of {signature}"),
        };
        NamedMap {
            pool,
            name: name.map(Arc::from),
            caller: signature.to_string(),
            hash: signature.hash,
            what: what.into(),
            _types: PhantomData,
        }
    }

    /// Encodes the chunk as one named call and queues it; inputs that cannot be encoded get
    /// their error in their place, and a chunk with nothing to send completes at once.
    fn send(&self, chunk: Chunk<A, R>) {
        let first = chunk.first_index();
        let len = chunk.len();
        let (items, results) = chunk.into_parts();
        let name = match &self.name {
            Ok(name) => name,
            Err(e) => {
                results.fail(e.clone());
                return;
            }
        };
        let id = self.pool.next_id();
        let mut frame = Vec::with_capacity(
            wire::NAMED_HEADER + name.len() + self.caller.len() + 20 * len.min(1024),
        );
        let start = wire::begin_named_call(&mut frame, id, self.hash, 0, name, &self.caller);
        let chunk = EncodedChunk {
            pool: &self.pool,
            id,
            frame,
            start,
            first,
            len,
            what: &self.what,
            timeout: None,
        };
        chunk.fill_and_queue(
            items,
            results,
            |frame, item| wire::push_named_item(frame, item).map_err(|e| argument_detail(item, e)),
            wire::set_named_call_count,
        );
    }
}

impl<A: Payload, R: Payload> Dispatch for NamedMap<A, R> {
    type Input = A;
    type Output = R;

    /// Enough chunks to keep every worker's pipeline full, and no more.
    fn default_window(&self, chunksize: usize) -> usize {
        let chunks = self
            .pool
            .config
            .max_workers
            .saturating_mul(self.pool.depth() + 2);
        chunks.saturating_mul(chunksize)
    }

    fn dispatch(&mut self, chunks: &mut Vec<Chunk<A, R>>) {
        for chunk in chunks.drain(..) {
            self.send(chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    //! A real worker process (this test binary started as one) told by a named setup that its
    //! pool is another build: it runs names, and refuses an offset even when its tag is valid.

    use std::io::{BufReader, Write};
    use std::sync::mpsc;
    use std::time::Duration;

    use taskweave_registry::Signature;

    use crate::claims::Claims;
    use crate::spawn::{WorkerArgs, default_program, spawn_worker};
    use crate::wire::{self, FromWorker, outcome};
    use crate::worker::trampoline;

    #[taskweave_macros::remote(crate = taskweave_registry, name = "unit::square")]
    fn square(x: u64) -> u64 {
        x * x
    }

    fn reply(from: &mut BufReader<std::fs::File>) -> Vec<u8> {
        wire::read_frame(from, wire::DEFAULT_MAX_FRAME)
            .unwrap()
            .expect("the worker ended instead of answering")
    }

    #[test]
    fn a_named_only_worker_runs_names_and_refuses_offsets() {
        let claims = Claims::create().unwrap();
        // Not while another test has inheritable descriptors: this worker would keep them.
        let spawning = crate::wire::tests::live_worker::SPAWNING
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let spawned = spawn_worker(
            &default_program(),
            WorkerArgs::Own(None),
            wire::DEFAULT_MAX_FRAME,
            claims.file(),
            None,
        )
        .unwrap();
        drop(spawning);
        let mut child = spawned.child;
        // Every read below is bounded: a worker that does not answer is killed, which ends
        // the read with an end of file.
        let (done, watch) = mpsc::channel::<()>();
        let pid = child.id() as libc::pid_t;
        let watchdog = std::thread::spawn(move || {
            if watch.recv_timeout(Duration::from_secs(30)).is_err() {
                // SAFETY: our own child, reaped only after this thread was joined.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        let mut to = spawned.to_worker;
        let mut from = BufReader::new(spawned.from_worker);
        let hello = reply(&mut from);
        assert!(matches!(
            wire::decode_from_worker(&hello),
            Ok(FromWorker::Hello { .. })
        ));
        let mut frame = Vec::new();
        wire::encode_setup_named(&mut frame, taskweave_registry::ABI_VERSION);
        to.write_all(&frame).unwrap();
        let ready = reply(&mut from);
        assert!(matches!(
            wire::decode_from_worker(&ready),
            Ok(FromWorker::Ready)
        ));

        let mut position = 0;
        // Tagged for the key a named-only worker holds (0): only the named-only rule stops it.
        if let Some(fref) = trampoline::call_ref(square as fn(u64) -> u64, 0) {
            let call = wire::encode_call(1, fref, &3u64, wire::DEFAULT_MAX_FRAME, "t").unwrap();
            claims.sent(position, 1);
            position += 1;
            to.write_all(&call).unwrap();
            let body = reply(&mut from);
            match wire::decode_from_worker(&body) {
                Ok(FromWorker::Failed { id: 1, detail }) => {
                    assert!(detail.contains("only named calls"), "{detail}");
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }

        let signature = Signature::of::<u64, u64>();
        let mut call = Vec::new();
        let caller = signature.to_string();
        let start =
            wire::begin_named_call(&mut call, 2, signature.hash, 2, "unit::square", &caller);
        wire::push_named_item(&mut call, &7u64).unwrap();
        wire::push_named_item(&mut call, &8u64).unwrap();
        wire::finish(&mut call, start, wire::DEFAULT_MAX_FRAME).unwrap();
        claims.sent(position, 2);
        to.write_all(&call).unwrap();
        let body = reply(&mut from);
        let Ok(FromWorker::Result { id: 2, payload, .. }) = wire::decode_from_worker(&body) else {
            panic!("expected the named call's result");
        };
        let mut rest = payload;
        assert_eq!(
            outcome::next::<u64>(&mut rest, "t", pid as u32).unwrap(),
            49
        );
        assert_eq!(
            outcome::next::<u64>(&mut rest, "t", pid as u32).unwrap(),
            64
        );
        assert!(rest.is_empty());

        drop(to);
        let _ = done.send(());
        watchdog.join().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{status}");
    }
}
