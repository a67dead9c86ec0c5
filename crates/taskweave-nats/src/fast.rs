//! The worker's fast mode: calls arrive on queue subscriptions, wait in one queue, and run on a
//! fixed set of threads (as many as the worker's concurrency); one task sends heartbeats for
//! every call held and one task sends the replies, as few messages as it can.
//!
//! Why this shape: a task, a timer and a blocking-pool hand-off per call cost more than the
//! call itself (two thread wake-ups per call, one write to the server per reply). Here a
//! thread that finds more calls queued runs them back to back, and replies that are ready
//! together leave together: for a client of protocol 2 one [`Batch`] per client, which the
//! server routes as one message.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::wire::{self, Batch, Body, Call, Outcome, Refusal, Reply};
use crate::worker::Context;

/// The most calls taken from a subscription before their acceptances are sent.
const BURST: usize = 512;

/// Where the replies of one call go.
enum Route {
    /// Protocol 1 (or a reply subject not made by a taskweave client): one [`Reply`] per
    /// message to the call's own reply subject.
    Single(async_nats::Subject),
    /// Protocol 2: call `n` of the client whose reply subjects start with `prefix.`.
    Batched { prefix: Arc<str>, n: u64 },
}

impl Route {
    fn of(reply: async_nats::Subject, protocol: u32) -> Route {
        if protocol >= 2
            && let Some((prefix, n)) = reply.rsplit_once('.')
            && let Ok(n) = n.parse::<u64>()
        {
            return Route::Batched {
                prefix: Arc::from(prefix),
                n,
            };
        }
        Route::Single(reply)
    }
}

/// A call held by this worker, from its arrival to its reply.
struct Held {
    route: Route,
    every: Duration,
    next_beat: Instant,
    /// The drain waits for these (see [`Context::busy`]).
    busy: Arc<()>,
}

struct Job {
    key: u64,
    call: Call,
}

#[derive(Default)]
struct State {
    next_key: u64,
    held: HashMap<u64, Held>,
    /// When the heartbeat task wakes next (`None`: it waits for a call to arrive).
    beat_at: Option<Instant>,
    /// Replies not yet handed to the client connection, per client prefix for protocol 2.
    batches: HashMap<Arc<str>, Batch>,
    singles: Vec<(async_nats::Subject, Reply)>,
    /// The writer was told and has not yet taken the outbox.
    writer_told: bool,
    /// The drain's counts of the calls whose results wait in the outbox.
    unsent: Vec<Arc<()>>,
}

impl State {
    /// Queues a reply; true when the writer must be woken.
    fn post(&mut self, route: &Route, reply: Reply) -> bool {
        match (route, reply) {
            (Route::Single(subject), reply) => self.singles.push((subject.clone(), reply)),
            (Route::Batched { prefix, n }, Reply::Done(outcome)) => {
                self.batches
                    .entry(prefix.clone())
                    .or_default()
                    .done
                    .push((*n, outcome));
            }
            (Route::Batched { prefix, n }, Reply::Heartbeat) => {
                self.batches
                    .entry(prefix.clone())
                    .or_default()
                    .alive
                    .push(*n);
            }
            (Route::Batched { prefix, n }, Reply::Accepted(worker)) => {
                let batch = self.batches.entry(prefix.clone()).or_default();
                batch.accepted.push(*n);
                batch.worker = Some(worker);
            }
        }
        !std::mem::replace(&mut self.writer_told, true)
    }
}

