//! Debug mode per runtime: attached to tokio runtimes the test builds itself, two observers in
//! one process each see their own runtime's tasks, the one in charge answers `current()`, and a
//! guard reports what is still pending when dropped and brings back what was there before.

use std::sync::Arc;
use std::time::Duration;

use taskweave_core::create_task_named;
use taskweave_debug::{Debug, DebugObserver};

use crate::capture::{self, of_kind};

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("the runtime starts")
}

fn names(debug: &DebugObserver) -> Vec<String> {
    debug.dump().tasks.into_iter().map(|t| t.name).collect()
}

#[test]
fn two_attached_runtimes_each_report_to_their_own_observer() {
    let _serial = capture::serial();
    let (rt_a, rt_b) = (tokio_runtime(), tokio_runtime());
    let a = Debug::new().attach(rt_a.handle());
    let b = Debug::new().attach(rt_b.handle());
    let (tx_a, rx_a) = tokio::sync::oneshot::channel::<()>();
    let (tx_b, rx_b) = tokio::sync::oneshot::channel::<()>();
    let in_a = rt_a.block_on(async {
        create_task_named("waiting-in-a", async move { rx_a.await.ok() }).detach();
        tokio::task::yield_now().await;
        taskweave_debug::current().expect("a debug observer is in charge")
    });
    let in_b = rt_b.block_on(async {
        create_task_named("waiting-in-b", async move { rx_b.await.ok() }).detach();
        tokio::task::yield_now().await;
        taskweave_debug::current().expect("a debug observer is in charge")
    });
    assert!(Arc::ptr_eq(&in_a, a.observer()));
    assert!(Arc::ptr_eq(&in_b, b.observer()));
    assert_eq!(names(a.observer()), ["waiting-in-a"]);
    assert_eq!(names(b.observer()), ["waiting-in-b"]);

    // Switching A off reports its pending task and leaves B on.
    let a_observer = a.observer().clone();
    drop(a);
    let pending = of_kind("pending_at_shutdown");
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert!(
        pending[0]
            .message
            .starts_with("Task was still pending when debug mode was switched off for its runtime: <Task name='waiting-in-a'"),
        "{}",
        pending[0].message
    );
    rt_a.block_on(async { create_task_named("unobserved", async {}).await.unwrap() });
    rt_b.block_on(async {
        drop(create_task_named(
            "forgotten-in-b",
            tokio::time::sleep(Duration::from_millis(20)),
        ));
    });
    let never = of_kind("never_awaited");
    assert_eq!(never.len(), 1, "{never:?}");
    assert_eq!(never[0].field("task.name"), Some("forgotten-in-b"));
    assert!(!names(&a_observer).iter().any(|n| n == "unobserved"));

    tx_a.send(()).unwrap();
    tx_b.send(()).unwrap();
    drop(b);
}

#[test]
fn a_guard_brings_back_the_observer_attached_before_it() {
    let _serial = capture::serial();
    let rt = tokio_runtime();
    let outer = Debug::new().attach(rt.handle());
    let inner = Debug::new().attach(rt.handle());
    let (tx_inner, rx_inner) = tokio::sync::oneshot::channel::<()>();
    rt.block_on(async {
        create_task_named("to-inner", async move { rx_inner.await.ok() }).detach();
        tokio::task::yield_now().await;
    });
    assert_eq!(names(inner.observer()), ["to-inner"]);
    assert!(names(outer.observer()).is_empty());
    drop(inner);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    rt.block_on(async {
        create_task_named("to-outer", async move { rx.await.ok() }).detach();
        tokio::task::yield_now().await;
    });
    assert_eq!(names(outer.observer()), ["to-outer"]);
    tx_inner.send(()).unwrap();
    tx.send(()).unwrap();
    drop(outer);
}

#[test]
fn enable_outside_a_runtime_is_a_clear_error() {
    let err = taskweave_debug::enable().unwrap_err();
    assert!(err.to_string().contains("inside a tokio runtime"), "{err}");
}
