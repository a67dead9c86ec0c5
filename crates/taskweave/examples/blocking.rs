//! Seed section "Blockierende Funktion im Thread": a blocking function (2 s of sleep, then 42) run through `run_in_executor` on a `ThreadPoolExecutor` and awaited; prints 42 after about two seconds while the runtime stays free.

use std::time::{Duration, Instant};

use taskweave::{Error, create_task, run, sleep};
use taskweave_bridge::{ThreadPoolExecutor, run_in_executor};

/// The seed's blocking function: it holds its thread for two seconds, then returns 42.
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
    pool.shutdown_async(false).await;
    Ok(())
}

fn main() -> Result<(), Error> {
    run(async {
        in_a_thread().await?;
        Ok(())
    })?
}
