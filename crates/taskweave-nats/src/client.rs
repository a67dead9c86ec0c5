//! The submitting side: [`NatsExecutor`] and its builder. Each call is a promise; a runtime of
//! the executor's own runs the NATS client, one reply subscription and a monitor that notices
//! silent workers, expired waits, cancellations and results to poll for.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, kv, stream};
use futures_util::{FutureExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use taskweave_core::instrument::{self, ExecutorEvent};
use taskweave_core::{Error, Promise, Resolver, TaskInfo};
use taskweave_registry::Signature;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::connect::{ConnectConfig, Credentials};
use crate::error::{NatsError, transport};
use crate::names::{self, Names};
use crate::objects::Objects;
use crate::wire::{self, Batch, Body, Call, Outcome, Refusal, Reply, WorkerId};

/// How calls travel.
///
/// # Examples
///
/// ```
/// assert_ne!(taskweave_nats::Mode::Fast, taskweave_nats::Mode::Durable);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Core NATS request/reply to a queue group: at most once, lowest latency. A call whose
    /// worker dies fails with [`ErrorKind::WorkerDied`](taskweave_core::ErrorKind::WorkerDied); nothing is re-run.
    #[default]
    Fast,
    /// A JetStream work queue with results in a key-value bucket: at least once. A call whose
    /// worker dies is delivered to another; functions should be idempotent.
    Durable,
}

/// Settings of a [`NatsExecutor`]; made by [`NatsExecutor::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let builder = taskweave_nats::NatsExecutor::builder()
///     .server("nats://127.0.0.1:4222")
///     .namespace("myapp")
///     .request_timeout(Duration::from_secs(5))
///     .in_flight(256);
/// # let _ = builder;
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct Builder {
    connect: ConnectConfig,
    namespace: String,
    mode: Mode,
    request_timeout: Duration,
    heartbeat_timeout: Duration,
    in_flight: usize,
    ack_wait: Duration,
    max_deliver: i64,
    result_ttl: Duration,
    result_poll: Duration,
}

impl Builder {
    /// Adds a server address (`nats://host:4222`, `tls://host:4222`); several give a cluster to
    /// fail over to. Default: `nats://127.0.0.1:4222`.
    ///
    /// ```
    /// let b = taskweave_nats::NatsExecutor::builder().server("nats://a:4222").server("nats://b:4222");
    /// # let _ = b;
    /// ```
    pub fn server(mut self, url: impl Into<String>) -> Builder {
        self.connect.servers.push(url.into());
        self
    }

    /// The subject prefix (letters, digits, `_`, `-`): applications with different namespaces
    /// share a server without seeing each other's calls. Default `taskweave`.
    ///
    /// ```
    /// let b = taskweave_nats::NatsExecutor::builder().namespace("billing");
    /// # let _ = b;
    /// ```
    pub fn namespace(mut self, namespace: impl Into<String>) -> Builder {
        self.namespace = namespace.into();
        self
    }

    /// Fast (default) or durable calls.
    ///
    /// ```
    /// let b = taskweave_nats::NatsExecutor::builder().mode(taskweave_nats::Mode::Durable);
    /// # let _ = b;
    /// ```
    pub fn mode(mut self, mode: Mode) -> Builder {
        self.mode = mode;
        self
    }

    /// Credentials passed to async-nats.
    ///
    /// ```
    /// let b = taskweave_nats::NatsExecutor::builder()
    ///     .credentials(taskweave_nats::Credentials::Token("s3cret".into()));
    /// # let _ = b;
    /// ```
    pub fn credentials(mut self, credentials: Credentials) -> Builder {
        self.connect.credentials = credentials;
        self
    }

    /// Requires TLS; `root_certificates` are extra CA files (PEM) to trust.
    ///
    /// ```
    /// let b = taskweave_nats::NatsExecutor::builder().require_tls(vec![]);
    /// # let _ = b;
    /// ```
    pub fn require_tls(mut self, root_certificates: Vec<PathBuf>) -> Builder {
        self.connect.tls.require = true;
        self.connect.tls.root_certificates = root_certificates;
        self
    }

    /// A client certificate and key (PEM) for servers that verify clients.
    ///
    /// ```
    /// let b = taskweave_nats::NatsExecutor::builder().client_certificate("c.pem".into(), "k.pem".into());
    /// # let _ = b;
    /// ```
    pub fn client_certificate(mut self, cert: PathBuf, key: PathBuf) -> Builder {
        self.connect.tls.client_certificate = Some((cert, key));
        self
    }

    /// How long connecting may take before [`connect`](Self::connect) fails. Default 5 s.
    ///
    /// ```
    /// let b = taskweave_nats::NatsExecutor::builder().connect_timeout(std::time::Duration::from_secs(1));
    /// # let _ = b;
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Builder {
        self.connect.timeout = timeout;
        self
    }

    /// Fast mode: how long a call waits for a worker to accept it before it fails with
    /// [`ErrorKind::TimedOut`](taskweave_core::ErrorKind::TimedOut). Durable mode: how long submitting keeps retrying while the server
    /// cannot be reached. Default 10 s.
    ///
    /// ```
    /// let b = taskweave_nats::NatsExecutor::builder().request_timeout(std::time::Duration::from_secs(2));
    /// # let _ = b;
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> Builder {
        self.request_timeout = timeout;
        self
    }

    /// Fast mode: a worker that sends no heartbeat for this long is taken for dead and its calls
    /// fail with [`ErrorKind::WorkerDied`](taskweave_core::ErrorKind::WorkerDied). Workers beat four times per period. Default 5 s.
    ///
    /// ```
    /// let b = taskweave_nats::NatsExecutor::builder().heartbeat_timeout(std::time::Duration::from_secs(2));
    /// # let _ = b;
    /// ```
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Builder {
        self.heartbeat_timeout = timeout.max(Duration::from_millis(100));
        self
    }

    /// At most this many calls are out at once; later submissions wait their turn inside the
    /// executor (submit never blocks). Default 1024.
    ///
    /// ```
    /// let b = taskweave_nats::NatsExecutor::builder().in_flight(64);
    /// # let _ = b;
    /// ```
    pub fn in_flight(mut self, limit: usize) -> Builder {
        self.in_flight = limit.max(1);
        self
    }

    /// Durable mode: how long a delivered call may go without an ack or a progress heartbeat
    /// before it is delivered again. Default 30 s.
    ///
    /// ```
    /// let b = taskweave_nats::NatsExecutor::builder().ack_wait(std::time::Duration::from_secs(10));
    /// # let _ = b;
    /// ```
    pub fn ack_wait(mut self, ack_wait: Duration) -> Builder {
        self.ack_wait = ack_wait.max(Duration::from_millis(300));
        self
    }

