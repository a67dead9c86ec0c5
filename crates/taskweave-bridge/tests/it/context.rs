//! Work handed to a thread runs inside the caller's current `tracing` span, as Python runs it in
//! a copy of the caller's contextvars. A real subscriber records the span each event of the
//! work was emitted in.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use taskweave_bridge::{
    Queued, RayonExecutor, ThreadPoolExecutor, run_in_executor, spawn_rayon, to_thread,
};
use tracing::field::{Field, Visit};
use tracing::{Event, Instrument, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const LIMIT: Duration = Duration::from_secs(10);
const TARGET: &str = "bridge_context";

/// `(message, name of the span the event was emitted in)` for each event of [`TARGET`].
static SEEN: Mutex<Vec<(String, Option<String>)>> = Mutex::new(Vec::new());

struct SpanOfEvents;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanOfEvents {
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() != TARGET {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let span = ctx.event_span(event).map(|s| s.name().to_owned());
        SEEN.lock().unwrap().push((message.0, span));
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// Installs the recording subscriber for the whole test binary: the work's events are emitted
/// on pool threads, which see only the global subscriber.
fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(SpanOfEvents))
            .expect("no other global subscriber in this test binary");
    });
}

/// The span the event with `message` was emitted in; `None` if it had none.
fn span_of(message: &str) -> Option<String> {
    let seen = SEEN.lock().unwrap();
    let (_, span) = seen
        .iter()
        .find(|(m, _)| m == message)
        .unwrap_or_else(|| panic!("no event {message:?} was recorded: {seen:?}"));
    span.clone()
}

#[test]
fn submit_runs_in_the_callers_span() {
    install();
    let pool = ThreadPoolExecutor::new();
    let span = tracing::info_span!("ctx_submit");
    let mut p = span.in_scope(|| pool.submit(|| tracing::info!(target: TARGET, "inside submit")));
    p.result(Some(LIMIT)).unwrap();
    assert_eq!(span_of("inside submit").as_deref(), Some("ctx_submit"));
    // Outside any span, the work runs outside any span.
    pool.submit(|| tracing::info!(target: TARGET, "submit without a span"))
        .result(Some(LIMIT))
        .unwrap();
    assert_eq!(span_of("submit without a span"), None);
}

#[test]
fn to_thread_and_run_in_executor_run_in_the_awaiting_tasks_span() {
    install();
    taskweave_core::run(
        async {
            let to = to_thread(|| tracing::info!(target: TARGET, "inside to_thread"));
            tokio::time::timeout(LIMIT, to).await.unwrap().unwrap();
            let pool = ThreadPoolExecutor::new();
            let run = run_in_executor(&pool, || {
                tracing::info!(target: TARGET, "inside run_in_executor");
            });
            tokio::time::timeout(LIMIT, run).await.unwrap().unwrap();
            pool.shutdown_async(Queued::Run).await;
        }
        .instrument(tracing::info_span!("ctx_async")),
    )
    .unwrap();
    assert_eq!(span_of("inside to_thread").as_deref(), Some("ctx_async"));
    assert_eq!(
        span_of("inside run_in_executor").as_deref(),
        Some("ctx_async")
    );
}

#[test]
fn rayon_work_runs_in_the_callers_span() {
    install();
    let span = tracing::info_span!("ctx_rayon");
    let (mut a, mut b) = span.in_scope(|| {
        (
            spawn_rayon(|| tracing::info!(target: TARGET, "inside spawn_rayon")),
            RayonExecutor::global()
                .spawn(|| tracing::info!(target: TARGET, "inside RayonExecutor")),
        )
    });
    a.result(Some(LIMIT)).unwrap();
    b.result(Some(LIMIT)).unwrap();
    assert_eq!(span_of("inside spawn_rayon").as_deref(), Some("ctx_rayon"));
    assert_eq!(
        span_of("inside RayonExecutor").as_deref(),
        Some("ctx_rayon")
    );
}
