//! Executor events as an executor reports them through the seam: debug logs, dumps, and the
//! resource-leak report.

use std::time::Duration;

use taskweave_core::instrument::{self, ExecutorEvent};
use taskweave_core::{Error, Promise, TaskInfo};
use taskweave_debug::{Debug, TaskState};
use tracing::Level;

use crate::capture::{self, of_kind};

#[test]
fn executor_work_is_logged_and_listed_while_it_lives() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    let guard = instrument::enter(debug.clone());
    let work = TaskInfo::executor("resize");
    let executor = "ThreadPoolExecutor";
    instrument::executor_event(&ExecutorEvent::Submitted {
        executor,
        work: &work,
    });
    let queued = debug.dump();
    assert_eq!(queued.tasks.len(), 1);
    assert!(queued.tasks[0].executor_work);
    assert_eq!(
        queued.tasks[0].state,
        TaskState::Queued {
            executor: executor.to_owned()
        }
    );
    instrument::executor_event(&ExecutorEvent::Started {
        executor,
        work: &work,
        worker: "pool-worker-0",
    });
    let running = debug.dump();
    assert!(
        matches!(&running.tasks[0].state, TaskState::Running { worker, .. } if worker == "ThreadPoolExecutor pool-worker-0"),
        "{:?}",
        running.tasks[0].state
    );
    assert!(running.to_string().contains("<Work name='resize'"));
    instrument::executor_event(&ExecutorEvent::Finished {
        executor,
        work: &work,
        duration: Duration::from_millis(3),
        ok: true,
    });
    assert!(debug.dump().tasks.is_empty());
    drop(guard);

    let submitted = of_kind("submitted");
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].level, Level::DEBUG);
    assert!(
        submitted[0].message.starts_with("<Work name='resize' id="),
        "{}",
        submitted[0].message
    );
    assert!(
        submitted[0]
            .message
            .ends_with("submitted to ThreadPoolExecutor")
    );
    assert_eq!(submitted[0].field("executor"), Some(executor));
    assert_eq!(of_kind("started").len(), 1);
    let finished = of_kind("work_finished");
    assert_eq!(finished.len(), 1);
    assert!(finished[0].f64("duration_s") > 0.0);
}

#[test]
fn a_pool_dropped_with_pending_work_is_reported() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    let guard = instrument::enter(debug.clone());
    instrument::executor_event(&ExecutorEvent::DroppedWithPending {
        executor: "ProcessPoolExecutor",
        pending: 3,
    });
    drop(guard);
    let dropped = of_kind("executor_dropped_with_pending");
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].level, Level::WARN);
    assert_eq!(
        dropped[0].message,
        "ProcessPoolExecutor was dropped without shutdown() while 3 submission(s) were still pending"
    );
    assert_eq!(dropped[0].field("pending"), Some("3"));
    assert!(dropped[0].field("hint").unwrap().contains("shutdown"));
}

#[test]
fn work_that_never_ran_leaves_the_table_when_its_promise_completes() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    let guard = instrument::enter(debug.clone());
    let executor = "ThreadPoolExecutor";
    let (cancelled, queued) = Promise::<u8>::pending_with(TaskInfo::executor("skipped"));
    instrument::executor_event(&ExecutorEvent::Submitted {
        executor,
        work: queued.info().unwrap(),
    });
    let (refused, refused_resolver) = Promise::<u8>::pending_with(TaskInfo::executor("refused"));
    instrument::executor_event(&ExecutorEvent::Submitted {
        executor,
        work: refused_resolver.info().unwrap(),
    });
    assert_eq!(debug.dump().tasks.len(), 2);
    assert!(cancelled.cancel());
    assert!(
        !queued.set_running(),
        "the executor sees the cancellation and skips the work"
    );
    drop(queued);
    refused_resolver.set_error(Error::shutdown("the pool is shut down"));
    assert!(debug.dump().tasks.is_empty(), "{}", debug.dump());
    assert!(refused.exception().is_some());
    drop((cancelled, refused, guard));
    let ended = of_kind("work_ended");
    assert_eq!(ended.len(), 2, "{ended:?}");
    assert!(
        ended[0].message.ends_with("without running: cancelled"),
        "{}",
        ended[0].message
    );
    assert!(
        ended[1]
            .message
            .ends_with("without running: failed (shut down: the pool is shut down)"),
        "{}",
        ended[1].message
    );
}
