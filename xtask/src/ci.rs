//! `cargo xtask ci`: the checks CI runs, in the order that fails fastest: rustfmt, clippy, tests
//! (doctests included), docs, tidy. The first failure stops the run with a non-zero exit.
//!
//! A machine without rustfmt or clippy skips that step with a loud note instead of failing:
//! `.ci/run` tries to install them first, and a toolchain that cannot get them should still be
//! able to run the tests.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::command::Cmd;
use crate::{doc, tidy};

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
        Cmd::cargo(
            root,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        )
        .run()?;
        Ok(Outcome::Passed)
    })?;
    run.step("test", || {
        let mut totals = TestTotals::default();
        let outcome = Cmd::cargo(root, &["test", "--workspace"])
            .env(crate::nats_server::ENV, &nats_server)
            .run_watching(|line| totals.add(line));
        println!("{}", totals.summary());
        outcome?;
        Ok(Outcome::Passed)
    })?;
    run.step("doc", || {
        doc::command(root).run()?;
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
    use super::TestTotals;

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
