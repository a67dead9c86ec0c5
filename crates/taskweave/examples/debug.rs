//! Seed section "Debug-Modus": `asyncio.run(main(), debug=True)` with a coroutine that blocks for 300 ms, a task never awaited, a task whose error nobody retrieves and a task left pending; each is reported.
//!
//! The reports go to stderr through `taskweave_debug::PrettyLayer`, as asyncio's go to its
//! logger. Run with `TASKWEAVE_TRACE=run.json` to also write the run's timeline for
//! ui.perfetto.dev, and with `RUST_BACKTRACE=1` for backtraces in panic reports.

use std::time::Duration;

use taskweave::{Error, Runtime, create_task_named, create_task_try, sleep};

/// A coroutine that never awaits: it holds its worker thread for 300 ms. Debug mode reports it
/// ("Executing <Task ...> took 0.300 seconds"); it belongs in `to_thread`.
async fn blocking_coroutine() -> u32 {
    std::thread::sleep(Duration::from_millis(300));
    42
}

async fn compute() -> u32 {
    sleep(Duration::from_millis(50)).await;
    7
}

async fn read_config() -> Result<String, std::io::Error> {
    Err(std::io::Error::other("config.toml: permission denied"))
}

async fn main_coroutine() {
    // 1. Slow task: "Executing <Task name='blocker' ...> took 0.300 seconds".
    let blocker = create_task_named("blocker", blocking_coroutine());
    println!("blocker returned {}", blocker.await.unwrap_or_default());

    // 2. Unsafe practice: "<Task name='forgotten' ...> was never awaited".
    let forgotten = create_task_named("forgotten", compute());
    drop(forgotten);

    // 3. Error never retrieved: "Task exception was never retrieved: ... permission denied",
    //    reported when the last handle goes, not at some later garbage collection.
    let failing = create_task_try(read_config());
    while !failing.done() {
        sleep(Duration::from_millis(1)).await;
    }
    drop(failing);

    // 4. Pending at shutdown: "Task was still pending when run() ended and is cancelled: ...".
    create_task_named("listener", std::future::pending::<()>()).detach();

    sleep(Duration::from_millis(100)).await;
    // The watchdog's dump, on demand: every live task with its state, age, polls and site.
    if let Some(dump) = taskweave_debug::dump() {
        println!("{dump}");
    }
}

fn main() -> Result<(), Error> {
    // Print the reports for people (warnings and errors; debug logs stay off).
    let _ = taskweave_debug::PrettyLayer::new().install_global();
    taskweave_debug::enable_on_request();
    // asyncio.run(main(), debug=True)
    Runtime::builder()
        .debug(true)
        .build()?
        .run(main_coroutine())
}
