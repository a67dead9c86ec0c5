//! run and the Runtime builder: nesting, panics in main, shutdown with tasks left, strict
//! blocking-wait refusal.

use std::time::Duration;

use taskweave_core::{Error, Promise, Runtime, create_task, run, sleep};

#[test]
fn run_returns_mains_value_on_both_flavours() {
    assert_eq!(run(async { 5 }).unwrap(), 5);
    let rt = Runtime::builder().current_thread().build().unwrap();
    assert_eq!(
        rt.run(async { create_task(async { 6 }).await.unwrap() })
            .unwrap(),
        6
    );
}

#[test]
fn nested_run_is_refused() {
    let inner = run(async { run(async { 1 }) }).unwrap();
    assert!(inner.as_ref().is_err_and(|e| e.is_refused()));
}

#[test]
fn panic_in_main_is_an_error() {
    let err = run(async {
        if true {
            panic!("main broke");
        }
    })
    .unwrap_err();
    assert!(err.is_panic());
    assert!(err.to_string().contains("main broke"));
}

#[test]
fn leftover_tasks_are_cancelled_at_shutdown() {
    let mut leftover: Promise<()> =
        run(async { create_task(async { sleep(Duration::from_secs(3600)).await }).into() })
            .unwrap();
    let err = leftover.result(Some(Duration::from_secs(5))).unwrap_err();
    assert!(err.is_cancelled(), "got {err:?}");
}

#[test]
fn blocking_wait_inside_a_task_is_refused_not_deadlocked() {
    run(async {
        let (mut p, _r) = Promise::<u8>::pending();
        match p.result(None) {
            Err(e) if e.is_refused() => assert!(e.reason().unwrap().contains("await")),
            other => panic!("expected refusal, got {other:?}"),
        }
        let inner = create_task(async {
            let (mut p, _r) = Promise::<u8>::pending();
            p.result(Some(Duration::from_secs(60)))
        });
        assert!(inner.await.unwrap().as_ref().is_err_and(|e| e.is_refused()));
    })
    .unwrap();
}

#[test]
fn blocking_wait_on_a_blocking_thread_is_allowed() {
    run(async {
        let (mut p, r) = Promise::<u8>::pending();
        r.set_result(1);
        let got = tokio::task::spawn_blocking(move || p.result(None))
            .await
            .unwrap();
        assert_eq!(got.unwrap(), 1);
    })
    .unwrap();
}

#[test]
fn debug_without_a_debug_layer_is_refused_not_broken() {
    let err = Runtime::builder().debug(true).build().unwrap_err();
    assert!(err.is_refused(), "{err}");
    assert!(err.to_string().contains("no debug layer is registered"));
}

/// Also a test on its own; with `TASKWEAVE_DEBUG=1` (this binary registers no debug layer) it
/// is the child of the test below.
#[test]
fn child_debug_env_without_a_layer_runs() {
    for _ in 0..2 {
        let rt = Runtime::builder().worker_threads(1).build().unwrap();
        assert!(!rt.debug());
        assert_eq!(rt.run(async { 3 }).unwrap(), 3);
    }
    assert_eq!(taskweave_core::run(async { 4 }).unwrap(), 4);
}

