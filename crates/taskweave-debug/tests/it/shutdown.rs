//! Shutdown: tasks still pending when `run` ends, and tasks left inside a poll by a runtime that
//! stopped waiting for them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use taskweave_core::{Runtime, create_task_named};
use taskweave_debug::Debug;
use tracing::Level;

use crate::capture::{self, of_kind};

#[test]
fn tasks_pending_at_shutdown_are_listed_with_site_and_age() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    crate::runtime(&debug)
        .run(async {
            create_task_named("forever", std::future::pending::<()>()).detach();
            tokio::time::sleep(Duration::from_millis(30)).await;
        })
        .unwrap();
    let reports = of_kind("pending_at_shutdown");
    assert_eq!(reports.len(), 1, "{reports:?}");
    let e = &reports[0];
    assert_eq!(e.level, Level::WARN);
    assert!(
        e.message.starts_with(
            "Task was still pending when run() ended and is cancelled: <Task name='forever' id="
        ),
        "{}",
        e.message
    );
    assert!(e.f64("age_s") >= 0.03);
    assert_eq!(e.field("polls"), Some("1"));
    assert!(
        e.field("task.site")
            .unwrap()
            .contains("tests/it/shutdown.rs")
    );
    // Cancelled by the shutdown, so nothing is left over afterwards.
    assert!(of_kind("runtime_dropped_with_tasks").is_empty());
    assert!(debug.dump().tasks.is_empty());
}

#[test]
fn a_runtime_that_gives_up_on_a_blocked_task_reports_it() {
    let _serial = capture::serial();
    let debug = Debug::new()
        .slow_poll(Duration::from_secs(5))
        .blocked_after(None)
        .hang_after(None)
        .build();
    let entered = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let rt = Runtime::builder()
        .worker_threads(2)
        .observer(debug.clone())
        .shutdown_timeout(Duration::from_millis(20))
        .build()
        .unwrap();
    let (e2, f2) = (entered.clone(), finished.clone());
    rt.run(async move {
        create_task_named("wedged", async move {
            e2.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300));
            f2.store(true, Ordering::SeqCst);
        })
        .detach();
        while !entered.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .unwrap();
    let reports = of_kind("runtime_dropped_with_tasks");
    assert_eq!(reports.len(), 1, "{reports:?}");
    let e = &reports[0];
    assert_eq!(
        e.message,
        "The runtime shut down with 1 task(s) still registered"
    );
    assert_eq!(e.field("pending"), Some("1"));
    assert!(e.field("dump").unwrap().contains("<Task name='wedged'"));
    // Let the wedged poll end before the next test starts capturing.
    while !finished.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(20));
}