/// What the subscriptions, the run threads, the heartbeat task and the writer share.
pub(crate) struct Fast {
    context: Arc<Context>,
    state: Mutex<State>,
    queue: Mutex<VecDeque<Job>>,
    queued: Condvar,
    /// Set under the queue's lock by [`Fast::close`]: run threads leave once the queue is empty.
    closed: std::sync::atomic::AtomicBool,
    beat: Notify,
    write: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Fast {
    /// Starts the run threads, the heartbeat task and the writer (on the current runtime).
    pub(crate) fn start(context: Arc<Context>, threads: usize) -> Result<Arc<Fast>, String> {
        let fast = Arc::new(Fast {
            context,
            state: Mutex::new(State::default()),
            queue: Mutex::new(VecDeque::new()),
            queued: Condvar::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
            beat: Notify::new(),
            write: Notify::new(),
        });
        let runtime = tokio::runtime::Handle::current();
        for i in 0..threads.max(1) {
            let fast = fast.clone();
            let runtime = runtime.clone();
            std::thread::Builder::new()
                .name(format!("tw-nats-run-{i}"))
                .spawn(move || fast.run_thread(&runtime))
                .map_err(|e| format!("cannot start a worker thread: {e}"))?;
        }
        tokio::spawn(fast.clone().beat_task());
        tokio::spawn(fast.clone().write_task());
        Ok(fast)
    }

    /// Serves one function's queue subscription until `stop`.
    pub(crate) async fn serve(
        self: Arc<Fast>,
        mut subscriber: async_nats::Subscriber,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut burst = Vec::with_capacity(BURST);
        loop {
            tokio::select! {
                message = subscriber.next() => {
                    let Some(message) = message else { return };
                    burst.push(message);
                    // Whatever else already arrived is accepted in the same messages.
                    while burst.len() < BURST {
                        match subscriber.next().now_or_never() {
                            Some(Some(message)) => burst.push(message),
                            _ => break,
                        }
                    }
                    self.receive(&mut burst).await;
                }
                _ = stop.changed() => {
                    let _ = subscriber.unsubscribe().await;
                    return;
                }
            }
        }
    }

    /// Registers the calls of a burst, sends their acceptances, then queues them to run: a call
    /// is accepted (handed to the client connection) before it can start.
    async fn receive(&self, burst: &mut Vec<async_nats::Message>) {
        let now = Instant::now();
        let mut jobs = Vec::with_capacity(burst.len());
        let mut accepted: HashMap<Arc<str>, Vec<u64>> = HashMap::new();
        let mut single: Vec<(async_nats::Subject, Reply)> = Vec::new();
        let mut wake_beat = false;
        {
            let mut state = lock(&self.state);
            for message in burst.drain(..) {
                let Some(reply) = message.reply else { continue };
                let call = match wire::decode_call(&message.payload) {
                    Ok(call) => call,
                    Err(e) => {
                        let outcome = Outcome {
                            worker: self.context.me.clone(),
                            attempt: 1,
                            result: Err(Refusal::Wire(format!(
                                "the call envelope does not decode: {e}"
                            ))),
                        };
                        single.push((reply, Reply::Done(outcome)));
                        continue;
                    }
                };
                let every = Duration::from_millis(call.heartbeat_ms.max(10));
                let route = Route::of(reply, call.protocol);
                match &route {
                    Route::Single(subject) => {
                        single.push((subject.clone(), Reply::Accepted(self.context.me.clone())));
                    }
                    Route::Batched { prefix, n } => {
                        accepted.entry(prefix.clone()).or_default().push(*n);
                    }
                }
                let key = state.next_key;
                state.next_key += 1;
                let next_beat = now + every;
                if state.beat_at.is_none_or(|at| next_beat < at) {
                    wake_beat = true;
                }
                state.held.insert(
                    key,
                    Held {
                        route,
                        every,
                        next_beat,
                        busy: self.context.busy.clone(),
                    },
                );
                jobs.push(Job { key, call });
            }
        }
        if wake_beat {
            self.beat.notify_one();
        }
        for (prefix, calls) in accepted {
            let batch = Batch {
                accepted: calls,
                worker: Some(self.context.me.clone()),
                ..Batch::default()
            };
            self.publish_batch(&prefix, &batch).await;
        }
        for (subject, reply) in single {
            self.publish_single(subject, &reply).await;
        }
        if !jobs.is_empty() {
            lock(&self.queue).extend(jobs);
            self.queued.notify_all();
        }
    }

    async fn publish_batch(&self, prefix: &str, batch: &Batch) {
        if let Ok(bytes) = wire::encode(batch) {
            let subject = format!("{prefix}.{}", wire::BATCH_TOKEN);
            let _ = self.context.client.publish(subject, bytes.into()).await;
        }
    }

    async fn publish_single(&self, subject: async_nats::Subject, reply: &Reply) {
        if let Ok(bytes) = wire::encode(reply) {
            let _ = self.context.client.publish(subject, bytes.into()).await;
        }
    }

    /// One run thread: takes queued calls one after another for as long as there are any.
    /// Lets the run threads end once every queued call has run, so that a program whose
    /// worker returned from `Worker::run` keeps no idle threads (a thread still inside a call
    /// ends after it).
    pub(crate) fn close(&self) {
        let _queue = lock(&self.queue);
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.queued.notify_all();
    }

    fn run_thread(&self, runtime: &tokio::runtime::Handle) {
        loop {
            let job = {
                let mut queue = lock(&self.queue);
                loop {
                    if let Some(job) = queue.pop_front() {
                        break job;
                    }
                    // Read under the lock `close` takes, so its wake-up cannot be missed.
                    if self.closed.load(std::sync::atomic::Ordering::Acquire) {
                        return;
                    }
                    queue = self
                        .queued
                        .wait(queue)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
            };
            let key = job.key;
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.run_one(runtime, job.call)
            }));
            let result = ran.unwrap_or_else(|payload| {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic outside the function".to_owned());
                Err(Refusal::Panicked(message))
            });
            self.finish(
                key,
                Outcome {
                    worker: self.context.me.clone(),
                    attempt: 1,
                    result,
                },
            );
        }
    }

    /// Checks, reads the argument, runs the function and wraps its result, on a run thread:
    /// the slot (shared with durable calls) is held only while the function runs.
    fn run_one(&self, runtime: &tokio::runtime::Handle, call: Call) -> Result<Body, Refusal> {
        let context = &self.context;
        let me = &context.me;
        let entry = taskweave_registry::lookup(&call.function)
            .map_err(|e| Refusal::Refused(format!("{e} (worker {me})")))?;
        entry
            .check_hash(call.signature_hash, &call.signature)
            .map_err(|e| Refusal::Refused(format!("{e} (worker {me})")))?;
        let argument = match call.argument {
            Body::Inline(bytes) => bytes,
            object => runtime
                .block_on(context.objects.unwrap(object))
                .map_err(Refusal::Transport)?,
        };
        let permit = match context.permits.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => runtime
                .block_on(context.permits.clone().acquire_owned())
                .ok(),
        };
        let out = entry.call(&argument);
        drop(permit);
        let out = match out {
            Ok(bytes) => bytes,
            Err(taskweave_registry::CallFailure::Decode(e)) => {
                return Err(Refusal::Wire(format!("argument: {e}")));
            }
            Err(taskweave_registry::CallFailure::Encode(e)) => {
                return Err(Refusal::Wire(format!("result: {e}")));
            }
            Err(taskweave_registry::CallFailure::Panicked(m)) => return Err(Refusal::Panicked(m)),
        };
        if out.len() <= context.objects.inline_limit() {
            return Ok(Body::Inline(out));
        }
        runtime
            .block_on(context.objects.wrap(&format!("{}.result", call.id), out))
            .map_err(Refusal::Transport)
    }

    /// The call's reply goes to the outbox; it is no longer held.
    fn finish(&self, key: u64, outcome: Outcome) {
        let wake = {
            let mut state = lock(&self.state);
            let Some(held) = state.held.remove(&key) else {
                return;
            };
            let wake = state.post(&held.route, Reply::Done(outcome));
            state.unsent.push(held.busy);
            wake
        };
        if wake {
            self.write.notify_one();
        }
    }

    /// Heartbeats for every call held (queued or running), each at least every `every`; calls
    /// due within a quarter period beat early with those due now, so one wake-up serves many.
    async fn beat_task(self: Arc<Fast>) {
        loop {
            let next = {
                let mut state = lock(&self.state);
                let next = state.held.values().map(|h| h.next_beat).min();
                state.beat_at = next;
                next
            };
            match next {
                None => self.beat.notified().await,
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = self.beat.notified() => continue,
                    }
                }
            }
            let now = Instant::now();
            let wake = {
                let mut state = lock(&self.state);
                let State { held, .. } = &mut *state;
                let mut due = Vec::new();
                for held in held.values_mut() {
                    if held.next_beat <= now + held.every / 4 {
                        held.next_beat = now + held.every;
                        due.push(match &held.route {
                            Route::Single(subject) => Route::Single(subject.clone()),
                            Route::Batched { prefix, n } => Route::Batched {
                                prefix: prefix.clone(),
                                n: *n,
                            },
                        });
                    }
                }
                let mut wake = false;
                for route in &due {
                    wake |= state.post(route, Reply::Heartbeat);
                }
                wake
            };
            if wake {
                self.write.notify_one();
            }
        }
    }

    /// Hands the outbox to the client connection: one message per client of protocol 2.
    async fn write_task(self: Arc<Fast>) {
        loop {
            self.write.notified().await;
            let (batches, singles, unsent) = {
                let mut state = lock(&self.state);
                state.writer_told = false;
                (
                    std::mem::take(&mut state.batches),
                    std::mem::take(&mut state.singles),
                    std::mem::take(&mut state.unsent),
                )
            };
            for (prefix, batch) in batches {
                self.publish_batch(&prefix, &batch).await;
            }
            for (subject, reply) in singles {
                self.publish_single(subject, &reply).await;
            }
            // Handed to the connection: the drain's final flush sends them.
            drop(unsent);
        }
    }
}
