//! Strict checks: a blocking wait inside a task is refused and reported; a panicking
//! done-callback is reported.

use taskweave_core::{Promise, create_task_named};
use taskweave_debug::Debug;
use tracing::Level;

use crate::capture::{self, of_kind};

#[test]
fn a_blocking_wait_inside_a_task_is_refused_and_reported() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    crate::runtime(&debug)
        .run(async {
            let task = create_task_named("impatient", async {
                let (mut promise, resolver) = Promise::<u8>::pending();
                let refused = promise.result(None);
                resolver.set_result(1);
                assert_eq!(promise.await.unwrap(), 1);
                refused
            });
            assert!(task.await.unwrap().as_ref().is_err_and(|e| e.is_refused()));
        })
        .unwrap();
    let reports = of_kind("blocking_wait_refused");
    assert_eq!(reports.len(), 1, "{reports:?}");
    let e = &reports[0];
    assert_eq!(e.level, Level::ERROR);
    assert!(
        e.message
            .starts_with("Blocking wait Promise::result refused inside <Task name='impatient' id="),
        "{}",
        e.message
    );
    assert_eq!(e.field("task.name"), Some("impatient"));
    assert!(e.field("hint").unwrap().contains(".await"));
}

#[test]
fn a_panicking_done_callback_is_reported() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    crate::runtime(&debug)
        .run(async {
            let task = create_task_named("observed", async { 5 });
            task.add_done_callback(|_| panic!("callback bug"));
            assert_eq!(task.await.unwrap(), 5);
        })
        .unwrap();
    let reports = of_kind("callback_panicked");
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        reports[0]
            .message
            .starts_with("Exception in done-callback of <Task name='observed' id="),
        "{}",
        reports[0].message
    );
    assert_eq!(reports[0].field("error"), Some("callback bug"));
}
