//! Reports: every finding of debug mode becomes one `tracing` event under the target
//! [`TARGET`], with structured fields and an asyncio-like message.
//!
//! Fields (present when they apply): `kind` (which report, e.g. `"slow_poll"`), `task.id`,
//! `task.name`, `task.site`, `duration_s`, `age_s`, `polls`, `error`, `backtrace`, `executor`,
//! `pending`, `hint` and `dump`. When no tracing subscriber is set at all, warnings and
//! errors are printed on stderr in the same form as [`PrettyLayer`](crate::PrettyLayer) uses, so
//! a report is never lost, as Python's last-resort logging handler does.

use taskweave_core::TaskInfo;
use tracing::Level;

/// The tracing target of every debug-mode event.
pub const TARGET: &str = "taskweave::debug";

/// One report, before it is emitted.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    pub(crate) level: Level,
    pub(crate) kind: &'static str,
    pub(crate) task: Option<&'a TaskInfo>,
    pub(crate) message: String,
    pub(crate) duration_s: Option<f64>,
    pub(crate) age_s: Option<f64>,
    pub(crate) polls: Option<u64>,
    pub(crate) error: Option<String>,
    pub(crate) backtrace: Option<String>,
    pub(crate) executor: Option<&'a str>,
    pub(crate) pending: Option<u64>,
    pub(crate) hint: Option<&'static str>,
    pub(crate) dump: Option<String>,
}

impl<'a> Report<'a> {
    pub(crate) fn new(level: Level, kind: &'static str, message: String) -> Report<'a> {
        Report {
            level,
            kind,
            task: None,
            message,
            duration_s: None,
            age_s: None,
            polls: None,
            error: None,
            backtrace: None,
            executor: None,
            pending: None,
            hint: None,
            dump: None,
        }
    }

    pub(crate) fn task(mut self, task: Option<&'a TaskInfo>) -> Report<'a> {
        self.task = task;
        self
    }

    pub(crate) fn hint(mut self, hint: &'static str) -> Report<'a> {
        self.hint = Some(hint);
        self
    }

    /// Emits the report as a tracing event (and on stderr when no subscriber exists).
    pub(crate) fn emit(&self) {
        let id = self.task.map(|t| t.id().as_u64());
        let name = self.task.map(TaskInfo::name);
        let site = self.task.map(|t| t.site().to_string());
        macro_rules! event {
            ($level:expr) => {
                tracing::event!(
                    target: TARGET,
                    $level,
                    kind = self.kind,
                    task.id = id,
                    task.name = name.as_deref(),
                    task.site = site.as_deref(),
                    duration_s = self.duration_s,
                    age_s = self.age_s,
                    polls = self.polls,
                    error = self.error.as_deref(),
                    backtrace = self.backtrace.as_deref(),
                    executor = self.executor,
                    pending = self.pending,
                    hint = self.hint,
                    dump = self.dump.as_deref(),
                    "{}",
                    self.message
                )
            };
        }
        match self.level {
            Level::ERROR => event!(Level::ERROR),
            Level::WARN => event!(Level::WARN),
            Level::INFO => event!(Level::INFO),
            Level::DEBUG => event!(Level::DEBUG),
            _ => event!(Level::TRACE),
        }
        if self.level <= Level::INFO && !tracing::dispatcher::has_been_set() {
            eprintln!(
                "{}",
                human(
                    self.level,
                    &self.message,
                    self.hint,
                    self.backtrace.as_deref(),
                    self.dump.as_deref()
                )
            );
        }
    }
}

/// The text a person reads: `WARNING:taskweave: <message>`, then the hint, backtrace and dump
/// indented below it.
pub(crate) fn human(
    level: Level,
    message: &str,
    hint: Option<&str>,
    backtrace: Option<&str>,
    dump: Option<&str>,
) -> String {
    let level = match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        _ => "TRACE",
    };
    let mut out = format!("{level}:taskweave: {message}");
    if let Some(hint) = hint {
        out.push_str("\n    hint: ");
        out.push_str(hint);
    }
    if let Some(bt) = backtrace {
        out.push_str("\n    backtrace:");
        for line in bt.lines() {
            out.push_str("\n      ");
            out.push_str(line);
        }
    }
    if let Some(dump) = dump {
        for line in dump.lines() {
            out.push_str("\n    ");
            out.push_str(line);
        }
    }
    out
}
