//! `#[taskweave::test]` and `#[taskweave::main]` expand to a runtime that runs the body.

use std::time::Duration;

#[taskweave::test]
async fn test_attribute_runs_the_body_on_a_runtime() {
    let t = taskweave::create_task(async {
        taskweave::sleep(Duration::from_millis(1)).await;
        5
    });
    assert_eq!(t.await.unwrap(), 5);
}

#[taskweave::test(worker_threads = 2)]
async fn test_attribute_takes_worker_threads() -> Result<(), taskweave::Error> {
    let values =
        taskweave::gather((0..4).map(|i| taskweave::create_task(async move { i }))).await?;
    assert_eq!(values, vec![0, 1, 2, 3]);
    Ok(())
}

#[test]
fn prelude_does_not_shadow_std_future() {
    use taskweave::prelude::*;
    // `Future` still names the std trait after the glob import.
    fn takes_future<F: Future<Output = u8>>(f: F) -> F {
        f
    }
    let out = run(takes_future(async { 3u8 })).unwrap();
    assert_eq!(out, 3);
}

#[cfg(feature = "debug")]
#[taskweave::test(debug)]
async fn test_attribute_switches_debug_mode_on() {
    // The attribute registered debug mode and the runtime installed its observer.
    assert!(taskweave::instrument::active());
    let t = taskweave::create_task(async { 1 });
    assert_eq!(t.await.unwrap(), 1);
}

/// Whether the current thread is the test harness's thread for the test `name` (the harness
/// names each test's thread after the test).
fn on_the_tests_own_thread(name: &str) -> bool {
    std::thread::current()
        .name()
        .is_some_and(|thread| thread.ends_with(name))
}

#[taskweave::test(worker_threads = 2)]
async fn a_sendable_body_runs_as_a_task_on_a_worker() {
    assert!(!on_the_tests_own_thread(
        "a_sendable_body_runs_as_a_task_on_a_worker"
    ));
    assert!(taskweave::strict::in_task_poll());
    let mut sum = 0;
    for i in 0..20 {
        sum += taskweave::create_task(async move { i }).await.unwrap();
    }
    assert_eq!(sum, 190);
}

#[taskweave::test(worker_threads = 2)]
async fn a_body_holding_an_rc_across_an_await_runs_on_the_calling_thread() {
    let shared = std::rc::Rc::new(std::cell::Cell::new(1));
    taskweave::sleep(Duration::from_millis(1)).await;
    shared.set(shared.get() + taskweave::create_task(async { 1 }).await.unwrap());
    assert_eq!(shared.get(), 2);
    assert!(on_the_tests_own_thread(
        "a_body_holding_an_rc_across_an_await_runs_on_the_calling_thread"
    ));
}

#[taskweave::test(worker_threads = 2)]
async fn a_body_with_an_early_return_and_a_question_mark_keeps_its_meaning()
-> Result<(), taskweave::Error> {
    let n = taskweave::create_task(async { 2u8 }).await?;
    if n == 2 {
        return Ok(());
    }
    unreachable!("returned above")
}

#[taskweave::test]
#[should_panic(expected = "the body broke")]
async fn a_panic_in_a_sendable_body_fails_the_test_with_its_message() {
    if true {
        panic!("the body broke");
    }
}

#[test]
fn run_task_returns_mains_value_and_main_is_a_task() {
    let out = taskweave::run_task(async {
        assert!(taskweave::strict::in_task_poll());
        taskweave::create_task(async { 20 }).await.unwrap() + 1
    });
    assert_eq!(out.unwrap(), 21);
    let flat: Result<u8, taskweave::Error> = taskweave::run_task_try(async { Ok(3) });
    assert_eq!(flat.unwrap(), 3);
}
