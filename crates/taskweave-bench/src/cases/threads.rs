//! Cases of the executor bridge: blocking calls from async code, a thread-pool map and
//! awaiting rayon, each beside raw tokio / rayon and Python (`peers/threads.py`).
//!
//! - `to_thread_rtt`: inside one task, `to_thread(trivial).await` one at a time, against
//!   `tokio::task::spawn_blocking(trivial).await` in the same loop on the same runtime, and
//!   against asyncio's `await loop.run_in_executor(pool, trivial)`. us per call.
//! - `thread_inflight_64`: the same calls issued 64 at a time and all awaited, against asyncio's
//!   `gather` of 64 `run_in_executor` calls. us per call.
//! - `thread_map_100k`: `ThreadPoolExecutor::map` of the identity over 100k integers, collected
//!   and checked, against Python's `ThreadPoolExecutor.map`. Both pools have Python's default
//!   size. us per item.
//! - `rayon_await_rtt`: inside one task, `spawn_rayon(trivial).await` one at a time, against
//!   `rayon::spawn` completing a tokio oneshot that is awaited. us per call.

use std::hint::black_box;
use std::time::Instant;

use taskweave_bridge::{ThreadPoolExecutor, spawn_rayon, to_thread};
use taskweave_core::{Runtime, create_task};

use super::{Case, Config, Row};
use crate::measure::{AsyncContender, Rounds, median, ns_per_op, rotate, rotate_async};
use crate::peer;

/// The cases of this area.
pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "to_thread_rtt",
            run: to_thread_rtt,
        },
        Case {
            name: "thread_inflight_64",
            run: thread_inflight_64,
        },
        Case {
            name: "thread_map_100k",
            run: thread_map_100k,
        },
        Case {
            name: "rayon_await_rtt",
            run: rayon_await_rtt,
        },
    ]
}

/// A multi-thread runtime with 2 workers: the default shape on a 2-core machine, fixed so the
/// numbers compare across machines.
fn runtime() -> Runtime {
    Runtime::builder()
        .worker_threads(2)
        .debug(false)
        .build()
        .unwrap_or_else(|e| panic!("cannot build the runtime: {e}"))
}

fn trivial() -> u64 {
    black_box(1)
}

fn to_thread_rtt(config: &Config) -> Vec<Row> {
    let case = "to_thread_rtt";
    let (n, rounds, python_n, python_reps) = if config.quick {
        (5_000, Rounds { warm_up: 1, measured: 7 }, 2_000, 3)
    } else {
        (20_000, Rounds { warm_up: 1, measured: 11 }, 10_000, 5)
    };
    let samples = runtime()
        .run(async move {
            let mut contenders: [AsyncContender<'_>; 2] = [
                Box::new(move || Box::pin(in_task(n, ours_rtt))),
                Box::new(move || Box::pin(in_task(n, tokio_rtt))),
            ];
            rotate_async(rounds, &mut contenders).await
        })
        .unwrap_or_else(|e| panic!("the measuring runtime failed: {e}"));
    let ours = median(&samples[0]);
    let mut rows = vec![Row::new(case, ours, median(&samples[1]), "tokio", "us/call")];
    let args = ["rtt".to_owned(), python_n.to_string(), python_reps.to_string()];
    if let Some(python) = peer::python(config, "threads.py", &args) {
        rows.push(Row::new(case, ours, python.get("us_per_call"), "python", "us/call"));
    }
    rows
}

/// Runs `measure(n)` inside a taskweave task (where user code runs) and returns its sample.
async fn in_task<F, Fut>(n: usize, measure: F) -> f64
where
    F: FnOnce(usize) -> Fut,
    Fut: std::future::Future<Output = f64> + Send + 'static,
{
    create_task(measure(n))
        .await
        .unwrap_or_else(|e| panic!("the measuring task failed: {e}"))
}

/// us per `to_thread(trivial).await`.
async fn ours_rtt(n: usize) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        if let Err(e) = to_thread(trivial).await {
            panic!("a trivial to_thread call failed: {e}");
        }
    }
    ns_per_op(started.elapsed(), n) / 1e3
}

/// us per `spawn_blocking(trivial).await`.
async fn tokio_rtt(n: usize) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        if let Err(e) = tokio::task::spawn_blocking(trivial).await {
            panic!("a trivial spawn_blocking call failed: {e}");
        }
    }
    ns_per_op(started.elapsed(), n) / 1e3
}

const INFLIGHT: usize = 64;

