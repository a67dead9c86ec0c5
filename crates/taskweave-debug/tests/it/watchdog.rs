//! The watchdog: hanging tasks and blocked workers reported while they last, with a dump; the
//! dump on demand.

use std::time::{Duration, Instant};

use taskweave_core::create_task_named;
use taskweave_debug::{Debug, TaskState};
use tracing::Level;

use crate::capture::{self, of_kind};

#[test]
fn a_hanging_task_is_reported_within_twice_the_threshold_with_a_dump() {
    let _serial = capture::serial();
    let threshold = Duration::from_millis(300);
    let debug = Debug::new()
        .hang_after(Some(threshold))
        .blocked_after(None)
        .build();
    crate::runtime(&debug)
        .run(async move {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let hung = create_task_named("stuck", async move { rx.await.ok() });
            let started = Instant::now();
            let found = tokio::task::spawn_blocking(move || {
                capture::wait_for(threshold * 3, |e| {
                    e.kind() == "hang" && e.field("task.name") == Some("stuck")
                })
            })
            .await
            .unwrap();
            let (report, seen) = found.expect("the hang is reported");
            let after = seen - started;
            assert!(
                after >= threshold,
                "reported after {after:?}, before the threshold"
            );
            assert!(after <= threshold * 2, "reported after {after:?}");
            assert_eq!(report.level, Level::WARN);
            assert!(
                report
                    .message
                    .starts_with("Task is hanging: <Task name='stuck' id="),
                "{}",
                report.message
            );
            assert!(
                report.message.contains("has made no progress for 0."),
                "{}",
                report.message
            );
            assert!(report.f64("duration_s") >= threshold.as_secs_f64());
            assert!(
                report
                    .field("task.site")
                    .unwrap()
                    .contains("tests/it/watchdog.rs")
            );
            let dump = report.field("dump").unwrap();
            assert!(dump.contains("live task(s):"), "{dump}");
            assert!(dump.contains("<Task name='stuck'"), "{dump}");
            assert!(dump.contains("waiting, last polled"), "{dump}");
            assert!(dump.contains("1 poll(s), created at"), "{dump}");
            tx.send(()).unwrap();
            hung.await.unwrap();
        })
        .unwrap();
    // Reported once per stall, not at every watchdog tick.
    assert_eq!(of_kind("hang").len(), 1);
}

#[test]
fn a_task_sleeping_on_short_timers_is_not_reported() {
    let _serial = capture::serial();
    let threshold = Duration::from_millis(200);
    let debug = Debug::new().hang_after(Some(threshold)).build();
    crate::runtime(&debug)
        .run(async {
            let sleeper = create_task_named("sleeper", async {
                for _ in 0..10 {
                    tokio::time::sleep(Duration::from_millis(60)).await;
                }
            });
            sleeper.await.unwrap();
        })
        .unwrap();
    assert!(of_kind("hang").is_empty(), "{:?}", of_kind("hang"));
}

#[test]
fn a_blocked_worker_is_reported_while_the_poll_runs() {
    let _serial = capture::serial();
    let debug = Debug::new()
        .slow_poll(Duration::from_millis(30))
        .blocked_after(Some(Duration::from_millis(150)))
        .hang_after(None)
        .build();
    crate::runtime(&debug)
        .run(async {
            create_task_named("sleepy", async {
                std::thread::sleep(Duration::from_millis(500))
            })
            .await
            .unwrap();
        })
        .unwrap();
    let events = capture::events();
    let blocked = events
        .iter()
        .position(|e| e.kind() == "blocked_worker")
        .expect("a blocked worker report");
    let slow = events
        .iter()
        .position(|e| e.kind() == "slow_poll")
        .expect("a slow poll report");
    assert!(
        blocked < slow,
        "the watchdog reports before the poll returns"
    );
    let e = &events[blocked];
    assert!(
        e.message.starts_with("Executing <Task name='sleepy' id="),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("so far: worker thread '"),
        "{}",
        e.message
    );
    assert!(e.f64("duration_s") >= 0.15);
    let dump = e.field("dump").unwrap();
    assert!(dump.contains("<Task name='sleepy'"), "{dump}");
    assert!(dump.contains("polling on thread"), "{dump}");
    assert_eq!(
        of_kind("blocked_worker").len(),
        1,
        "one report per blocked poll"
    );
}

#[test]
fn the_dump_on_demand_lists_every_live_task() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    let probe = debug.clone();
    crate::runtime(&debug)
        .run(async move {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let waiter = create_task_named("waiter", async move { rx.await.ok() });
            tokio::time::sleep(Duration::from_millis(20)).await;
            let dump = probe.dump();
            let w = dump
                .tasks
                .iter()
                .find(|t| t.name == "waiter")
                .expect("the waiter is listed");
            assert!(
                matches!(w.state, TaskState::Waiting { .. }),
                "{:?}",
                w.state
            );
            assert_eq!(w.polls, 1);
            assert!(w.age >= Duration::from_millis(20));
            assert!(w.site.file().ends_with("watchdog.rs"));
            assert!(!w.executor_work);
            let global = taskweave_debug::dump().expect("debug mode is on");
            assert!(global.tasks.iter().any(|t| t.name == "waiter"));
            probe.log_dump();
            tx.send(()).unwrap();
            waiter.await.unwrap();
        })
        .unwrap();
    let logged = of_kind("dump");
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].level, Level::INFO);
    assert!(
        logged[0]
            .field("dump")
            .unwrap()
            .contains("<Task name='waiter'")
    );
}
