//! Handles: a task never awaited, a detached one, errors nobody retrieved.

use std::time::Duration;

use taskweave_core::instrument;
use taskweave_core::{Error, Promise, TaskInfo, create_task_named, create_task_try};
use taskweave_debug::Debug;
use tracing::Level;

use crate::capture::{self, of_kind, warnings};

async fn until_done<T>(task: &taskweave_core::Task<T>) {
    while !task.done() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[test]
fn a_handle_dropped_while_pending_is_reported_with_its_site() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    crate::runtime(&debug)
        .run(async {
            let task =
                create_task_named("forgotten", tokio::time::sleep(Duration::from_millis(30)));
            drop(task);
            tokio::time::sleep(Duration::from_millis(80)).await;
        })
        .unwrap();
    let reports = of_kind("never_awaited");
    assert_eq!(reports.len(), 1, "{reports:?}");
    let e = &reports[0];
    assert_eq!(e.level, Level::WARN);
    assert!(
        e.message.starts_with("<Task name='forgotten' id="),
        "{}",
        e.message
    );
    assert!(e.message.contains("was never awaited"), "{}", e.message);
    assert!(
        e.field("task.site")
            .unwrap()
            .contains("tests/it/handles.rs")
    );
    assert!(e.field("hint").unwrap().contains(".detach()"));
    assert_eq!(warnings().len(), 1, "{:?}", warnings());
}

#[test]
fn a_detached_task_is_not_reported() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    crate::runtime(&debug)
        .run(async {
            create_task_named("background", tokio::time::sleep(Duration::from_millis(10))).detach();
            tokio::time::sleep(Duration::from_millis(50)).await;
        })
        .unwrap();
    assert!(warnings().is_empty(), "{:?}", warnings());
}

#[test]
fn an_error_nobody_retrieved_is_reported_when_the_handle_goes() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    crate::runtime(&debug)
        .run(async {
            let task = create_task_try(async { Err::<(), _>(std::io::Error::other("disk full")) });
            until_done(&task).await;
            assert!(of_kind("error_not_retrieved").is_empty());
            drop(task);
        })
        .unwrap();
    let reports = of_kind("error_not_retrieved");
    assert_eq!(reports.len(), 1, "{reports:?}");
    let e = &reports[0];
    assert_eq!(e.level, Level::ERROR);
    assert!(
        e.message
            .starts_with("Task exception was never retrieved: <Task name='Task-"),
        "{}",
        e.message
    );
    assert!(e.message.ends_with("failed: disk full"), "{}", e.message);
    assert_eq!(e.field("error"), Some("disk full"));
    assert!(
        e.field("task.site")
            .unwrap()
            .contains("tests/it/handles.rs")
    );
}

#[test]
fn a_panic_nobody_retrieved_names_the_task_and_its_site() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    crate::runtime(&debug)
        .run(async {
            let task = create_task_named("doomed", async { panic!("boom") });
            until_done(&task).await;
        })
        .unwrap();
    let reports = of_kind("error_not_retrieved");
    assert_eq!(reports.len(), 1, "{reports:?}");
    let error = reports[0].field("error").unwrap();
    assert!(
        error.starts_with("task 'doomed' panicked: boom (created at "),
        "{error}"
    );
    assert!(error.contains("tests/it/handles.rs"), "{error}");
}

#[test]
fn a_task_dropped_pending_that_fails_later_gets_both_reports() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    crate::runtime(&debug)
        .run(async {
            drop(create_task_try(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err::<(), _>(std::io::Error::other("late failure"))
            }));
            // The failure comes after the handle is gone: wait for its report, bounded, rather
            // than for a fixed time that a busy machine may not keep to.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while of_kind("error_not_retrieved").is_empty() && std::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .unwrap();
    assert_eq!(of_kind("never_awaited").len(), 1);
    let lost = of_kind("error_not_retrieved");
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0].field("error"), Some("late failure"));
}

#[test]
fn awaited_or_inspected_errors_are_not_reported() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    crate::runtime(&debug)
        .run(async {
            let awaited = create_task_try(async { Err::<(), _>(std::io::Error::other("seen")) });
            assert!(awaited.await.is_err());
            let inspected = create_task_try(async { Err::<(), _>(std::io::Error::other("seen")) });
            let promise = inspected.into_promise();
            while !promise.done() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert!(promise.exception().is_some());
        })
        .unwrap();
    assert!(warnings().is_empty(), "{:?}", warnings());
}

#[test]
fn executor_work_lost_error_carries_its_backtrace() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    let guard = instrument::enter(debug.clone());
    let (promise, resolver) = Promise::<u8>::pending_with(TaskInfo::executor("square"));
    resolver.set_error(Error::panicked(
        "overflow".into(),
        Some("square".into()),
        None,
        Some("0: square\n1: worker_main".into()),
    ));
    drop(promise);
    drop(guard);
    let reports = of_kind("error_not_retrieved");
    assert_eq!(reports.len(), 1, "{reports:?}");
    let e = &reports[0];
    assert!(
        e.message
            .starts_with("Future exception was never retrieved: <Work name='square' id="),
        "{}",
        e.message
    );
    assert_eq!(e.field("backtrace"), Some("0: square\n1: worker_main"));
}
