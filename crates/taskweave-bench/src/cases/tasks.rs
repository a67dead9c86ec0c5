//! Cases of the task model: creating and awaiting tasks, gathering many, and many
//! concurrent sleepers, each beside raw tokio and Python's asyncio (`peers/tasks.py`).
//!
//! - `task_spawn_await` / `task_spawn_await_ct`: inside one task, `create_task(async {}).await`
//!   in a loop, against `tokio::spawn(async {}).await` in the same loop on the same runtime (a
//!   multi-thread runtime with 2 workers / a current-thread runtime), and against asyncio's
//!   `await create_task(noop())`. ns per task.
//! - `task_spawn_await_main`: the same loop written directly in the main future of `run_task`
//!   (which runs it as the task "main", as `#[taskweave::main]` does for a sendable body),
//!   against asyncio's loop in its main coroutine (which asyncio runs as a task; the peer's
//!   `spawn_await` mode) and, baseline `in_task`, against the same loop inside a task of its own
//!   on the same runtime. ns per task.
//! - `task_spawn_await_run_main`: the loop in the main future of `run`, which takes any future
//!   (not `Send`, borrowing) and polls it on the calling thread, so each await of a task a
//!   worker finished wakes that thread; baselines `in_task` and python as above. ns per task.
//! - `gather_100k` / `gather_100k_ct`: create 100k trivial tasks, then `gather` them (results in
//!   input order), against tokio's `JoinSet` and `join_all` over `JoinHandle`s (the faster one is
//!   the baseline) and asyncio's `gather`, on either runtime. ns per task.
//! - `sleep_gather_10k`: 10k tasks each sleeping 100 ms, gathered; wall time and (row
//!   `sleep_gather_10k_rss`) the process's peak RSS against asyncio's, each side measured in a
//!   fresh process of its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use taskweave_core::instrument::{self, Observer};
use taskweave_core::{Runtime, Task, create_task, gather};
use tokio::task::JoinSet;

use super::{Case, Config, Row};
use crate::measure::{
    AsyncContender, Rounds, fresh_process, median, millis, ns_per_op, rotate, rotate_async,
    spread,
};
use crate::peer;

/// The cases of this area.
pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "task_spawn_await",
            run: spawn_await_multi_thread,
        },
        Case {
            name: "task_spawn_await_ct",
            run: spawn_await_current_thread,
        },
        Case {
            name: "task_spawn_await_main",
            run: spawn_await_main,
        },
        Case {
            name: "gather_100k",
            run: gather_100k_multi_thread,
        },
        Case {
            name: "gather_100k_ct",
            run: gather_100k_current_thread,
        },
        Case {
            name: "sleep_gather_10k",
            run: sleep_gather_10k,
        },
    ]
}

/// The runtimes the cases run on.
#[derive(Clone, Copy)]
enum Flavour {
    /// Multi-thread with 2 workers: the default shape on a 2-core machine, fixed so the numbers
    /// compare across machines.
    MultiThread,
    /// One thread, as asyncio's event loop.
    CurrentThread,
}

fn runtime(flavour: Flavour) -> Runtime {
    let builder = Runtime::builder().debug(false);
    let builder = match flavour {
        Flavour::MultiThread => builder.worker_threads(2),
        Flavour::CurrentThread => builder.current_thread(),
    };
    builder
        .build()
        .unwrap_or_else(|e| panic!("cannot build the runtime: {e}"))
}

fn spawn_await_multi_thread(config: &Config) -> Vec<Row> {
    spawn_await(config, "task_spawn_await", Flavour::MultiThread)
}

fn spawn_await_current_thread(config: &Config) -> Vec<Row> {
    spawn_await(config, "task_spawn_await_ct", Flavour::CurrentThread)
}

fn spawn_await(config: &Config, case: &str, flavour: Flavour) -> Vec<Row> {
    let (n, rounds, python_reps) = if config.quick {
        (30_000, Rounds { warm_up: 1, measured: 9 }, 5)
    } else {
        (100_000, Rounds { warm_up: 1, measured: 11 }, 7)
    };
    let samples = runtime(flavour)
        .run(async move {
            let mut contenders: [AsyncContender<'_>; 2] = [
                Box::new(move || Box::pin(ours_spawn_await(n, None))),
                Box::new(move || Box::pin(tokio_spawn_await(n))),
            ];
            rotate_async(rounds, &mut contenders).await
        })
        .unwrap_or_else(|e| panic!("the measuring runtime failed: {e}"));
    let ours = median(&samples[0]);
    let mut rows = vec![Row::new(case, ours, median(&samples[1]), "tokio", "ns/task")];
    let args = ["spawn_await".to_owned(), n.to_string(), python_reps.to_string()];
    if let Some(python) = peer::python(config, "tasks.py", &args) {
        rows.push(Row::new(case, ours, python.get("ns_per_task"), "python", "ns/task"));
    }
    rows
}

