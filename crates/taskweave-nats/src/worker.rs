//! The worker side: a process that serves the program's registered functions to a namespace,
//! in both modes at once; how to start one from the user's binary or its command line; and a
//! launcher of local worker processes for tests and examples.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, consumer, kv};
use futures_util::StreamExt;
use taskweave_core::Error;
use taskweave_registry::{CallFailure, RemoteFn};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::client::{consumer_config, open_durable};
use crate::connect::{ConnectConfig, Credentials};
use crate::error::transport;
use crate::fast::Fast;
use crate::names::{self, Names};
use crate::objects::Objects;
use crate::wire::{self, Body, Call, Outcome, Refusal, Reply, WorkerId};

/// The environment variable that turns a started program into a worker before `main`
/// ([`LocalWorkers`] sets it): the server URL.
pub const WORKER_ENV: &str = "TASKWEAVE_NATS_WORKER";
/// The namespace a worker started through [`WORKER_ENV`] serves.
pub const NAMESPACE_ENV: &str = "TASKWEAVE_NATS_NAMESPACE";
/// How many calls a worker started through [`WORKER_ENV`] runs at once.
pub const CONCURRENCY_ENV: &str = "TASKWEAVE_NATS_CONCURRENCY";
/// The command-line flag of [`main_if_worker`]: `myapp --taskweave-worker nats://host:4222`.
pub const WORKER_FLAG: &str = "--taskweave-worker";

/// The shortest `ack_wait` a worker takes: heartbeats every third of it must reach the server
/// in time.
const MIN_ACK_WAIT: Duration = Duration::from_millis(300);
/// The longest: beyond a day, a call of a worker that died waits too long to run again.
const MAX_ACK_WAIT: Duration = Duration::from_secs(24 * 3600);
/// The most deliveries of one call: beyond that, a call that kills its workers would go on
/// killing them.
const MAX_DELIVER: i64 = 1000;

/// The queue group of all workers of a namespace: each call goes to one of them.
const QUEUE_GROUP: &str = "taskweave-workers";

/// Settings of a worker process; made by [`Worker::builder`].
///
/// # Examples
///
/// ```no_run
/// taskweave_nats::Worker::builder()
///     .server("nats://10.0.0.5:4222")
///     .namespace("myapp")
///     .concurrency(8)
///     .run()?; // until SIGTERM or SIGINT
/// # Ok::<(), taskweave_core::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a worker does nothing until `run` is called"]
pub struct Worker {
    connect: ConnectConfig,
    namespace: String,
    concurrency: usize,
    drain_timeout: Duration,
    ack_wait: Duration,
    max_deliver: i64,
    result_ttl: Duration,
}

impl Worker {
    /// Defaults: server `nats://127.0.0.1:4222`, namespace `taskweave`, one call per CPU at
    /// once, 30 s to drain; durable mode: `ack_wait` 30 s, `max_deliver` 5.
    ///
    /// ```
    /// let w = taskweave_nats::Worker::builder();
    /// # let _ = w;
    /// ```
    pub fn builder() -> Worker {
        Worker {
            connect: ConnectConfig::new(&format!("taskweave worker {}", WorkerId::this_process())),
            namespace: "taskweave".to_owned(),
            concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            drain_timeout: Duration::from_secs(30),
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            result_ttl: Duration::from_secs(24 * 3600),
        }
    }

    /// Adds a server address.
    ///
    /// ```
    /// let w = taskweave_nats::Worker::builder().server("nats://127.0.0.1:4222");
    /// # let _ = w;
    /// ```
    pub fn server(mut self, url: impl Into<String>) -> Worker {
        self.connect.servers.push(url.into());
        self
    }

    /// The namespace to serve (the clients' namespace).
    ///
    /// ```
    /// let w = taskweave_nats::Worker::builder().namespace("myapp");
    /// # let _ = w;
    /// ```
    pub fn namespace(mut self, namespace: impl Into<String>) -> Worker {
        self.namespace = namespace.into();
        self
    }

