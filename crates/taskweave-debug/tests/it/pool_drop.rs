//! Thread pools under debug mode: one dropped inside async code with nothing left to run is
//! silent, one dropped with work still pending is reported, and a done-callback that panics on a
//! worker (its payload panicking again as it is dropped) is reported without harming the worker.

use std::time::Duration;

use taskweave_bridge::{Queued, ThreadPoolExecutor, run_in_executor, to_thread};
use taskweave_debug::Debug;

use crate::capture::{self, of_kind, warnings};

const LIMIT: Duration = Duration::from_secs(10);

#[test]
fn dropping_a_pool_after_shutdown_async_reports_nothing() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    crate::runtime(&debug)
        .run(async {
            let pool = ThreadPoolExecutor::builder()
                .max_workers(2)
                .build()
                .unwrap();
            let p = pool.submit(|| 1);
            pool.shutdown_async(Queued::Run).await;
            assert_eq!(tokio::time::timeout(LIMIT, p).await.unwrap().unwrap(), 1);
            drop(pool);
        })
        .unwrap();
    assert!(warnings().is_empty(), "{:?}", warnings());
}

#[test]
fn dropping_a_pool_whose_work_all_finished_reports_nothing() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    crate::runtime(&debug)
        .run(async {
            for _ in 0..20 {
                let pool = ThreadPoolExecutor::builder()
                    .max_workers(2)
                    .build()
                    .unwrap();
                let a = tokio::time::timeout(LIMIT, pool.submit(|| 2)).await;
                assert_eq!(a.unwrap().unwrap(), 2);
                let b = tokio::time::timeout(LIMIT, run_in_executor(&pool, || 3)).await;
                assert_eq!(b.unwrap().unwrap(), 3);
                // Dropped at once, while its worker may still be on its way back to idle.
                drop(pool);
            }
            let c = tokio::time::timeout(LIMIT, to_thread(|| 4)).await;
            assert_eq!(c.unwrap().unwrap(), 4);
        })
        .unwrap();
    assert!(warnings().is_empty(), "{:?}", warnings());
}

#[test]
fn dropping_a_pool_with_work_pending_is_still_reported() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    crate::runtime(&debug)
        .run(async move {
            let pool = ThreadPoolExecutor::builder()
                .max_workers(1)
                .build()
                .unwrap();
            pool.submit(move || rx.recv_timeout(LIMIT)).detach();
            drop(pool);
        })
        .unwrap();
    tx.send(()).unwrap();
    let refused = of_kind("blocking_wait_refused");
    assert_eq!(refused.len(), 1, "{:?}", warnings());
    assert!(
        refused[0].message.contains("ThreadPoolExecutor::shutdown"),
        "{}",
        refused[0].message
    );
}

/// A panic payload that panics again when it is dropped.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("the payload's own drop panicked");
    }
}

#[test]
fn a_done_callback_panicking_on_a_worker_is_reported_and_the_worker_lives_on() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    crate::runtime(&debug)
        .run(async {
            let pool = ThreadPoolExecutor::builder()
                .max_workers(1)
                .build()
                .unwrap();
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let p = pool.submit(move || rx.recv_timeout(LIMIT).map(|()| 5));
            // Added while the call runs, so they run on the worker that completes it.
            p.add_done_callback(|_| std::panic::panic_any(PanicsOnDrop));
            p.add_done_callback(|_| panic!("callback bug"));
            tx.send(()).unwrap();
            let got = tokio::time::timeout(LIMIT, p).await.unwrap().unwrap();
            assert_eq!(got, Ok(5));
            let next = tokio::time::timeout(LIMIT, pool.submit(|| 6)).await;
            assert_eq!(next.unwrap().unwrap(), 6);
            assert_eq!(pool.threads(), 1, "the worker survived its callbacks");
            pool.shutdown_async(Queued::Run).await;
        })
        .unwrap();
    let reports = of_kind("callback_panicked");
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert!(
        reports
            .iter()
            .any(|r| r.field("error") == Some("callback bug")),
        "{reports:?}"
    );
}
