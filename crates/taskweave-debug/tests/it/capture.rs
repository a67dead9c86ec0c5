//! A global subscriber that records every taskweave event with its fields, and the lock that
//! keeps tests that run runtimes from overlapping.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// One recorded event.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    pub(crate) level: Level,
    pub(crate) target: String,
    pub(crate) message: String,
    pub(crate) fields: HashMap<String, String>,
}

impl Captured {
    pub(crate) fn kind(&self) -> &str {
        self.fields.get("kind").map_or("", String::as_str)
    }

    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    pub(crate) fn f64(&self, name: &str) -> f64 {
        self.field(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("field {name} missing or not a number in {self:?}"))
    }
}

static EVENTS: Mutex<Vec<Captured>> = Mutex::new(Vec::new());
static SERIAL: Mutex<()> = Mutex::new(());
static INSTALLED: OnceLock<()> = OnceLock::new();

struct Capture;

impl<S: Subscriber> Layer<S> for Capture {
    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        meta.target().starts_with("taskweave")
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !meta.target().starts_with("taskweave") {
            return;
        }
        let mut v = Visitor::default();
        event.record(&mut v);
        let message = v.fields.remove("message").unwrap_or_default();
        lock(&EVENTS).push(Captured {
            level: *meta.level(),
            target: meta.target().to_owned(),
            message,
            fields: v.fields,
        });
    }
}

#[derive(Default)]
struct Visitor {
    fields: HashMap<String, String>,
}

impl Visit for Visitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.fields
            .insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.fields
            .insert(field.name().to_owned(), format!("{value:?}"));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Takes the test lock, installs the capturing subscriber (once) and clears what earlier tests
/// recorded.
pub(crate) fn serial() -> MutexGuard<'static, ()> {
    let guard = lock(&SERIAL);
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(Capture);
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in this test binary");
    });
    lock(&EVENTS).clear();
    guard
}

/// Clears the recorded events (within a test that holds [`serial`]).
pub(crate) fn serial_reset() {
    lock(&EVENTS).clear();
}

/// Everything recorded since [`serial`].
pub(crate) fn events() -> Vec<Captured> {
    lock(&EVENTS).clone()
}

/// The recorded events of kind `kind`.
pub(crate) fn of_kind(kind: &str) -> Vec<Captured> {
    events().into_iter().filter(|e| e.kind() == kind).collect()
}

/// The recorded warnings and errors.
pub(crate) fn warnings() -> Vec<Captured> {
    events()
        .into_iter()
        .filter(|e| e.level <= Level::WARN)
        .collect()
}

/// Waits up to `limit` for an event matching `pred`; returns it and when it was seen.
pub(crate) fn wait_for(
    limit: Duration,
    pred: impl Fn(&Captured) -> bool,
) -> Option<(Captured, Instant)> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(e) = events().into_iter().find(|e| pred(e)) {
            return Some((e, Instant::now()));
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
