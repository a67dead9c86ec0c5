//! `cargo xtask loom`: taskweave-core's model-checking tests (`tests/loom.rs`), compiled with
//! `--cfg taskweave_loom` so the crate's synchronisation shim swaps `std::sync` for loom's.
//!
//! The cfg is taskweave's own: the bare `loom` cfg is read by tokio and other crates too, which
//! would swap their internals for loom's as well (and a program model-checking its own code
//! with `--cfg loom` would get taskweave's loom internals).
//!
//! They build into `target/loom`: the flag changes every crate's flags, and sharing the main
//! target directory would rebuild everything twice on each switch.

use std::path::Path;

use crate::command::Cmd;

/// The compiler flags of the loom build.
const FLAGS: &str = "--cfg taskweave_loom";

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
    .env_flags("RUSTFLAGS", FLAGS)
    .env("CARGO_TARGET_DIR", root.join("target/loom"))
    .run()
}

#[cfg(test)]
mod tests {
    use super::FLAGS;

    /// The model build turns on taskweave's own cfg, and no crate of the workspace switches on
    /// the bare `loom` cfg that other crates read too.
    #[test]
    fn the_loom_switch_is_taskweaves_own_cfg() {
        assert_eq!(FLAGS, "--cfg taskweave_loom");
        let root = crate::project_root();
        let mut stack = vec![root.join("crates"), root.join("Cargo.toml")];
        let mut checked = 0;
        while let Some(path) = stack.pop() {
            if path.is_dir() {
                for entry in std::fs::read_dir(&path).unwrap() {
                    stack.push(entry.unwrap().path());
                }
                continue;
            }
            let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
                continue;
            };
            if ext != "rs" && ext != "toml" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for bare in [
                "cfg(loom)",
                "cfg(not(loom))",
                "cfg(all(loom",
                "cfg(any(loom",
            ] {
                assert!(
                    !text.contains(bare),
                    "{} switches on the bare loom cfg ({bare})",
                    path.display()
                );
            }
            checked += 1;
        }
        assert!(checked > 10, "only {checked} files checked");
    }
}