    /// Calls run at once: fast ones on as many threads of the worker's own, fed from one
    /// queue; durable ones on blocking threads of its runtime; both share this limit.
    ///
    /// ```
    /// let w = taskweave_nats::Worker::builder().concurrency(4);
    /// # let _ = w;
    /// ```
    pub fn concurrency(mut self, n: usize) -> Worker {
        self.concurrency = n.max(1);
        self
    }

    /// Credentials passed to async-nats.
    ///
    /// ```
    /// let w = taskweave_nats::Worker::builder()
    ///     .credentials(taskweave_nats::Credentials::CredsFile("worker.creds".into()));
    /// # let _ = w;
    /// ```
    pub fn credentials(mut self, credentials: Credentials) -> Worker {
        self.connect.credentials = credentials;
        self
    }

    /// Requires TLS, trusting these extra CA files (PEM).
    ///
    /// ```
    /// let w = taskweave_nats::Worker::builder().require_tls(vec!["ca.pem".into()]);
    /// # let _ = w;
    /// ```
    pub fn require_tls(mut self, root_certificates: Vec<PathBuf>) -> Worker {
        self.connect.tls.require = true;
        self.connect.tls.root_certificates = root_certificates;
        self
    }

    /// How long to wait for running calls on SIGTERM before leaving anyway (durable calls not
    /// finished by then are delivered again elsewhere; fast ones fail at their clients).
    ///
    /// ```
    /// let w = taskweave_nats::Worker::builder().drain_timeout(std::time::Duration::from_secs(5));
    /// # let _ = w;
    /// ```
    pub fn drain_timeout(mut self, timeout: Duration) -> Worker {
        self.drain_timeout = timeout;
        self
    }

    /// Durable mode: how long a delivered call may go without an ack or a progress heartbeat
    /// before the server delivers it again (to this or another worker), the consumer's
    /// `ack_wait`. From 300 ms (heartbeats are sent every third of it, and must arrive in
    /// time) to 24 hours; [`run`](Self::run) refuses anything else. Default 30 s.
    ///
    /// A function's consumer is shared by every worker and client of the namespace and keeps
    /// the settings of whoever made or last updated it: a worker's apply when it makes the
    /// consumer, and a client updates it to its own
    /// ([`Builder::ack_wait`](crate::Builder::ack_wait)) on its first durable call of the
    /// function. Heartbeats follow the consumer's value, whoever set it.
    ///
    /// ```
    /// let w = taskweave_nats::Worker::builder().ack_wait(std::time::Duration::from_secs(10));
    /// # let _ = w;
    /// ```
    pub fn ack_wait(mut self, ack_wait: Duration) -> Worker {
        self.ack_wait = ack_wait;
        self
    }

    /// Durable mode: how many times one call is delivered before it fails with
    /// [`NatsError::MaxDeliveries`](crate::NatsError::MaxDeliveries), the consumer's
    /// `max_deliver`. From 1 to 1000; [`run`](Self::run) refuses anything else. Default 5. As
    /// for [`ack_wait`](Self::ack_wait), the consumer keeps the settings of whoever made or
    /// last updated it.
    ///
    /// ```
    /// let w = taskweave_nats::Worker::builder().max_deliver(3);
    /// # let _ = w;
    /// ```
    pub fn max_deliver(mut self, max_deliver: u32) -> Worker {
        self.max_deliver = i64::from(max_deliver);
        self
    }

    /// The settings' own errors, before anything connects.
    fn check(&self) -> Result<(), Error> {
        if !(MIN_ACK_WAIT..=MAX_ACK_WAIT).contains(&self.ack_wait) {
            return Err(Error::refused(format!(
                "ack_wait must be from {MIN_ACK_WAIT:?} to {} hours, got {:?}",
                MAX_ACK_WAIT.as_secs() / 3600,
                self.ack_wait
            )));
        }
        if !(1..=MAX_DELIVER).contains(&self.max_deliver) {
            return Err(Error::refused(format!(
                "max_deliver must be from 1 to {MAX_DELIVER} deliveries, got {}",
                self.max_deliver
            )));
        }
        Ok(())
    }

