//! A blocking function in a thread and in a process: `blocking_function` (2 s of sleep, then 42) run with `run_in_executor` on a `ThreadPoolExecutor`, then on a `ProcessPoolExecutor`, each awaited; prints 42 after about two seconds each while the runtime stays free.
//!
//! Python: `await loop.run_in_executor(ThreadPoolExecutor(), blocking_function)`, and the same
//! with `ProcessPoolExecutor()`.

use std::time::{Duration, Instant};

use taskweave::{
    Error, ProcessPoolExecutor, Queued, ThreadPoolExecutor, create_task, run, run_in_executor,
    sleep,
};

/// A blocking function: it holds its thread for two seconds, then returns 42.
fn blocking_function() -> u64 {
    std::thread::sleep(Duration::from_secs(2));
    42
}

/// `loop.run_in_executor(ThreadPoolExecutor(), blocking_function)`, awaited.
async fn in_a_thread() -> Result<(), Error> {
    let pool = ThreadPoolExecutor::new();
    let start = Instant::now();
    // While the function blocks its pool thread, the runtime keeps running other tasks.
    let ticker = create_task(async {
        let mut ticks = 0;
        while ticks < 3 {
            sleep(Duration::from_millis(500)).await;
            ticks += 1;
        }
        ticks
    });
    let result = run_in_executor(&pool, blocking_function).await?;
    println!("thread pool: {result}");
    println!(
        "thread pool: took {:.2?}; the runtime ticked {} times meanwhile",
        start.elapsed(),
        ticker.await?
    );
    pool.shutdown_async(Queued::Run).await;
    Ok(())
}

/// `loop.run_in_executor(ProcessPoolExecutor(), blocking_function)`: the same function in a
/// worker process (this program started again), awaited.
async fn in_a_process() -> Result<(), Error> {
    let pool = ProcessPoolExecutor::new()?;
    let start = Instant::now();
    // A plain function (no captured variables) is what can be found again in another process.
    let result = run_in_executor(&pool, blocking_function).await?;
    println!(
        "process pool: {result} (from worker processes {:?})",
        pool.worker_pids()
    );
    println!("process pool: took {:.2?}", start.elapsed());
    // The workers exit in the background; nothing is left behind.
    pool.shutdown(false, false);
    Ok(())
}

fn main() -> Result<(), Error> {
    // In a worker process this runs the worker loop instead (on Linux it already did, before
    // main); first in main either way.
    taskweave::process::become_worker_if_spawned();
    run(async {
        in_a_thread().await?;
        in_a_process().await?;
        Ok(())
    })?
}
