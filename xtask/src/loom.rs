//! `cargo xtask loom`: taskweave-core's model-checking tests (`tests/loom.rs`), compiled with
//! `--cfg loom` so the crate's synchronisation shim swaps `std::sync` for loom's.
//!
//! They build into `target/loom`: `--cfg loom` changes every crate's flags, and sharing the main
//! target directory would rebuild everything twice on each switch.

use std::path::Path;

use crate::command::Cmd;

/// Runs the loom tests, or says there are none yet.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    let tests = root.join("crates/taskweave-core/tests/loom.rs");
    if !tests.exists() {
        println!(
            "no loom tests: {} does not exist, nothing to model-check",
            tests.display()
        );
        return Ok(());
    }
    Cmd::cargo(
        root,
        &[
            "test",
            "-p",
            "taskweave-core",
            "--release",
            "--test",
            "loom",
        ],
    )
    .env_flags("RUSTFLAGS", "--cfg loom")
    .env("CARGO_TARGET_DIR", root.join("target/loom"))
    .run()
}
