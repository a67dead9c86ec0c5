//! Executor events reach the instrumentation seam (what debug mode reports).

use std::sync::{Arc, Mutex};

use taskweave_bridge::ThreadPoolExecutor;
use taskweave_core::instrument::{self, ExecutorEvent, Observer};

/// Records the events of one test (its own thread and its pool's threads; other tests run in
/// parallel); releases the blocked call once the drop was reported, so the count seen at the
/// drop does not depend on timing.
struct Record {
    lines: Mutex<Vec<String>>,
    release: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    test_thread: std::thread::ThreadId,
}

impl Observer for Record {
    fn on_executor(&self, event: &ExecutorEvent<'_>) {
        let me = std::thread::current();
        let ours =
            me.id() == self.test_thread || me.name().is_some_and(|n| n.starts_with("tw-events_"));
        if !ours {
            return;
        }
        let line = match event {
            ExecutorEvent::Submitted { executor, work } => {
                format!("submitted {executor} {}", work.name())
            }
            ExecutorEvent::Started {
                executor, worker, ..
            } => format!("started {executor} {worker}"),
            ExecutorEvent::Finished { executor, ok, .. } => format!("finished {executor} {ok}"),
            ExecutorEvent::DroppedWithPending { executor, pending } => {
                if let Some(release) = self.release.lock().unwrap().take() {
                    release.send(()).unwrap();
                }
                format!("dropped {executor} {pending}")
            }
            _ => "other".to_owned(),
        };
        self.lines.lock().unwrap().push(line);
    }
}

#[test]
fn submit_and_drop_with_pending_are_reported() {
    let record = Arc::new(Record {
        lines: Mutex::default(),
        release: Mutex::default(),
        test_thread: std::thread::current().id(),
    });
    let guard = instrument::enter(record.clone());
    {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .thread_name_prefix("tw-events")
            .build()
            .unwrap();
        pool.submit(|| 1).result(None).unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        *record.release.lock().unwrap() = Some(tx);
        pool.submit(move || rx.recv().unwrap()).detach();
        pool.submit(|| ()).detach();
        // Dropped without shutdown while two calls are unfinished.
    }
    drop(guard);
    let lines = record.lines.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("submitted ThreadPoolExecutor")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "started ThreadPoolExecutor tw-events_0"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "finished ThreadPoolExecutor true"),
        "{lines:?}"
    );
    // Two calls were unfinished; the first one may not have been counted off yet.
    assert!(
        lines
            .iter()
            .any(|l| l == "dropped ThreadPoolExecutor 2" || l == "dropped ThreadPoolExecutor 3"),
        "dropping with work pending is reported: {lines:?}"
    );
}
