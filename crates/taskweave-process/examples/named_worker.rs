//! A worker program of its own: it registers functions by name (`#[remote]`), and a pool of
//! another program runs it with `named_worker_program(path)` and calls them with
//! `submit_named` / `map_named`. Run directly, it lists what it registers.
//!
//! The crate's tests start it as the worker of another build.

use std::time::Duration;

#[taskweave_macros::remote(crate = taskweave_registry, name = "named::square")]
fn square(x: u64) -> u64 {
    x * x
}

/// Registered with other types than the tests' `named::half` (`fn(u64) -> u64`), so a call
/// from there is refused as a signature mismatch.
#[taskweave_macros::remote(crate = taskweave_registry, name = "named::half")]
fn half(x: u32) -> u32 {
    x / 2
}

#[taskweave_macros::remote(crate = taskweave_registry, name = "named::explode")]
fn explode(message: String) -> u64 {
    panic!("{message}")
}

/// Which program answered: this one's file name.
#[taskweave_macros::remote(crate = taskweave_registry, name = "named::program")]
fn program(_: ()) -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default()
}

#[taskweave_macros::remote(crate = taskweave_registry, name = "named::nap")]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn main() {
    // First in `main`: started by a pool, this process serves it and never gets further. (On
    // Linux it becomes a worker before `main` already; the call also links the worker in.)
    taskweave_process::become_worker_if_spawned();
    let mut names: Vec<String> = match taskweave_registry::all() {
        Ok(all) => all
            .map(|f| format!("{}: {}", f.name(), f.signature()))
            .collect(),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    names.sort();
    println!("a taskweave worker program; start it from a pool with");
    println!("ProcessPoolExecutor::builder().named_worker_program(path). It registers:");
    for name in names {
        println!("  {name}");
    }
}
