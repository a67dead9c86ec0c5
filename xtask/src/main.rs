//! Project automation, run as `cargo xtask <command>` (the alias lives in `.cargo/config.toml`).
//!
//! Commands:
//!
//! - `ci`: everything CI checks, in order, stopping at the first failure: rustfmt, clippy with
//!   `-D warnings` (no default features, all features), every test (doctests included),
//!   rustdoc with `-D warnings`, `msrv`, a dry-run `cargo publish` of the workspace, and `tidy`.
//! - `tidy`: repository rules that no compiler checks: every `.rs` file opens with `//!`, no
//!   trailing whitespace, no leftover `todo!`-style macros, dependencies between the crates only
//!   in the directions docs/ARCHITECTURE.md draws. Also a `#[test]`, so `cargo test` runs it.
//! - `tour`: runs every example of the `taskweave` crate in reading order, saying what each shows
//!   and how long it took.
//! - `bench [--quick] [FILTER]`: builds and runs the benchmark harness (`taskweave-bench`) in
//!   release mode; it prints a table and writes `target/taskweave-bench/report.json`.
//! - `loom`: the model-checking tests of taskweave-core, built with `--cfg taskweave_loom` in
//!   their own target directory.
//! - `doc`: the API docs of every published crate, dependencies first, with rustdoc warnings as
//!   errors and a check of the rendered pages for links left as text.
//! - `msrv`: the declared `rust-version` against the syntax used and the locked dependencies.
//! - `fuzz [--time N]`: every cargo-fuzz target of `fuzz/` for N seconds each (nightly).
//! - `nats-server`: finds `nats-server` (>= 2.10) or installs the pinned one under `target/`, and
//!   prints its path; `ci`, `tour` and `bench` do the same first and pass it on as
//!   `TASKWEAVE_NATS_SERVER`.
//!
//! This crate has no dependencies so that it builds in seconds on a fresh machine.

mod bench;
mod ci;
mod command;
mod doc;
mod fuzz;
mod loom;
mod msrv;
mod nats_server;
mod tidy;
mod tour;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci                       fmt --check, clippy -D warnings, tests, docs, msrv, publish --dry-run, tidy
  tidy                     repository rules: //! headers, whitespace, leftovers, crate dependencies
  tour                     run every example of the taskweave crate, in reading order
  bench [--quick] [FILTER] run the benchmarks (FILTER: part of a case name)
  loom                     model-checking tests of taskweave-core (--cfg taskweave_loom)
  doc                      API docs of every published crate; warnings and unlinked links are errors
  msrv                     the declared rust-version against syntax and locked dependencies

  fuzz [--time N]          every fuzz target in fuzz/ for N seconds (default 60; nightly)

  nats-server              find or install nats-server for the NATS tests; print its path";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let root = project_root();
    let outcome = match command.as_str() {
        "ci" => no_arguments(command, rest).and_then(|()| ci::run(&root)),
        "tidy" => no_arguments(command, rest).and_then(|()| tidy::run(&root)),
        "tour" => no_arguments(command, rest).and_then(|()| tour::run(&root)),
        "bench" => bench::run(&root, rest),
        "loom" => no_arguments(command, rest).and_then(|()| loom::run(&root)),
        "doc" => no_arguments(command, rest).and_then(|()| doc::run(&root)),
        "msrv" => no_arguments(command, rest).and_then(|()| msrv::run(&root)),
        "fuzz" => fuzz::run(&root, rest),
        "nats-server" => no_arguments(command, rest).and_then(|()| nats_server::run(&root)),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("\nxtask {command}: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: xtask always sits one level below it.
fn project_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The workspace's target directory: `CARGO_TARGET_DIR` (relative to the root) or `target`.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

fn no_arguments(command: &str, rest: &[String]) -> Result<(), String> {
    match rest.first() {
        None => Ok(()),
        Some(extra) => Err(format!(
            "`{command}` takes no arguments, got `{extra}`\n\n{USAGE}"
        )),
    }
}