    /// Durable mode: deliveries of one call before it fails with
    /// [`NatsError::MaxDeliveries`]. Default 5.
    ///
    /// ```
    /// let b = taskweave_nats::NatsExecutor::builder().max_deliver(3);
    /// # let _ = b;
    /// ```
    pub fn max_deliver(mut self, max_deliver: u32) -> Builder {
        self.max_deliver = i64::from(max_deliver.max(1));
        self
    }

    /// Durable mode: how long results (and large values) stay on the server. Default 24 h.
    ///
    /// ```
    /// let b = taskweave_nats::NatsExecutor::builder().result_ttl(std::time::Duration::from_secs(3600));
    /// # let _ = b;
    /// ```
    pub fn result_ttl(mut self, ttl: Duration) -> Builder {
        self.result_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// Durable mode: how often a call whose result notice did not arrive looks in the result
    /// bucket itself (notices are lost while the client is disconnected). Default 1 s.
    ///
    /// ```
    /// let b = taskweave_nats::NatsExecutor::builder().result_poll(std::time::Duration::from_millis(500));
    /// # let _ = b;
    /// ```
    pub fn result_poll(mut self, every: Duration) -> Builder {
        self.result_poll = every.max(Duration::from_millis(50));
        self
    }

    /// Connects and returns the executor; blocks the calling thread (from async code, use
    /// [`connect_async`](Self::connect_async)).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Broken`](taskweave_core::ErrorKind::Broken) when the namespace is invalid, the runtime cannot start or the server
    /// cannot be reached within the connect timeout (the message names the addresses).
    ///
    /// ```
    /// let err = taskweave_nats::NatsExecutor::builder()
    ///     .server("nats://127.0.0.1:1")
    ///     .connect_timeout(std::time::Duration::from_millis(500))
    ///     .connect()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("127.0.0.1:1"));
    /// ```
    pub fn connect(self) -> Result<NatsExecutor, Error> {
        let (runtime, handle) = self.runtime()?;
        let runtime = RuntimeSlot(Mutex::new(Some(runtime)));
        let (tx, rx) = std::sync::mpsc::channel();
        handle.spawn(async move {
            let _ = tx.send(self.start().await);
        });
        let outcome = rx
            .recv()
            .unwrap_or_else(|_| Err(Error::broken("the NATS executor's runtime stopped")));
        outcome.map(|shared| NatsExecutor::new(shared, runtime))
    }

    /// Connects without blocking the runtime.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let res = taskweave_nats::NatsExecutor::builder()
    ///     .server("nats://127.0.0.1:1")
    ///     .connect_async()
    ///     .await;
    /// assert!(res.is_err());
    /// # }).unwrap();
    /// ```
    pub async fn connect_async(self) -> Result<NatsExecutor, Error> {
        let (runtime, handle) = self.runtime()?;
        // Dropped in the background if connecting fails: a runtime must not be dropped here.
        let runtime = RuntimeSlot(Mutex::new(Some(runtime)));
        let shared = handle
            .spawn(self.start())
            .await
            .map_err(|e| Error::broken(format!("the NATS executor's runtime stopped: {e}")))??;
        Ok(NatsExecutor::new(shared, runtime))
    }

    fn runtime(&self) -> Result<(tokio::runtime::Runtime, tokio::runtime::Handle), Error> {
        names::check_namespace(&self.namespace).map_err(Error::broken)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("taskweave-nats")
            .enable_all()
            .build()
            .map_err(|e| Error::broken(format!("cannot start the NATS executor's runtime: {e}")))?;
        let handle = runtime.handle().clone();
        Ok((runtime, handle))
    }

    async fn start(self) -> Result<Arc<Shared>, Error> {
        let client = self.connect.connect().await?;
        let js = jetstream::new(client.clone());
        let names = Names {
            namespace: self.namespace.clone(),
        };
        let inbox = client.new_inbox();
        let replies = client
            .subscribe(format!("{inbox}.*"))
            .await
            .map_err(|e| transport("subscribe to the reply inbox", e))?;
        let max_payload = client.server_info().max_payload;
        let objects = Objects::new(
            js.clone(),
            names.objects_bucket(),
            self.result_ttl,
            max_payload,
        );
        let shared = Arc::new(Shared {
            client,
            js,
            names,
            inbox,
            client_id: nuid_like(),
            next: AtomicU64::new(1),
            calls: Mutex::new(HashMap::new()),
            by_sequence: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(self.in_flight)),
            live: Arc::new(AtomicUsize::new(0)),
            closed: AtomicBool::new(false),
            durable: tokio::sync::OnceCell::new(),
            consumers: tokio::sync::Mutex::new(HashSet::new()),
            objects,
            settings: self,
        });
        tokio::spawn(receive(Arc::downgrade(&shared), replies));
        tokio::spawn(monitor(Arc::downgrade(&shared)));
        Ok(shared)
    }
}

/// An executor whose calls run on worker processes reached through NATS, on this machine or
/// others (Dask's `Client` over NATS).
///
/// Functions travel by registered name (`#[taskweave::remote]`); arguments and results are
/// postcard-encoded. Every call returns the same [`Promise`] as the other executors.
///
/// Which calls may have run when something fails:
/// - fast mode, [`ErrorKind::WorkerDied`](taskweave_core::ErrorKind::WorkerDied): the call was accepted by the named worker, which then
///   went silent; it may have run partly or completely (its reply was lost). Other calls are
///   unaffected.
/// - fast mode, [`ErrorKind::TimedOut`](taskweave_core::ErrorKind::TimedOut) before acceptance or [`NatsError::NoWorkers`]: it did not
///   run.
/// - durable mode: a call runs at least once, more often when a worker dies or lets `ack_wait`
///   pass while running it; the first result stored is the one every caller sees.
///
/// Cancelling: a call still queued in the executor (over the in-flight limit) is cancelled
/// cleanly; a durable call still queued on the server is removed from the stream; a call that
/// already runs is best effort: the promise completes as cancelled, the worker may still run it.
///
/// # Differences from Python
///
/// `concurrent.futures` has no distributed executor; this follows Dask's `Client`, with
/// functions by registered name instead of pickled code, and it does not keep futures alive on a
/// scheduler: a durable result stays in the server's key-value bucket for `result_ttl` and can be
/// fetched by call id ([`NatsExecutor::result_of`]) after a restart.
///
/// # Examples
///
/// ```no_run
/// #[taskweave_macros::remote(crate = taskweave_registry)]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let nats = taskweave_nats::NatsExecutor::builder()
///     .server("nats://127.0.0.1:4222")
///     .namespace("demo")
///     .connect()?;
/// let mut p = nats.submit(square, 7);
/// assert_eq!(p.result(None)?, 49);
/// # Ok::<(), taskweave_core::Error>(())
/// ```
pub struct NatsExecutor {
    shared: Arc<Shared>,
    runtime: Arc<RuntimeSlot>,
}

