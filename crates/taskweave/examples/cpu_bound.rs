//! CPU-bound work over processes: the same 64 heavy items computed serially in this process and
//! then with `ProcessPoolExecutor::map` on every core, with the speedup printed.
//!
//! Run with `cargo run --release --example cpu_bound`.

use std::hint::black_box;
use std::time::Instant;

use taskweave_core::Error;
use taskweave_process::ProcessPoolExecutor;

/// Sum of squares below a bound that depends on the item, computed the slow way.
fn heavy(item: u64) -> u64 {
    let bound = black_box(20_000_000 + item);
    let mut total = 0u64;
    for j in 0..bound {
        total = total.wrapping_add(black_box(j).wrapping_mul(j));
    }
    total
}

fn main() -> Result<(), Error> {
    taskweave_process::init();

    let items: Vec<u64> = (0..64).collect();
    let pool = ProcessPoolExecutor::new()?;
    // Warm the workers up, so the parallel time measures work rather than process start.
    pool.map(heavy, 0..pool.max_workers() as u64)
        .collect::<Result<Vec<_>, _>>()?;

    let started = Instant::now();
    let serial: Vec<u64> = items.iter().map(|&i| heavy(i)).collect();
    let serial_time = started.elapsed();

    let started = Instant::now();
    let parallel: Vec<u64> = pool.map(heavy, items.clone()).collect::<Result<_, _>>()?;
    let parallel_time = started.elapsed();

    assert_eq!(serial, parallel);
    println!(
        "serial {:.3} s, {} processes {:.3} s: speedup {:.2}x",
        serial_time.as_secs_f64(),
        pool.max_workers(),
        parallel_time.as_secs_f64(),
        serial_time.as_secs_f64() / parallel_time.as_secs_f64()
    );
    Ok(())
}
