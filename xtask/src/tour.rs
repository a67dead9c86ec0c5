//! `cargo xtask tour`: runs every example of the `taskweave` crate in reading order (the
//! guide's: coroutine, gather, blocking, map, then the others alphabetically, debug last), each
//! announced by the first paragraph of its `//!` doc and followed by its wall time.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::command::Cmd;

/// Examples that open the tour, in this order; any others follow alphabetically.
const FIRST: [&str; 4] = ["coroutine", "gather", "blocking", "map"];
/// Features beyond the default ones that some examples need (`distributed`: `nats`).
const TOUR_FEATURES: &str = "nats";
/// The example that closes the tour: it shows what goes wrong, best seen after the rest.
const LAST: &str = "debug";

/// Builds all examples once, then runs them one by one; fails on the first that fails.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    let dir = root.join("crates/taskweave/examples");
    let examples = find_examples(&dir)?;
    if examples.is_empty() {
        return Err(format!("no examples in {}", dir.display()));
    }
    Cmd::cargo(
        root,
        &[
            "build",
            "--release",
            "-p",
            "taskweave",
            "--examples",
            "--features",
            TOUR_FEATURES,
        ],
    )
    .run()?;
    let nats_server = crate::nats_server::ensure(root)?;
    let mut times = Vec::new();
    let count = examples.len();
    for (i, example) in examples.iter().enumerate() {
        println!("\n=== [{}/{count}] {}", i + 1, example.name);
        println!("    {}\n", example.summary);
        let started = Instant::now();
        Cmd::cargo(
            root,
            &[
                "run",
                "--quiet",
                "--release",
                "-p",
                "taskweave",
                "--example",
                &example.name,
                "--features",
                TOUR_FEATURES,
            ],
        )
        .env(crate::nats_server::ENV, &nats_server)
        .run()
        .map_err(|e| format!("example `{}` failed: {e}", example.name))?;
        let took = started.elapsed();
        println!("--- {} finished in {}", example.name, seconds(took));
        times.push((example.name.as_str(), took));
    }
    println!("\ntour: {count} examples");
    for (name, took) in times {
        println!("  {name:<16} {:>8}", seconds(took));
    }
    Ok(())
}

struct Example {
    name: String,
    /// The first paragraph of its `//!` doc: what it shows.
    summary: String,
}

/// The examples in `dir` (`name.rs` files and `name/main.rs` directories), in tour order.
fn find_examples(dir: &Path) -> Result<Vec<Example>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut examples = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let (name, source): (String, PathBuf) = if path.is_dir() {
            let main = path.join("main.rs");
            if !main.is_file() {
                continue;
            }
            (entry.file_name().to_string_lossy().into_owned(), main)
        } else if path.extension().is_some_and(|e| e == "rs") {
            let Some(stem) = path.file_stem() else {
                continue;
            };
            (stem.to_string_lossy().into_owned(), path.clone())
        } else {
            continue;
        };
        let text = fs::read_to_string(&source)
            .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
        examples.push(Example {
            summary: summary(&text).unwrap_or_else(|| "(no //! doc)".to_owned()),
            name,
        });
    }
    examples.sort_by(|a, b| tour_key(&a.name).cmp(&tour_key(&b.name)));
    Ok(examples)
}

/// Sort key: the fixed openers by position, then the rest by name, then the closer.
fn tour_key(name: &str) -> (u8, usize, &str) {
    match FIRST.iter().position(|f| *f == name) {
        Some(i) => (0, i, name),
        None if name == LAST => (2, 0, name),
        None => (1, 0, name),
    }
}

/// The first paragraph of the file's `//!` doc, its lines joined: a summary may wrap.
fn summary(text: &str) -> Option<String> {
    let words: Vec<&str> = text
        .lines()
        .map_while(|line| line.strip_prefix("//!"))
        .map(str::trim)
        .take_while(|line| !line.is_empty())
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

fn seconds(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::{summary, tour_key};

    #[test]
    fn tour_order_is_the_guide_order_then_alphabetical_then_debug() {
        let mut names = vec![
            "debug",
            "zeta",
            "map",
            "alpha",
            "gather",
            "coroutine",
            "blocking",
        ];
        names.sort_by_key(|n| tour_key(n));
        assert_eq!(
            names,
            [
                "coroutine",
                "gather",
                "blocking",
                "map",
                "alpha",
                "zeta",
                "debug"
            ]
        );
    }

    #[test]
    fn summary_is_the_first_doc_paragraph() {
        assert_eq!(
            summary("//! Shows gather.\n//!\n//! More.\nfn main() {}").as_deref(),
            Some("Shows gather.")
        );
        // A wrapped first paragraph is read whole, not cut off at its first line.
        assert_eq!(
            summary("//! CPU-bound work, computed serially and\n//! in a pool.\n\nuse x;")
                .as_deref(),
            Some("CPU-bound work, computed serially and in a pool.")
        );
        assert_eq!(summary("fn main() {}"), None);
    }

    #[test]
    fn every_example_has_a_complete_summary() {
        let dir = crate::project_root().join("crates/taskweave/examples");
        let examples = super::find_examples(&dir).unwrap();
        assert!(!examples.is_empty());
        for example in examples {
            assert!(
                example.summary.ends_with('.'),
                "{}: summary does not end a sentence: {:?}",
                example.name,
                example.summary
            );
        }
    }
}