    /// Runs until SIGTERM or SIGINT, then drains: stops taking calls, finishes the running
    /// ones (at most the drain timeout) and returns. Blocks the calling thread.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) for an `ack_wait` or
    /// `max_deliver` out of range (before connecting);
    /// [`ErrorKind::Broken`](taskweave_core::ErrorKind::Broken) when the server cannot be reached, the namespace is invalid or the
    /// program registers one function name twice.
    ///
    /// ```no_run
    /// taskweave_nats::Worker::builder().run()?;
    /// # Ok::<(), taskweave_core::Error>(())
    /// ```
    pub fn run(self) -> Result<(), Error> {
        self.check()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(self.concurrency + 4)
            .thread_name("taskweave-nats-worker")
            .enable_all()
            .build()
            .map_err(|e| Error::broken(format!("cannot start the worker's runtime: {e}")))?;
        runtime.block_on(self.serve())
    }

    async fn serve(self) -> Result<(), Error> {
        names::check_namespace(&self.namespace).map_err(Error::broken)?;
        let functions: Vec<&'static RemoteFn> = taskweave_registry::all()
            .map_err(|e| Error::broken(e.to_string()))?
            .filter(|f| names::check_function(f.name()).is_ok())
            .collect();
        let client = self.connect.connect().await?;
        let js = jetstream::new(client.clone());
        let names = Names {
            namespace: self.namespace.clone(),
        };
        let max_payload = client.server_info().max_payload;
        let (stream, results) = open_durable(&js, &names, self.result_ttl, max_payload).await?;
        let context = Arc::new(Context {
            client: client.clone(),
            me: WorkerId::this_process(),
            permits: Arc::new(Semaphore::new(self.concurrency)),
            objects: Objects::new(
                js.clone(),
                names.objects_bucket(),
                self.result_ttl,
                max_payload,
            ),
            results,
            busy: Arc::new(()),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        // Everything is subscribed and opened before any call is served, so a worker that has
        // answered one call serves every function (the server handles one connection's
        // subscriptions in order, before the reply that followed them).
        let mut serving = Vec::with_capacity(functions.len());
        for f in &functions {
            let subject = names.call_subject(f.name());
            let subscriber = client
                .queue_subscribe(subject.clone(), QUEUE_GROUP.to_owned())
                .await
                .map_err(|e| transport(format!("subscribe to {subject}"), e))?;
            let config = consumer_config(&names, f.name(), self.ack_wait, self.max_deliver);
            let consumer: consumer::PullConsumer = stream
                .get_or_create_consumer(&names.consumer(f.name()), config)
                .await
                .map_err(|e| transport(format!("open the consumer of `{}`", f.name()), e))?;
            serving.push((subscriber, consumer));
        }
        let fast = Fast::start(context.clone(), self.concurrency).map_err(Error::broken)?;
        for (subscriber, consumer) in serving {
            tasks.spawn(fast.clone().serve(subscriber, stop_rx.clone()));
            tasks.spawn(serve_durable(context.clone(), consumer, stop_rx.clone()));
        }
        client
            .flush()
            .await
            .map_err(|e| transport("flush the subscriptions", e))?;
        wait_for_stop_signal().await;
        let _ = stop_tx.send(true);
        // Subscriptions and pulls stop at once; running calls keep their permits until done.
        let drained = tokio::time::timeout(self.drain_timeout, async {
            while tasks.join_next().await.is_some() {}
            while Arc::strong_count(&context.busy) > 1 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        if drained.is_err() {
            eprintln!(
                "taskweave worker {}: calls still running after the {:?} drain timeout; leaving them",
                context.me, self.drain_timeout
            );
        }
        fast.close();
        let _ = client.flush().await;
        Ok(())
    }
}

/// What every call handler of one worker shares.
pub(crate) struct Context {
    pub(crate) client: async_nats::Client,
    pub(crate) me: WorkerId,
    /// One per call that may run at once, fast or durable.
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) objects: Objects,
    results: kv::Store,
    /// One clone per call being handled, from receipt to its reply or ack: the drain waits
    /// until only the original is left.
    pub(crate) busy: Arc<()>,
}

async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Durable mode: pulls as many calls as there are free slots, so no message waits in this
/// worker while its `ack_wait` runs out. No slot is held while a pull waits: fast calls and
/// other functions' consumers share the slots.
async fn serve_durable(
    context: Arc<Context>,
    mut consumer: consumer::PullConsumer,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        // Wait for a free slot without keeping it.
        tokio::select! {
            p = context.permits.acquire() => if p.is_err() { return },
            _ = stop.changed() => return,
        }
        let batch = context.permits.available_permits().max(1);
        let fetched = tokio::select! {
            f = consumer.fetch().max_messages(batch).expires(Duration::from_millis(500)).messages() => f,
            _ = stop.changed() => return,
        };
        let mut messages = match fetched {
            Ok(m) => m,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut ack_wait = None;
        while let Some(message) = messages.next().await {
            let Ok(message) = message else { break };
            // Clients set ack_wait (they create or update the consumer), possibly after this
            // worker opened it: read it afresh once per batch, so heartbeats keep pace.
            let ack_wait = *ack_wait.get_or_insert(match consumer.info().await {
                Ok(info) => info.config.ack_wait,
                Err(_) => consumer.cached_info().config.ack_wait,
            });
            tokio::spawn(handle_durable(context.clone(), message, ack_wait));
        }
    }
}

/// Runs one delivery: progress heartbeats from its arrival (also while it waits for a slot),
/// a notice to the client when it starts, the outcome stored with `create` (the first writer
/// wins), the result notice to the client, then the ack.
async fn handle_durable(context: Arc<Context>, message: jetstream::Message, ack_wait: Duration) {
    let _busy = context.busy.clone();
    let message = Arc::new(message);
    let attempt = message.info().map_or(1, |i| i.delivered.max(1) as u64);
    let call: Call = match wire::decode_call(&message.payload) {
        Ok(call) => call,
        Err(_) => {
            // Not a call envelope: nobody can ever run it.
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    let beat = {
        let message = message.clone();
        // At most a second apart, whatever ack_wait says: a safety margin should the
        // consumer's ack_wait shrink while the call runs.
        let every = (ack_wait / 3).clamp(Duration::from_millis(50), Duration::from_secs(1));
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.tick().await;
            loop {
                interval.tick().await;
                let _ = message.ack_with(AckKind::Progress).await;
            }
        })
    };
    let permit = context.permits.clone().acquire_owned().await.ok();
    let call_id = call.id.clone();
    let notify = call.notify.clone();
    if let Some(notify) = &notify {
        // Tells the client which worker runs the call from now on (its debug timeline puts
        // the run on this worker's lane); a lost notice costs only that.
        if let Ok(accepted) = wire::encode(&Reply::Accepted(context.me.clone())) {
            let _ = context
                .client
                .publish(notify.clone(), accepted.into())
                .await;
        }
    }
    let outcome = execute(&context, call, attempt, permit).await;
    beat.abort();
    let Ok(bytes) = wire::encode(&outcome) else {
        let _ = message.ack_with(AckKind::Nak(None)).await;
        return;
    };
    match context.results.create(call_id.as_str(), bytes.into()).await {
        Ok(_) => {
            if let (Some(notify), Ok(reply)) = (notify, wire::encode(&Reply::Done(outcome))) {
                let _ = context.client.publish(notify, reply.into()).await;
            }
        }
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
            // An earlier delivery stored its result: that one stands.
        }
        Err(_) => {
            // Not stored: let another delivery try.
            let _ = message.ack_with(AckKind::Nak(None)).await;
            return;
        }
    }
    let _ = message.double_ack().await;
}

/// Checks the name and signature, reads the argument, runs the function on a blocking thread
/// and wraps the result.
async fn execute(
    context: &Context,
    call: Call,
    attempt: u64,
    permit: Option<OwnedSemaphorePermit>,
) -> Outcome {
    let result = run_call(context, call, permit).await;
    Outcome {
        worker: context.me.clone(),
        attempt,
        result,
    }
}

async fn run_call(
    context: &Context,
    call: Call,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<Body, Refusal> {
    let me = &context.me;
    let entry = taskweave_registry::lookup(&call.function)
        .map_err(|e| Refusal::Refused(format!("{e} (worker {me})")))?;
    entry
        .check_hash(call.signature_hash, &call.signature)
        .map_err(|e| Refusal::Refused(format!("{e} (worker {me})")))?;
    let argument = context
        .objects
        .unwrap(call.argument)
        .await
        .map_err(Refusal::Transport)?;
    let ran = tokio::task::spawn_blocking(move || {
        let out = entry.call(&argument);
        drop(permit);
        out
    })
    .await;
    let out = match ran {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(CallFailure::Decode(e))) => return Err(Refusal::Wire(format!("argument: {e}"))),
        Ok(Err(CallFailure::Encode(e))) => return Err(Refusal::Wire(format!("result: {e}"))),
        Ok(Err(CallFailure::Panicked(m))) => return Err(Refusal::Panicked(m)),
        Err(e) => return Err(Refusal::Panicked(e.to_string())),
    };
    context
        .objects
        .wrap(&format!("{}.result", call.id), out)
        .await
        .map_err(Refusal::Transport)
}

/// The machine's host name, for telling workers apart.
pub(crate) fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
            if let Ok(name) = std::str::from_utf8(&buf[..end])
                && !name.is_empty()
            {
                return name.to_owned();
            }
        }
    }
    std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown-host".to_owned())
}

