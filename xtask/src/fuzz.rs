//! `cargo xtask fuzz [--time N]`: every cargo-fuzz target of `fuzz/` (one per decoder of bytes
//! from another process), each for `N` seconds (default 60), stopping at the first crash.
//!
//! The targets need a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`); `fuzz/`
//! is a workspace of its own, excluded from the main one, so stable builds never see it. A
//! crash leaves its input in `fuzz/artifacts/<target>/`; `cargo +nightly fuzz run <target>
//! <file>` replays it.

use std::path::Path;
use std::process::Command;

/// Seconds per target when `--time` is not given.
const DEFAULT_SECONDS: u64 = 60;

/// Runs every target for the time the arguments say.
pub(crate) fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let seconds = seconds(args)?;
    let targets = targets(&root.join("fuzz/fuzz_targets"))?;
    let probe = nightly_cargo(root).args(["fuzz", "--version"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return Err(
            "cargo-fuzz on a nightly toolchain is needed: `rustup toolchain install nightly` \
             and `cargo install cargo-fuzz`"
                .to_owned(),
        );
    }
    for target in &targets {
        let time = format!("-max_total_time={seconds}");
        println!("$ cargo +nightly fuzz run {target} -- {time}");
        let status = nightly_cargo(root)
            .args(["fuzz", "run", target, "--", &time])
            .status()
            .map_err(|e| format!("could not start cargo fuzz: {e}"))?;
        if !status.success() {
            return Err(format!(
                "fuzz target `{target}` failed ({status}); its input is in fuzz/artifacts/{target}/"
            ));
        }
    }
    println!("fuzzed {} targets for {seconds} s each", targets.len());
    Ok(())
}

/// `cargo +nightly` run from the repository root, through rustup's proxy (the `CARGO` that
/// runs xtask is a stable toolchain's own binary, which knows no `+nightly`).
fn nightly_cargo(root: &Path) -> Command {
    let mut command = Command::new("cargo");
    command
        .arg("+nightly")
        .current_dir(root)
        .env_remove("RUSTUP_TOOLCHAIN");
    command
}

/// The seconds per target: `--time N` or `--time=N`, a positive number.
fn seconds(args: &[String]) -> Result<u64, String> {
    let mut seconds = DEFAULT_SECONDS;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let value = if arg == "--time" {
            rest.next()
                .ok_or("`--time` needs a number of seconds")?
                .as_str()
        } else if let Some(v) = arg.strip_prefix("--time=") {
            v
        } else {
            return Err(format!("`fuzz` takes `--time N`, got `{arg}`"));
        };
        seconds = match value.parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(format!(
                    "`--time` needs a positive number of seconds, got `{value}`"
                ));
            }
        };
    }
    Ok(seconds)
}

/// The targets: the `.rs` files of `dir`, by name.
fn targets(dir: &Path) -> Result<Vec<String>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    let mut targets: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    targets.sort();
    if targets.is_empty() {
        return Err(format!("no fuzz targets in {}", dir.display()));
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn time_is_sixty_seconds_unless_given() {
        assert_eq!(seconds(&[]), Ok(60));
        assert_eq!(seconds(&args(&["--time", "5"])), Ok(5));
        assert_eq!(seconds(&args(&["--time=7"])), Ok(7));
        assert!(seconds(&args(&["--time"])).is_err());
        assert!(seconds(&args(&["--time", "0"])).is_err());
        assert!(seconds(&args(&["--time", "x"])).is_err());
        assert!(seconds(&args(&["frames"])).is_err());
    }

    /// Every decoder of bytes from another process has its target.
    #[test]
    fn the_targets_cover_every_decoder() {
        let root = crate::project_root();
        let found = targets(&root.join("fuzz/fuzz_targets")).unwrap();
        assert_eq!(found, ["frames", "handshake", "outcomes", "shared"]);
        let members = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(members.contains("exclude = [\"fuzz\"]"));
    }
}
