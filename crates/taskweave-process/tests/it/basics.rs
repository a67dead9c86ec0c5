//! Submit from threads and async code, timeouts, panics, wire errors, initializers and the
//! `Executor` trait.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use taskweave_executor::Executor;
use taskweave_process::{Bytes, ProcessPoolExecutor};

use crate::shared;
use crate::work::{panics, sleep_ms, square};

fn pool(n: usize) -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(n)
        .build()
        .unwrap()
}

#[test]
fn submit_and_wait_from_a_thread() {
    let _g = shared();
    let pool = pool(2);
    let mut p = pool.submit(square, 12);
    assert_eq!(p.result(None).unwrap(), 144);
}

#[test]
fn submit_and_await_from_tokio() {
    let _g = shared();
    let pool = pool(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let got = rt.block_on(async {
        let promises: Vec<_> = (0..20u64).map(|x| pool.submit(square, x)).collect();
        let mut got = Vec::new();
        for p in promises {
            got.push(p.await.unwrap());
        }
        got
    });
    assert_eq!(got, (0..20u64).map(|x| x * x).collect::<Vec<_>>());
}

#[test]
fn await_under_taskweave_run() {
    let _g = shared();
    let pool = pool(1);
    let out = taskweave_core::run(async move {
        let a = pool.submit(square, 3);
        let b = pool.submit(square, 4);
        taskweave_core::gather([a, b]).await
    });
    assert_eq!(out.unwrap().unwrap(), [9, 16]);
}

#[test]
fn result_with_a_timeout_times_out_then_delivers() {
    let _g = shared();
    let pool = pool(1);
    let mut p = pool.submit(sleep_ms, 300);
    let err = p.result(Some(Duration::from_millis(20))).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(p.result(Some(Duration::from_secs(10))).unwrap(), 300);
}

#[test]
fn async_timeout_gives_timed_out() {
    let _g = shared();
    let pool = pool(1);
    let out = taskweave_core::run(async move {
        taskweave_core::timeout(Duration::from_millis(30), pool.submit(sleep_ms, 400)).await
    });
    assert!(out.unwrap().unwrap_err().is_timeout());
}

#[test]
fn panic_carries_message_and_worker_backtrace() {
    let _g = shared();
    let pool = pool(1);
    let err = pool
        .submit(panics, "bad input 7".to_string())
        .result(None)
        .unwrap_err();
    let Some(p) = err.panic() else {
        panic!("expected a panic, got {err}");
    };
    assert_eq!(p.message(), "bad input 7");
    let bt = p.backtrace().unwrap_or("");
    assert!(bt.contains("panicked at") && bt.contains("main.rs"), "{bt}");
    assert!(
        p.task().unwrap_or("").contains("worker pid"),
        "{:?}",
        p.task()
    );
    // The worker survived the panic and serves on.
    assert_eq!(pool.submit(square, 5).result(None).unwrap(), 25);
}

/// Serialising it always fails.
#[derive(Debug)]
struct Unserialisable;

impl Serialize for Unserialisable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "this value refuses to be serialised",
        ))
    }
}

impl<'de> Deserialize<'de> for Unserialisable {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Ok(Unserialisable)
    }
}

/// Serialises fine, but the parent cannot deserialise it.
#[derive(Debug)]
struct OneWay(u8);

impl Serialize for OneWay {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.0)
    }
}

impl<'de> Deserialize<'de> for OneWay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u8::deserialize(d)?;
        Err(serde::de::Error::custom(format!("{v} cannot come back")))
    }
}

fn take_unserialisable(_: Unserialisable) -> u8 {
    1
}

fn init_with_unserialisable(_: Unserialisable) {}

fn make_unserialisable(_: ()) -> Unserialisable {
    Unserialisable
}

fn make_one_way(x: u8) -> OneWay {
    OneWay(x)
}

#[test]
fn wire_errors_fail_only_their_future() {
    let _g = shared();
    let pool = pool(1);
    let arg = pool
        .submit(take_unserialisable, Unserialisable)
        .result(None)
        .unwrap_err();
    assert!(
        arg.wire_error()
            .is_some_and(|w| w.what().contains("argument")),
        "{arg}"
    );
    let res = pool
        .submit(make_unserialisable, ())
        .result(None)
        .unwrap_err();
    assert!(
        res.wire_error()
            .is_some_and(|w| w.detail().contains("could not be serialised")),
        "{res}"
    );
    let back = pool.submit(make_one_way, 9).result(None).unwrap_err();
    assert!(
        back.wire_error()
            .is_some_and(|w| w.what().contains("result of")),
        "{back}"
    );
    assert_eq!(pool.submit(square, 6).result(None).unwrap(), 36);
    assert_eq!(pool.stats().worker_deaths, 0);
}

#[test]
fn an_unserialisable_value_names_its_type_and_its_reason() {
    let _g = shared();
    let pool = pool(1);
    let says_why = |e: &taskweave_core::Error| {
        e.wire_error().is_some_and(|w| {
            w.detail().contains("Unserialisable")
                && w.detail().contains("this value refuses to be serialised")
        })
    };
    let arg = pool
        .submit(take_unserialisable, Unserialisable)
        .result(None)
        .unwrap_err();
    assert!(says_why(&arg), "{arg}");
    let res = pool
        .submit(make_unserialisable, ())
        .result(None)
        .unwrap_err();
    assert!(says_why(&res), "{res}");
    let item = pool
        .map(take_unserialisable, [Unserialisable])
        .next()
        .unwrap()
        .unwrap_err();
    assert!(says_why(&item), "{item}");
    let init = ProcessPoolExecutor::builder()
        .initializer(init_with_unserialisable, Unserialisable)
        .build()
        .unwrap_err();
    assert!(says_why(&init), "{init}");
}