fn thread_inflight_64(config: &Config) -> Vec<Row> {
    let case = "thread_inflight_64";
    let (n, rounds, python_n, python_reps) = if config.quick {
        (INFLIGHT * 200, Rounds { warm_up: 1, measured: 7 }, 5_000, 3)
    } else {
        (INFLIGHT * 500, Rounds { warm_up: 1, measured: 11 }, 20_000, 5)
    };
    let samples = runtime()
        .run(async move {
            let mut contenders: [AsyncContender<'_>; 1] =
                [Box::new(move || Box::pin(in_task(n, ours_inflight)))];
            rotate_async(rounds, &mut contenders).await
        })
        .unwrap_or_else(|e| panic!("the measuring runtime failed: {e}"));
    let ours = median(&samples[0]);
    let args = [
        "inflight".to_owned(),
        python_n.to_string(),
        INFLIGHT.to_string(),
        python_reps.to_string(),
    ];
    match peer::python(config, "threads.py", &args) {
        Some(python) => vec![Row::new(case, ours, python.get("us_per_call"), "python", "us/call")],
        None => Vec::new(),
    }
}

/// us per call when `INFLIGHT` `to_thread` calls are started, then all awaited.
async fn ours_inflight(n: usize) -> f64 {
    let started = Instant::now();
    let mut batch = Vec::with_capacity(INFLIGHT);
    for _ in 0..n / INFLIGHT {
        batch.extend((0..INFLIGHT).map(|_| to_thread(trivial)));
        for promise in batch.drain(..) {
            if let Err(e) = promise.await {
                panic!("a trivial to_thread call failed: {e}");
            }
        }
    }
    ns_per_op(started.elapsed(), n) / 1e3
}

const MAP_N: u64 = 100_000;

fn thread_map_100k(config: &Config) -> Vec<Row> {
    let case = "thread_map_100k";
    let (rounds, python_n, python_reps) = if config.quick {
        (Rounds { warm_up: 1, measured: 5 }, 20_000, 3)
    } else {
        (Rounds { warm_up: 1, measured: 9 }, 100_000, 5)
    };
    let pool = ThreadPoolExecutor::new();
    let mut ours = || {
        let started = Instant::now();
        let mut expected = 0;
        for result in pool.map(|x: u64| x, 0..MAP_N) {
            match result {
                Ok(x) if x == expected => expected += 1,
                other => panic!("map item {expected} came back as {other:?}"),
            }
        }
        assert_eq!(expected, MAP_N, "map returned too few items");
        ns_per_op(started.elapsed(), MAP_N as usize) / 1e3
    };
    let samples = rotate(rounds, &mut [&mut ours]);
    let ours = median(&samples[0]);
    let args = ["map".to_owned(), python_n.to_string(), python_reps.to_string()];
    match peer::python(config, "threads.py", &args) {
        Some(python) => vec![Row::new(case, ours, python.get("us_per_item"), "python", "us/item")],
        None => Vec::new(),
    }
}

fn rayon_await_rtt(config: &Config) -> Vec<Row> {
    let case = "rayon_await_rtt";
    let (n, rounds) = if config.quick {
        (5_000, Rounds { warm_up: 1, measured: 7 })
    } else {
        (20_000, Rounds { warm_up: 1, measured: 11 })
    };
    let samples = runtime()
        .run(async move {
            let mut contenders: [AsyncContender<'_>; 2] = [
                Box::new(move || Box::pin(in_task(n, ours_rayon))),
                Box::new(move || Box::pin(in_task(n, raw_rayon))),
            ];
            rotate_async(rounds, &mut contenders).await
        })
        .unwrap_or_else(|e| panic!("the measuring runtime failed: {e}"));
    vec![Row::new(
        case,
        median(&samples[0]),
        median(&samples[1]),
        "rayon",
        "us/call",
    )]
}

/// us per `spawn_rayon(trivial).await`.
async fn ours_rayon(n: usize) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        if let Err(e) = spawn_rayon(trivial).await {
            panic!("a trivial rayon call failed: {e}");
        }
    }
    ns_per_op(started.elapsed(), n) / 1e3
}

/// us per `rayon::spawn` of `trivial` sending its value through a tokio oneshot.
async fn raw_rayon(n: usize) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        let (tx, rx) = tokio::sync::oneshot::channel();
        rayon::spawn(move || {
            let _ = tx.send(trivial());
        });
        if rx.await.is_err() {
            panic!("a trivial rayon call dropped its channel");
        }
    }
    ns_per_op(started.elapsed(), n) / 1e3
}
