//! `cargo xtask bench [--quick] [FILTER]`: builds the benchmark harness in release mode and runs
//! it. The harness itself (crates/taskweave-bench) parses the arguments, prints the table and
//! writes `target/taskweave-bench/report.json`.
//!
//! The NATS cases need a `nats-server`: found or installed first, as `ci` does, and passed on in
//! `TASKWEAVE_NATS_SERVER`.

use std::path::Path;

use crate::command::Cmd;

/// Runs the harness with `args` passed through.
pub(crate) fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let nats_server = crate::nats_server::ensure(root)?;
    Cmd::cargo(root, &["run", "--release", "-p", "taskweave-bench", "--"])
        .args(args)
        .env(crate::nats_server::ENV, &nats_server)
        .run()
}
