//! `cargo xtask tidy`: repository rules that no compiler checks.
//!
//! - every `.rs` file under `crates/` and `xtask/` opens with a `//!` doc saying what it holds
//!   (examples and tests too);
//! - no trailing whitespace in source, manifests, docs and scripts;
//! - no leftover `todo!`, `unimplemented!` or `dbg!`;
//! - the taskweave crates depend on each other only along the edges in [`ALLOWED_DEPENDENCIES`].
//!
//! The module ends in a `#[test]`, so a plain `cargo test` enforces the same rules.

use std::fs;
use std::path::{Path, PathBuf};

/// Which taskweave crates each crate may depend on (`[dependencies]`, target-specific and build
/// dependencies; dev-dependencies are free). This is the dependency diagram of
/// docs/ARCHITECTURE.md: change both together. Entries for crates that do not exist yet are fine.
const ALLOWED_DEPENDENCIES: &[(&str, Allowed)] = &[
    ("taskweave-core", Allowed::Only(&[])),
    ("taskweave-executor", Allowed::Only(&["taskweave-core"])),
    (
        "taskweave-bridge",
        Allowed::Only(&["taskweave-core", "taskweave-executor"]),
    ),
    (
        "taskweave-process",
        Allowed::Only(&["taskweave-core", "taskweave-executor", "taskweave-registry"]),
    ),
    ("taskweave-debug", Allowed::Only(&["taskweave-core"])),
    ("taskweave-macros", Allowed::Only(&[])),
    ("taskweave-registry", Allowed::Only(&[])),
    (
        "taskweave-nats",
        Allowed::Only(&["taskweave-core", "taskweave-executor", "taskweave-registry"]),
    ),
    ("taskweave", Allowed::Any),
    ("taskweave-bench", Allowed::Any),
];

/// What a crate may depend on among the taskweave crates.
enum Allowed {
    Only(&'static [&'static str]),
    Any,
}

/// Checks every rule and lists each problem found.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    let problems = problems(root);
    if problems.is_empty() {
        println!("tidy: ok");
        return Ok(());
    }
    for problem in &problems {
        println!("tidy: {problem}");
    }
    Err(format!("{} tidy problem(s), listed above", problems.len()))
}

/// Every rule broken in the repository at `root`, one message each.
fn problems(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    // The root itself only shallowly: its other subdirectories hold build output and tools' state.
    collect_files(root, true, &mut files, &mut problems);
    for dir in [".cargo", ".ci", ".github", "crates", "docs", "xtask"] {
        let dir = root.join(dir);
        if dir.is_dir() {
            collect_files(&dir, false, &mut files, &mut problems);
        }
    }
    files.sort();
    for path in &files {
        let shown = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                problems.push(format!("{shown}: cannot read: {e}"));
                continue;
            }
        };
        let is_rust = path.extension().is_some_and(|e| e == "rs");
        if is_rust {
            if !text.starts_with("//!") {
                problems.push(format!(
                    "{shown}: does not start with a `//!` doc saying what the file holds"
                ));
            }
            problems.extend(leftovers(&shown, &text));
        }
        problems.extend(trailing_whitespace(&shown, &text));
    }
    problems.extend(dependency_problems(root));
    problems
}

/// Collects the files tidy reads below `dir`; `shallow` reads only `dir` itself.
fn collect_files(dir: &Path, shallow: bool, files: &mut Vec<PathBuf>, problems: &mut Vec<String>) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(format!("{}: cannot list: {e}", dir.display()));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        if path.is_dir() {
            if !shallow {
                collect_files(&path, false, files, problems);
            }
        } else if is_checked_text(&path) {
            files.push(path);
        }
    }
}

fn is_checked_text(path: &Path) -> bool {
    let by_extension = path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        matches!(
            e,
            "rs" | "toml" | "md" | "yml" | "yaml" | "py" | "sh" | "json"
        )
    });
    // Scripts without an extension, such as .ci/run.
    let script = path.extension().is_none()
        && path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|d| d == ".ci");
    by_extension || script
}

fn trailing_whitespace(shown: &str, text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.ends_with([' ', '\t']))
        .map(|(i, _)| format!("{shown}:{}: trailing whitespace", i + 1))
        .collect()
}

/// Macros that mark unfinished or debugging code. Spelled in halves so this file does not
/// match itself.
const LEFTOVER_MACROS: [&str; 3] = [
    concat!("to", "do!"),
    concat!("unimple", "mented!"),
    concat!("db", "g!"),
];