/// Becomes a worker when the program was started as one, and then exits: with
/// `--taskweave-worker nats://host:4222` on the command line (optionally
/// `--taskweave-namespace NS` and `--taskweave-concurrency N`), or with [`WORKER_ENV`] set.
/// Otherwise returns at once. Call it first in `main`.
///
/// On Linux, a program started by [`LocalWorkers`] becomes a worker before `main` without this
/// call (also under `cargo test`).
///
/// # Errors
///
/// None returned: a worker that fails prints the error and exits with status 1.
///
/// ```no_run
/// // first thing in `main`:
/// taskweave_nats::main_if_worker();
/// // the program's own work
/// ```
pub fn main_if_worker() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let url = flag(WORKER_FLAG).or_else(|| std::env::var(WORKER_ENV).ok());
    let Some(url) = url else { return };
    let namespace = flag("--taskweave-namespace").or_else(|| std::env::var(NAMESPACE_ENV).ok());
    let concurrency = flag("--taskweave-concurrency")
        .or_else(|| std::env::var(CONCURRENCY_ENV).ok())
        .and_then(|c| c.parse::<usize>().ok());
    std::process::exit(run_worker(url, namespace, concurrency));
}

fn run_worker(url: String, namespace: Option<String>, concurrency: Option<usize>) -> i32 {
    let mut worker = Worker::builder().server(url);
    if let Some(ns) = namespace {
        worker = worker.namespace(ns);
    }
    if let Some(n) = concurrency {
        worker = worker.concurrency(n);
    }
    match worker.run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("taskweave worker: {e}");
            1
        }
    }
}

