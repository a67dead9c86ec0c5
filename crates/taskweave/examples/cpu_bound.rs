//! CPU-bound work over processes: the same 32 heavy items computed serially in this process and with `ProcessPoolExecutor::map` on every core, in alternating rounds, with the median speedup and its ceiling, the number of cores.
//!
//! Both sides are warmed up first (the workers started, the function's code and the CPU's clock
//! up to speed in both places), then measured three times each, serial and parallel in turn, so
//! that neither side gets the quiet moments of the machine. The speedup cannot exceed the number
//! of cores; on a busy machine it falls short of it.
//!
//! Run with `cargo run --release -p taskweave --example cpu_bound`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use taskweave::{Error, ProcessPoolExecutor};

/// Items per measurement.
const ITEMS: u64 = 32;
/// Measurements per side; the median is reported.
const ROUNDS: usize = 3;

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
    pool.map(heavy, items.to_vec(), 1).collect()
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed())
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() -> Result<(), Error> {
    taskweave::init();

    let items: Vec<u64> = (0..ITEMS).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = ProcessPoolExecutor::new()?;
    let workers = pool.max_workers();

    // Warm-up: every worker computes one item, and so does this process.
    parallel(&pool, &items[..workers.min(items.len())])?;
    serial(&items[..1]);

    let mut serial_times = Vec::new();
    let mut parallel_times = Vec::new();
    for _ in 0..ROUNDS {
        let (expected, took) = timed(|| serial(&items));
        serial_times.push(took);
        let (got, took) = timed(|| parallel(&pool, &items));
        parallel_times.push(took);
        assert_eq!(got?, expected, "the pool computed different results");
    }
    let serial_time = median(serial_times);
    let parallel_time = median(parallel_times);
    println!(
        "serial {:.3} s, {workers} processes {:.3} s (medians of {ROUNDS} alternating rounds)",
        serial_time.as_secs_f64(),
        parallel_time.as_secs_f64(),
    );
    println!(
        "speedup {:.2}x; the ceiling is {cores}x, the number of cores",
        serial_time.as_secs_f64() / parallel_time.as_secs_f64()
    );
    pool.shutdown(true, false);
    Ok(())
}