fn leftovers(shown: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for name in LEFTOVER_MACROS {
            // An invocation, not a mention in prose: not part of a longer name, and followed
            // by its delimiter.
            let hit = line.match_indices(name).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + name.len()..].trim_start().chars().next();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    && after.is_some_and(|c| matches!(c, '(' | '[' | '{'))
            });
            if hit {
                found.push(format!("{shown}:{}: leftover `{name}`", i + 1));
            }
        }
    }
    found
}

/// The crate's package name, whether it is published, and the taskweave crates it depends on
/// (renames resolved).
#[derive(Debug, PartialEq)]
pub(crate) struct Manifest {
    pub(crate) name: Option<String>,
    pub(crate) publish: bool,
    pub(crate) taskweave_dependencies: Vec<String>,
}

/// Reads the parts of a Cargo.toml that the dependency rule needs. A line-based reader suffices:
/// the project's manifests use one dependency per line, as rustfmt-style TOML does.
pub(crate) fn parse_manifest(text: &str) -> Manifest {
    let mut name = None;
    let mut publish = true;
    let mut deps = Vec::new();
    let mut section = String::new();
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.trim().to_owned();
            // `[dependencies.taskweave-core]` names its dependency in the header.
            if let Some(dep) = dependency_table_name(&section) {
                deps.push(dep.to_owned());
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if section == "package" && key == "name" {
            name = Some(value.trim().trim_matches('"').to_owned());
        } else if section == "package" && key == "publish" {
            publish = value.trim() != "false";
        } else if is_dependency_section(&section) {
            let key = key
                .split('.')
                .next()
                .unwrap_or(key)
                .trim()
                .trim_matches('"');
            deps.push(renamed_package(value).unwrap_or_else(|| key.to_owned()));
        } else if dependency_table_name(&section).is_some() && key == "package" {
            // `package = "..."` inside `[dependencies.alias]`: the real crate replaces the alias.
            deps.pop();
            deps.push(value.trim().trim_matches('"').to_owned());
        }
    }
    deps.retain(|d| d.starts_with("taskweave"));
    deps.sort();
    deps.dedup();
    Manifest {
        name,
        publish,
        taskweave_dependencies: deps,
    }
}

fn is_dependency_section(section: &str) -> bool {
    let last = section.rsplit('.').next().unwrap_or(section);
    matches!(last, "dependencies" | "build-dependencies")
        && (section == last || section.starts_with("target."))
}

/// `Some("dep")` for a `[dependencies.dep]` (or target-specific) table header.
fn dependency_table_name(section: &str) -> Option<&str> {
    let section = match section.strip_prefix("target.") {
        // The target's cfg may contain dots; the dependency table follows it.
        Some(rest) => rest
            .find("dependencies.")
            .or_else(|| rest.find("build-dependencies."))
            .map(|at| &rest[at..])?,
        None => section,
    };
    section
        .strip_prefix("dependencies.")
        .or_else(|| section.strip_prefix("build-dependencies."))
        .map(|d| d.trim_matches('"'))
}

/// The `package = "..."` of an inline dependency table, if it renames the crate.
fn renamed_package(value: &str) -> Option<String> {
    let at = value.find("package")?;
    let rest = value[at + "package".len()..]
        .trim_start()
        .strip_prefix('=')?;
    let rest = rest.trim_start().strip_prefix('"')?;
    Some(rest.split('"').next()?.to_owned())
}

/// Every `crates/*/Cargo.toml`, as its path shown from `root` and its text, sorted by path.
pub(crate) fn crate_manifests(root: &Path) -> Result<Vec<(String, String)>, String> {
    let entries =
        fs::read_dir(root.join("crates")).map_err(|e| format!("crates/: cannot list: {e}"))?;
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path().join("Cargo.toml"))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let shown = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            fs::read_to_string(&path)
                .map(|text| (shown.clone(), text))
                .map_err(|e| format!("{shown}: cannot read: {e}"))
        })
        .collect()
}

fn dependency_problems(root: &Path) -> Vec<String> {
    match crate_manifests(root) {
        Ok(manifests) => manifests
            .iter()
            .flat_map(|(shown, text)| check_edges(shown, &parse_manifest(text)))
            .collect(),
        Err(problem) => vec![problem],
    }
}