fn spawn_await_main(config: &Config) -> Vec<Row> {
    let case = "task_spawn_await_main";
    let (n, rounds, python_reps) = if config.quick {
        (10_000, Rounds { warm_up: 1, measured: 7 }, 5)
    } else {
        (30_000, Rounds { warm_up: 1, measured: 11 }, 7)
    };
    // `rotate_async` is awaited by the main future itself, so a contender that awaits its loop
    // directly runs it in the main future: as the task "main" under `run_task` (what
    // `#[taskweave::main]` gives a sendable body), on the calling thread under `run`.
    let contenders = move || -> [AsyncContender<'static>; 2] {
        [
            Box::new(move || Box::pin(main_spawn_await(n))),
            Box::new(move || Box::pin(ours_spawn_await(n, None))),
        ]
    };
    let as_task = runtime(Flavour::MultiThread)
        .run_task(async move { rotate_async(rounds, &mut contenders()).await })
        .unwrap_or_else(|e| panic!("the measuring runtime failed: {e}"));
    let on_caller = runtime(Flavour::MultiThread)
        .run(async move { rotate_async(rounds, &mut contenders()).await })
        .unwrap_or_else(|e| panic!("the measuring runtime failed: {e}"));
    let ours = median(&as_task[0]);
    println!(
        "   spread of rounds: main task {:.0}%, in a task {:.0}%; run's main {:.0}%, in a task {:.0}%",
        spread(&as_task[0]) * 100.0,
        spread(&as_task[1]) * 100.0,
        spread(&on_caller[0]) * 100.0,
        spread(&on_caller[1]) * 100.0
    );
    let mut rows = vec![
        Row::new(case, ours, median(&as_task[1]), "in_task", "ns/task"),
        Row::new(
            "task_spawn_await_run_main",
            median(&on_caller[0]),
            median(&on_caller[1]),
            "in_task",
            "ns/task",
        ),
    ];
    let args = ["spawn_await".to_owned(), n.to_string(), python_reps.to_string()];
    if let Some(python) = peer::python(config, "tasks.py", &args) {
        let python = python.get("ns_per_task");
        rows.push(Row::new(case, ours, python, "python", "ns/task"));
        rows.push(Row::new(
            "task_spawn_await_run_main",
            median(&on_caller[0]),
            python,
            "python",
            "ns/task",
        ));
    }
    rows
}

/// ns per `create_task(async {}).await` in the future that awaits this one, not in a task of
/// its own.
async fn main_spawn_await(n: usize) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        if let Err(e) = create_task(async {}).await {
            panic!("a trivial task failed: {e}");
        }
    }
    ns_per_op(started.elapsed(), n)
}

/// ns per `create_task(async {}).await`, measured inside a task.
///
/// With an `observer` (debug mode on), it is attached to the runtime inside the measuring task,
/// so only the measured tasks are observed.
pub(super) async fn ours_spawn_await(n: usize, observer: Option<Arc<dyn Observer>>) -> f64 {
    let measuring = create_task(async move {
        let _debug = observer.map(|o| instrument::attach(&tokio::runtime::Handle::current(), o));
        let started = Instant::now();
        for _ in 0..n {
            if let Err(e) = create_task(async {}).await {
                panic!("a trivial task failed: {e}");
            }
        }
        ns_per_op(started.elapsed(), n)
    });
    measuring
        .await
        .unwrap_or_else(|e| panic!("the measuring task failed: {e}"))
}

/// ns per `tokio::spawn(async {}).await`, measured inside a tokio task.
async fn tokio_spawn_await(n: usize) -> f64 {
    let measuring = tokio::spawn(async move {
        let started = Instant::now();
        for _ in 0..n {
            if let Err(e) = tokio::spawn(async {}).await {
                panic!("a trivial tokio task failed: {e}");
            }
        }
        ns_per_op(started.elapsed(), n)
    });
    measuring
        .await
        .unwrap_or_else(|e| panic!("the measuring tokio task failed: {e}"))
}

