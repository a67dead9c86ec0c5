//! Executor events: every call is reported Submitted, Started (with its worker's pid) and
//! Finished, whether the submitting thread wrote it straight to an idle worker or the feeder
//! sent it from the queue, so the debug timeline shows every call's worker span.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskweave_core::instrument::{ExecutorEvent, Observer};
use taskweave_core::{Promise, TaskId};
use taskweave_process::{ProcessPoolExecutor, Queued};

use crate::exclusive;
use crate::work::sleep_pid;

/// The process pool's events, by the call they are about, in the order they came.
#[derive(Default)]
struct Recorder(Mutex<HashMap<TaskId, Vec<String>>>);

impl Recorder {
    fn note(&self, id: TaskId, what: String) {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        seen.entry(id).or_default().push(what);
    }

    fn of(&self, id: TaskId) -> Vec<String> {
        let seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(&id).cloned().unwrap_or_default()
    }
}

impl Observer for Recorder {
    fn on_executor(&self, event: &ExecutorEvent<'_>) {
        match event {
            ExecutorEvent::Submitted { executor, work } if *executor == "ProcessPoolExecutor" => {
                self.note(work.id(), "submitted".into());
            }
            ExecutorEvent::Started {
                executor,
                work,
                worker,
            } if *executor == "ProcessPoolExecutor" => {
                self.note(work.id(), format!("started on {worker}"));
            }
            ExecutorEvent::Finished {
                executor, work, ok, ..
            } if *executor == "ProcessPoolExecutor" => {
                self.note(work.id(), format!("finished ok={ok}"));
            }
            _ => {}
        }
    }
}

/// Awaits `p` and checks its three events, in order, naming the worker that ran it.
async fn ran_with_events(recorder: &Recorder, p: Promise<u32>, how: &str) {
    let id = p.info().expect("a submitted call has its info").id();
    let pid = taskweave_core::timeout(Duration::from_secs(30), p)
        .await
        .unwrap_or_else(|e| panic!("{how} call did not finish: {e}"))
        .unwrap();
    assert_eq!(
        recorder.of(id),
        [
            "submitted".to_string(),
            format!("started on {pid}"),
            "finished ok=true".to_string()
        ],
        "{how} call"
    );
}

#[test]
fn direct_and_queued_calls_report_submitted_started_and_finished() {
    // Exclusive: the observer is installed for the whole process while the runtime runs.
    let _g = exclusive();
    let recorder = Arc::new(Recorder::default());
    let rt = taskweave_core::Runtime::builder()
        .observer(recorder.clone())
        .build()
        .unwrap();
    let r = recorder.clone();
    rt.run(async move {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap();
        // The first call may be queued while the worker starts.
        ran_with_events(&r, pool.submit(sleep_pid, 0), "first").await;
        // One call at a time to an idle worker: each is written by the submitting thread.
        for _ in 0..5 {
            ran_with_events(&r, pool.submit(sleep_pid, 0), "direct").await;
        }
        // A burst: the first goes straight to the worker, the rest wait in the queue for the
        // feeder.
        let burst: Vec<_> = (0..8).map(|_| pool.submit(sleep_pid, 2)).collect();
        for p in burst {
            ran_with_events(&r, p, "queued").await;
        }
        pool.shutdown_async(Queued::Run).await;
    })
    .unwrap();
}

#[test]
fn a_call_taken_back_from_a_stuck_worker_is_reported_started_once() {
    let _g = exclusive();
    let recorder = Arc::new(Recorder::default());
    let rt = taskweave_core::Runtime::builder()
        .observer(recorder.clone())
        .build()
        .unwrap();
    let r = recorder.clone();
    rt.run(async move {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap();
        // Short calls first, so the pool's usual call is short and a long one counts as stuck.
        for _ in 0..5 {
            ran_with_events(&r, pool.submit(sleep_pid, 0), "warm-up").await;
        }
        // The calls pipelined behind the long one are taken back when it stalls; with no other
        // worker they wait and go to the same worker again once it has caught up.
        let long = pool.submit(sleep_pid, 600);
        let behind: Vec<_> = (0..3).map(|_| pool.submit(sleep_pid, 0)).collect();
        ran_with_events(&r, long, "long").await;
        for p in behind {
            ran_with_events(&r, p, "taken back").await;
        }
        pool.shutdown_async(Queued::Run).await;
    })
    .unwrap();
}
