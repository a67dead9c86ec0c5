//! `gather` over the kinds of work a program mixes: coroutines' plain values, tasks of
//! `Result` futures and process-pool calls.

use taskweave::{Error, ProcessPoolExecutor, Promise, create_task_try, gather};

fn square(x: u64) -> u64 {
    x * x
}

async fn compute(x: u64) -> u64 {
    taskweave::sleep(std::time::Duration::from_millis(1)).await;
    x + 1
}

#[taskweave::test(worker_threads = 2)]
async fn coroutines_of_plain_values_gather_as_in_python() {
    assert_eq!(gather((0..5).map(compute)).await, vec![1, 2, 3, 4, 5]);
}

#[taskweave::test(worker_threads = 2)]
async fn a_try_task_and_process_pool_calls_gather_together() -> Result<(), Error> {
    let pool = ProcessPoolExecutor::builder().max_workers(2).build()?;
    let task = create_task_try(async { "10".parse::<u64>() });
    let mut all: Vec<Promise<u64>> = vec![task.into()];
    all.extend((1..=3).map(|x| pool.submit(square, x)));
    assert_eq!(gather(all).await?, vec![10, 1, 4, 9]);
    Ok(())
}