/// Runs before `main` in every program that links this crate: a process started with
/// [`WORKER_ENV`] becomes a worker, so `main` (the test harness's, under `cargo test`) never
/// runs in it. Every ELF loader runs `.init_array` entries before `main`.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
#[used]
#[unsafe(link_section = ".init_array")]
static WORKER_CTOR: extern "C" fn() = worker_ctor;

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
extern "C" fn worker_ctor() {
    let Ok(url) = std::env::var(WORKER_ENV) else {
        return;
    };
    // SAFETY: before `main` no other thread exists, so nothing reads the environment while it
    // changes; removing the marker keeps processes this worker starts from becoming workers.
    unsafe { std::env::remove_var(WORKER_ENV) };
    let namespace = std::env::var(NAMESPACE_ENV).ok();
    let concurrency = std::env::var(CONCURRENCY_ENV)
        .ok()
        .and_then(|c| c.parse().ok());
    std::process::exit(run_worker(url, namespace, concurrency));
}

/// Worker processes of the current program on this machine, for tests and examples: each is
/// this executable started again as a worker of `namespace` on `url`. Dropping stops them
/// (SIGTERM, then SIGKILL after 5 s) and reaps them.
///
/// # Examples
///
/// ```no_run
/// let workers = taskweave_nats::LocalWorkers::start(2, "nats://127.0.0.1:4222", "demo", 1)?;
/// assert_eq!(workers.pids().len(), 2);
/// # Ok::<(), taskweave_core::Error>(())
/// ```
pub struct LocalWorkers {
    children: Vec<Child>,
}

