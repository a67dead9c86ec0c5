//! Cost curves: how the cost per item grows with the amount of work, each size against its
//! baseline at the same size, and one `_growth` row per curve: the per-item cost at the largest
//! size measured over the cost at the smallest (goal: at most 1.3; memory bounded by a window:
//! at most 1.1, flat).
//!
//! - `curve_gather_<n>`: create n trivial tasks, then `gather` them (as `gather_100k`), for n in
//!   1k, 10k, 100k, 1M, against tokio's `JoinSet` at the same n. ns per task.
//! - `curve_in_flight_<n>`: n tasks alive at once, each waiting on one shared semaphore, their
//!   handles held in a `Vec`, then released and awaited; for n in 10k, 100k, 1M, against raw
//!   tokio (`tokio::spawn`, `JoinHandle`s) doing the same. Each side runs in a fresh process and
//!   reports its peak RSS growth over n. bytes per task.
//! - `curve_process_in_flight_<n>`: n trivial submits to a warm process pool, then every result
//!   (as `process_inflight_20k`), for n in 1k, 10k, 100k, against Python's
//!   `ProcessPoolExecutor` at 1k and 10k (at 100k its 130 us per task would take most of a
//!   minute). us per task.
//! - `curve_thread_map_<n>`: `ThreadPoolExecutor::map` of the identity over n integers with its
//!   default window (eight items per worker, at least 64), collected and checked, for n in 1k,
//!   100k, 10M, each size in a fresh process; against Python's `ThreadPoolExecutor.map` at 1k and
//!   100k (it submits every item up front, so 10M would not fit in memory). us per item, and
//!   (rows `..._rss`) the process's peak RSS.
//!
//! A size without a baseline of its own (Python above its largest size) is a row against the
//! curve's smallest size instead, so every size measured is in the report.
//!
//! `--quick` keeps the small sizes (gather 1k, 10k, 100k; in flight 10k, 100k; process 1k, 10k;
//! thread map 1k, 100k) and runs Python at 1k only; a growth row then spans the sizes measured.

use std::sync::Arc;
use std::time::Instant;

use taskweave_bridge::ThreadPoolExecutor;
use taskweave_core::{Runtime, Task, create_task};
use taskweave_process::ProcessPoolExecutor;
use tokio::sync::Semaphore;

use super::tasks::{ours_gather, tokio_join_set};
use super::{Case, Config, Row};
use crate::measure::{
    AsyncContender, Rounds, fresh_process, median, ns_per_op, peak_rss_kib, rotate,
    rotate_async, spread,
};
use crate::peer;

/// The cases of this area.
pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "curve_gather",
            run: gather_curve,
        },
        Case {
            name: "curve_in_flight",
            run: in_flight_curve,
        },
        Case {
            name: "curve_process_in_flight",
            run: process_in_flight_curve,
        },
        Case {
            name: "curve_thread_map",
            run: thread_map_curve,
        },
    ]
}

/// `1k`, `100k`, `1m`, `10m`: the size as it appears in a row's name.
pub(crate) fn size_label(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}m", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// The `_growth` row of a curve: the per-item cost at the largest size over the cost at the
/// smallest, `points` being (size, cost) in increasing size. `None` with fewer than two sizes.
pub(crate) fn growth_row(curve: &str, points: &[(usize, f64)], unit: &str) -> Option<Row> {
    let (&(first_n, first), &(last_n, last)) = (points.first()?, points.last()?);
    if first_n == last_n {
        return None;
    }
    println!(
        "   {curve}: {:.2} {unit} at {} -> {:.2} {unit} at {} (x{:.2})",
        first,
        size_label(first_n),
        last,
        size_label(last_n),
        last / first
    );
    Some(Row::new(
        &format!("{curve}_growth"),
        last,
        first,
        &size_label(first_n),
        unit,
    ))
}

/// For a size without a baseline of its own: the row of the last point of `points` against the
/// first (the curve's smallest size), so that every size measured is in the report.
fn against_smallest(case: &str, points: &[(usize, f64)], unit: &str) -> Option<Row> {
    let (&(first_n, first), &(_, last)) = (points.first()?, points.last()?);
    Some(Row::new(case, last, first, &size_label(first_n), unit))
}

