//! Executor work reports to the observer of the code that submitted it: two runtimes with
//! different observers share one thread pool and one process pool, and each observer sees the
//! submitted, started and finished events of its own runtime's work only.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskweave::instrument::{ExecutorEvent, Observer};
use taskweave::{ProcessPoolExecutor, Runtime, TaskId, ThreadPoolExecutor};

const WAIT: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Events(Mutex<Vec<(&'static str, String, TaskId)>>);

impl Observer for Events {
    fn on_executor(&self, event: &ExecutorEvent<'_>) {
        let seen = match event {
            ExecutorEvent::Submitted { executor, work } => ("submitted", executor, work.id()),
            ExecutorEvent::Started { executor, work, .. } => ("started", executor, work.id()),
            ExecutorEvent::Finished { executor, work, .. } => ("finished", executor, work.id()),
            _ => return,
        };
        self.0
            .lock()
            .unwrap()
            .push((seen.0, seen.1.to_string(), seen.2));
    }
}

impl Events {
    /// The ids each kind of event was seen for, per executor, sorted.
    fn ids(&self, kind: &str, executor: &str) -> Vec<TaskId> {
        let mut ids: Vec<TaskId> = (self.0.lock().unwrap().iter())
            .filter(|(k, e, _)| *k == kind && e == executor)
            .map(|(_, _, id)| *id)
            .collect();
        ids.sort();
        ids
    }
}

fn square(x: u64) -> u64 {
    x * x
}

/// Submits to both pools from a runtime observed by `events`; returns the ids of the work per
/// pool, after waiting (bounded) for `go` so both runtimes are alive together.
fn submit_from_runtime(
    events: Arc<Events>,
    threads: Arc<ThreadPoolExecutor>,
    processes: Arc<ProcessPoolExecutor>,
    go: mpsc::Receiver<()>,
) -> (Vec<TaskId>, Vec<TaskId>) {
    let rt = Runtime::builder()
        .worker_threads(1)
        .observer(events)
        .build()
        .expect("the runtime starts");
    rt.run(async move {
        go.recv_timeout(WAIT).expect("the other runtime started");
        let mut thread_ids = Vec::new();
        let mut process_ids = Vec::new();
        for x in 0..3u64 {
            let on_thread = threads.submit(move || x + 1);
            thread_ids.push(on_thread.info().unwrap().id());
            let on_process = processes.submit(square, x);
            process_ids.push(on_process.info().unwrap().id());
            assert_eq!(taskweave::wait_for(on_thread, WAIT).await.unwrap(), x + 1);
            assert_eq!(taskweave::wait_for(on_process, WAIT).await.unwrap(), x * x);
        }
        thread_ids.sort();
        process_ids.sort();
        (thread_ids, process_ids)
    })
    .expect("the runtime ran")
}

#[test]
fn executor_events_go_to_the_observer_of_the_submitting_runtime() {
    let threads = Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap(),
    );
    let processes = Arc::new(
        ProcessPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap(),
    );
    let (a, b) = (Arc::new(Events::default()), Arc::new(Events::default()));
    let (go_a, wait_a) = mpsc::channel();
    let (go_b, wait_b) = mpsc::channel();
    let other = {
        let (b, threads, processes) = (b.clone(), threads.clone(), processes.clone());
        std::thread::spawn(move || submit_from_runtime(b, threads, processes, wait_b))
    };
    go_a.send(()).unwrap();
    go_b.send(()).unwrap();
    let (a_threads, a_processes) = submit_from_runtime(a.clone(), threads, processes, wait_a);
    let (b_threads, b_processes) = other.join().expect("runtime B's thread");

    for (events, on_threads, on_processes) in [
        (&a, &a_threads, &a_processes),
        (&b, &b_threads, &b_processes),
    ] {
        for kind in ["submitted", "started", "finished"] {
            assert_eq!(
                &events.ids(kind, "ThreadPoolExecutor"),
                on_threads,
                "{kind}"
            );
            assert_eq!(
                &events.ids(kind, "ProcessPoolExecutor"),
                on_processes,
                "{kind}"
            );
        }
    }
}