impl LocalWorkers {
    /// Starts `n` workers, each running `concurrency` calls at once. Returns when they are
    /// started, not when they are subscribed: the first calls may find no worker yet; see
    /// [`wait_ready`](Self::wait_ready).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Broken`](taskweave_core::ErrorKind::Broken) when the executable cannot be found or started.
    ///
    /// ```no_run
    /// let w = taskweave_nats::LocalWorkers::start(1, "nats://127.0.0.1:4222", "demo", 2)?;
    /// # Ok::<(), taskweave_core::Error>(())
    /// ```
    pub fn start(
        n: usize,
        url: &str,
        namespace: &str,
        concurrency: usize,
    ) -> Result<LocalWorkers, Error> {
        let exe = std::env::current_exe()
            .map_err(|e| Error::broken(format!("cannot find this program's executable: {e}")))?;
        let mut workers = LocalWorkers {
            children: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let mut command = Command::new(&exe);
            command
                .env(WORKER_ENV, url)
                .env(NAMESPACE_ENV, namespace)
                .env(CONCURRENCY_ENV, concurrency.max(1).to_string())
                .stdin(Stdio::null());
            // Where no constructor runs before `main`, the flag lets `main_if_worker` see it.
            if !cfg!(any(
                target_os = "linux",
                target_os = "android",
                target_os = "freebsd"
            )) {
                command.arg(WORKER_FLAG).arg(url);
            }
            let child = command.spawn().map_err(|e| {
                Error::broken(format!("cannot start worker {}: {e}", exe.display()))
            })?;
            workers.children.push(child);
        }
        Ok(workers)
    }