fn echo(b: Bytes) -> Bytes {
    b
}

#[test]
fn large_payload_round_trips() {
    let _g = shared();
    let pool = pool(1);
    let data: Vec<u8> = (0..(8 << 20)).map(|i: u32| (i % 251) as u8).collect();
    let back = pool.submit(echo, Bytes(data.clone())).result(None).unwrap();
    assert_eq!(back.0, data);
}

#[test]
fn frame_limit_fails_the_call_not_the_pool() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_frame(1024)
        .build()
        .unwrap();
    let err = pool
        .submit(echo, Bytes(vec![0; 4096]))
        .result(None)
        .unwrap_err();
    assert!(
        err.wire_error()
            .is_some_and(|w| w.detail().contains("limit")),
        "{err}"
    );
    assert_eq!(pool.submit(square, 2).result(None).unwrap(), 4);
}

static LEVEL: AtomicU32 = AtomicU32::new(0);

fn set_level(level: u32) {
    LEVEL.store(level, Ordering::SeqCst);
}

fn read_level(_: ()) -> u32 {
    LEVEL.load(Ordering::SeqCst)
}

fn refuse_level(level: u32) -> Result<(), String> {
    Err(format!("level {level} is not supported"))
}

#[test]
fn initializer_runs_in_every_worker() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .initializer(set_level, 7)
        .build()
        .unwrap();
    let got: Vec<u32> = (0..6)
        .map(|_| pool.submit(read_level, ()))
        .map(|mut p| p.result(None).unwrap())
        .collect();
    assert_eq!(got, [7; 6]);
    // The parent's own static is untouched: the initializer ran elsewhere.
    assert_eq!(LEVEL.load(Ordering::SeqCst), 0);
}

#[test]
fn failing_initializer_breaks_the_pool_with_its_error() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .initializer(refuse_level, 9)
        .build()
        .unwrap();
    let err = pool
        .submit(square, 1)
        .result(Some(Duration::from_secs(20)))
        .unwrap_err();
    assert!(
        err.is_broken()
            && err
                .reason()
                .is_some_and(|reason| reason.contains("level 9 is not supported")),
        "{err}"
    );
    let later = pool.submit(square, 2).result(None).unwrap_err();
    assert!(later.is_broken());
    assert!(pool.broken().is_some());
}

fn sum_of_squares(pool: &impl Executor) -> u64 {
    pool.map(square, 1..=10u64).map(Result::unwrap).sum()
}

#[test]
fn works_through_the_executor_trait() {
    let _g = shared();
    let pool = pool(2);
    assert_eq!(sum_of_squares(&pool), 385);
    let mut p = Executor::submit(&pool, square, 11);
    assert_eq!(p.result(None).unwrap(), 121);
    Executor::shutdown(&pool, true, false);
    assert!(
        pool.submit(square, 1)
            .result(None)
            .as_ref()
            .is_err_and(|e| e.is_shutdown())
    );
}

#[test]
fn blocking_wait_inside_a_task_is_refused() {
    let _g = shared();
    let pool = pool(1);
    let out = taskweave_core::run(async move {
        let mut p = pool.submit(square, 2);
        let refused = p.result(None);
        (refused, p.await)
    });
    let (refused, awaited) = out.unwrap();
    assert!(refused.as_ref().is_err_and(|e| e.is_refused()));
    assert_eq!(awaited.unwrap(), 4);
}

fn blocking_function() -> u32 {
    std::thread::sleep(Duration::from_millis(50));
    42
}

#[test]
fn call_runs_a_function_without_arguments() {
    let _g = shared();
    let pool = pool(1);
    let got = taskweave_core::run(async move { pool.call(blocking_function).await });
    assert_eq!(got.unwrap().unwrap(), 42);
}

#[test]
fn closures_that_capture_nothing_run_in_workers() {
    let _g = shared();
    let pool = pool(2);
    // Each closure is a type of its own with no data: the worker runs the same code.
    assert_eq!(pool.submit(|x: u64| x + 1, 41).result(None).unwrap(), 42);
    let worker = pool
        .submit(|(): ()| std::process::id(), ())
        .result(None)
        .unwrap();
    assert_ne!(worker, std::process::id());
    assert_eq!(
        pool.call(|| "from a worker".to_owned())
            .result(None)
            .unwrap(),
        "from a worker"
    );
    let doubled: Vec<u64> = pool.map(|x| 2 * x, 0..5u64).map(Result::unwrap).collect();
    assert_eq!(doubled, [0, 2, 4, 6, 8]);
    let mut got: Vec<u64> = pool
        .map_unordered(|x: u64| x * x, 1..=3)
        .map(|(_, r)| r.unwrap())
        .collect();
    got.sort_unstable();
    assert_eq!(got, [1, 4, 9]);
    let ran =
        taskweave_core::run(async move { taskweave_bridge::run_in_executor(&pool, || 7u32).await });
    assert_eq!(ran.unwrap().unwrap(), 7);
}
