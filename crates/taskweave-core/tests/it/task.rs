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
            Err(e) if e.is_panic() => {
                let p = e.panic().unwrap();
                assert_eq!(p.message(), "kaboom 7");
                assert_eq!(p.task(), Some("exploder"));
                let site = p.site().expect("site recorded");
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
            Err(e) if e.is_failed() => {
                assert!(e.get_ref().unwrap().to_string().contains("invalid digit"))
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        let passthrough = create_task_try(async { Err::<(), _>(Error::shutdown("closed")) });
        assert!(passthrough.await.as_ref().is_err_and(|e| e.is_shutdown()));
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

#[test]
fn result_blocks_on_a_plain_task_from_a_plain_thread() {
    let runtime = taskweave_core::Runtime::builder()
        .worker_threads(1)
        .build()
        .unwrap();
    let mut task = {
        let _guard = runtime.handle().enter();
        create_task(async {
            sleep(Duration::from_millis(30)).await;
            "ready"
        })
    };
    let err = task.result(Some(Duration::from_millis(1))).unwrap_err();
    assert!(
        err.is_timeout(),
        "a timeout leaves the task running: {err:?}"
    );
    assert_eq!(task.result(Some(Duration::from_secs(5))).unwrap(), "ready");
    assert!(task.result(None).as_ref().is_err_and(|e| e.is_refused()));
}

#[test]
fn done_callback_on_a_task_runs_once_with_the_outcome() {
    rt(async {
        let (tx, rx) = std::sync::mpsc::channel();
        let task = create_task(async {
            sleep(Duration::from_millis(5)).await;
            9
        });
        let tx2 = tx.clone();
        task.add_done_callback(move |r| tx.send(*r.as_ref().unwrap()).unwrap());
        task.add_done_callback(move |r| tx2.send(*r.as_ref().unwrap() + 1).unwrap());
        assert_eq!(task.await.unwrap(), 9);
        let mut got: Vec<i32> = rx.try_iter().collect();
        got.sort();
        assert_eq!(got, vec![9, 10]);
    });
}

#[test]
fn an_error_nobody_retrieves_is_reported_when_the_handle_is_gone() {
    use std::sync::{Arc, Mutex};
    use taskweave_core::instrument::Observer;

    #[derive(Default)]
    struct Lost(Mutex<Vec<String>>);
    impl Observer for Lost {
        fn on_error_not_retrieved(&self, task: Option<&taskweave_core::TaskInfo>, error: &Error) {
            let name = task.map(|t| t.name()).unwrap_or_default();
            self.0.lock().unwrap().push(format!("{name}: {error}"));
        }
    }
    let lost = Arc::new(Lost::default());
    let runtime = taskweave_core::Runtime::builder()
        .worker_threads(1)
        .observer(lost.clone())
        .build()
        .unwrap();
    runtime
        .run(async {
            // Dropped while running, fails later.
            drop(create_task_named("dropped-early", async {
                sleep(Duration::from_millis(5)).await;
                panic!("first");
            }));
            // Detached, fails.
            create_task_named("detached", async { panic!("second") }).detach();
            // Finished with an error, handle dropped without looking.
            let done = create_task_named("finished", async { panic!("third") });
            while !done.done() {
                sleep(Duration::from_millis(1)).await;
            }
            drop(done);
            // Awaited: retrieved, not reported.
            let seen = create_task_named("awaited", async { panic!("fourth") });
            assert!(seen.await.is_err());
            sleep(Duration::from_millis(30)).await;
        })
        .unwrap();
    let mut reports = lost.0.lock().unwrap().clone();
    reports.sort();
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert!(reports[0].starts_with("detached:") && reports[0].contains("second"));
    assert!(reports[1].starts_with("dropped-early:") && reports[1].contains("first"));
    assert!(reports[2].starts_with("finished:") && reports[2].contains("third"));
}

/// A panic payload whose own destructor panics as well.
struct PanicsWhenDropped;

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        panic!("the payload's destructor panicked");
    }
}

#[test]
fn a_panic_payload_that_panics_when_dropped_still_ends_the_task_panicked() {
    rt(async {
        let plain = create_task_named("grumpy", async {
            std::panic::panic_any(PanicsWhenDropped);
        });
        match tokio::time::timeout(Duration::from_secs(10), plain).await {
            Ok(Err(e)) if e.is_panic() => {
                let p = e.panic().unwrap();
                assert_eq!(p.task(), Some("grumpy"));
                assert_ne!(p.message(), "the payload's destructor panicked");
            }
            other => panic!("expected the task's own panic, got {other:?}"),
        }

        // A group member delivers through a promise: it must not end as merely cancelled.
        let group = taskweave_core::TaskGroup::new();
        let member = group.spawn_named("grumpy member", async {
            std::panic::panic_any(PanicsWhenDropped);
            #[allow(unreachable_code)]
            Ok::<(), Error>(())
        });
        let joined = tokio::time::timeout(Duration::from_secs(10), group.join())
            .await
            .expect("the group joins in time");
        assert!(joined.is_err(), "the group sees its member's panic");
        match tokio::time::timeout(Duration::from_secs(10), member).await {
            Ok(Err(e)) if e.is_panic() => {
                assert_eq!(e.panic().unwrap().task(), Some("grumpy member"));
            }
            other => panic!("expected the member's own panic, got {other:?}"),
        }
    });
}