    /// The workers' process ids, in start order.
    ///
    /// ```no_run
    /// let w = taskweave_nats::LocalWorkers::start(1, "nats://127.0.0.1:4222", "demo", 1)?;
    /// println!("{:?}", w.pids());
    /// # Ok::<(), taskweave_core::Error>(())
    /// ```
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Waits until every worker has answered a call of the registered `probe` function (a
    /// `fn(()) -> u32` returning the worker's pid) through `executor`, at most `limit`, so the
    /// first real calls do not race the workers' start.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::TimedOut`](taskweave_core::ErrorKind::TimedOut) when no call succeeded within `limit`, or the last error when a
    /// worker exited.
    ///
    /// ```no_run
    /// #[taskweave_macros::remote(crate = taskweave_registry)]
    /// fn ping(_: ()) -> u32 { std::process::id() }
    /// let nats = taskweave_nats::NatsExecutor::builder().namespace("demo").connect()?;
    /// let mut w = taskweave_nats::LocalWorkers::start(1, "nats://127.0.0.1:4222", "demo", 1)?;
    /// w.wait_ready(&nats, ping, std::time::Duration::from_secs(10))?;
    /// # Ok::<(), taskweave_core::Error>(())
    /// ```
    pub fn wait_ready(
        &mut self,
        executor: &crate::NatsExecutor,
        probe: fn(()) -> u32,
        limit: Duration,
    ) -> Result<(), Error> {
        let started = Instant::now();
        let mut seen = std::collections::HashSet::new();
        let mut last = Error::timed_out(limit);
        while started.elapsed() < limit {
            for child in &mut self.children {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(Error::broken(format!(
                        "worker {} exited during start-up ({status})",
                        child.id()
                    )));
                }
            }
            let left = limit.saturating_sub(started.elapsed());
            match executor.submit(probe, ()).result(Some(left)) {
                Ok(pid) => {
                    seen.insert(pid);
                    if seen.len() >= self.children.len() {
                        return Ok(());
                    }
                }
                Err(e) => {
                    last = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        Err(last)
    }

    /// Kills worker `index` at once (SIGKILL) and reaps it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) for an index out of range.
    ///
    /// ```no_run
    /// let mut w = taskweave_nats::LocalWorkers::start(2, "nats://127.0.0.1:4222", "demo", 1)?;
    /// w.kill(0)?;
    /// # Ok::<(), taskweave_core::Error>(())
    /// ```
    pub fn kill(&mut self, index: usize) -> Result<(), Error> {
        let child = self
            .children
            .get_mut(index)
            .ok_or_else(|| Error::refused(format!("no local worker #{index}")))?;
        let _ = child.kill();
        let _ = child.wait();
        Ok(())
    }

    /// Kills the worker whose process id is `pid`, if it is one of these.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) when no worker has that pid.
    ///
    /// ```no_run
    /// let mut w = taskweave_nats::LocalWorkers::start(1, "nats://127.0.0.1:4222", "demo", 1)?;
    /// let pid = w.pids()[0];
    /// w.kill_pid(pid)?;
    /// # Ok::<(), taskweave_core::Error>(())
    /// ```
    pub fn kill_pid(&mut self, pid: u32) -> Result<(), Error> {
        let index = self
            .children
            .iter()
            .position(|c| c.id() == pid)
            .ok_or_else(|| Error::refused(format!("no local worker has pid {pid}")))?;
        self.kill(index)
    }

    /// Asks every worker to drain (SIGTERM) and waits for them, at most `limit`; those still
    /// running then are killed. Returns how many exited on their own.
    ///
    /// ```no_run
    /// let mut w = taskweave_nats::LocalWorkers::start(1, "nats://127.0.0.1:4222", "demo", 1)?;
    /// assert_eq!(w.stop(std::time::Duration::from_secs(5)), 1);
    /// # Ok::<(), taskweave_core::Error>(())
    /// ```
    pub fn stop(&mut self, limit: Duration) -> usize {
        for child in &mut self.children {
            // A reaped child's pid may belong to another process by now.
            if let Ok(None) = child.try_wait() {
                terminate(child);
            }
        }
        let started = Instant::now();
        let mut clean = 0;
        for child in &mut self.children {
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        if status.success() {
                            clean += 1;
                        }
                        break;
                    }
                    Ok(None) if started.elapsed() < limit => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        clean
    }
}

fn terminate(child: &Child) {
    #[cfg(unix)]
    {
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill has no memory effects; the pid is our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
    #[cfg(not(unix))]
    {
        let _ = child;
    }
}

impl Drop for LocalWorkers {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}
