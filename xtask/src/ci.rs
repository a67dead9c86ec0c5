//! `cargo xtask ci`: the checks CI runs, in the order that fails fastest: rustfmt, clippy,
//! tests (doctests included), docs, the minimum Rust version, a dry-run publish, tidy. The
//! first failure stops the run with a non-zero exit.
//!
//! Feature combinations: clippy checks every target twice, with no default features and with
//! all features, so code behind a feature and code behind its absence both compile, lint-free.
//! (The default set adds nothing of its own: it is the facade's `debug`, which the all-features
//! run covers.) Tests run once, with all features (so the facade's `nats` feature and the
//! `distributed` example that needs it are built and tested); the facade's own tests run a
//! second time without default features, where debug mode must say that its feature is off.
//!
//! The minimum Rust version (`rust-version` in Cargo.toml) is checked with what one toolchain
//! can check: clippy's `incompatible_msrv` lint (denied, in the clippy step) rejects standard
//! library items stabilised after it, and the `msrv` step rejects newer syntax and locked
//! dependencies that declare a newer version (see `msrv.rs`).
//!
//! A machine without rustfmt or clippy skips that step with a loud note instead of failing:
//! `.ci/run` tries to install them first, and a toolchain that cannot get them should still be
//! able to run the tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::command::Cmd;
use crate::{doc, msrv, tidy};

/// Runs every step, stopping at the first failure.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    let nats_server = crate::nats_server::ensure(root)?;
    let mut run = Run::default();
    run.step("fmt", || {
        if !Cmd::cargo(root, &["fmt", "--version"]).succeeds_quietly() {
            return Ok(Outcome::Skipped(
                "rustfmt is not installed (`rustup component add rustfmt` installs it)",
            ));
        }
        Cmd::cargo(root, &["fmt", "--all", "--", "--check"]).run()?;
        Ok(Outcome::Passed)
    })?;
    run.step("clippy", || {
        if !Cmd::cargo(root, &["clippy", "--version"]).succeeds_quietly() {
            return Ok(Outcome::Skipped(
                "clippy is not installed (`rustup component add clippy` installs it)",
            ));
        }
        for features in ["--no-default-features", "--all-features"] {
            Cmd::cargo(
                root,
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    features,
                    "--",
                    "-D",
                    "warnings",
                    "-D",
                    "clippy::incompatible_msrv",
                ],
            )
            .run()?;
        }
        Ok(Outcome::Passed)
    })?;
    run.step("test", || {
        let mut totals = TestTotals::default();
        let all = Cmd::cargo(root, &["test", "--workspace", "--all-features"])
            .env(crate::nats_server::ENV, &nats_server)
            .run_watching(|line| totals.add(line));
        let bare = all.and_then(|()| {
            Cmd::cargo(
                root,
                &[
                    "test",
                    "-p",
                    "taskweave",
                    "--no-default-features",
                    "--tests",
                ],
            )
            .env(crate::nats_server::ENV, &nats_server)
            .run_watching(|line| totals.add(line))
        });
        println!("{}", totals.summary());
        bare?;
        Ok(Outcome::Passed)
    })?;
    run.step("doc", || {
        doc::build(root)?;
        Ok(Outcome::Passed)
    })?;
    run.step("msrv", || {
        msrv::run(root)?;
        Ok(Outcome::Passed)
    })?;
    run.step("publish", || {
        // Packages every published crate and builds each from its package, against the others
        // packaged alongside (cargo resolves unpublished workspace dependencies locally), in
        // the workspace's target directory so that the dependencies built for the tests are
        // reused. --allow-dirty: CI checks what is in the tree, committed or not.
        remove_stale_packages(&crate::target_dir(root))?;
        Cmd::cargo(
            root,
            &["publish", "--workspace", "--dry-run", "--allow-dirty"],
        )
        .run()?;
        Ok(Outcome::Passed)
    })?;
    run.step("tidy", || {
        tidy::run(root)?;
        Ok(Outcome::Passed)
    })?;
    run.print_summary();
    if run.skipped() {
        println!("\nci passed, but with SKIPPED steps (see above)");
    } else {
        println!("\nci passed");
    }
    Ok(())
}

