//! The seed's Map-Funktion: `ProcessPoolExecutor().map(intensive_computation, [1, 2, 3, 4, 5])`.
//!
//! `intensive_computation` sleeps 2 s and returns `n * n`; the pool runs it in worker processes
//! (copies of this program), one per core, and `map` gives the results in input order:
//! `[1, 4, 9, 16, 25]` after about 6 s on 2 cores (three rounds), 10 s serially.
//!
//! Run with `cargo run --example map`.

use std::time::{Duration, Instant};

use taskweave_core::Error;
use taskweave_process::ProcessPoolExecutor;

fn intensive_computation(n: u64) -> u64 {
    std::thread::sleep(Duration::from_secs(2));
    n * n
}

fn main() -> Result<(), Error> {
    // Workers are this executable started again; on Linux they are recognised before `main`,
    // elsewhere this line is what turns them into workers.
    taskweave_process::init();

    let started = Instant::now();
    let pool = ProcessPoolExecutor::new()?;
    let results: Vec<u64> = pool
        .map(intensive_computation, [1, 2, 3, 4, 5])
        .collect::<Result<_, _>>()?;
    println!("{results:?}");
    println!(
        "elapsed: {:.1} s with {} worker processes",
        started.elapsed().as_secs_f64(),
        pool.max_workers()
    );
    Ok(())
}
