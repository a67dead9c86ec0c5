//! The timeline: Chrome / Perfetto trace JSON that parses, pairs every async begin with an end
//! and nests the slices of every thread.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use taskweave_core::instrument::{self, ExecutorEvent};
use taskweave_core::{TaskInfo, create_task_named, gather};
use taskweave_debug::Debug;

use crate::capture::{self, of_kind};

/// Checks the trace's structure and returns its events.
fn check_trace(text: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(text).expect("the timeline is valid JSON");
    let events = doc["traceEvents"]
        .as_array()
        .expect("a traceEvents array")
        .clone();
    // Async slices: every begin has one end with the same category and id, not before it.
    let mut open: HashMap<(String, String), f64> = HashMap::new();
    for e in &events {
        let ph = e["ph"].as_str().unwrap();
        if ph != "b" && ph != "e" {
            continue;
        }
        let key = (
            e["cat"].as_str().unwrap().to_owned(),
            e["id"].as_str().unwrap().to_owned(),
        );
        let ts = e["ts"].as_f64().unwrap();
        if ph == "b" {
            assert!(open.insert(key, ts).is_none(), "slice begun twice: {e}");
        } else {
            let begun = open
                .remove(&key)
                .unwrap_or_else(|| panic!("end without begin: {e}"));
            assert!(ts >= begun, "slice ends before it begins: {e}");
        }
    }
    assert!(open.is_empty(), "unclosed async slices: {open:?}");
    // Complete slices: on each thread, any two are disjoint or one contains the other.
    let mut by_thread: HashMap<u64, Vec<(f64, f64)>> = HashMap::new();
    for e in events.iter().filter(|e| e["ph"] == "X") {
        let ts = e["ts"].as_f64().unwrap();
        let dur = e["dur"].as_f64().unwrap();
        assert!(dur >= 0.0);
        by_thread
            .entry(e["tid"].as_u64().unwrap())
            .or_default()
            .push((ts, ts + dur));
    }
    for (tid, mut slices) in by_thread {
        slices.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut stack: Vec<f64> = Vec::new();
        for (start, end) in slices {
            while stack.last().is_some_and(|&top| top <= start) {
                stack.pop();
            }
            if let Some(&top) = stack.last() {
                assert!(end <= top, "slices overlap without nesting on thread {tid}");
            }
            stack.push(end);
        }
    }
    events
}

#[test]
fn the_timeline_parses_and_its_slices_nest() {
    let _serial = capture::serial();
    let dir = std::env::temp_dir().join(format!("taskweave-debug-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.json");
    let debug = Debug::new().trace_file(&path).build();
    crate::runtime(&debug)
        .run(async {
            let tasks = (0..20).map(|i| {
                create_task_named(format!("step \"{i}\""), async move {
                    for _ in 0..3 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    i
                })
            });
            assert_eq!(gather(tasks).await.unwrap().len(), 20);
            let work = TaskInfo::executor("resize");
            let executor = "ThreadPoolExecutor";
            instrument::executor_event(&ExecutorEvent::Submitted {
                executor,
                work: &work,
            });
            instrument::executor_event(&ExecutorEvent::Started {
                executor,
                work: &work,
                worker: "pool-0",
            });
            std::thread::sleep(Duration::from_millis(2));
            instrument::executor_event(&ExecutorEvent::Finished {
                executor,
                work: &work,
                duration: Duration::from_millis(2),
                ok: true,
            });
            create_task_named("left running", std::future::pending::<()>()).detach();
        })
        .unwrap();
    let text = std::fs::read_to_string(&path).expect("the timeline is written at shutdown");
    let events = check_trace(&text);
    let named = |ph: &str, name: &str| {
        events
            .iter()
            .filter(|e| e["ph"] == ph && e["name"] == name)
            .count()
    };
    assert_eq!(named("b", "step \"3\""), 1);
    assert_eq!(named("e", "step \"3\""), 1);
    assert_eq!(
        named("X", "step \"3\""),
        4,
        "four polls: three sleeps and the last"
    );
    assert_eq!(named("b", "ThreadPoolExecutor: resize"), 1);
    assert_eq!(named("X", "ThreadPoolExecutor: resize"), 1);
    let left = events
        .iter()
        .find(|e| e["ph"] == "e" && e["name"] == "left running")
        .expect("the cancelled task's slice ends");
    assert_eq!(left["args"]["outcome"], "cancelled");
    assert!(
        events
            .iter()
            .any(|e| e["ph"] == "M" && e["name"] == "thread_name")
    );
    assert!(
        events
            .iter()
            .any(|e| e["ph"] == "i" && e["name"] == "pending_at_shutdown")
    );
    assert_eq!(of_kind("timeline_written").len(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unfinished_slices_are_closed_when_written_early() {
    let _serial = capture::serial();
    let debug = Debug::new().timeline(true).build();
    let probe = debug.clone();
    crate::runtime(&debug)
        .run(async move {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let waiter = create_task_named("waiter", async move { rx.await.ok() });
            tokio::time::sleep(Duration::from_millis(5)).await;
            let text = probe.trace_json().expect("the timeline is on");
            let events = check_trace(&text);
            let end = events
                .iter()
                .find(|e| e["ph"] == "e" && e["name"] == "waiter")
                .expect("closed at writing time");
            assert_eq!(end["args"]["unfinished"], true);
            tx.send(()).unwrap();
            waiter.await.unwrap();
        })
        .unwrap();
    let bad = std::path::Path::new("/nonexistent-dir/run.json");
    assert!(debug.write_trace(bad).is_err());
    let off = Debug::new().timeline(false).build();
    let err = off.write_trace(bad).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
}
