//! The rayon bridge: spawn_rayon, par_map, RayonExecutor.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use taskweave_bridge::{Executor, RayonExecutor, par_map, run_in_executor, spawn_rayon};

#[test]
fn spawn_rayon_is_awaitable() {
    taskweave_core::run(async {
        let in_rayon = spawn_rayon(|| rayon::current_thread_index().is_some())
            .await
            .unwrap();
        assert!(in_rayon);
    })
    .unwrap();
}

#[test]
fn a_rayon_panic_is_an_error_value() {
    taskweave_core::run(async {
        let err = spawn_rayon(|| -> u8 { panic!("simd overflow") })
            .await
            .unwrap_err();
        assert!(err.is_panic());
        assert!(err.to_string().contains("simd overflow"));
        let err = par_map(
            vec![1, 2, 3],
            |x: i32| if x == 2 { panic!("item two") } else { x },
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("item two"));
    })
    .unwrap();
}

#[test]
fn par_map_keeps_order() {
    taskweave_core::run(async {
        let v: Vec<u64> = (0..10_000).collect();
        let out = par_map(v, |x| x * 3).await.unwrap();
        assert_eq!(out, (0..10_000).map(|x| x * 3).collect::<Vec<_>>());
    })
    .unwrap();
}

#[test]
fn a_given_pool_runs_the_work() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .thread_name(|i| format!("tw-rayon-{i}"))
        .build()
        .unwrap();
    let rayon = RayonExecutor::new(pool);
    assert_eq!(rayon.num_threads(), 2);
    taskweave_core::run(async move {
        let name = rayon
            .spawn(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("tw-rayon-"));
        assert_eq!(run_in_executor(&rayon, || 9).await.unwrap(), 9);
        let sums = rayon.par_map(vec![vec![1, 2], vec![3]], |v: Vec<i32>| {
            v.iter().sum::<i32>()
        });
        assert_eq!(sums.await.unwrap(), [3, 3]);
    })
    .unwrap();
}

#[test]
fn rayon_executor_shutdown_and_cancel_futures() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let rayon = RayonExecutor::new(pool);
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let mut running = rayon.spawn(move || {
        started_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        "done"
    });
    started_rx.recv().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let queued: Vec<_> = (0..4)
        .map(|_| {
            let r = ran.clone();
            rayon.spawn(move || r.fetch_add(1, Ordering::SeqCst))
        })
        .collect();
    rayon.shutdown(false, true);
    go_tx.send(()).unwrap();
    assert_eq!(running.result(None).unwrap(), "done");
    for mut p in queued {
        assert!(p.result(None).unwrap_err().is_cancelled());
    }
    rayon.shutdown(true, false);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    let err = rayon.spawn(|| 1).result(None).unwrap_err();
    assert!(err.is_shutdown());
}

#[test]
fn rayon_lazy_map_in_order() {
    fn cube(x: u64) -> u64 {
        x * x * x
    }
    let rayon = RayonExecutor::global();
    let out: Vec<u64> = Executor::map(&rayon, cube, 0..200u64)
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, (0..200u64).map(cube).collect::<Vec<_>>());
    let mut unordered: Vec<usize> = rayon
        .map_unordered(|x: u8| x, 0..50u8)
        .map(|(i, _)| i)
        .collect();
    unordered.sort_unstable();
    assert_eq!(unordered, (0..50).collect::<Vec<_>>());
}
