//! Tasks: creation, names, sites, awaiting, panics, detaching.

use std::time::Duration;

use taskweave_core::{Error, State, create_task, create_task_named, create_task_try, sleep};

use crate::rt;

#[test]
fn task_starts_at_once_and_returns_its_value() {
    rt(async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = create_task(async move {
            tx.send(()).unwrap();
            7
        });
        // The task runs without being awaited.
        rx.await.unwrap();
        assert_eq!(task.await.unwrap(), 7);
    });
}

#[test]
fn names_default_to_task_id_and_can_be_given() {
    rt(async {
        let unnamed = create_task(async {});
        assert_eq!(unnamed.name(), format!("Task-{}", unnamed.id()));
        let named = create_task_named("loader", async {});
        assert_eq!(named.name(), "loader");
        assert!(named.site().file().ends_with("task.rs"));
        unnamed.await.unwrap();
        named.await.unwrap();
    });
}

#[test]
fn panic_becomes_error_with_message_name_and_site() {
    rt(async {
        let task = create_task_named("exploder", async {
            panic!("kaboom {}", 7);
        });
        let line = line!() - 3;
        match task.await {
            Err(Error::Panicked(p)) => {
                assert_eq!(p.message, "kaboom 7");
                assert_eq!(p.task.as_deref(), Some("exploder"));
                let site = p.site.expect("site recorded");
                assert!(site.file().ends_with("task.rs"));
                assert_eq!(site.line(), line);
            }
            other => panic!("expected a panic error, got {other:?}"),
        }
    });
}

#[test]
fn try_task_carries_the_functions_own_error() {
    rt(async {
        let task = create_task_try(async { "nope".parse::<u32>() });
        match task.await {
            Err(Error::Failed(e)) => assert!(e.to_string().contains("invalid digit")),
            other => panic!("expected Failed, got {other:?}"),
        }
        let passthrough = create_task_try(async { Err::<(), _>(Error::shutdown("closed")) });
        assert!(matches!(passthrough.await, Err(Error::Shutdown { .. })));
    });
}

#[test]
fn states_follow_the_task() {
    rt(async {
        let task = create_task(sleep(Duration::from_millis(20)));
        assert_eq!(task.state(), State::Running);
        assert!(!task.done());
        while !task.done() {
            sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(task.state(), State::Finished);
        task.await.unwrap();
    });
}

#[test]
fn dropped_handle_leaves_task_running() {
    rt(async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        drop(create_task(async move {
            sleep(Duration::from_millis(10)).await;
            tx.send(5).unwrap();
        }));
        assert_eq!(rx.await.unwrap(), 5);
    });
}

#[test]
fn detach_lets_the_task_finish_on_its_own() {
    rt(async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        create_task(async move { tx.send(1).unwrap() }).detach();
        assert_eq!(rx.await.unwrap(), 1);
    });
}

#[test]
fn task_converts_into_promise_and_result_blocks_from_plain_thread() {
    let runtime = taskweave_core::Runtime::builder()
        .worker_threads(1)
        .build()
        .unwrap();
    let handle = runtime.handle().clone();
    let mut promise: taskweave_core::Promise<u32> = {
        let _guard = handle.enter();
        create_task(async {
            sleep(Duration::from_millis(20)).await;
            11
        })
        .into()
    };
    let waited = std::thread::spawn(move || promise.result(Some(Duration::from_secs(5))))
        .join()
        .unwrap();
    assert_eq!(waited.unwrap(), 11);
    drop(runtime);
}
