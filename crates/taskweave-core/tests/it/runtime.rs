//! run and the Runtime builder: nesting, panics in main, shutdown with tasks left, strict
//! blocking-wait refusal.

use std::time::Duration;

use taskweave_core::{Promise, Runtime, create_task, run, sleep};

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
fn debug_without_a_debug_layer_is_a_clear_error() {
    let err = Runtime::builder().debug(true).build().unwrap_err();
    assert!(err.is_broken());
    assert!(err.to_string().contains("debug"));
}