/// How many times to repeat a measurement of `n` items so that one sample covers at least
/// `floor` items: a sample of a thousand items would be a fraction of a millisecond, within
/// the noise of a shared machine.
fn repeats(n: usize, floor: usize) -> usize {
    floor.div_ceil(n.max(1)).max(1)
}

fn runtime() -> Runtime {
    Runtime::builder()
        .worker_threads(2)
        .debug(false)
        .build()
        .unwrap_or_else(|e| panic!("cannot build the runtime: {e}"))
}

fn gather_curve(config: &Config) -> Vec<Row> {
    let (sizes, rounds, floor): (&[usize], _, _) = if config.quick {
        (
            &[1_000, 10_000, 100_000],
            Rounds { warm_up: 1, measured: 5 },
            50_000,
        )
    } else {
        (
            &[1_000, 10_000, 100_000, 1_000_000],
            Rounds { warm_up: 1, measured: 7 },
            100_000,
        )
    };
    let mut rows = Vec::new();
    let mut ours_points = Vec::new();
    let mut tokio_points = Vec::new();
    for &n in sizes {
        let reps = repeats(n, floor);
        let samples = runtime()
            .run(async move {
                let mut contenders: [AsyncContender<'_>; 2] = [
                    Box::new(move || {
                        Box::pin(async move {
                            let mut total = 0.0;
                            for _ in 0..reps {
                                total += ours_gather(n, None).await;
                            }
                            total / reps as f64
                        })
                    }),
                    Box::new(move || {
                        Box::pin(async move {
                            let mut total = 0.0;
                            for _ in 0..reps {
                                total += tokio_join_set(n).await;
                            }
                            total / reps as f64
                        })
                    }),
                ];
                rotate_async(rounds, &mut contenders).await
            })
            .unwrap_or_else(|e| panic!("the measuring runtime failed: {e}"));
        let (ours, tokio) = (median(&samples[0]), median(&samples[1]));
        let case = format!("curve_gather_{}", size_label(n));
        println!(
            "   {case}: spread of rounds: ours {:.0}%, tokio {:.0}%",
            spread(&samples[0]) * 100.0,
            spread(&samples[1]) * 100.0
        );
        rows.push(Row::new(&case, ours, tokio, "tokio", "ns/task"));
        ours_points.push((n, ours));
        tokio_points.push((n, tokio));
    }
    if let (Some(&(_, first)), Some(&(_, last))) = (tokio_points.first(), tokio_points.last()) {
        println!("   tokio JoinSet for comparison: x{:.2}", last / first);
    }
    rows.extend(growth_row("curve_gather", &ours_points, "ns/task"));
    rows
}

fn in_flight_curve(config: &Config) -> Vec<Row> {
    let (sizes, rounds): (&[usize], _) = if config.quick {
        (&[10_000, 100_000], 2)
    } else {
        (&[10_000, 100_000, 1_000_000], 3)
    };
    let rounds = Rounds {
        warm_up: 0,
        measured: rounds,
    };
    let mut rows = Vec::new();
    let mut points = Vec::new();
    for &n in sizes {
        let ours_args = ["ours".to_owned(), n.to_string()];
        let tokio_args = ["tokio".to_owned(), n.to_string()];
        let mut ours = || fresh_process("tasks_in_flight", &ours_args).get("bytes_per_task");
        let mut tokio = || fresh_process("tasks_in_flight", &tokio_args).get("bytes_per_task");
        let samples = rotate(rounds, &mut [&mut ours, &mut tokio]);
        let (ours, tokio) = (median(&samples[0]), median(&samples[1]));
        let case = format!("curve_in_flight_{}", size_label(n));
        println!(
            "   {case}: spread of rounds: ours {:.0}%, tokio {:.0}%",
            spread(&samples[0]) * 100.0,
            spread(&samples[1]) * 100.0
        );
        rows.push(Row::new(&case, ours, tokio, "tokio", "bytes/task"));
        points.push((n, ours));
    }
    rows.extend(growth_row("curve_in_flight", &points, "bytes/task"));
    rows
}