impl std::fmt::Debug for NatsExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsExecutor")
            .field("namespace", &self.shared.names.namespace)
            .field("mode", &self.shared.settings.mode)
            .field("calls", &self.shared.live.load(Ordering::Relaxed))
            .finish()
    }
}

impl Drop for NatsExecutor {
    /// The last handle going does not wait for calls still out (a durable call may wait for a
    /// worker indefinitely): they end with [`ErrorKind::Abandoned`](taskweave_core::ErrorKind::Abandoned), and debug mode reports them.
    /// Durable calls stay queued on the server; their results can be fetched later by id.
    fn drop(&mut self) {
        if Arc::strong_count(&self.runtime) == 1 && instrument::active() {
            let pending = self.shared.live.load(Ordering::Acquire);
            if pending > 0 {
                instrument::executor_event(&ExecutorEvent::DroppedWithPending {
                    executor: EXECUTOR_NAME,
                    pending,
                });
            }
        }
    }
}

impl Clone for NatsExecutor {
    fn clone(&self) -> Self {
        NatsExecutor {
            shared: self.shared.clone(),
            runtime: self.runtime.clone(),
        }
    }
}

/// The executor's runtime, shut down in the background when the last handle goes (dropping a
/// runtime inside async code would panic).
struct RuntimeSlot(Mutex<Option<tokio::runtime::Runtime>>);

impl Drop for RuntimeSlot {
    fn drop(&mut self) {
        if let Some(rt) = lock(&self.0).take() {
            rt.shutdown_background();
        }
    }
}

pub(crate) struct Shared {
    client: async_nats::Client,
    js: jetstream::Context,
    names: Names,
    inbox: String,
    client_id: String,
    next: AtomicU64,
    calls: Mutex<HashMap<u64, Pending>>,
    /// Durable calls by stream sequence, for the max-deliveries advisories.
    by_sequence: Mutex<HashMap<u64, u64>>,
    permits: Arc<Semaphore>,
    /// Calls submitted and not finished (queued ones included), for `shutdown(wait)`.
    live: Arc<AtomicUsize>,
    closed: AtomicBool,
    durable: tokio::sync::OnceCell<Durable>,
    consumers: tokio::sync::Mutex<HashSet<String>>,
    objects: Objects,
    settings: Builder,
}

/// The durable mode's server-side objects, made on first use.
struct Durable {
    stream: stream::Stream,
    results: kv::Store,
}

/// One call on its way.
struct Pending {
    waiter: Box<dyn Waiter>,
    function: String,
    call_id: String,
    mode: Mode,
    sent: Instant,
    worker: Option<WorkerId>,
    /// Fast: the last sign of life from the worker. Durable: the last look for the result.
    last_heard: Instant,
    sequence: Option<u64>,
    argument: Option<Body>,
    /// When a worker accepted it (fast mode) or started it (durable mode), for the debug
    /// timeline.
    started: Option<Instant>,
    _permit: Option<OwnedSemaphorePermit>,
    _live: Live,
}

impl Pending {
    /// Tells debug mode that `worker` runs the call (fast mode: it accepted it; durable mode:
    /// it started this delivery).
    fn report_started(&self, worker: &WorkerId) {
        if instrument::active()
            && let Some(info) = self.waiter.info()
        {
            self.waiter
                .observer()
                .executor_event(&ExecutorEvent::Started {
                    executor: EXECUTOR_NAME,
                    work: info,
                    worker: &worker.to_string(),
                });
        }
    }

    /// Completes the call, telling debug mode how it ended.
    fn complete(self, result: Result<Vec<u8>, Error>) {
        if instrument::active()
            && let Some(info) = self.waiter.info()
        {
            self.waiter
                .observer()
                .executor_event(&ExecutorEvent::Finished {
                    executor: EXECUTOR_NAME,
                    work: info,
                    duration: self.started.unwrap_or(self.sent).elapsed(),
                    ok: result.is_ok(),
                });
        }
        let (function, call_id) = (&self.function, &self.call_id);
        self.waiter.complete(result, &|| {
            if function == "?" {
                format!("call {call_id}")
            } else {
                format!("`{function}` call {call_id}")
            }
        });
    }
}

/// The executor's name in debug reports.
const EXECUTOR_NAME: &str = "NatsExecutor";

/// Counts a call in [`Shared::live`] until dropped.
struct Live(Arc<AtomicUsize>);

impl Live {
    fn new(count: &Arc<AtomicUsize>) -> Live {
        count.fetch_add(1, Ordering::AcqRel);
        Live(count.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The typed end of a call, behind a trait object so one table holds calls of every type.
trait Waiter: Send {
    fn info(&self) -> Option<&TaskInfo>;
    /// The observer of the code that submitted the call: events about it go there, whichever
    /// thread of the client reports them.
    fn observer(&self) -> &instrument::ObserverRef;
    fn running(&self);
    fn cancelled(&self) -> bool;
    /// `what` names the call, made only when decoding the result fails.
    fn complete(self: Box<Self>, result: Result<Vec<u8>, Error>, what: &dyn Fn() -> String);
}

struct Typed<R> {
    resolver: Resolver<R>,
}

impl<R: DeserializeOwned + Send + 'static> Waiter for Typed<R> {
    fn info(&self) -> Option<&TaskInfo> {
        self.resolver.info()
    }

    fn observer(&self) -> &instrument::ObserverRef {
        self.resolver.observer()
    }

    fn running(&self) {
        self.resolver.set_running();
    }

    fn cancelled(&self) -> bool {
        self.resolver.is_cancelled()
    }

    fn complete(self: Box<Self>, result: Result<Vec<u8>, Error>, what: &dyn Fn() -> String) {
        let value = result.and_then(|bytes| {
            wire::decode::<R>(&bytes)
                .map_err(|e| Error::wire(format!("result of {}", what()), e.to_string()))
        });
        self.resolver.resolve(value);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A client id unique enough for call ids: time, pid and a counter, base 36.
fn nuid_like() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}-{}-{}",
        base36(nanos),
        base36(u64::from(std::process::id())),
        base36(n)
    )
}

fn base36(mut n: u64) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

impl NatsExecutor {
    /// A builder with the defaults (server `nats://127.0.0.1:4222`, namespace `taskweave`, fast
    /// mode).
    ///
    /// ```
    /// let b = taskweave_nats::NatsExecutor::builder();
    /// # let _ = b;
    /// ```
    pub fn builder() -> Builder {
        Builder {
            connect: ConnectConfig::new("taskweave client"),
            namespace: "taskweave".to_owned(),
            mode: Mode::Fast,
            request_timeout: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(5),
            in_flight: 1024,
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            result_ttl: Duration::from_secs(24 * 3600),
            result_poll: Duration::from_secs(1),
        }
    }