const GATHER_N: usize = 100_000;

fn gather_100k_multi_thread(config: &Config) -> Vec<Row> {
    gather_100k(config, "gather_100k", Flavour::MultiThread)
}

fn gather_100k_current_thread(config: &Config) -> Vec<Row> {
    gather_100k(config, "gather_100k_ct", Flavour::CurrentThread)
}

fn gather_100k(config: &Config, case: &str, flavour: Flavour) -> Vec<Row> {
    let (rounds, python_reps) = if config.quick {
        (Rounds { warm_up: 1, measured: 7 }, 5)
    } else {
        (Rounds { warm_up: 1, measured: 11 }, 7)
    };
    let samples = runtime(flavour)
        .run(async move {
            let mut contenders: [AsyncContender<'_>; 3] = [
                Box::new(|| Box::pin(ours_gather(GATHER_N, None))),
                Box::new(|| Box::pin(tokio_join_set(GATHER_N))),
                Box::new(|| Box::pin(tokio_join_all(GATHER_N))),
            ];
            rotate_async(rounds, &mut contenders).await
        })
        .unwrap_or_else(|e| panic!("the measuring runtime failed: {e}"));
    let ours = median(&samples[0]);
    let join_set = median(&samples[1]);
    let join_all = median(&samples[2]);
    println!(
        "   tokio: JoinSet {join_set:.1} ns/task, join_all {join_all:.1} ns/task; the faster is the baseline"
    );
    let mut rows = vec![Row::new(case, ours, join_set.min(join_all), "tokio", "ns/task")];
    let args = [
        "gather".to_owned(),
        GATHER_N.to_string(),
        python_reps.to_string(),
    ];
    if let Some(python) = peer::python(config, "tasks.py", &args) {
        rows.push(Row::new(case, ours, python.get("ns_per_task"), "python", "ns/task"));
    }
    rows
}

/// ns per task to create `n` tasks and gather their results in input order, with an
/// `observer` attached as in [`ours_spawn_await`].
pub(super) async fn ours_gather(n: usize, observer: Option<Arc<dyn Observer>>) -> f64 {
    let measuring = create_task(async move {
        let _debug = observer.map(|o| instrument::attach(&tokio::runtime::Handle::current(), o));
        let started = Instant::now();
        let tasks: Vec<Task<usize>> = (0..n).map(|i| create_task(async move { i })).collect();
        let results = match gather(tasks).await {
            Ok(results) => results,
            Err(e) => panic!("gathering trivial tasks failed: {e}"),
        };
        let took = started.elapsed();
        check_in_order(&results, n);
        ns_per_op(took, n)
    });
    measuring
        .await
        .unwrap_or_else(|e| panic!("the measuring task failed: {e}"))
}

/// The same with tokio's `JoinSet`, results put back in input order.
pub(super) async fn tokio_join_set(n: usize) -> f64 {
    let measuring = tokio::spawn(async move {
        let started = Instant::now();
        let mut set = JoinSet::new();
        for i in 0..n {
            set.spawn(async move { i });
        }
        let mut results = vec![usize::MAX; n];
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(i) => results[i] = i,
                Err(e) => panic!("a trivial tokio task failed: {e}"),
            }
        }
        let took = started.elapsed();
        check_in_order(&results, n);
        ns_per_op(took, n)
    });
    measuring
        .await
        .unwrap_or_else(|e| panic!("the measuring tokio task failed: {e}"))
}

/// The same with `join_all` over tokio `JoinHandle`s (results in input order).
///
/// Run unconstrained: `join_all` polls its handles through `FuturesOrdered`, and once tokio's
/// cooperative budget is spent every handle answers "not yet" and reschedules itself, so each
/// wake-up gets through about 128 handles and 100k of them cost O(n²) polls (seconds per
/// round). Without the budget it is the baseline tokio users would write.
async fn tokio_join_all(n: usize) -> f64 {
    let measuring = tokio::spawn(async move {
        let started = Instant::now();
        let handles: Vec<_> = (0..n).map(|i| tokio::spawn(async move { i })).collect();
        let results: Vec<usize> = tokio::task::unconstrained(join_all(handles))
            .await
            .into_iter()
            .map(|joined| joined.unwrap_or_else(|e| panic!("a trivial tokio task failed: {e}")))
            .collect();
        let took = started.elapsed();
        check_in_order(&results, n);
        ns_per_op(took, n)
    });
    measuring
        .await
        .unwrap_or_else(|e| panic!("the measuring tokio task failed: {e}"))
}

