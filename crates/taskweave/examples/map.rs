//! A map over processes: `intensive_computation` (2 s of sleep, then `n * n`) over `[1, 2, 3, 4, 5]` in worker processes, one per core; prints `[1, 4, 9, 16, 25]` in input order after about 6 s on 2 cores (three rounds), 10 s serially.
//!
//! Python: `list(ProcessPoolExecutor().map(intensive_computation, [1, 2, 3, 4, 5]))`. The
//! workers are copies of this program.
//!
//! Run with `cargo run -p taskweave --example map`.

use std::time::{Duration, Instant};

use taskweave::{Error, ProcessPoolExecutor};

fn intensive_computation(n: u64) -> u64 {
    std::thread::sleep(Duration::from_secs(2));
    n * n
}

fn main() -> Result<(), Error> {
    // Workers are this executable started again; on Linux they are recognised before `main`,
    // elsewhere this line is what turns them into workers.
    taskweave::process::become_worker_if_spawned();

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