/// Child side of `curve_in_flight`: `ours|tokio N` -> `bytes_per_task=.. n=..`.
///
/// The growth of peak RSS from just before the n tasks are created to after they all ended,
/// over n: the task, its future (waiting on a semaphore) and the handle the caller keeps.
pub(crate) fn tasks_in_flight_child(args: &[String]) -> Result<String, String> {
    let [side, n] = args else {
        return Err(format!("expected ours|tokio N, got {args:?}"));
    };
    let n: usize = n
        .parse()
        .map_err(|_| format!("N must be a whole number, got `{n}`"))?;
    if n == 0 {
        return Err("N must be at least 1".to_owned());
    }
    let grown_kib = match side.as_str() {
        "ours" => runtime()
            .run(ours_in_flight(n))
            .map_err(|e| format!("the runtime failed: {e}"))??,
        "tokio" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .map_err(|e| format!("cannot build the tokio runtime: {e}"))?
            .block_on(tokio_in_flight(n))?,
        other => return Err(format!("side must be ours or tokio, got `{other}`")),
    };
    Ok(format!(
        "bytes_per_task={:.1} n={n}",
        grown_kib * 1024.0 / n as f64
    ))
}

/// The peak RSS in KiB, or why it cannot be read.
fn peak_kib() -> Result<f64, String> {
    peak_rss_kib()
        .ok_or_else(|| "peak RSS is read from /proc/self/status, which this system lacks".to_owned())
}

/// Tasks alive before the measured ones, so that the runtime's threads and the allocator's
/// arenas are in place before the peak is first read.
const IN_FLIGHT_WARM_UP: usize = 1_000;

async fn ours_in_flight(n: usize) -> Result<f64, String> {
    let spawn_all = |n: usize, gate: &Arc<Semaphore>| -> Vec<Task<()>> {
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let gate = Arc::clone(gate);
            tasks.push(create_task(async move {
                // Closed, never granted: the error is the release.
                let _ = gate.acquire().await;
            }));
        }
        tasks
    };
    let release = |gate: Arc<Semaphore>, tasks: Vec<Task<()>>| async move {
        tokio::task::yield_now().await;
        gate.close();
        for task in tasks {
            task.await.map_err(|e| format!("a waiting task failed: {e}"))?;
        }
        Ok::<_, String>(())
    };
    let gate = Arc::new(Semaphore::new(0));
    release(Arc::clone(&gate), spawn_all(IN_FLIGHT_WARM_UP, &gate)).await?;
    let before = peak_kib()?;
    let gate = Arc::new(Semaphore::new(0));
    let tasks = spawn_all(n, &gate);
    release(gate, tasks).await?;
    Ok(peak_kib()? - before)
}

async fn tokio_in_flight(n: usize) -> Result<f64, String> {
    let spawn_all = |n: usize, gate: &Arc<Semaphore>| -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let gate = Arc::clone(gate);
            tasks.push(tokio::spawn(async move {
                let _ = gate.acquire().await;
            }));
        }
        tasks
    };
    let release = |gate: Arc<Semaphore>, tasks: Vec<tokio::task::JoinHandle<()>>| async move {
        tokio::task::yield_now().await;
        gate.close();
        for task in tasks {
            task.await
                .map_err(|e| format!("a waiting tokio task failed: {e}"))?;
        }
        Ok::<_, String>(())
    };
    let gate = Arc::new(Semaphore::new(0));
    release(Arc::clone(&gate), spawn_all(IN_FLIGHT_WARM_UP, &gate)).await?;
    let before = peak_kib()?;
    let gate = Arc::new(Semaphore::new(0));
    let tasks = spawn_all(n, &gate);
    release(gate, tasks).await?;
    Ok(peak_kib()? - before)
}

fn trivial(_: ()) {}

fn square(x: u64) -> u64 {
    x * x
}

