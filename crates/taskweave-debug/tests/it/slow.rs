//! Slow polls: reported with name, site, duration and hint; the threshold is configurable.

use std::time::Duration;

use taskweave_core::create_task_named;
use taskweave_debug::{Debug, TARGET};
use tracing::Level;

use crate::capture::{self, of_kind};

#[test]
fn a_poll_over_the_default_threshold_is_reported_like_asyncio() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    crate::runtime(&debug)
        .run(async {
            let task = create_task_named("blocker", async {
                std::thread::sleep(Duration::from_millis(150));
            });
            task.await.unwrap();
        })
        .unwrap();
    let slow = of_kind("slow_poll");
    assert_eq!(slow.len(), 1, "{slow:?}");
    let e = &slow[0];
    assert_eq!(e.level, Level::WARN);
    assert_eq!(e.target, TARGET);
    assert!(
        e.message.starts_with("Executing <Task name='blocker' id="),
        "{}",
        e.message
    );
    assert!(e.message.contains(" created at "), "{}", e.message);
    assert!(e.message.ends_with(" seconds"), "{}", e.message);
    assert_eq!(e.field("task.name"), Some("blocker"));
    assert!(e.field("task.site").unwrap().contains("tests/it/slow.rs"));
    assert!(e.field("task.id").is_some());
    assert!(e.f64("duration_s") >= 0.15);
    assert!(e.field("hint").unwrap().contains("to_thread"));
}

#[test]
fn the_slow_poll_threshold_is_configurable() {
    let _serial = capture::serial();
    let strict = Debug::new().slow_poll(Duration::from_millis(20)).build();
    crate::runtime(&strict)
        .run(async {
            create_task_named("short", async {
                std::thread::sleep(Duration::from_millis(40))
            })
            .await
            .unwrap();
        })
        .unwrap();
    let slow = of_kind("slow_poll");
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert_eq!(slow[0].field("task.name"), Some("short"));

    capture::serial_reset();
    let lax = Debug::new().slow_poll(Duration::from_secs(5)).build();
    crate::runtime(&lax)
        .run(async {
            create_task_named("short", async {
                std::thread::sleep(Duration::from_millis(120))
            })
            .await
            .unwrap();
        })
        .unwrap();
    assert!(of_kind("slow_poll").is_empty());
}

#[test]
fn fast_polls_are_not_reported() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    crate::runtime(&debug)
        .run(async {
            for _ in 0..100 {
                create_task_named("quick", async { tokio::task::yield_now().await })
                    .await
                    .unwrap();
            }
        })
        .unwrap();
    assert!(of_kind("slow_poll").is_empty());
}

#[test]
fn a_slow_poll_of_run_tasks_main_is_reported_as_the_task_main() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    crate::runtime(&debug)
        .run_task(async {
            tokio::task::yield_now().await;
            std::thread::sleep(Duration::from_millis(150));
        })
        .unwrap();
    let slow = of_kind("slow_poll");
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert_eq!(slow[0].field("task.name"), Some("main"));
    assert!(
        slow[0]
            .message
            .starts_with("Executing <Task name='main' id="),
        "{}",
        slow[0].message
    );
    // The main task's site is the code that called `run_task`.
    assert!(
        slow[0]
            .field("task.site")
            .unwrap()
            .contains("tests/it/slow.rs")
    );
}
