//! `cargo xtask bench [--quick] [FILTER]`: builds the benchmark harness in release mode and runs
//! it. The harness itself (crates/taskweave-bench) parses the arguments, prints the table and
//! writes `target/taskweave-bench/report.json`.

use std::path::Path;

use crate::command::Cmd;

/// Runs the harness with `args` passed through.
pub(crate) fn run(root: &Path, args: &[String]) -> Result<(), String> {
    Cmd::cargo(root, &["run", "--release", "-p", "taskweave-bench", "--"])
        .args(args)
        .run()
}
