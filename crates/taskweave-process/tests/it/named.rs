//! Registered functions by name: on a pool of this program's own workers, and on a pool whose
//! workers run another build (the crate's `named_worker` example), which registers some of the
//! same names, one with other types, and lacks one.

use std::path::PathBuf;
use std::time::Duration;

use taskweave_process::{CallOptions, MapOptions, ProcessPoolExecutor};

use crate::shared;

const WAIT: Option<Duration> = Some(Duration::from_secs(30));

/// Map options whose timeout bounds the whole map.
fn bounded() -> MapOptions {
    MapOptions::new().timeout(Duration::from_secs(60))
}

#[taskweave_macros::remote(crate = taskweave_registry, name = "named::square")]
fn square(x: u64) -> u64 {
    x * x
}

/// `named_worker` registers this name as `fn(u32) -> u32`.
#[taskweave_macros::remote(crate = taskweave_registry, name = "named::half")]
fn half(x: u64) -> u64 {
    x / 2
}

#[taskweave_macros::remote(crate = taskweave_registry, name = "named::explode")]
fn explode(message: String) -> u64 {
    panic!("{message}")
}

#[taskweave_macros::remote(crate = taskweave_registry, name = "named::program")]
fn program(_: ()) -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default()
}

/// Registered here only: `named_worker` does not know it.
#[taskweave_macros::remote(crate = taskweave_registry, name = "named::only_here")]
fn only_here(x: u64) -> u64 {
    x + 1
}

#[taskweave_macros::remote(crate = taskweave_registry, name = "named::args")]
fn args(_: ()) -> Vec<String> {
    std::env::args().skip(1).collect()
}

fn plain(x: u64) -> u64 {
    x + 2
}

/// The `named_worker` example, which `cargo test` builds beside the test binaries
/// (`target/<profile>/examples/`).
fn other_build() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile.join("examples").join("named_worker");
    assert!(
        path.is_file(),
        "{} is missing: run the tests with `cargo test -p taskweave-process`, which builds the \
         crate's examples",
        path.display()
    );
    path
}

fn other_pool(workers: usize) -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .named_worker_program(other_build())
        .max_workers(workers)
        .build()
        .unwrap()
}

fn refusal<T: std::fmt::Debug>(got: Result<T, taskweave_core::Error>) -> String {
    match got {
        Err(e) if e.is_refused() => e.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn by_name_calls_run_on_a_pool_of_this_program() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    assert!(!pool.is_named_only());
    assert_eq!(pool.submit_remote(square, 7).result(WAIT).unwrap(), 49);
    assert_eq!(
        pool.submit_named::<u64, u64>("named::square", 3)
            .result(WAIT)
            .unwrap(),
        9
    );
    let me = program(());
    assert_eq!(pool.submit_remote(program, ()).result(WAIT).unwrap(), me);
    // Offsets and names side by side on one pool.
    assert_eq!(pool.submit(plain, 1).result(WAIT).unwrap(), 3);
    let squares: Vec<u64> = pool
        .map_remote_with(square, 0..20, bounded())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(squares, (0..20).map(|x| x * x).collect::<Vec<u64>>());
    let err = pool
        .submit_named::<u64, u64>("named::nowhere", 1)
        .result(WAIT);
    let text = refusal(err);
    assert!(text.contains("named::nowhere"), "{text}");
    // The same build, asked with other types.
    let text = refusal(
        pool.submit_named::<u32, u32>("named::square", 1)
            .result(WAIT),
    );
    assert!(
        text.contains("fn(u32) -> u32") && text.contains("fn(u64) -> u64"),
        "{text}"
    );
}

#[test]
fn an_unregistered_function_is_refused_before_it_is_sent() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let text = refusal(pool.submit_remote(plain, 1).result(WAIT));
    assert!(text.contains("not a remote function"), "{text}");
    let items: Vec<_> = pool.map_remote(plain, 0..3).collect();
    assert_eq!(items.len(), 3);
    assert!(
        items
            .iter()
            .all(|r| r.as_ref().is_err_and(|e| e.is_refused()))
    );
    let text = refusal(pool.submit_named::<u64, u64>("", 1).result(WAIT));
    assert!(text.contains("1 to 65535 bytes"), "{text}");
    assert_eq!(
        pool.stats().submitted,
        0,
        "nothing refused here reaches a worker"
    );
}

#[test]
fn a_worker_program_of_another_build_serves_its_registered_functions() {
    let _g = shared();
    let pool = other_pool(2);
    assert!(pool.is_named_only());
    // The answer comes from the other program, not from this one.
    assert_eq!(
        pool.submit_remote(program, ()).result(WAIT).unwrap(),
        "named_worker"
    );
    assert_eq!(pool.submit_remote(square, 12).result(WAIT).unwrap(), 144);
    let got =
        taskweave_core::run(async { pool.submit_named::<u64, u64>("named::square", 5).await });
    assert_eq!(got.unwrap().unwrap(), 25);
    let options = bounded().chunksize(7);
    let squares: Vec<u64> = pool
        .map_named_with("named::square", 0..100u64, options)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(squares, (0..100).map(|x| x * x).collect::<Vec<u64>>());
    let mut unordered: Vec<(usize, u64)> = pool
        .map_named_unordered_with("named::square", 0..30u64, bounded().chunksize(4))
        .map(|(i, r)| (i, r.unwrap()))
        .collect();
    unordered.sort();
    assert_eq!(unordered[29], (29, 841));
}