    fn new(shared: Arc<Shared>, runtime: RuntimeSlot) -> NatsExecutor {
        NatsExecutor {
            shared,
            runtime: Arc::new(runtime),
        }
    }

    /// The namespace this executor's calls go to.
    ///
    /// ```no_run
    /// let nats = taskweave_nats::NatsExecutor::builder().namespace("x").connect()?;
    /// assert_eq!(nats.namespace(), "x");
    /// # Ok::<(), taskweave_core::Error>(())
    /// ```
    pub fn namespace(&self) -> &str {
        &self.shared.names.namespace
    }

    /// The mode calls use.
    ///
    /// ```no_run
    /// let nats = taskweave_nats::NatsExecutor::builder().connect()?;
    /// assert_eq!(nats.mode(), taskweave_nats::Mode::Fast);
    /// # Ok::<(), taskweave_core::Error>(())
    /// ```
    pub fn mode(&self) -> Mode {
        self.shared.settings.mode
    }

    /// The largest message the server takes (`max_payload`); larger values go through the
    /// object store.
    ///
    /// ```no_run
    /// let nats = taskweave_nats::NatsExecutor::builder().connect()?;
    /// assert!(nats.max_payload() > 0);
    /// # Ok::<(), taskweave_core::Error>(())
    /// ```
    pub fn max_payload(&self) -> usize {
        self.shared.client.server_info().max_payload
    }

    /// Runs the registered function `f` on a worker. `f` must be marked `#[remote]`; it is found
    /// in this program's registry by address and sent by name.
    ///
    /// # Errors
    ///
    /// Carried by the promise: [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) when `f` is not registered here or the worker
    /// refuses (unknown name, signature mismatch), [`ErrorKind::WorkerDied`](taskweave_core::ErrorKind::WorkerDied), [`ErrorKind::TimedOut`](taskweave_core::ErrorKind::TimedOut),
    /// [`ErrorKind::Panicked`](taskweave_core::ErrorKind::Panicked), [`ErrorKind::Wire`](taskweave_core::ErrorKind::Wire), [`ErrorKind::Shutdown`](taskweave_core::ErrorKind::Shutdown) after shutdown, and
    /// [`NatsError`] inside [`ErrorKind::Failed`](taskweave_core::ErrorKind::Failed).
    ///
    /// ```no_run
    /// #[taskweave_macros::remote(crate = taskweave_registry)]
    /// fn inc(x: u32) -> u32 { x + 1 }
    /// let nats = taskweave_nats::NatsExecutor::builder().connect()?;
    /// assert_eq!(nats.submit(inc, 1).result(None)?, 2);
    /// # Ok::<(), taskweave_core::Error>(())
    /// ```
    #[track_caller]
    pub fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Promise<R>
    where
        A: Serialize + Send + 'static,
        R: DeserializeOwned + Send + 'static,
    {
        match taskweave_registry::by_fn(f) {
            Ok(entry) => self.send(entry.name(), Signature::of::<A, R>(), arg, None),
            Err(e) => Promise::ready(Err(Error::refused(e.to_string()))),
        }
    }

    /// Runs the function registered as `name` on a worker; this program need not register it
    /// (a client may be a different build from its workers). `A` and `R` must match the worker's
    /// signature.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit); an invalid name is [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused).
    ///
    /// ```no_run
    /// let nats = taskweave_nats::NatsExecutor::builder().connect()?;
    /// let n: u32 = nats.submit_named("app::inc", 1u32).result(None)?;
    /// # Ok::<(), taskweave_core::Error>(())
    /// ```
    #[track_caller]
    pub fn submit_named<A, R>(&self, name: &str, arg: A) -> Promise<R>
    where
        A: Serialize + Send + 'static,
        R: DeserializeOwned + Send + 'static,
    {
        self.send(name, Signature::of::<A, R>(), arg, None)
    }

    /// Durable mode: submits under a call id of the caller's choice. The id is the message's
    /// `Nats-Msg-Id` (the same id within the stream's duplicate window, 2 minutes, is
    /// published once) and the result's key (a call whose result is stored is not run again),
    /// so a client that retries after a crash does not run the work twice.
    ///
    /// # Errors
    ///
    /// As [`submit_named`](Self::submit_named); [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) for an id that is not 1 to 200
    /// letters, digits, `-`, `_`, `=`, or in fast mode.
    ///
    /// ```no_run
    /// let nats = taskweave_nats::NatsExecutor::builder().mode(taskweave_nats::Mode::Durable).connect()?;
    /// let n: u32 = nats.submit_with_id("order-17", "app::inc", 1u32).result(None)?;
    /// # Ok::<(), taskweave_core::Error>(())
    /// ```
    #[track_caller]
    pub fn submit_with_id<A, R>(&self, call_id: &str, name: &str, arg: A) -> Promise<R>
    where
        A: Serialize + Send + 'static,
        R: DeserializeOwned + Send + 'static,
    {
        if self.mode() != Mode::Durable {
            return Promise::ready(Err(Error::refused(
                "call ids are a durable-mode feature: build the executor with .mode(Mode::Durable)",
            )));
        }
        if let Err(e) = names::check_call_id(call_id) {
            return Promise::ready(Err(Error::refused(e)));
        }
        self.send(name, Signature::of::<A, R>(), arg, Some(call_id.to_owned()))
    }