fn process_in_flight_curve(config: &Config) -> Vec<Row> {
    // Python's pool takes 130 us or more per task: in quick mode it runs at 1k only.
    let (sizes, rounds, python_max, python_reps): (&[usize], _, _, _) = if config.quick {
        (&[1_000, 10_000], Rounds { warm_up: 1, measured: 3 }, 1_000, 3)
    } else {
        (
            &[1_000, 10_000, 100_000],
            Rounds { warm_up: 1, measured: 5 },
            10_000,
            3,
        )
    };
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap_or_else(|e| panic!("cannot start the process pool: {e}"));
    for r in pool.map(square, 0..400) {
        r.unwrap_or_else(|e| panic!("warm-up failed: {e}"));
    }
    let mut rows = Vec::new();
    let mut points = Vec::new();
    for &n in sizes {
        let reps = repeats(n, 20_000);
        let mut ours = || {
            let started = Instant::now();
            for _ in 0..reps {
                let promises: Vec<_> = (0..n).map(|_| pool.submit(trivial, ())).collect();
                for mut p in promises {
                    p.result(None).unwrap_or_else(|e| panic!("{e}"));
                }
            }
            ns_per_op(started.elapsed(), n * reps) / 1e3
        };
        let samples = rotate(rounds, &mut [&mut ours]);
        let ours = median(&samples[0]);
        let case = format!("curve_process_in_flight_{}", size_label(n));
        println!(
            "   {case}: {ours:.2} us/task, spread of rounds {:.0}%",
            spread(&samples[0]) * 100.0
        );
        points.push((n, ours));
        if n > python_max {
            rows.extend(against_smallest(&case, &points, "us/task"));
            continue;
        }
        let args = ["inflight".to_owned(), n.to_string(), python_reps.to_string()];
        if let Some(py) = peer::python(config, "process.py", &args) {
            rows.push(Row::new(&case, ours, py.get("us_per_task"), "python", "us/task"));
        }
    }
    drop(pool);
    rows.extend(growth_row("curve_process_in_flight", &points, "us/task"));
    rows
}

fn thread_map_curve(config: &Config) -> Vec<Row> {
    // Python's map takes 20 us or more per item: in quick mode it runs at 1k only.
    let (sizes, measured, python_max, python_reps): (&[usize], usize, usize, usize) =
        if config.quick {
            (&[1_000, 100_000], 5, 1_000, 3)
        } else {
            (&[1_000, 100_000, 10_000_000], 5, 100_000, 3)
        };
    let mut rows = Vec::new();
    let mut cost = Vec::new();
    let mut rss = Vec::new();
    for &n in sizes {
        let kv = fresh_process("thread_map", &[n.to_string(), measured.to_string()]);
        let (us, kib) = (kv.get("us_per_item"), kv.get("peak_rss_kib"));
        let case = format!("curve_thread_map_{}", size_label(n));
        println!(
            "   {case}: {us:.3} us/item, peak RSS {kib:.0} KiB, spread of rounds {:.0}%",
            kv.get("spread") * 100.0
        );
        cost.push((n, us));
        rss.push((n, kib));
        if n > python_max {
            rows.extend(against_smallest(&case, &cost, "us/item"));
            rows.extend(against_smallest(&format!("{case}_rss"), &rss, "KiB"));
            continue;
        }
        let args = ["map".to_owned(), n.to_string(), python_reps.to_string()];
        if let Some(py) = peer::python(config, "threads.py", &args) {
            rows.push(Row::new(&case, us, py.get("us_per_item"), "python", "us/item"));
            rows.push(Row::new(
                &format!("{case}_rss"),
                kib,
                py.get("peak_rss_kib"),
                "python",
                "KiB",
            ));
        }
    }
    rows.extend(growth_row("curve_thread_map", &cost, "us/item"));
    rows.extend(growth_row("curve_thread_map_rss", &rss, "KiB"));
    rows
}