#[test]
fn another_build_refuses_an_unknown_name_and_other_types_naming_both_sides() {
    let _g = shared();
    let pool = other_pool(1);
    let text = refusal(pool.submit_remote(only_here, 1).result(WAIT));
    assert!(
        text.contains("named::only_here") && text.contains("named_worker"),
        "{text}"
    );
    let text = refusal(pool.submit_remote(half, 8).result(WAIT));
    assert!(
        text.contains("named::half")
            && text.contains("fn(u64) -> u64")
            && text.contains("fn(u32) -> u32"),
        "{text}"
    );
    // With the worker's types it runs.
    assert_eq!(
        pool.submit_named::<u32, u32>("named::half", 8)
            .result(WAIT)
            .unwrap(),
        4
    );
    // Every item of a refused map carries the refusal; the pool serves on.
    let items: Vec<_> = pool
        .map_named_with::<u64, u64, _>("named::half", 0..10u64, bounded().chunksize(3))
        .collect();
    assert_eq!(items.len(), 10);
    for item in &items {
        let text = refusal(item.clone());
        assert!(text.contains("fn(u32) -> u32"), "{text}");
    }
    assert!(pool.broken().is_none());
    assert_eq!(pool.submit_remote(square, 3).result(WAIT).unwrap(), 9);
}

#[test]
fn a_panic_in_a_named_function_of_another_build_is_reported() {
    let _g = shared();
    let pool = other_pool(1);
    let err = pool
        .submit_remote(explode, "kaboom".to_string())
        .result(WAIT)
        .unwrap_err();
    assert!(err.is_panic(), "{err}");
    assert!(err.to_string().contains("kaboom"), "{err}");
    let backtrace = err.backtrace().unwrap_or_default().to_owned();
    assert!(backtrace.contains("named_worker.rs"), "{backtrace}");
    // Only that call failed; in a map, only that item.
    let items: Vec<Result<u64, _>> = pool
        .map_named_with(
            "named::explode",
            ["a".to_string(), "b".to_string()],
            bounded(),
        )
        .collect();
    assert!(
        items
            .iter()
            .all(|r| r.as_ref().is_err_and(|e| e.is_panic()))
    );
    assert_eq!(pool.submit_remote(square, 4).result(WAIT).unwrap(), 16);
}

#[test]
fn offset_calls_to_another_build_are_refused() {
    let _g = shared();
    let pool = other_pool(1);
    let text = refusal(pool.submit(plain, 1).result(WAIT));
    assert!(text.contains("named_worker_program"), "{text}");
    let items: Vec<_> = pool.map_with(plain, 0..3, bounded()).collect();
    assert!(
        items
            .iter()
            .all(|r| r.as_ref().is_err_and(|e| e.is_refused()))
    );
    fn answer() -> u64 {
        42
    }
    assert!(pool.call(answer).result(WAIT).unwrap_err().is_refused());
    assert!(pool.broken().is_none());
    assert_eq!(pool.submit_remote(square, 2).result(WAIT).unwrap(), 4);
}

#[test]
fn a_named_call_to_another_build_can_time_out() {
    let _g = shared();
    let pool = other_pool(1);
    let options = CallOptions::new().timeout(Duration::from_millis(200));
    let err = pool
        .submit_named_with::<u64, u64>("named::nap", 60_000, options)
        .result(WAIT)
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    // A fresh worker of the other build takes over.
    assert_eq!(
        pool.submit_named::<u64, u64>("named::nap", 1)
            .result(WAIT)
            .unwrap(),
        1
    );
}

#[test]
fn the_builder_refuses_an_initializer_for_another_build() {
    fn setup(_: ()) {}
    let err = ProcessPoolExecutor::builder()
        .named_worker_program(other_build())
        .initializer(setup, ())
        .build()
        .unwrap_err();
    assert!(
        err.is_refused() && err.to_string().contains("initializer"),
        "{err}"
    );
    let err = ProcessPoolExecutor::builder()
        .named_worker_program("/nonexistent/worker")
        .build()
        .unwrap_err();
    assert!(
        err.is_refused()
            && err
                .to_string()
                .contains("named_worker_program /nonexistent"),
        "{err}"
    );
}

#[test]
fn a_program_that_is_no_worker_breaks_the_pool_with_a_reason() {
    let _g = shared();
    // A shell that exits at once, before any handshake: the pool gives up after three tries.
    let pool = ProcessPoolExecutor::builder()
        .named_worker_program("/bin/sh")
        .worker_args(["-c", "exit 0"])
        .max_workers(1)
        .build()
        .unwrap();
    let err = pool.submit_remote(square, 1).result(WAIT).unwrap_err();
    assert!(err.is_broken(), "{err}");
    assert!(err.to_string().contains("before they are ready"), "{err}");
}

#[test]
fn worker_args_reach_the_workers() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .worker_args(["--one", "two"])
        .max_workers(1)
        .build()
        .unwrap();
    assert_eq!(
        pool.submit_remote(args, ()).result(WAIT).unwrap(),
        ["--one", "two"]
    );
}
