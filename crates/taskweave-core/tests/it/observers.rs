//! Observers belong to runtimes: two runtimes with different observers in one process each see
//! only their own tasks and work, and a guard brings back what was in charge before it.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskweave_core::instrument::{self, Observer, Outcome};
use taskweave_core::{Promise, Runtime, TaskInfo, WorkKind, create_task_named};

const WAIT: Duration = Duration::from_secs(10);

/// Records the names of the tasks spawned and of the executor work completed under it.
#[derive(Default)]
struct Record {
    spawned: Mutex<Vec<String>>,
    work: Mutex<Vec<String>>,
}

impl Record {
    fn spawned(&self) -> Vec<String> {
        self.spawned.lock().unwrap().clone()
    }

    fn work(&self) -> Vec<String> {
        self.work.lock().unwrap().clone()
    }
}

impl Observer for Record {
    fn on_spawn(&self, task: &TaskInfo) {
        self.spawned.lock().unwrap().push(task.name());
    }

    fn on_complete(&self, task: &TaskInfo, _outcome: Outcome<'_>) {
        if task.kind() == WorkKind::Executor {
            self.work.lock().unwrap().push(task.name());
        }
    }
}

fn observed_runtime(record: &Arc<Record>) -> Runtime {
    Runtime::builder()
        .worker_threads(1)
        .observer(record.clone())
        .build()
        .expect("the runtime starts")
}

/// Executor work as a pool submits it: the promise is created on the runtime, the work is
/// completed on a plain thread that belongs to no runtime.
async fn work_on_a_plain_thread(name: &'static str) {
    let (promise, resolver) = Promise::<u8>::pending_with(TaskInfo::executor(name));
    std::thread::spawn(move || resolver.set_result(1));
    assert_eq!(taskweave_core::wait_for(promise, WAIT).await.unwrap(), 1);
}

#[test]
fn two_runtimes_with_their_own_observers_do_not_interfere() {
    let a = Arc::new(Record::default());
    let b = Arc::new(Record::default());
    let (a_running, wait_for_a) = mpsc::channel::<()>();
    let (a_done, wait_for_a_done) = mpsc::channel::<()>();

    let b_thread = {
        let b = b.clone();
        std::thread::spawn(move || {
            observed_runtime(&b)
                .run(async move {
                    create_task_named("b-first", async {}).await.unwrap();
                    // Both runtimes are alive now.
                    wait_for_a.recv_timeout(WAIT).expect("runtime A started");
                    create_task_named("b-while-a-runs", async {}).await.unwrap();
                    // Runtime A has shut down and dropped its guard: B still reports to b.
                    wait_for_a_done.recv_timeout(WAIT).expect("runtime A ended");
                    create_task_named("b-after-a", async {
                        create_task_named("b-child", async {}).await.unwrap();
                    })
                    .await
                    .unwrap();
                    work_on_a_plain_thread("b-work").await;
                })
                .expect("runtime B ran")
        })
    };

    observed_runtime(&a)
        .run(async {
            create_task_named("a-first", async {}).await.unwrap();
            work_on_a_plain_thread("a-work").await;
            a_running.send(()).unwrap();
            create_task_named("a-second", async {}).await.unwrap();
        })
        .expect("runtime A ran");
    a_done.send(()).unwrap();
    b_thread.join().expect("runtime B's thread");

    assert_eq!(a.spawned(), ["a-first", "a-second"]);
    assert_eq!(a.work(), ["a-work"]);
    assert_eq!(
        b.spawned(),
        ["b-first", "b-while-a-runs", "b-after-a", "b-child"]
    );
    assert_eq!(b.work(), ["b-work"]);
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("the runtime starts")
}

#[test]
fn plain_tokio_runtimes_attach_observers_and_guards_restore_what_was_before() {
    let (rt_a, rt_b) = (tokio_runtime(), tokio_runtime());
    let (a, b, c) = (
        Arc::new(Record::default()),
        Arc::new(Record::default()),
        Arc::new(Record::default()),
    );
    let spawn_on = |rt: &tokio::runtime::Runtime, name: &'static str| {
        rt.block_on(async {
            // Spawned from a raw tokio task: only the runtime says which observer is in charge.
            tokio::spawn(async move { create_task_named(name, async {}).await.unwrap() })
                .await
                .unwrap();
        });
    };

    let guard_a = instrument::attach(rt_a.handle(), a.clone());
    let guard_b = instrument::attach(rt_b.handle(), b.clone());
    spawn_on(&rt_a, "a-1");
    spawn_on(&rt_b, "b-1");
    let guard_c = instrument::attach(rt_b.handle(), c.clone());
    spawn_on(&rt_b, "c-1");
    drop(guard_c);
    spawn_on(&rt_b, "b-2");
    // A's guard goes first while both runtimes live on: B keeps reporting to b.
    drop(guard_a);
    spawn_on(&rt_a, "nobody");
    spawn_on(&rt_b, "b-3");
    drop(guard_b);
    spawn_on(&rt_b, "nobody either");

    assert_eq!(a.spawned(), ["a-1"]);
    assert_eq!(b.spawned(), ["b-1", "b-2", "b-3"]);
    assert_eq!(c.spawned(), ["c-1"]);
}

#[test]
fn an_observer_entered_on_a_thread_follows_the_work_it_starts() {
    let record = Arc::new(Record::default());
    let rt = tokio_runtime();
    let guard = instrument::enter(record.clone());
    rt.block_on(async {
        // The main future runs on this thread; the task it spawns runs on a worker thread and
        // passes the observer on to its own child.
        create_task_named("parent", async {
            create_task_named("child", async {}).await.unwrap();
        })
        .await
        .unwrap();
    });
    drop(guard);
    rt.block_on(async { create_task_named("after", async {}).await.unwrap() });
    assert_eq!(record.spawned(), ["parent", "child"]);
}
