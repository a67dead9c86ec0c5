//! The run as a Chrome / Perfetto trace (the JSON "Trace Event Format"), for `ui.perfetto.dev`
//! or `chrome://tracing`.
//!
//! What is drawn:
//! - each task from spawn to completion as an async slice (`b`/`e`, category `task`), one track
//!   per task, so a task that waits is one bar, not one fragment per poll;
//! - each poll as a complete slice (`X`, category `poll`) on the thread that ran it; polls of one
//!   thread never overlap, so these slices nest trivially;
//! - each piece of executor work from submission to its end as an async slice (category
//!   `executor`), and its run as a complete slice on a track per worker (thread or process);
//! - each debug report as an instant event.
//!
//! Events are kept in memory while the run lasts and written once, at shutdown or on request.
//! Slices still open at writing time are closed there, marked `"unfinished": true`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::sync::Mutex;

use crate::clock;

#[derive(Debug, Clone)]
enum Kind {
    Begin,
    End,
    Complete { dur_ns: u64 },
    Instant,
}

#[derive(Debug, Clone)]
struct Event {
    kind: Kind,
    ts_ns: u64,
    tid: u64,
    id: u64,
    cat: &'static str,
    name: String,
    args: Vec<(&'static str, String)>,
}

#[derive(Default)]
struct Inner {
    events: Vec<Event>,
    threads: HashMap<u64, String>,
    workers: HashMap<String, u64>,
}

/// The recorder. One per debug observer that has a timeline switched on.
pub(crate) struct Timeline {
    inner: Mutex<Inner>,
}

/// Worker tracks get ids far above real threads' so the two never collide.
const WORKER_TID_BASE: u64 = 1 << 32;

impl Timeline {
    pub(crate) fn new() -> Timeline {
        Timeline {
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn push(&self, thread: Option<(u64, String)>, event: Event) {
        let mut inner = self.lock();
        if let Some((tid, name)) = thread {
            inner.threads.entry(tid).or_insert(name);
        }
        inner.events.push(event);
    }

    /// A task or piece of work starts its async slice.
    pub(crate) fn begin(&self, cat: &'static str, id: u64, name: String, ts_ns: u64) {
        let (tid, tname) = crate::threads::current_thread();
        self.push(
            Some((tid, tname)),
            Event {
                kind: Kind::Begin,
                ts_ns,
                tid,
                id,
                cat,
                name,
                args: Vec::new(),
            },
        );
    }

    /// A task or piece of work ends its async slice.
    pub(crate) fn end(
        &self,
        cat: &'static str,
        id: u64,
        name: String,
        ts_ns: u64,
        args: Vec<(&'static str, String)>,
    ) {
        let (tid, tname) = crate::threads::current_thread();
        self.push(
            Some((tid, tname)),
            Event {
                kind: Kind::End,
                ts_ns,
                tid,
                id,
                cat,
                name,
                args,
            },
        );
    }

    /// A poll of task `id` on thread `tid`.
    pub(crate) fn poll(&self, tid: u64, id: u64, name: String, start_ns: u64, dur_ns: u64) {
        let thread = crate::threads::current_thread();
        self.push(
            Some(thread),
            Event {
                kind: Kind::Complete { dur_ns },
                ts_ns: start_ns,
                tid,
                id,
                cat: "poll",
                name,
                args: Vec::new(),
            },
        );
    }

    /// Executor work that ran on `worker` from `start_ns` for `dur_ns`.
    pub(crate) fn work(&self, worker: &str, id: u64, name: String, start_ns: u64, dur_ns: u64) {
        let mut inner = self.lock();
        let next = WORKER_TID_BASE + inner.workers.len() as u64;
        let tid = *inner.workers.entry(worker.to_owned()).or_insert(next);
        inner
            .threads
            .entry(tid)
            .or_insert_with(|| format!("worker {worker}"));
        inner.events.push(Event {
            kind: Kind::Complete { dur_ns },
            ts_ns: start_ns,
            tid,
            id,
            cat: "executor",
            name,
            args: Vec::new(),
        });
    }

    /// A debug report, as an instant event.
    pub(crate) fn instant(&self, name: &str, message: &str) {
        let thread = crate::threads::current_thread();
        let tid = thread.0;
        self.push(
            Some(thread),
            Event {
                kind: Kind::Instant,
                ts_ns: clock::now_ns(),
                tid,
                id: 0,
                cat: "report",
                name: name.to_owned(),
                args: vec![("message", message.to_owned())],
            },
        );
    }

    /// The trace as JSON text.
    pub(crate) fn to_json(&self) -> String {
        let now = clock::now_ns();
        let inner = self.lock();
        let pid = std::process::id();
        let mut out = String::with_capacity(inner.events.len() * 120 + 256);
        out.push_str("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
        let _ = write!(
            out,
            "{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":\"taskweave\"}}}}"
        );
        let mut tids: Vec<_> = inner.threads.iter().collect();
        tids.sort();
        for (tid, name) in tids {
            out.push_str(",\n");
            let _ = write!(
                out,
                "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"name\":{}}}}}",
                json_str(name)
            );
        }
        let mut open: HashMap<(&'static str, u64), &Event> = HashMap::new();
        for e in &inner.events {
            match e.kind {
                Kind::Begin => {
                    open.insert((e.cat, e.id), e);
                }
                Kind::End => {
                    open.remove(&(e.cat, e.id));
                }
                _ => {}
            }
            out.push_str(",\n");
            write_event(&mut out, pid, e);
        }
        let mut unfinished: Vec<&Event> = open.into_values().collect();
        unfinished.sort_by_key(|e| (e.id, e.cat));
        for e in unfinished {
            out.push_str(",\n");
            let end = Event {
                kind: Kind::End,
                ts_ns: now.max(e.ts_ns),
                tid: e.tid,
                id: e.id,
                cat: e.cat,
                name: e.name.clone(),
                args: vec![("unfinished", "true".to_owned())],
            };
            write_event(&mut out, pid, &end);
        }
        out.push_str("\n]}\n");
        out
    }

    /// Writes the trace to `path`.
    pub(crate) fn write(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.to_json())
    }
}

fn write_event(out: &mut String, pid: u32, e: &Event) {
    let ph = match e.kind {
        Kind::Begin => "b",
        Kind::End => "e",
        Kind::Complete { .. } => "X",
        Kind::Instant => "i",
    };
    let _ = write!(
        out,
        "{{\"ph\":\"{ph}\",\"cat\":\"{}\",\"name\":{},\"pid\":{pid},\"tid\":{},\"ts\":{}",
        e.cat,
        json_str(&e.name),
        e.tid,
        micros(e.ts_ns)
    );
    match e.kind {
        Kind::Begin | Kind::End => {
            let _ = write!(out, ",\"id\":\"0x{:x}\"", e.id);
        }
        Kind::Complete { dur_ns } => {
            let _ = write!(out, ",\"dur\":{}", micros(dur_ns));
        }
        Kind::Instant => out.push_str(",\"s\":\"g\""),
    }
    out.push_str(",\"args\":{");
    let mut first = true;
    if e.id != 0 {
        let _ = write!(out, "\"task_id\":{}", e.id);
        first = false;
    }
    for (k, v) in &e.args {
        if !first {
            out.push(',');
        }
        first = false;
        let value = if v == "true" || v == "false" {
            v.clone()
        } else {
            json_str(v)
        };
        let _ = write!(out, "{}:{value}", json_str(k));
    }
    out.push_str("}}");
}

/// Nanoseconds as exact microseconds with three decimals: rounding would let a slice's end
/// pass the start of the next one on the same thread.
fn micros(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

/// `s` as a JSON string literal.
pub(crate) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::json_str;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }
}