fn check_edges(shown: &str, manifest: &Manifest) -> Vec<String> {
    let Some(name) = &manifest.name else {
        return vec![format!("{shown}: no [package] name")];
    };
    let Some((_, allowed)) = ALLOWED_DEPENDENCIES.iter().find(|(n, _)| n == name) else {
        return vec![format!(
            "{shown}: crate `{name}` is not in ALLOWED_DEPENDENCIES (xtask/src/tidy.rs); \
             add it with the crates it may depend on, as docs/ARCHITECTURE.md draws them"
        )];
    };
    let Allowed::Only(allowed) = allowed else {
        return Vec::new();
    };
    manifest
        .taskweave_dependencies
        .iter()
        .filter(|dep| !allowed.contains(&dep.as_str()))
        .map(|dep| {
            format!(
                "{shown}: `{name}` must not depend on `{dep}` (allowed: {}); \
                 see the dependency diagram in docs/ARCHITECTURE.md",
                if allowed.is_empty() {
                    "no taskweave crate".to_owned()
                } else {
                    allowed.join(", ")
                }
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Manifest, check_edges, leftovers, parse_manifest, trailing_whitespace};

    #[test]
    fn tidy() {
        let problems = super::problems(&crate::project_root());
        assert!(
            problems.is_empty(),
            "tidy found problems:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn manifest_reader_finds_every_kind_of_dependency() {
        let manifest = parse_manifest(
            r#"
[package]
name = "taskweave-bridge"

[dependencies]
taskweave-core.workspace = true
tokio = { workspace = true, features = ["rt"] }
core2 = { package = "taskweave-debug", path = "../taskweave-debug" } # renamed

[target.'cfg(unix)'.dependencies]
"taskweave-process" = { path = "../taskweave-process" }

[dependencies.macros]
package = "taskweave-macros"

[dev-dependencies]
taskweave = { path = "../taskweave" }
"#,
        );
        assert_eq!(
            manifest,
            Manifest {
                name: Some("taskweave-bridge".to_owned()),
                publish: true,
                taskweave_dependencies: vec![
                    "taskweave-core".to_owned(),
                    "taskweave-debug".to_owned(),
                    "taskweave-macros".to_owned(),
                    "taskweave-process".to_owned(),
                ],
            }
        );
    }

    #[test]
    fn manifest_reader_sees_publish_false() {
        let manifest = parse_manifest("[package]\nname = \"taskweave-bench\"\npublish = false\n");
        assert!(!manifest.publish);
        assert!(parse_manifest("[package]\nname = \"taskweave\"\n").publish);
    }

    #[test]
    fn edges_against_the_table() {
        let upward = Manifest {
            name: Some("taskweave-core".to_owned()),
            publish: true,
            taskweave_dependencies: vec!["taskweave-bridge".to_owned()],
        };
        let problems = check_edges("crates/taskweave-core/Cargo.toml", &upward);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("must not depend on `taskweave-bridge`"));

        let downward = Manifest {
            name: Some("taskweave-process".to_owned()),
            publish: true,
            taskweave_dependencies: vec![
                "taskweave-core".to_owned(),
                "taskweave-executor".to_owned(),
            ],
        };
        assert!(check_edges("p", &downward).is_empty());

        // Executors sit side by side on the executor layer, never on each other.
        let sideways = Manifest {
            name: Some("taskweave-process".to_owned()),
            publish: true,
            taskweave_dependencies: vec![
                "taskweave-bridge".to_owned(),
                "taskweave-executor".to_owned(),
            ],
        };
        let problems = check_edges("p", &sideways);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("must not depend on `taskweave-bridge`"));

        let unknown = Manifest {
            name: Some("taskweave-extra".to_owned()),
            publish: true,
            taskweave_dependencies: Vec::new(),
        };
        assert!(check_edges("x", &unknown)[0].contains("not in ALLOWED_DEPENDENCIES"));
    }

    #[test]
    fn whitespace_and_leftovers_are_found_with_their_lines() {
        assert_eq!(
            trailing_whitespace("f.rs", "ok\nbad \nfine\n\tbad\t\n"),
            vec!["f.rs:2: trailing whitespace", "f.rs:4: trailing whitespace"]
        );
        let text = format!(
            "let a = 1;\n{}(a);\nmy_{}();\n// no `{}` here\n",
            concat!("db", "g!"),
            concat!("to", "do!"),
            concat!("unimple", "mented!")
        );
        assert_eq!(
            leftovers("f.rs", &text),
            vec![format!("f.rs:2: leftover `{}`", concat!("db", "g!"))]
        );
    }
}