/// Clears what an earlier `cargo publish --dry-run` left of our crates.
///
/// The dry run puts the packaged crates in a local registry, unpacks them into
/// `$CARGO_HOME/registry/src/-<hash>/` (a local registry has no host name, hence the leading
/// `-`) and builds them as registry crates, which cargo takes to be immutable: a second run with
/// the same version reuses that copy and its build, so a crate would be verified against its
/// dependencies as they were at the first run. Removing both makes every run verify the tree as
/// it is; the price is that the next build rebuilds the taskweave crates (not their
/// dependencies).
fn remove_stale_packages(target: &Path) -> Result<(), String> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    for path in stale_packages(home.as_deref(), target) {
        fs::remove_dir_all(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    }
    Ok(())
}

/// What [`remove_stale_packages`] removes: our crates' unpacked copies in the local registries
/// of `cargo_home` and their build fingerprints in `target`.
fn stale_packages(cargo_home: Option<&Path>, target: &Path) -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(src) = cargo_home.map(|h| h.join("registry").join("src")) {
        for registry in entries(&src) {
            if registry
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('-'))
            {
                candidates.extend(entries(&registry));
            }
        }
    }
    candidates.extend(entries(&target.join("debug").join(".fingerprint")));
    candidates.retain(|path| {
        path.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("taskweave"))
    });
    candidates.sort();
    candidates
}

/// The entries of `dir`, none if it cannot be read.
fn entries(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

enum Outcome {
    Passed,
    Skipped(&'static str),
}

#[derive(Default)]
struct Run {
    done: Vec<(&'static str, Duration, Option<&'static str>)>,
}

impl Run {
    fn step(
        &mut self,
        name: &'static str,
        body: impl FnOnce() -> Result<Outcome, String>,
    ) -> Result<(), String> {
        println!("\n==> {name}");
        let started = Instant::now();
        let result = body();
        let took = started.elapsed();
        match result {
            Ok(Outcome::Passed) => {
                println!("<== {name}: ok in {}", seconds(took));
                self.done.push((name, took, None));
                Ok(())
            }
            Ok(Outcome::Skipped(why)) => {
                println!("!!!\n!!! {name}: SKIPPED: {why}\n!!!");
                self.done.push((name, took, Some(why)));
                Ok(())
            }
            Err(message) => {
                println!("<== {name}: FAILED after {}", seconds(took));
                self.print_summary();
                Err(format!("step `{name}` failed: {message}"))
            }
        }
    }

    fn skipped(&self) -> bool {
        self.done.iter().any(|(_, _, skipped)| skipped.is_some())
    }

    fn print_summary(&self) {
        if self.done.is_empty() {
            return;
        }
        println!("\nci steps:");
        for (name, took, skipped) in &self.done {
            match skipped {
                None => println!("  {name:<8} ok       {:>8}", seconds(*took)),
                Some(why) => println!("  {name:<8} SKIPPED  {why}"),
            }
        }
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Sums the `test result:` lines that libtest prints once per test binary and doctest run.
#[derive(Default, Debug, PartialEq)]
struct TestTotals {
    runs: u32,
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl TestTotals {
    fn add(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        self.runs += 1;
        // "ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s"
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match label {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }

    fn summary(&self) -> String {
        format!(
            "tests: {} passed, {} failed, {} ignored, in {} test runs (unit, integration and doctests)",
            self.passed, self.failed, self.ignored, self.runs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{TestTotals, stale_packages};

    #[test]
    fn stale_packages_are_ours_in_local_registries_and_fingerprints() {
        let root = std::env::temp_dir().join(format!("xtask-stale-{}", std::process::id()));
        let home = root.join("cargo-home");
        let target = root.join("target");
        let dirs = [
            home.join("registry/src/-0123abcd/taskweave-core-0.1.0"),
            home.join("registry/src/-0123abcd/other-1.0.0"),
            home.join("registry/src/index.crates.io-1949cf8c6b5b557f/taskweave-core-0.1.0"),
            target.join("debug/.fingerprint/taskweave-bridge-5f3c"),
            target.join("debug/.fingerprint/tokio-1a2b"),
        ];
        for dir in &dirs {
            std::fs::create_dir_all(dir).unwrap();
        }
        let found = stale_packages(Some(&home), &target);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(found, [dirs[0].clone(), dirs[3].clone()]);
        assert!(stale_packages(None, &root.join("missing")).is_empty());
    }

    #[test]
    fn test_totals_add_up_libtest_summaries() {
        let mut totals = TestTotals::default();
        totals.add("running 3 tests");
        totals.add("test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        totals.add("test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.50s");
        assert_eq!(
            totals,
            TestTotals {
                runs: 2,
                passed: 15,
                failed: 2,
                ignored: 1
            }
        );
    }
}
