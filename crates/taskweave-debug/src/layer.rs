//! [`PrettyLayer`]: a `tracing-subscriber` layer that prints taskweave's reports for people, and
//! [`PrettyLayer::install_global`] to make it the program's whole subscriber.

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::report::human;

/// Prints taskweave's debug reports (target `taskweave*`) as asyncio prints its warnings:
///
/// ```text
/// WARNING:taskweave: Executing <Task name='blocker' id=2 created at src/main.rs:9:5> took 0.301 seconds
///     hint: a poll must return quickly; ...
/// ```
///
/// Warnings and errors are shown, plus informational events (dumps asked for); debug logs (task
/// spawn, completion, executor submissions) only with [`with_debug_logs`](Self::with_debug_logs).
/// Other targets are left to other layers.
///
/// Add it with [`filtered`](Self::filtered): its filter then applies to this layer alone (the
/// other layers of the subscriber still see every event they want), and when no layer wants
/// taskweave's debug logs, debug mode does not even format them.
///
/// # Examples
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let subscriber =
///     tracing_subscriber::registry().with(taskweave_debug::PrettyLayer::new().filtered());
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::warn!(target: "taskweave::debug", "shown on stderr");
/// });
/// ```
pub struct PrettyLayer {
    max_level: Level,
    writer: Mutex<Box<dyn Write + Send>>,
}

impl fmt::Debug for PrettyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrettyLayer")
            .field("max_level", &self.max_level)
            .finish_non_exhaustive()
    }
}

impl Default for PrettyLayer {
    fn default() -> PrettyLayer {
        PrettyLayer::new()
    }
}

impl PrettyLayer {
    /// A layer printing reports on stderr.
    ///
    /// ```
    /// use tracing_subscriber::layer::SubscriberExt;
    /// let subscriber = tracing_subscriber::registry().with(taskweave_debug::PrettyLayer::new());
    /// let _guard = tracing::subscriber::set_default(subscriber);
    /// ```
    pub fn new() -> PrettyLayer {
        PrettyLayer {
            max_level: Level::INFO,
            writer: Mutex::new(Box::new(io::stderr())),
        }
    }

    /// Prints to `writer` instead of stderr.
    ///
    /// ```
    /// let layer = taskweave_debug::PrettyLayer::new().with_writer(std::io::sink());
    /// # drop(layer);
    /// ```
    pub fn with_writer(mut self, writer: impl Write + Send + 'static) -> PrettyLayer {
        self.writer = Mutex::new(Box::new(writer));
        self
    }

    /// Also prints the debug logs: task spawn, completion, cancellation, executor work.
    ///
    /// ```
    /// let layer = taskweave_debug::PrettyLayer::new().with_debug_logs(true);
    /// # drop(layer);
    /// ```
    pub fn with_debug_logs(mut self, on: bool) -> PrettyLayer {
        self.max_level = if on { Level::DEBUG } else { Level::INFO };
        self
    }

    /// This layer behind its own filter (taskweave's targets, up to its level), ready for
    /// `registry().with(..)`.
    ///
    /// ```
    /// use tracing_subscriber::layer::SubscriberExt;
    /// let subscriber = tracing_subscriber::registry()
    ///     .with(taskweave_debug::PrettyLayer::new().with_debug_logs(true).filtered());
    /// # drop(subscriber);
    /// ```
    pub fn filtered<S>(self) -> impl Layer<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let max_level = self.max_level;
        self.with_filter(filter_fn(move |meta| wanted(meta, max_level)))
    }

    /// Installs a global subscriber made of this layer alone ([`filtered`](Self::filtered)).
    ///
    /// Call it once at the start of `main` when the program has no subscriber of its own; a
    /// program that has one adds the layer to it instead, or keeps its own (debug mode's
    /// reports are plain tracing events that any subscriber shows). Without any subscriber,
    /// debug mode still prints warnings and errors on stderr; this adds the informational events
    /// (dumps on demand) and, with [`with_debug_logs`](Self::with_debug_logs), the debug logs.
    ///
    /// # Errors
    ///
    /// The error of
    /// [`tracing::subscriber::set_global_default`](https://docs.rs/tracing/0.1/tracing/subscriber/fn.set_global_default.html)
    /// when a global subscriber is already set.
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = taskweave_debug::PrettyLayer::new().install_global();
    /// ```
    pub fn install_global(self) -> Result<(), tracing::subscriber::SetGlobalDefaultError> {
        use tracing_subscriber::layer::SubscriberExt;
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(self.filtered()),
        )
    }

    fn wants(&self, meta: &Metadata<'_>) -> bool {
        wanted(meta, self.max_level)
    }
}

fn wanted(meta: &Metadata<'_>, max_level: Level) -> bool {
    meta.target().starts_with("taskweave") && *meta.level() <= max_level
}

/// Deliberately no `enabled`: a layer's `enabled` filters for the whole subscriber, and this one
/// must not hide other targets from other layers. [`PrettyLayer::filtered`] filters per layer.
impl<S: Subscriber> Layer<S> for PrettyLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !self.wants(meta) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut text = human(
            *meta.level(),
            &fields.message,
            fields.hint.as_deref(),
            fields.backtrace.as_deref(),
            fields.dump.as_deref(),
        );
        if !fields.rest.is_empty() && fields.kind.is_none() {
            // An event from elsewhere in taskweave: keep its fields visible.
            text.push_str(&fields.rest);
        }
        text.push('\n');
        let mut w = match self.writer.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        // A report that cannot be printed has nowhere better to go.
        let _ = w.write_all(text.as_bytes());
        let _ = w.flush();
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    kind: Option<String>,
    hint: Option<String>,
    backtrace: Option<String>,
    dump: Option<String>,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "kind" => self.kind = Some(value.to_owned()),
            "hint" => self.hint = Some(value.to_owned()),
            "backtrace" => self.backtrace = Some(value.to_owned()),
            "dump" => self.dump = Some(value.to_owned()),
            other => {
                use std::fmt::Write as _;
                let _ = write!(self.rest, " {other}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.record_str(field, &format!("{value:?}"));
        }
    }
}
