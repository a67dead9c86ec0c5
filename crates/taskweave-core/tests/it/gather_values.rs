//! `gather` of futures that return plain values, and tasks beside promises in one gather.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use taskweave_core::{Error, GatherValue, Promise, create_task, create_task_try, gather, timeout};

async fn square(x: u64) -> u64 {
    tokio::task::yield_now().await;
    x * x
}

#[test]
fn plain_values_come_back_as_a_vec_in_input_order() {
    let out = crate::rt(async { gather((0..5).map(square)).await });
    assert_eq!(out, vec![0, 1, 4, 9, 16]);
}

#[test]
fn plain_futures_run_concurrently() {
    // Each future waits until all five have started: one at a time, they would wait forever.
    let started = Arc::new(AtomicUsize::new(0));
    let out = crate::rt(async {
        let futs = (0..5u32).map(|i| {
            let started = started.clone();
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                while started.load(Ordering::SeqCst) < 5 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                i
            }
        });
        timeout(Duration::from_secs(10), gather(futs)).await
    });
    assert_eq!(out.unwrap(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn options_and_tuples_are_values() {
    let out = crate::rt(async {
        gather((0..4u8).map(|x| async move { (x % 2 == 0).then_some((x, x.to_string())) })).await
    });
    assert_eq!(
        out,
        vec![
            Some((0, "0".to_owned())),
            None,
            Some((2, "2".to_owned())),
            None
        ]
    );
}

#[derive(Debug, PartialEq)]
struct Page(u32);

impl GatherValue for Page {}

#[test]
fn a_marked_type_of_ones_own_is_a_value() {
    let out = crate::rt(async { gather((1..=3).map(|n| async move { Page(n) })).await });
    assert_eq!(out, vec![Page(1), Page(2), Page(3)]);
}

#[test]
fn an_empty_gather_of_values_is_an_empty_vec() {
    let out = crate::rt(async { gather(Vec::<std::future::Ready<u8>>::new()).await });
    assert!(out.is_empty());
}

#[test]
fn results_still_stop_at_the_first_error() {
    let out = crate::rt(async {
        gather((0..5u64).map(|x| async move {
            if x == 3 {
                Err(Error::shutdown("three"))
            } else {
                Ok(x)
            }
        }))
        .await
    });
    assert!(matches!(out, Err(Error::Shutdown { .. })));
}

#[test]
fn tasks_of_result_futures_gather_beside_promises_from_threads() {
    let out = crate::rt(async {
        let (from_thread, resolver) = Promise::<u64>::pending();
        std::thread::spawn(move || resolver.set_result(9));
        let parsed = create_task_try(async { "4".parse::<u64>() });
        let plain = create_task(async { 5u64 });
        let all: Vec<Promise<u64>> = vec![parsed.into(), from_thread, plain.into()];
        gather(all).await
    });
    assert_eq!(out.unwrap(), vec![4, 9, 5]);
}

#[test]
fn a_failing_result_task_fails_the_mixed_gather() {
    let out = crate::rt(async {
        let (never, _resolver) = Promise::<u64>::pending();
        let bad = create_task_try(async { "x".parse::<u64>() });
        let all: Vec<Promise<u64>> = vec![never, bad.into()];
        timeout(Duration::from_secs(10), gather(all)).await
    });
    assert!(matches!(out, Ok(Err(Error::Failed(_)))), "{out:?}");
}
