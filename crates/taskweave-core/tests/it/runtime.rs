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
    assert!(matches!(inner, Err(Error::Refused { .. })));
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
            Err(Error::Refused { reason }) => assert!(reason.contains("await")),
            other => panic!("expected refusal, got {other:?}"),
        }
        let inner = create_task(async {
            let (mut p, _r) = Promise::<u8>::pending();
            p.result(Some(Duration::from_secs(60)))
        });
        assert!(matches!(inner.await.unwrap(), Err(Error::Refused { .. })));
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
    assert!(matches!(err, Error::Refused { .. }), "{err}");
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
    assert!(matches!(failed, Err(Error::Shutdown { .. })));
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
    assert!(matches!(out, Err(Error::Refused { .. })));
}
