//! The strict check: blocking waits inside async tasks are refused, never deadlocks.

use std::time::{Duration, Instant};

use taskweave_bridge::{RayonExecutor, ThreadPoolExecutor, spawn_rayon, to_thread};
use taskweave_core::create_task;

#[test]
fn result_inside_a_task_is_refused_with_advice() {
    taskweave_core::run(async {
        let pool = ThreadPoolExecutor::new();
        let mut p = pool.submit(|| 1);
        let err = p.result(None).unwrap_err();
        match err.reason() {
            Some(reason) if err.is_refused() => {
                assert!(reason.contains("await"), "{reason}");
            }
            _ => panic!("expected Refused, got {err:?}"),
        }
        // Awaiting is the way, and the result is still there.
        assert_eq!(p.await.unwrap(), 1);
    })
    .unwrap();
}

#[test]
fn result_inside_a_spawned_task_is_refused() {
    taskweave_core::run(async {
        let task = create_task(async {
            let mut p = spawn_rayon(|| 2);
            p.result(Some(Duration::from_secs(1)))
        });
        assert!(task.await.unwrap().as_ref().is_err_and(|e| e.is_refused()));
    })
    .unwrap();
}

#[test]
fn iterating_a_map_inside_a_task_is_refused() {
    taskweave_core::run(async {
        let pool = ThreadPoolExecutor::new();
        let mut map = pool.map(|x: u8| x, 0..3);
        let first = map.next().unwrap();
        assert!(first.as_ref().is_err_and(|e| e.is_refused()));
        assert!(map.next().is_none());
    })
    .unwrap();
}

#[test]
fn blocking_waits_are_fine_inside_to_thread() {
    taskweave_core::run(async {
        let pool = std::sync::Arc::new(ThreadPoolExecutor::new());
        let p2 = pool.clone();
        let got = to_thread(move || {
            let mut p = p2.submit(|| 5);
            p.result(None)
        })
        .await
        .unwrap();
        assert_eq!(got.unwrap(), 5);
    })
    .unwrap();
}

#[test]
fn shutdown_wait_inside_a_task_does_not_block_the_runtime() {
    taskweave_core::run(async {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let running = pool.submit(move || rx.recv().unwrap());
        let started = Instant::now();
        pool.shutdown(true, false);
        assert!(started.elapsed() < Duration::from_secs(1));
        tx.send(()).unwrap();
        running.await.unwrap();
        let rayon = RayonExecutor::global();
        rayon.shutdown(true, false);
    })
    .unwrap();
}
