//! A map over threads: `ThreadPoolExecutor::map` squares 1..=5 in order (`[1, 4, 9, 16, 25]`), then shows what Python's map lacks: a lazy map over an endless input, completion order, and progress.
//!
//! Python: `list(ThreadPoolExecutor().map(intensive_computation, [1, 2, 3, 4, 5]))`.

use std::time::Duration;

use taskweave::{Error, MapOptions, ThreadPoolExecutor};

/// A stand-in for heavy work: the square, after a little sleep.
fn intensive_computation(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(50));
    x * x
}

fn main() -> Result<(), Error> {
    let pool = ThreadPoolExecutor::new();

    // executor.map(intensive_computation, [1, 2, 3, 4, 5]): results in input order.
    let squares = pool
        .map(intensive_computation, 1..=5)
        .collect::<Result<Vec<_>, _>>()?;
    println!("{squares:?}");

    // Lazy: inputs are pulled only as results are taken, at most `window` in flight, so an
    // endless iterator works in bounded memory.
    let first_odd_squares = pool
        .map_with(
            |x: u64| x * x,
            (1..).step_by(2),
            MapOptions::new().window(16),
        )
        .take(5)
        .collect::<Result<Vec<_>, _>>()?;
    println!("first odd squares: {first_odd_squares:?}");

    // Completion order, with progress reported as items finish.
    let options = MapOptions::new().on_progress(|p| {
        println!("  progress: {}/{}", p.done(), p.total().unwrap_or(0));
    });
    let delays = [300u64, 100, 200];
    let order: Vec<usize> = pool
        .map_unordered_with(
            |ms: u64| std::thread::sleep(Duration::from_millis(ms)),
            delays,
            options,
        )
        .map(|(index, result)| result.map(|()| index))
        .collect::<Result<_, _>>()?;
    println!("finished in the order {order:?} (by delay: {delays:?} ms)");

    pool.shutdown(true, false);
    Ok(())
}
