//! How process-pool errors read: one line for `Display`, the worker's backtrace in the
//! alternate form.

use taskweave_core::ErrorKind;
use taskweave_process::ProcessPoolExecutor;

use crate::shared;
use crate::work::panics;

#[test]
fn a_worker_panic_is_one_line_and_the_alternate_form_adds_the_worker_backtrace() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let err = pool
        .submit(panics, "bad input 7".to_string())
        .result(None)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    let backtrace = err.backtrace().expect("the worker's backtrace is carried");
    assert!(backtrace.contains("panicked at"), "{backtrace}");

    let line = err.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(line.contains("panicked: bad input 7"), "{line}");

    let long = format!("{err:#}");
    assert!(long.starts_with(&format!("{line}\nbacktrace:\n")), "{long}");
    assert!(long.contains(backtrace), "{long}");
    assert!(format!("{err:?}").contains("panicked at"));
}
