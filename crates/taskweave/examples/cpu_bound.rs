//! CPU-bound work over processes: the same heavy items computed serially (in this process, and in one worker process) and with `ProcessPoolExecutor::map` on every core, in alternating rounds, with the median speedup beside its ceiling, the number of cores.
//!
//! Everything is warmed up first (the workers started, the function's code and the CPU's clock
//! up to speed), then measured in rounds of one run of each kind, back to back, so that every
//! kind sees the same machine. The speedup is the median of the rounds' ratios of one worker to
//! all workers: the same path (a worker process fed over a pipe) on both sides, so the ratio
//! measures the added workers and nothing else; the in-process time shows what that path costs.
//! The ceiling is the number of cores. On a machine that other programs load, their share
//! changes from one run to the next and the ratios scatter, which the example says, with the
//! load average.
//!
//! Run with `cargo run --release -p taskweave --example cpu_bound`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use taskweave::{Error, ProcessPoolExecutor};

/// Items per measurement.
const ITEMS: u64 = 16;
/// Rounds of one serial and one parallel measurement; the median ratio is reported.
const ROUNDS: usize = 5;

/// Sum of squares below a bound that depends on the item, computed the slow way.
fn heavy(item: u64) -> u64 {
    let bound = black_box(10_000_000 + item);
    let mut total = 0u64;
    for j in 0..bound {
        total = total.wrapping_add(black_box(j).wrapping_mul(j));
    }
    total
}

fn serial(items: &[u64]) -> Vec<u64> {
    items.iter().map(|&i| heavy(i)).collect()
}

fn parallel(pool: &ProcessPoolExecutor, items: &[u64]) -> Result<Vec<u64>, Error> {
    pool.map(heavy, items.to_vec()).collect()
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The 1-minute load average, where the system reports one (Linux).
fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn main() -> Result<(), Error> {
    taskweave::process::become_worker_if_spawned();

    let items: Vec<u64> = (0..ITEMS).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = ProcessPoolExecutor::new()?;
    let workers = pool.max_workers();
    // The baseline runs the items one after another through the same machinery (a worker
    // process fed over a pipe), so the ratio measures the extra workers and nothing else.
    let single = ProcessPoolExecutor::builder().max_workers(1).build()?;

    // Warm-up: every worker computes one item, and so does this process.
    parallel(&pool, &items[..workers.min(items.len())])?;
    parallel(&single, &items[..1])?;
    serial(&items[..1]);

    let mut in_process_times = Vec::new();
    let mut single_times = Vec::new();
    let mut parallel_times = Vec::new();
    let mut ratios = Vec::new();
    for _ in 0..ROUNDS {
        let (expected, in_process) = timed(|| serial(&items));
        let (one, single_time) = timed(|| parallel(&single, &items));
        let (all, parallel_time) = timed(|| parallel(&pool, &items));
        assert_eq!(
            one?, expected,
            "the single worker computed different results"
        );
        assert_eq!(all?, expected, "the pool computed different results");
        in_process_times.push(in_process.as_secs_f64());
        single_times.push(single_time.as_secs_f64());
        parallel_times.push(parallel_time.as_secs_f64());
        ratios.push(single_time.as_secs_f64() / parallel_time.as_secs_f64());
    }
    let speedup = median(ratios.clone());
    let (low, high) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    println!(
        "{ITEMS} items, medians of {ROUNDS} rounds: in this process {:.3} s, \
         1 worker process {:.3} s, {workers} worker processes {:.3} s",
        median(in_process_times),
        median(single_times),
        median(parallel_times),
    );
    println!(
        "speedup of {workers} workers over 1: {speedup:.2}x (rounds {low:.2}x to {high:.2}x); \
         the ceiling is {cores}x, the number of cores"
    );
    if let Some(load) = load_average()
        && load > cores as f64
    {
        println!(
            "the machine is shared (load average {load:.1} on {cores} cores): other \
                 programs' share of it changes from one run to the next, so the times scatter"
        );
    }
    pool.shutdown(true, false);
    single.shutdown(true, false);
    Ok(())
}
