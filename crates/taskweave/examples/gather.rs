//! gather: five `compute(x)` coroutines, each sleeping one second, gathered concurrently; prints `[0, 1, 4, 9, 16]` after about one second, not five.
//!
//! Python: `results = await asyncio.gather(*[compute(i) for i in range(5)])`.

use std::time::{Duration, Instant};

use taskweave::{Error, create_task, gather, run, sleep};

/// A coroutine with an argument: one second of waiting, then the square.
async fn compute(x: u64) -> u64 {
    sleep(Duration::from_secs(1)).await;
    x * x
}

fn main() -> Result<(), Error> {
    run(async {
        let start = Instant::now();
        let results = gather((0..5).map(|x| create_task(compute(x)))).await?;
        println!("{results:?}");
        println!(
            "gathered 5 coroutines in {:.2?} (they ran concurrently)",
            start.elapsed()
        );
        Ok(())
    })?
}
