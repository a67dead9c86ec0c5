//! Cases of debug mode: what switching it on costs on the task benchmarks, and what
//! the seam costs when it is off.
//!
//! - `debug_task_spawn_await`: inside one task, `create_task(async {}).await` in a loop with
//!   debug mode on (the default configuration: slow-poll check, live-task table, watchdog
//!   thread; no timeline) against the same loop with it off, on the same runtime, alternated.
//!   ns per task.
//! - `debug_gather_100k`: create 100k trivial tasks and `gather` them, debug on against off.
//!   ns per task.
//! - `debug_off_poll`: the per-poll cost of an observed-if-on task with debug off: a task that
//!   yields 100k times against a raw `tokio::spawn` task doing the same. The difference is
//!   everything a taskweave poll adds (the `Option` branch of the seam, the strict-check flag,
//!   `catch_unwind`), so it bounds the seam's off cost from above. ns per poll.
//!
//! Debug mode is switched on and off by attaching the observer to the runtime for one
//! measurement (`instrument::attach`), so both sides share a runtime and a warm machine. A
//! third contender, an observer that does nothing, shows what core's seam costs when on, apart
//! from what the debug layer adds; it is printed, not a row.

use std::sync::Arc;
use std::time::Instant;

use taskweave_core::instrument::Observer;
use taskweave_core::{Runtime, create_task};

use super::tasks::{ours_gather, ours_spawn_await};
use super::{Case, Config, Row};
use crate::measure::{AsyncContender, Rounds, median, ns_per_op, rotate_async};

/// The cases of this area.
pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "debug_task_spawn_await",
            run: spawn_await,
        },
        Case {
            name: "debug_gather_100k",
            run: gather_100k,
        },
        Case {
            name: "debug_off_poll",
            run: off_poll,
        },
    ]
}

fn runtime() -> Runtime {
    Runtime::builder()
        .debug(false)
        .worker_threads(2)
        .build()
        .unwrap_or_else(|e| panic!("cannot build the runtime: {e}"))
}

/// The observer debug mode uses by default.
fn debug_observer() -> Arc<dyn Observer> {
    taskweave_debug::Debug::new().build()
}

/// An observer that does nothing: debug mode's cost in core alone (the seam switched on).
struct Nothing;

impl Observer for Nothing {}

/// A measurement: `n` operations observed by the observer (none: debug off), in ns per op.
type Measure = fn(usize, Option<Arc<dyn Observer>>) -> MeasureFuture;

type MeasureFuture = std::pin::Pin<Box<dyn std::future::Future<Output = f64> + Send>>;

/// Measures with debug on, off, and with an observer that does nothing, alternated on one
/// runtime; returns the medians of on and off and prints the third.
fn on_against_off(rounds: Rounds, measure: Measure, n: usize) -> (f64, f64) {
    let samples = runtime()
        .run(async move {
            let on = debug_observer();
            let nothing: Arc<dyn Observer> = Arc::new(Nothing);
            let mut contenders: [AsyncContender<'_>; 3] = [
                Box::new(move || measure(n, Some(on.clone()))),
                Box::new(move || measure(n, None)),
                Box::new(move || measure(n, Some(nothing.clone()))),
            ];
            rotate_async(rounds, &mut contenders).await
        })
        .unwrap_or_else(|e| panic!("the measuring runtime failed: {e}"));
    let (on, off, seam) = (
        median(&samples[0]),
        median(&samples[1]),
        median(&samples[2]),
    );
    println!(
        "   the seam alone (an observer that does nothing): {seam:.1} ns/task, {:.2} x off",
        seam / off
    );
    (on, off)
}

fn spawn_await(config: &Config) -> Vec<Row> {
    let (n, rounds) = if config.quick {
        (20_000, Rounds { warm_up: 1, measured: 7 })
    } else {
        (100_000, Rounds { warm_up: 1, measured: 11 })
    };
    let (on, off) = on_against_off(rounds, |n, obs| Box::pin(ours_spawn_await(n, obs)), n);
    vec![Row::new("debug_task_spawn_await", on, off, "debug_off", "ns/task")]
}

const GATHER_N: usize = 100_000;

fn gather_100k(config: &Config) -> Vec<Row> {
    let rounds = if config.quick {
        Rounds { warm_up: 1, measured: 5 }
    } else {
        Rounds { warm_up: 1, measured: 11 }
    };
    let (on, off) = on_against_off(rounds, |n, obs| Box::pin(ours_gather(n, obs)), GATHER_N);
    vec![Row::new("debug_gather_100k", on, off, "debug_off", "ns/task")]
}

const POLLS: usize = 100_000;

fn off_poll(config: &Config) -> Vec<Row> {
    let rounds = if config.quick {
        Rounds { warm_up: 1, measured: 7 }
    } else {
        Rounds { warm_up: 1, measured: 15 }
    };
    let samples = runtime()
        .run(async move {
            let mut contenders: [AsyncContender<'_>; 2] = [
                Box::new(|| Box::pin(ours_yield_loop(POLLS))),
                Box::new(|| Box::pin(tokio_yield_loop(POLLS))),
            ];
            rotate_async(rounds, &mut contenders).await
        })
        .unwrap_or_else(|e| panic!("the measuring runtime failed: {e}"));
    vec![Row::new(
        "debug_off_poll",
        median(&samples[0]),
        median(&samples[1]),
        "tokio",
        "ns/poll",
    )]
}

/// ns per poll of a taskweave task (debug off) that yields `n` times.
async fn ours_yield_loop(n: usize) -> f64 {
    let task = create_task(async move {
        let started = Instant::now();
        for _ in 0..n {
            tokio::task::yield_now().await;
        }
        started.elapsed()
    });
    let took = task
        .await
        .unwrap_or_else(|e| panic!("the yielding task failed: {e}"));
    ns_per_op(took, n)
}

/// The same in a raw tokio task.
async fn tokio_yield_loop(n: usize) -> f64 {
    let task = tokio::spawn(async move {
        let started = Instant::now();
        for _ in 0..n {
            tokio::task::yield_now().await;
        }
        started.elapsed()
    });
    let took = task
        .await
        .unwrap_or_else(|e| panic!("the yielding tokio task failed: {e}"));
    ns_per_op(took, n)
}
