//! Debug mode, the seed's `asyncio.run(main(), debug=True)`: a coroutine that blocks its thread
//! for 300 ms, a task created and never awaited, a task whose error nobody retrieves and a task
//! still pending at the end. Each is reported on stderr as it happens.
//!
//! Run it with `cargo run --example debug`; add `TASKWEAVE_TRACE=run.json` to also write the
//! run's timeline for ui.perfetto.dev.

use std::time::Duration;

use taskweave_core::{Runtime, create_task_named, create_task_try};

/// A coroutine that never awaits: it holds its worker thread for 300 ms (debug mode says it
/// belongs in `to_thread`).
async fn blocking_coroutine() -> u32 {
    std::thread::sleep(Duration::from_millis(300));
    42
}

async fn compute() -> u32 {
    tokio::time::sleep(Duration::from_millis(50)).await;
    7
}

async fn read_config() -> Result<String, std::io::Error> {
    Err(std::io::Error::other("config.toml: permission denied"))
}

async fn main_coroutine() {
    // "Executing <Task name='blocker' ...> took 0.300 seconds"
    let blocker = create_task_named("blocker", blocking_coroutine());
    println!("blocker returned {}", blocker.await.unwrap_or_default());

    // "<Task name='forgotten' ...> was never awaited"
    let forgotten = create_task_named("forgotten", compute());
    drop(forgotten);

    // "Task exception was never retrieved: <Task name='Task-3' ...> failed: ..."
    let failing = create_task_try(read_config());
    while !failing.done() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    drop(failing);

    // "Task was still pending when run() ended and is cancelled: <Task name='listener' ...>"
    create_task_named("listener", std::future::pending::<()>()).detach();

    tokio::time::sleep(Duration::from_millis(100)).await;
    if let Some(dump) = taskweave_debug::dump() {
        println!("{dump}");
    }
}

fn main() -> Result<(), taskweave_core::Error> {
    // Prints the reports with the ready layer; debug logs stay off.
    let _ = taskweave_debug::init(false);
    taskweave_debug::register();
    // asyncio.run(main(), debug=True)
    let rt = Runtime::builder().debug(true).build()?;
    rt.run(main_coroutine())
}