/// Child side of `curve_thread_map`: `N ROUNDS` -> `us_per_item=.. spread=.. peak_rss_kib=..`.
///
/// A warm-up map first (the pool's threads started), then ROUNDS samples of at least 100k items
/// each (a map of 1k items is repeated); the median and the spread of the samples, and this
/// process's peak RSS, which a bounded window keeps independent of N.
pub(crate) fn thread_map_child(args: &[String]) -> Result<String, String> {
    let [n, rounds] = args else {
        return Err(format!("expected N ROUNDS, got {args:?}"));
    };
    let parse = |what: &str, s: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("{what} must be a whole number, got `{s}`"))
    };
    let n = parse("N", n)?;
    let rounds = parse("ROUNDS", rounds)?.max(1);
    if n == 0 {
        return Err("N must be at least 1".to_owned());
    }
    let pool = ThreadPoolExecutor::new();
    let map_all = |n: u64| -> Result<(), String> {
        let mut expected = 0;
        for result in pool.map(|x: u64| x, 0..n) {
            match result {
                Ok(x) if x == expected => expected += 1,
                other => return Err(format!("map item {expected} came back as {other:?}")),
            }
        }
        if expected != n {
            return Err(format!("map returned {expected} items of {n}"));
        }
        Ok(())
    };
    map_all(n.min(5_000))?;
    let reps = repeats(n as usize, 100_000);
    let mut samples = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        for _ in 0..reps {
            map_all(n)?;
        }
        samples.push(ns_per_op(started.elapsed(), n as usize * reps) / 1e3);
    }
    drop(pool);
    Ok(format!(
        "us_per_item={:.4} spread={:.4} peak_rss_kib={:.0} n={n}",
        median(&samples),
        spread(&samples),
        peak_kib()?
    ))
}

#[cfg(test)]
mod tests {
    use super::{against_smallest, growth_row, repeats, size_label};

    #[test]
    fn sizes_are_labelled_as_in_row_names() {
        assert_eq!(size_label(1_000), "1k");
        assert_eq!(size_label(100_000), "100k");
        assert_eq!(size_label(1_000_000), "1m");
        assert_eq!(size_label(10_000_000), "10m");
        assert_eq!(size_label(1_500), "1500");
    }

    #[test]
    fn growth_is_the_largest_size_over_the_smallest() {
        let row = growth_row("curve_x", &[(1_000, 2.0), (10_000, 2.5), (1_000_000, 3.0)], "ns")
            .expect("two sizes or more make a growth row");
        assert_eq!(row.case, "curve_x_growth");
        assert_eq!(row.baseline, "1k");
        assert_eq!((row.ours, row.theirs), (3.0, 2.0));
        assert!(growth_row("curve_x", &[(1_000, 2.0)], "ns").is_none());
        assert!(growth_row("curve_x", &[], "ns").is_none());
    }

    #[test]
    fn a_size_without_a_baseline_is_set_against_the_smallest() {
        let row = against_smallest("curve_x_10m", &[(1_000, 2.0), (10_000_000, 2.2)], "us")
            .expect("a point makes a row");
        assert_eq!((row.case.as_str(), row.baseline.as_str()), ("curve_x_10m", "1k"));
        assert_eq!((row.ours, row.theirs), (2.2, 2.0));
        assert!(against_smallest("curve_x", &[], "us").is_none());
    }

    #[test]
    fn small_sizes_are_repeated_up_to_the_floor() {
        assert_eq!(repeats(1_000, 100_000), 100);
        assert_eq!(repeats(30_000, 100_000), 4);
        assert_eq!(repeats(10_000_000, 100_000), 1);
        assert_eq!(repeats(0, 10), 10);
    }

    #[test]
    fn children_refuse_bad_arguments() {
        assert!(super::tasks_in_flight_child(&["ours".to_owned()]).is_err());
        assert!(super::tasks_in_flight_child(&["ours".to_owned(), "x".to_owned()]).is_err());
        assert!(super::tasks_in_flight_child(&["nobody".to_owned(), "10".to_owned()]).is_err());
        assert!(super::tasks_in_flight_child(&["ours".to_owned(), "0".to_owned()]).is_err());
        assert!(super::thread_map_child(&["10".to_owned()]).is_err());
        assert!(super::thread_map_child(&["0".to_owned(), "1".to_owned()]).is_err());
    }

    #[test]
    fn children_measure_small_sizes() {
        for side in ["ours", "tokio"] {
            let line = super::tasks_in_flight_child(&[side.to_owned(), "2000".to_owned()])
                .unwrap_or_else(|e| panic!("{side}: {e}"));
            assert!(line.starts_with("bytes_per_task="), "{line}");
        }
        let line = super::thread_map_child(&["1000".to_owned(), "1".to_owned()]).unwrap();
        assert!(line.contains("us_per_item=") && line.contains("peak_rss_kib="), "{line}");
    }
}