/// A benchmark that returns wrong results measures nothing: every slot must hold its index.
fn check_in_order(results: &[usize], n: usize) {
    assert_eq!(results.len(), n, "gathered {} results of {n}", results.len());
    if let Some((i, v)) = results.iter().enumerate().find(|(i, v)| *i != **v) {
        panic!("result {i} is {v}: results are not in input order");
    }
}

const SLEEPERS: usize = 10_000;
const SLEEP: Duration = Duration::from_millis(100);

fn sleep_gather_10k(config: &Config) -> Vec<Row> {
    // Each process runs `reps` gathers and reports the median wall time and its peak RSS.
    let (rounds, reps) = if config.quick { (3, 3) } else { (5, 5) };
    let rounds = Rounds {
        warm_up: 0,
        measured: rounds,
    };
    let args = [
        SLEEPERS.to_string(),
        reps.to_string(),
        SLEEP.as_millis().to_string(),
    ];
    let python_args: Vec<String> = std::iter::once("sleep_gather".to_owned())
        .chain(args.iter().cloned())
        .collect();
    let mut ours = || Some(fresh_process("sleep_gather", &args));
    let mut python = || peer::python(config, "tasks.py", &python_args);
    let samples = if config.python.is_some() {
        rotate(rounds, &mut [&mut ours, &mut python])
    } else {
        rotate(rounds, &mut [&mut ours])
    };
    let field = |side: usize, key: &str| -> Vec<f64> {
        samples
            .get(side)
            .map(|s| s.iter().flatten().map(|kv| kv.get(key)).collect())
            .unwrap_or_default()
    };
    let (ours_wall, ours_rss) = (median(&field(0, "wall_ms")), median(&field(0, "peak_rss_kib")));
    let (python_wall, python_rss) = (field(1, "wall_ms"), field(1, "peak_rss_kib"));
    if python_wall.is_empty() {
        println!(
            "   no python3, so no baseline: ours {ours_wall:.1} ms, peak RSS {ours_rss:.0} KiB"
        );
        return Vec::new();
    }
    vec![
        Row::new("sleep_gather_10k", ours_wall, median(&python_wall), "python", "ms"),
        Row::new(
            "sleep_gather_10k_rss",
            ours_rss,
            median(&python_rss),
            "python",
            "KiB",
        ),
    ]
}

/// Child side of `sleep_gather_10k`: `SLEEPERS REPS SLEEP_MS` -> `wall_ms=.. peak_rss_kib=..`.
pub(crate) fn sleep_gather_child(args: &[String]) -> Result<String, String> {
    let [n, reps, sleep_ms] = args else {
        return Err(format!("expected SLEEPERS REPS SLEEP_MS, got {args:?}"));
    };
    let parse = |what: &str, s: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("{what} must be a whole number, got `{s}`"))
    };
    let n = parse("SLEEPERS", n)? as usize;
    let reps = parse("REPS", reps)?.max(1);
    let sleep = Duration::from_millis(parse("SLEEP_MS", sleep_ms)?);
    let walls = runtime(Flavour::MultiThread)
        .run(async move {
            let mut walls = Vec::new();
            for _ in 0..reps {
                let started = Instant::now();
                let tasks: Vec<_> = (0..n)
                    .map(|_| create_task(tokio::time::sleep(sleep)))
                    .collect();
                gather(tasks).await?;
                walls.push(millis(started.elapsed()));
            }
            Ok::<_, taskweave_core::Error>(walls)
        })
        .and_then(|walls| walls)
        .map_err(|e| format!("the sleepers failed: {e}"))?;
    let rss = peak_rss_kib_or_err()?;
    Ok(format!(
        "wall_ms={:.3} peak_rss_kib={rss:.0}",
        median(&walls)
    ))
}

fn peak_rss_kib_or_err() -> Result<f64, String> {
    crate::measure::peak_rss_kib()
        .ok_or_else(|| "peak RSS is read from /proc/self/status, which this system lacks".to_owned())
}
