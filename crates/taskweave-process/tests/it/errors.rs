//! How process-pool errors read: one line for `Display`, the worker's backtrace in the
//! alternate form.

use taskweave_core::ErrorKind;
use taskweave_executor::Executor;
use taskweave_process::{MapOptions, ProcessPoolExecutor};

use crate::shared;
use crate::work::panics;

#[test]
fn a_worker_panic_is_one_line_and_the_alternate_form_adds_the_worker_backtrace() {
    let _g = shared();
    let pool = one_worker();
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
    // The function is named by its path, not by its type `fn(String) -> u64`.
    assert!(line.contains("work::panics"), "{line}");
    assert!(!line.contains("fn("), "{line}");

    let long = format!("{err:#}");
    assert!(long.starts_with(&format!("{line}\nbacktrace:\n")), "{long}");
    assert!(long.contains(backtrace), "{long}");
    assert!(format!("{err:?}").contains("panicked at"));
}

/// Squares, and panics on 7.
fn square(x: u32) -> u32 {
    assert!(x != 7, "no square of seven");
    x * x
}

#[test]
fn a_worker_panic_names_the_function_in_submit_call_and_maps() {
    let _g = shared();
    let pool = one_worker();
    let err = pool.submit(square, 7).result(None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    let line = err.to_string();
    assert!(line.contains("errors::square"), "{line}");
    assert!(line.contains("no square of seven"), "{line}");
    assert!(!line.contains("fn(u32) -> u32"), "{line}");

    fn seven() -> u32 {
        square(7)
    }
    let line = pool.call(seven).result(None).unwrap_err().to_string();
    assert!(line.contains("seven"), "{line}");

    let options = MapOptions::new().chunksize(4);
    let out: Vec<_> = pool.map_with(square, 5..9, options).collect();
    assert_eq!(*out[0].as_ref().unwrap(), 25);
    let line = out[2].as_ref().unwrap_err().to_string();
    assert!(
        line.contains("map of") && line.contains("errors::square"),
        "{line}"
    );
    let (_, r) = pool.map_unordered(square, [7]).next().expect("one item");
    let line = r.unwrap_err().to_string();
    assert!(line.contains("errors::square"), "{line}");
}

#[test]
fn through_the_executor_trait_a_panic_names_the_function_type() {
    let _g = shared();
    let pool = one_worker();
    // A `fn` pointer carries no name, only its type.
    let err = Executor::submit(&pool, square, 7).result(None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    let line = err.to_string();
    assert!(line.contains("fn(u32) -> u32"), "{line}");
    let out: Vec<_> = Executor::map(&pool, square, [6, 7]).collect();
    assert_eq!(*out[0].as_ref().unwrap(), 36);
    assert!(out[1].as_ref().unwrap_err().is_panic());
}

#[test]
fn a_closure_that_captures_a_pointer_is_refused_and_says_why() {
    let _g = shared();
    let pool = one_worker();
    // The size of a pointer, so not refused when built: refused when submitted.
    let offset: &'static u32 = Box::leak(Box::new(1));
    let err = pool
        .submit(move |x: u32| x + offset, 1)
        .result(None)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused);
    let line = err.to_string();
    assert!(
        line.contains("a process pool runs functions, not closures that capture"),
        "{line}"
    );
    let out: Vec<_> = pool.map(move |x: u32| x + offset, [1, 2]).collect();
    assert!(
        out.iter()
            .all(|r| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::Refused)),
        "{out:?}"
    );
    let n = 5u64;
    let line = pool.call(move || n).result(None).unwrap_err().to_string();
    assert!(line.contains("closures that capture"), "{line}");
    // Nothing was sent: the pool still serves.
    assert_eq!(pool.submit(square, 3).result(None).unwrap(), 9);
}

fn one_worker() -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap()
}