#[test]
fn taskweave_debug_without_a_layer_warns_once_and_runs() {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = std::process::Command::new(exe)
        .args([
            "runtime::child_debug_env_without_a_layer_runs",
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("TASKWEAVE_DEBUG", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the child test starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("try_wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child test did not end within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("the child's output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child ran its test:\n{stdout}"
    );
    assert_eq!(
        stderr
            .matches("TASKWEAVE_DEBUG is set but no debug layer")
            .count(),
        1,
        "one warning for four runtimes:\n{stderr}"
    );
    assert!(!stderr.contains("broken"), "{stderr}");
}

#[test]
fn run_try_flattens_a_result_main() {
    let ok: Result<u32, Error> = taskweave_core::run_try(async {
        let v = taskweave_core::create_task(async { 20 }).await?;
        Ok(v + 1)
    });
    assert_eq!(ok.unwrap(), 21);
    let failed: Result<u32, Error> =
        taskweave_core::run_try(async { Err(Error::shutdown("pool closed")) });
    assert!(failed.as_ref().is_err_and(|e| e.is_shutdown()));
    // The runtime's own errors land in the same `Result`, converted into the caller's type.
    let boxed: Result<u8, taskweave_core::BoxError> =
        taskweave_core::run_try(async { panic!("main broke") });
    assert!(boxed.unwrap_err().to_string().contains("main broke"));
}

#[test]
fn run_try_on_a_runtime_reports_a_nested_call_in_the_callers_type() {
    let out = crate::rt(async {
        let rt = Runtime::builder().current_thread().build().unwrap();
        let nested: Result<(), Error> = rt.run_try(async { Ok(()) });
        nested
    });
    assert!(out.as_ref().is_err_and(|e| e.is_refused()));
}

/// `run_task`: the same contract as `run`, with `main` running as a task named "main".
mod run_task {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use taskweave_core::instrument::{Observer, Outcome};
    use taskweave_core::{Error, Promise, Runtime, TaskInfo, create_task, run_task, sleep};

    #[test]
    fn returns_mains_value_on_both_flavours() {
        assert_eq!(run_task(async { 5 }).unwrap(), 5);
        for rt in [
            Runtime::builder().current_thread().build().unwrap(),
            Runtime::builder().worker_threads(2).build().unwrap(),
        ] {
            let sum = rt.run_task(async {
                let mut sum = 0;
                for i in 0..50 {
                    sum += create_task(async move { i }).await.unwrap();
                }
                sum
            });
            assert_eq!(sum.unwrap(), 1225);
        }
    }

    #[test]
    fn main_is_a_task_poll_so_blocking_waits_are_refused() {
        let refused = run_task(async {
            assert!(taskweave_core::strict::in_task_poll());
            let (mut p, _r) = Promise::<u8>::pending();
            p.result(None).unwrap_err()
        })
        .unwrap();
        assert!(refused.is_refused(), "{refused}");
    }

    #[test]
    fn panic_is_an_error_of_the_task_named_main_on_both_flavours() {
        let builders = [
            Runtime::builder().current_thread(),
            Runtime::builder().worker_threads(2),
        ];
        for builder in builders {
            let err = builder
                .build()
                .unwrap()
                .run_task(async {
                    if true {
                        panic!("main task broke");
                    }
                })
                .unwrap_err();
            assert!(err.is_panic(), "{err:?}");
            assert!(err.to_string().contains("main task broke"), "{err}");
            let panic = err.panic().unwrap();
            assert_eq!(panic.task(), Some("main"), "{err:?}");
            // The task's creation site is the caller of `run_task`, not the runtime's code.
            let site = panic.site().unwrap();
            assert!(
                site.file().ends_with("runtime.rs") && site.file().contains("tests"),
                "{site}"
            );
        }
    }

    #[test]
    fn nested_call_is_refused() {
        let inner = run_task(async { run_task(async { 1 }) }).unwrap();
        assert!(inner.as_ref().is_err_and(|e| e.is_refused()));
        let flat: Result<u8, Error> = taskweave_core::run_task(async {
            let rt = Runtime::builder().current_thread().build().unwrap();
            rt.run_task_try(async { Ok(1) })
        })
        .unwrap();
        assert!(flat.is_err_and(|e| e.is_refused()));
    }

    #[test]
    fn leftover_tasks_are_cancelled_at_shutdown_on_both_flavours() {
        let builders = [
            Runtime::builder().current_thread(),
            Runtime::builder().worker_threads(2),
        ];
        for builder in builders {
            let mut leftover: Promise<()> = builder
                .build()
                .unwrap()
                .run_task(async {
                    create_task(async { sleep(Duration::from_secs(3600)).await }).into()
                })
                .unwrap();
            let err = leftover.result(Some(Duration::from_secs(5))).unwrap_err();
            assert!(err.is_cancelled(), "got {err:?}");
        }
    }

    #[test]
    fn try_form_flattens() {
        let ok: Result<u32, Error> = taskweave_core::run_task_try(async {
            let v = create_task(async { 20 }).await?;
            Ok(v + 1)
        });
        assert_eq!(ok.unwrap(), 21);
        let boxed: Result<u8, taskweave_core::BoxError> =
            taskweave_core::run_task_try(async { panic!("main broke") });
        assert!(boxed.unwrap_err().to_string().contains("main broke"));
    }

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);

    impl Observer for Seen {
        fn on_spawn(&self, task: &TaskInfo) {
            self.push(format!("spawn {}", task.name()));
        }
        fn on_poll_start(&self, task: &TaskInfo) {
            if task.name() == "main" {
                self.push("poll main".to_owned());
            }
        }
        fn on_complete(&self, task: &TaskInfo, outcome: Outcome<'_>) {
            let how = match outcome {
                Outcome::Finished => "finished",
                Outcome::Failed(_) => "failed",
                Outcome::Cancelled => "cancelled",
                _ => "other",
            };
            self.push(format!("complete {} {how}", task.name()));
        }
        fn on_shutdown(&self) {
            self.push("shutdown".to_owned());
        }
    }

    impl Seen {
        fn push(&self, event: String) {
            self.0.lock().unwrap().push(event);
        }
    }

    #[test]
    fn the_observer_sees_main_as_a_task_that_ends_before_shutdown() {
        let seen = Arc::new(Seen::default());
        let rt = Runtime::builder()
            .worker_threads(2)
            .observer(seen.clone())
            .build()
            .unwrap();
        rt.run_task(async { create_task(async {}).await.unwrap() })
            .unwrap();
        let events = seen.0.lock().unwrap().clone();
        assert_eq!(
            events.first().map(String::as_str),
            Some("spawn main"),
            "{events:?}"
        );
        assert!(events.iter().any(|e| e == "poll main"), "{events:?}");
        let ended = events.iter().position(|e| e == "complete main finished");
        let shutdown = events.iter().position(|e| e == "shutdown");
        assert!(
            ended.is_some() && ended < shutdown,
            "main ends before the shutdown: {events:?}"
        );
    }
}
