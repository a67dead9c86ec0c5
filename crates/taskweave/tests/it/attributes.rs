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
