//! Running a coroutine: `compute()` returns 42 after a one-second sleep; run as a task with `create_task` and awaited, then awaited directly.
//!
//! Python: `task = asyncio.create_task(compute()); result = await task`, then
//! `result = await compute()`.

use std::time::{Duration, Instant};

use taskweave::{Error, create_task, run, sleep};

/// A coroutine: waits one second without blocking its thread, then answers.
async fn compute() -> u32 {
    sleep(Duration::from_secs(1)).await;
    42
}

fn main() -> Result<(), Error> {
    run(async {
        // create_task starts the coroutine at once; the caller goes on until it awaits.
        let start = Instant::now();
        let task = create_task(compute());
        println!(
            "started {} (created at {}), main goes on",
            task.name(),
            task.site()
        );
        let result = task.await?;
        println!(
            "create_task + await: {result} after {:.2?}",
            start.elapsed()
        );

        // Awaiting the coroutine directly runs it inside the current task.
        let start = Instant::now();
        let result = compute().await;
        println!(
            "await compute():     {result} after {:.2?}",
            start.elapsed()
        );
        Ok(())
    })?
}