    /// Durable mode: the result of an earlier call by its id, for example after this client
    /// restarted. Waits until a worker stored it (bounded only by the caller's own timeout).
    ///
    /// # Errors
    ///
    /// Those of the call; [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) in fast mode or for an invalid id.
    ///
    /// ```no_run
    /// let nats = taskweave_nats::NatsExecutor::builder().mode(taskweave_nats::Mode::Durable).connect()?;
    /// let n: u32 = nats.result_of("order-17").result(Some(std::time::Duration::from_secs(5)))?;
    /// # Ok::<(), taskweave_core::Error>(())
    /// ```
    pub fn result_of<R: DeserializeOwned + Send + 'static>(&self, call_id: &str) -> Promise<R> {
        if self.mode() != Mode::Durable {
            return Promise::ready(Err(Error::refused(
                "results by call id are a durable-mode feature",
            )));
        }
        if let Err(e) = names::check_call_id(call_id) {
            return Promise::ready(Err(Error::refused(e)));
        }
        let (promise, resolver) = Promise::pending_with(TaskInfo::executor(call_id.to_owned()));
        let shared = self.shared.clone();
        let call_id = call_id.to_owned();
        let live = Live::new(&shared.live);
        self.runtime_handle().spawn(async move {
            if let Err(e) = shared.durable().await {
                resolver.set_error(e);
                return;
            }
            let n = shared.next.fetch_add(1, Ordering::Relaxed);
            let now = Instant::now();
            lock(&shared.calls).insert(
                n,
                Pending {
                    waiter: Box::new(Typed { resolver }),
                    function: String::from("?"),
                    call_id,
                    mode: Mode::Durable,
                    sent: now,
                    worker: None,
                    last_heard: now - shared.settings.result_poll,
                    sequence: None,
                    argument: None,
                    started: None,
                    _permit: None,
                    _live: live,
                },
            );
        });
        promise
    }

    /// Durable mode: which worker stored the result of `call_id`, and on which delivery attempt
    /// (1 = first). `None` while no result is stored.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) in fast mode; a [`NatsError`] when the bucket cannot be read.
    ///
    /// ```no_run
    /// let nats = taskweave_nats::NatsExecutor::builder().mode(taskweave_nats::Mode::Durable).connect()?;
    /// if let Some(record) = nats.record_of("order-17")? {
    ///     println!("ran on {} pid {}, attempt {}", record.host, record.pid, record.attempt);
    /// }
    /// # Ok::<(), taskweave_core::Error>(())
    /// ```
    pub fn record_of(&self, call_id: &str) -> Result<Option<CallRecord>, Error> {
        if self.mode() != Mode::Durable {
            return Err(Error::refused("call records are a durable-mode feature"));
        }
        let shared = self.shared.clone();
        let call_id = call_id.to_owned();
        self.block_on(async move {
            let durable = shared.durable().await?;
            let stored = durable
                .results
                .get(call_id.as_str())
                .await
                .map_err(|e| transport(format!("read the result of {call_id}"), e))?;
            let history = durable
                .results
                .history(call_id.as_str())
                .await
                .map_err(|e| transport(format!("read the history of {call_id}"), e))?
                .filter(|e| std::future::ready(e.is_ok()))
                .count()
                .await;
            Ok(stored.and_then(|bytes| {
                let outcome: Outcome = wire::decode(&bytes).ok()?;
                Some(CallRecord {
                    host: outcome.worker.host,
                    pid: outcome.worker.pid,
                    attempt: outcome.attempt,
                    writes: history,
                })
            }))
        })
    }

    /// Stops taking calls: later submissions fail with [`ErrorKind::Shutdown`](taskweave_core::ErrorKind::Shutdown). `cancel_futures`
    /// cancels calls not yet accepted by a worker (durable ones still queued are removed from
    /// the stream); `wait` blocks until every call finished, except inside an async task, where
    /// blocking would stall the runtime (await the promises there instead).
    ///
    /// ```no_run
    /// let nats = taskweave_nats::NatsExecutor::builder().connect()?;
    /// nats.shutdown(true, false);
    /// # Ok::<(), taskweave_core::Error>(())
    /// ```
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.shared.closed.store(true, Ordering::Release);
        if cancel_futures {
            let cancelled: Vec<Pending> = {
                let mut calls = lock(&self.shared.calls);
                let ids: Vec<u64> = calls
                    .iter()
                    .filter(|(_, p)| p.worker.is_none())
                    .map(|(n, _)| *n)
                    .collect();
                ids.into_iter().filter_map(|n| calls.remove(&n)).collect()
            };
            for p in cancelled {
                if let Some(seq) = p.sequence {
                    let shared = self.shared.clone();
                    self.runtime_handle().spawn(async move {
                        if let Ok(d) = shared.durable().await {
                            let _ = d.stream.delete_message(seq).await;
                        }
                    });
                }
                p.complete(Err(Error::cancelled(Some(
                    "the NATS executor was shut down".into(),
                ))));
            }
        }
        // Inside a task poll a blocking wait would stall the runtime: shut down without waiting.
        if wait && taskweave_core::strict::check_blocking_wait("NatsExecutor::shutdown").is_ok() {
            while self.shared.live.load(Ordering::Acquire) > 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    pub(crate) fn runtime_handle(&self) -> tokio::runtime::Handle {
        lock(&self.runtime.0)
            .as_ref()
            .map(|rt| rt.handle().clone())
            .unwrap_or_else(tokio::runtime::Handle::current)
    }

    /// Runs `fut` on the executor's runtime and waits for it from this thread.
    fn block_on<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.runtime_handle().spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .unwrap_or_else(|_| Err(Error::broken("the NATS executor's runtime stopped")))
    }

    #[track_caller]
    pub(crate) fn send<A, R>(
        &self,
        name: &str,
        signature: Signature,
        arg: A,
        call_id: Option<String>,
    ) -> Promise<R>
    where
        A: Serialize + Send + 'static,
        R: DeserializeOwned + Send + 'static,
    {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Promise::ready(Err(Error::shutdown("the NATS executor is shut down")));
        }
        if let Err(e) = names::check_function(name) {
            return Promise::ready(Err(Error::refused(e)));
        }
        let bytes = match wire::encode(&arg) {
            Ok(b) => b,
            Err(e) => {
                return Promise::ready(Err(Error::wire(
                    format!("argument of `{name}`"),
                    e.to_string(),
                )));
            }
        };
        let n = shared.next.fetch_add(1, Ordering::Relaxed);
        let call_id = call_id.unwrap_or_else(|| format!("{}-{n}", shared.client_id));
        let (promise, resolver) = Promise::pending_with(TaskInfo::executor(name.to_owned()));
        if instrument::active()
            && let Some(info) = promise.info()
        {
            instrument::executor_event(&ExecutorEvent::Submitted {
                executor: EXECUTOR_NAME,
                work: info,
            });
        }
        let waiter: Box<dyn Waiter> = Box::new(Typed { resolver });
        let live = Live::new(&shared.live);
        let call = Call {
            id: call_id,
            function: name.to_owned(),
            signature_hash: signature.hash,
            signature: signature.to_string(),
            heartbeat_ms: (shared.settings.heartbeat_timeout / 4).as_millis() as u64,
            argument: Body::Inline(Vec::new()),
            notify: None,
            protocol: wire::PROTOCOL,
        };
        let shared = shared.clone();
        // With a slot free and a small argument, a fast call leaves from here: no task, and
        // nothing between the submit and the client connection.
        if shared.settings.mode == Mode::Fast
            && bytes.len() <= shared.objects.inline_limit()
            && let Ok(permit) = shared.permits.clone().try_acquire_owned()
        {
            let runtime = self.runtime_handle();
            shared.send_fast_now(n, call, bytes, waiter, live, permit, &runtime);
            return promise;
        }
        self.runtime_handle().spawn(async move {
            dispatch(shared, n, call, bytes, waiter, live).await;
        });
        promise
    }
}

/// What [`NatsExecutor::record_of`] tells about a stored durable result.
///
/// # Examples
///
/// ```no_run
/// let nats = taskweave_nats::NatsExecutor::builder().mode(taskweave_nats::Mode::Durable).connect()?;
/// let record: Option<taskweave_nats::CallRecord> = nats.record_of("order-17")?;
/// assert!(record.is_none_or(|r| r.writes == 1));
/// # Ok::<(), taskweave_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallRecord {
    /// The host of the worker that stored the result.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The delivery attempt that produced it (1 = first delivery).
    pub attempt: u64,
    /// How many values were ever written under the key (1: the result was stored once).
    pub writes: usize,
}

/// Sends one call once the in-flight limit lets it, and registers it for its replies.
async fn dispatch(
    shared: Arc<Shared>,
    n: u64,
    mut call: Call,
    bytes: Vec<u8>,
    waiter: Box<dyn Waiter>,
    live: Live,
) {
    let Ok(permit) = shared.permits.clone().acquire_owned().await else {
        waiter.complete(
            Err(Error::shutdown("the NATS executor is shut down")),
            &String::new,
        );
        return;
    };
    if waiter.cancelled() {
        return;
    }
    let mode = shared.settings.mode;
    let durable = if mode == Mode::Durable {
        match shared.durable_for(&call.function).await {
            Ok(d) => Some(d),
            Err(e) => {
                waiter.complete(Err(e), &String::new);
                return;
            }
        }
    } else {
        None
    };
    let argument = match shared.objects.wrap(&call.id, bytes).await {
        Ok(body) => body,
        Err(e) => {
            waiter.complete(Err(transport("carry a large argument", e)), &String::new);
            return;
        }
    };
    call.argument = argument.clone();
    let reply = format!("{}.{n}", shared.inbox);
    if mode == Mode::Durable {
        call.notify = Some(reply.clone());
    }
    let payload = match encode_envelope(&call) {
        Ok(p) => p,
        Err(e) => {
            waiter.complete(Err(e), &String::new);
            return;
        }
    };
    let now = Instant::now();
    let function = call.function.clone();
    let call_id = call.id.clone();
    lock(&shared.calls).insert(
        n,
        Pending {
            waiter,
            function: function.clone(),
            call_id: call_id.clone(),
            mode,
            sent: now,
            worker: None,
            last_heard: now,
            sequence: None,
            argument: Some(argument),
            started: None,
            _permit: Some(permit),
            _live: live,
        },
    );
    match durable {
        None => {
            let subject = shared.names.call_subject(&function);
            if let Err(e) = shared
                .client
                .publish_with_reply(subject, reply, payload.into())
                .await
            {
                shared.fail(n, transport(format!("publish a call of `{function}`"), e));
            }
        }
        Some(d) => {
            let subject = shared.names.jobs_subject(&function);
            let payload = bytes::Bytes::from(payload);
            // While the server is away (a restart, a network cut) keep trying, with the same
            // message id: the stream's dedupe makes a retry of a publish that did land harmless.
            let deadline = Instant::now() + shared.settings.request_timeout;
            let acked = loop {
                let publish = jetstream::message::PublishMessage::build()
                    .payload(payload.clone())
                    .message_id(call_id.as_str());
                let attempt = match shared.js.send_publish(subject.clone(), publish).await {
                    Ok(ack) => ack.await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match attempt {
                    Err(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    other => break other,
                }
            };
            match acked {
                Ok(ack) => {
                    if let Some(p) = lock(&shared.calls).get_mut(&n) {
                        p.sequence = Some(ack.sequence);
                    }
                    lock(&shared.by_sequence).insert(ack.sequence, n);
                    // A duplicate id may have finished long ago: its result is already there.
                    shared.poll_result(n, d).await;
                }
                Err(e) => shared.fail(
                    n,
                    transport(format!("queue a durable call of `{function}`"), e),
                ),
            }
        }
    }
}

impl Shared {
    /// A fast call that holds its in-flight slot and fits a message: registered, then handed
    /// to the client connection at once, or by a task when the connection's queue is full.
    #[allow(clippy::too_many_arguments)]
    fn send_fast_now(
        self: &Arc<Self>,
        n: u64,
        mut call: Call,
        bytes: Vec<u8>,
        waiter: Box<dyn Waiter>,
        live: Live,
        permit: OwnedSemaphorePermit,
        runtime: &tokio::runtime::Handle,
    ) {
        call.argument = Body::Inline(bytes);
        let payload = match encode_envelope(&call) {
            Ok(p) => bytes::Bytes::from(p),
            Err(e) => {
                waiter.complete(Err(e), &String::new);
                return;
            }
        };
        let subject = async_nats::Subject::from(self.names.call_subject(&call.function));
        let reply = async_nats::Subject::from(format!("{}.{n}", self.inbox));
        let now = Instant::now();
        lock(&self.calls).insert(
            n,
            Pending {
                waiter,
                function: call.function,
                call_id: call.id,
                mode: Mode::Fast,
                sent: now,
                worker: None,
                last_heard: now,
                sequence: None,
                argument: None,
                started: None,
                _permit: Some(permit),
                _live: live,
            },
        );
        let sent = self
            .client
            .publish_with_reply(subject.clone(), reply.clone(), payload.clone())
            .now_or_never();
        match sent {
            Some(Ok(())) => {}
            Some(Err(e)) => self.fail_publish(n, e),
            None => {
                // The connection's queue is full: a dropped send sent nothing, so wait for room.
                let shared = self.clone();
                runtime.spawn(async move {
                    if let Err(e) = shared
                        .client
                        .publish_with_reply(subject, reply, payload)
                        .await
                    {
                        shared.fail_publish(n, e);
                    }
                });
            }
        }
    }

    fn fail_publish(&self, n: u64, e: async_nats::PublishError) {
        let function = lock(&self.calls).get(&n).map(|p| p.function.clone());
        let function = function.unwrap_or_default();
        self.fail(n, transport(format!("publish a call of `{function}`"), e));
    }

    /// Removes call `n` and completes it with `error`.
    fn fail(&self, n: u64, error: Error) {
        let pending = lock(&self.calls).remove(&n);
        if let Some(p) = pending {
            if let Some(seq) = p.sequence {
                lock(&self.by_sequence).remove(&seq);
            }
            p.complete(Err(error));
        }
    }

    /// The stream, the result bucket and the advisory subscription, made once.
    async fn durable(self: &Arc<Self>) -> Result<&Durable, Error> {
        self.durable
            .get_or_try_init(|| async {
                let (stream, results) = open_durable(
                    &self.js,
                    &self.names,
                    self.settings.result_ttl,
                    self.client.server_info().max_payload,
                )
                .await?;
                let advisories = self
                    .client
                    .subscribe(self.names.max_deliveries_advisories())
                    .await
                    .map_err(|e| transport("subscribe to max-deliveries advisories", e))?;
                tokio::spawn(watch_advisories(Arc::downgrade(self), advisories));
                Ok(Durable { stream, results })
            })
            .await
    }

    /// [`durable`](Self::durable), plus the function's consumer with this client's `ack_wait`
    /// and `max_deliver` (created, or updated to them).
    async fn durable_for(self: &Arc<Self>, function: &str) -> Result<&Durable, Error> {
        let durable = self.durable().await?;
        let mut made = self.consumers.lock().await;
        if !made.contains(function) {
            let config = consumer_config(
                &self.names,
                function,
                self.settings.ack_wait,
                self.settings.max_deliver,
            );
            durable
                .stream
                .create_consumer(config)
                .await
                .map_err(|e| transport(format!("create the consumer of `{function}`"), e))?;
            made.insert(function.to_owned());
        }
        Ok(durable)
    }

    /// Looks for call `n`'s stored result and completes the call when it is there.
    async fn poll_result(self: &Arc<Self>, n: u64, durable: &Durable) {
        let call_id = match lock(&self.calls).get_mut(&n) {
            Some(p) => {
                p.last_heard = Instant::now();
                p.call_id.clone()
            }
            None => return,
        };
        if let Ok(Some(bytes)) = durable.results.get(call_id.as_str()).await {
            match wire::decode::<Outcome>(&bytes) {
                Ok(outcome) => self.finish(n, outcome).await,
                Err(e) => self.fail(
                    n,
                    Error::wire(format!("stored result of call {call_id}"), e.to_string()),
                ),
            }
        }
    }

    /// Completes call `n` with the worker's outcome.
    async fn finish(self: &Arc<Self>, n: u64, outcome: Outcome) {
        let Some(p) = lock(&self.calls).remove(&n) else {
            return;
        };
        if let Some(seq) = p.sequence {
            lock(&self.by_sequence).remove(&seq);
        }
        if let Some(arg @ Body::Object(_)) = p.argument.clone() {
            // A round trip: not on the way of this result (or, from the reply reader, of others).
            let shared = self.clone();
            tokio::spawn(async move { shared.objects.remove(&arg).await });
        }
        let what = || format!("`{}` call {}", p.function, p.call_id);
        let worker = &outcome.worker;
        if p.started.is_none() {
            // The start notice never came (a durable call finished while this client was
            // disconnected, or a batch carried the result with the acceptance): the outcome
            // still names the worker, for the debug timeline.
            p.report_started(worker);
        }
        let result = match outcome.result {
            Ok(Body::Inline(bytes)) => Ok(bytes),
            Ok(body) => {
                let read = self.objects.unwrap(body.clone()).await;
                // A durable result's object stays with the stored result; fast ones are read once.
                if p.mode == Mode::Fast {
                    self.objects.remove(&body).await;
                }
                read.map_err(|e| transport(format!("read the result of {}", what()), e))
            }
            Err(Refusal::Refused(message)) => Err(Error::refused(message)),
            Err(Refusal::Panicked(message)) => Err(Error::panicked(
                message,
                Some(format!("{} on worker {worker}", what())),
                None,
                None,
            )),
            Err(Refusal::Wire(detail)) => Err(Error::wire(
                format!("{} on worker {worker}", what()),
                detail,
            )),
            Err(Refusal::Transport(detail)) => Err(transport(
                format!("carry {} on worker {worker}", what()),
                detail,
            )),
        };
        p.complete(result);
    }

    /// Protocol 2: acceptances, heartbeats and results of many calls from one worker.
    async fn on_batch(self: &Arc<Self>, batch: Batch) {
        if !batch.accepted.is_empty() || !batch.alive.is_empty() {
            let now = Instant::now();
            let mut calls = lock(&self.calls);
            if let Some(worker) = &batch.worker {
                for n in &batch.accepted {
                    if let Some(p) = calls.get_mut(n) {
                        p.waiter.running();
                        p.started = Some(now);
                        p.report_started(worker);
                        p.worker = Some(worker.clone());
                        p.last_heard = now;
                    }
                }
            }
            for n in &batch.alive {
                if let Some(p) = calls.get_mut(n) {
                    p.last_heard = now;
                }
            }
        }
        for (n, outcome) in batch.done {
            if matches!(outcome.result, Ok(Body::Object(_))) {
                let shared = self.clone();
                tokio::spawn(async move { shared.finish(n, outcome).await });
            } else {
                self.finish(n, outcome).await;
            }
        }
    }

    /// A fast-mode reply or a durable result notice for call `n`.
    async fn on_reply(self: &Arc<Self>, n: u64, reply: Reply) {
        match reply {
            Reply::Accepted(worker) => {
                if let Some(p) = lock(&self.calls).get_mut(&n) {
                    p.waiter.running();
                    p.started = Some(Instant::now());
                    p.report_started(&worker);
                    p.worker = Some(worker);
                    p.last_heard = Instant::now();
                }
            }
            Reply::Heartbeat => {
                if let Some(p) = lock(&self.calls).get_mut(&n) {
                    p.last_heard = Instant::now();
                }
            }
            Reply::Done(outcome) => self.finish(n, outcome).await,
        }
    }
}

/// The durable consumer of `function`: explicit acks, its own filter (a work-queue stream takes
/// only consumers with disjoint filters), at most the in-flight count unacknowledged.
pub(crate) fn consumer_config(
    names: &Names,
    function: &str,
    ack_wait: Duration,
    max_deliver: i64,
) -> consumer::pull::Config {
    let name = names.consumer(function);
    consumer::pull::Config {
        durable_name: Some(name.clone()),
        name: Some(name),
        filter_subject: names.jobs_subject(function),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait,
        max_deliver,
        ..Default::default()
    }
}

/// Opens (or creates) the namespace's work-queue stream and result bucket.
pub(crate) async fn open_durable(
    js: &jetstream::Context,
    names: &Names,
    result_ttl: Duration,
    max_payload: usize,
) -> Result<(stream::Stream, kv::Store), Error> {
    let stream = js
        .get_or_create_stream(stream::Config {
            name: names.stream(),
            subjects: vec![names.jobs_filter()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(|e| transport(format!("open the work-queue stream {}", names.stream()), e))?;
    let bucket = names.results_bucket();
    let results = match js.get_key_value(&bucket).await {
        Ok(store) => store,
        Err(_) => match js
            .create_key_value(kv::Config {
                bucket: bucket.clone(),
                history: 1,
                max_age: result_ttl,
                max_value_size: i32::try_from(max_payload).unwrap_or(i32::MAX),
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
        {
            Ok(store) => store,
            Err(create) => js.get_key_value(&bucket).await.map_err(|e| {
                transport(
                    format!("open the result bucket {bucket}"),
                    format!("{create}; {e}"),
                )
            })?,
        },
    };
    Ok((stream, results))
}

/// Reads the reply inbox: acceptances, heartbeats, results, and "no responders".
async fn receive(shared: std::sync::Weak<Shared>, mut replies: async_nats::Subscriber) {
    while let Some(message) = replies.next().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let last = message.subject.rsplit('.').next().unwrap_or_default();
        if last == wire::BATCH_TOKEN {
            // A batch that does not decode names no call it could fail: those calls end by
            // their own timeouts.
            if let Ok(batch) = wire::decode::<Batch>(&message.payload) {
                shared.on_batch(batch).await;
            }
            continue;
        }
        let Ok(n) = last.parse::<u64>() else {
            continue;
        };
        if message.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            let function = lock(&shared.calls).get(&n).map(|p| p.function.clone());
            if let Some(function) = function {
                let subject = shared.names.call_subject(&function);
                shared.fail(n, NatsError::NoWorkers { function, subject }.into_error());
            }
            continue;
        }
        match wire::decode::<Reply>(&message.payload) {
            Ok(Reply::Done(outcome)) => {
                if matches!(outcome.result, Ok(Body::Object(_))) {
                    // Reading a large result takes round trips: do not hold up other replies.
                    tokio::spawn(async move { shared.finish(n, outcome).await });
                } else {
                    // Nothing to fetch: completing here saves a task per call.
                    shared.finish(n, outcome).await;
                }
            }
            Ok(reply) => shared.on_reply(n, reply).await,
            Err(e) => shared.fail(
                n,
                Error::wire("a reply from a worker", format!("does not decode: {e}")),
            ),
        }
    }
}

/// What the monitor found to do about one call.
enum Due {
    Dead(WorkerId, Duration),
    NotAccepted,
    Cancelled(Option<u64>),
    Poll,
}

/// Every tick: fails calls of silent workers and calls nobody accepted in time, drops cancelled
/// calls (removing queued durable ones from the stream), and polls for durable results.
async fn monitor(shared: std::sync::Weak<Shared>) {
    let tick = {
        let Some(s) = shared.upgrade() else { return };
        (s.settings.heartbeat_timeout / 4)
            .min(s.settings.result_poll / 2)
            .clamp(Duration::from_millis(20), Duration::from_millis(250))
    };
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let settings = &shared.settings;
        let due: Vec<(u64, Due)> = {
            let calls = lock(&shared.calls);
            calls
                .iter()
                .filter_map(|(n, p)| {
                    let d = if p.waiter.cancelled() {
                        Due::Cancelled(p.sequence)
                    } else if p.mode == Mode::Durable {
                        if p.last_heard.elapsed() >= settings.result_poll {
                            Due::Poll
                        } else {
                            return None;
                        }
                    } else if let Some(w) = &p.worker {
                        let silent = p.last_heard.elapsed();
                        if silent > settings.heartbeat_timeout {
                            Due::Dead(w.clone(), silent)
                        } else {
                            return None;
                        }
                    } else if p.sent.elapsed() > settings.request_timeout {
                        Due::NotAccepted
                    } else {
                        return None;
                    };
                    Some((*n, d))
                })
                .collect()
        };
        for (n, due) in due {
            match due {
                Due::Dead(worker, silent) => {
                    let task = lock(&shared.calls).get(&n).map(|p| {
                        format!(
                            "`{}` call {} on host {} (no heartbeat for {:.1?}; the call may have run partly or completely)",
                            p.function, p.call_id, worker.host, silent
                        )
                    });
                    if let Some(task) = task {
                        shared.fail(n, Error::worker_died(worker.pid, None, None, task));
                    }
                }
                Due::NotAccepted => {
                    shared.fail(n, Error::timed_out(settings.request_timeout));
                }
                Due::Cancelled(sequence) => {
                    let p = lock(&shared.calls).remove(&n);
                    drop(p);
                    if let Some(seq) = sequence {
                        lock(&shared.by_sequence).remove(&seq);
                        if let Ok(d) = shared.durable().await {
                            let _ = d.stream.delete_message(seq).await;
                        }
                    }
                }
                Due::Poll => {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        if let Ok(d) = shared.durable().await {
                            shared.poll_result(n, d).await;
                        }
                    });
                }
            }
        }
    }
}

/// The server's "delivered max_deliver times" advisories: the call fails saying so (unless its
/// result arrived after all) and its message leaves the stream.
async fn watch_advisories(shared: std::sync::Weak<Shared>, mut advisories: async_nats::Subscriber) {
    #[derive(serde::Deserialize)]
    struct Advisory {
        stream_seq: u64,
        deliveries: i64,
    }
    while let Some(message) = advisories.next().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let Ok(advisory) = serde_json::from_slice::<Advisory>(&message.payload) else {
            continue;
        };
        let n = lock(&shared.by_sequence).get(&advisory.stream_seq).copied();
        let Some(n) = n else { continue };
        // Set before this task was started; `durable()` itself would make the future recursive.
        let Some(durable) = shared.durable.get() else {
            continue;
        };
        shared.poll_result(n, durable).await;
        let Some((function, call_id)) = lock(&shared.calls)
            .get(&n)
            .map(|p| (p.function.clone(), p.call_id.clone()))
        else {
            continue;
        };
        let _ = durable.stream.delete_message(advisory.stream_seq).await;
        shared.fail(
            n,
            NatsError::MaxDeliveries {
                function,
                call_id,
                max_deliver: advisory.deliveries,
            }
            .into_error(),
        );
    }
}

/// The wire envelope of `call`; an error names the function.
fn encode_envelope(call: &Call) -> Result<Vec<u8>, Error> {
    wire::encode(call).map_err(|e| {
        Error::wire(
            format!("call envelope of `{}`", call.function),
            e.to_string(),
        )
    })
}
