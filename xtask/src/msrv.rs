//! `cargo xtask msrv`: checks that the workspace's declared `rust-version` is true, with what
//! one newer toolchain can check.
//!
//! - Standard library items: clippy's `incompatible_msrv` lint reads `rust-version` and rejects
//!   items stabilised after it (`ci` runs clippy with it denied).
//! - Syntax: let chains (`if let .. && ..`, stable since 1.88) are rejected while the declared
//!   version is older. They are the newer syntax edition 2024 code reaches for first.
//! - Dependencies: every package in the lock file must declare a `rust-version` no newer than
//!   ours (or none). The resolver of edition 2024 already prefers such versions; this keeps a
//!   later `cargo update` honest.
//! - The toolchain itself: where rustup has the declared version installed
//!   (`rustup toolchain install 1.89`; the `msrv` job of the GitHub workflow does), the
//!   workspace is also built with it (`cargo +1.89 check --workspace --all-features
//!   --all-targets --locked`, into `target/msrv`). Where it is not installed, the step says so
//!   and the checks above are what holds the claim.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A Rust version, `major.minor.patch` (a missing patch is 0).
type Version = (u32, u32, u32);

/// The first Rust version with let chains (in edition 2024).
const LET_CHAINS: Version = (1, 88, 0);

/// Runs both checks and lists every problem.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    let declared = declared(root)?;
    let mut problems = Vec::new();
    if declared < LET_CHAINS {
        let mut files = Vec::new();
        for dir in ["crates", "xtask"] {
            rust_files(&root.join(dir), &mut files);
        }
        files.sort();
        for path in files {
            let text = fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let shown = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            problems.extend(let_chains(&shown, &text));
        }
    }
    problems.extend(newer_dependencies(&metadata(root)?, declared));
    if let Err(problem) = build_with_declared(root, declared) {
        problems.push(problem);
    }
    if problems.is_empty() {
        println!("msrv: rust-version {} holds", show(declared));
        return Ok(());
    }
    for problem in &problems {
        println!("msrv: {problem}");
    }
    Err(format!(
        "{} problem(s) with rust-version {}, listed above",
        problems.len(),
        show(declared)
    ))
}

/// Builds the workspace with the declared toolchain when rustup has it; a note otherwise.
fn build_with_declared(root: &Path, declared: Version) -> Result<(), String> {
    let (major, minor, _) = declared;
    let name = format!("{major}.{minor}");
    let listed = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let Some(toolchain) = installed_toolchain(&listed, &name) else {
        println!(
            "msrv: toolchain {name} is not installed, so the workspace is not built with it \
             (`rustup toolchain install {name} --profile minimal` makes this step do so)"
        );
        return Ok(());
    };
    println!("msrv: building the workspace with toolchain {toolchain}");
    // Through rustup's proxy: the `cargo` running xtask is one toolchain's own binary, which
    // knows no `+toolchain`.
    let status = Command::new("cargo")
        .arg(format!("+{toolchain}"))
        .args([
            "check",
            "--workspace",
            "--all-features",
            "--all-targets",
            "--locked",
        ])
        .arg("--target-dir")
        .arg(root.join("target").join("msrv"))
        .current_dir(root)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .status()
        .map_err(|e| format!("cannot run cargo +{toolchain}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the workspace does not build with toolchain {name} ({status})"
        ))
    }
}

/// The toolchain of version `name` (`1.89`, or `1.89.N`, either with a host suffix) that
/// `rustup toolchain list` output names, spelled as listed so that rustup installs nothing.
fn installed_toolchain<'a>(listed: &'a str, name: &str) -> Option<&'a str> {
    listed
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .find(|toolchain| {
            *toolchain == name
                || toolchain.starts_with(&format!("{name}-"))
                || toolchain.starts_with(&format!("{name}."))
        })
}

/// `rust-version` from `[workspace.package]` of the root manifest.
fn declared(root: &Path) -> Result<Version, String> {
    let manifest = root.join("Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let mut section = "";
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section != "[workspace.package]" {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim() == "rust-version"
        {
            let value = value.trim().trim_matches('"');
            return parse_version(value)
                .ok_or_else(|| format!("Cargo.toml: rust-version `{value}` is not a version"));
        }
    }
    Err("Cargo.toml: no rust-version in [workspace.package]".to_owned())
}

fn parse_version(text: &str) -> Option<Version> {
    let mut parts = text.split('.').map(|p| p.parse::<u32>());
    let major = parts.next()?.ok()?;
    let minor = parts.next()?.ok()?;
    let patch = match parts.next() {
        Some(p) => p.ok()?,
        None => 0,
    };
    Some((major, minor, patch))
}

fn show((major, minor, patch): Version) -> String {
    format!("{major}.{minor}.{patch}")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name() == "target" {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines that chain a `let` pattern with `&&` in an `if` or `while` condition.
fn let_chains(shown: &str, text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or("").trim();
            let opens_with_let = ["if let ", "while let ", "} else if let "]
                .iter()
                .any(|start| code.starts_with(start));
            // Spelled in halves so that this file does not match itself.
            code.contains(concat!("&", "& let ")) || (opens_with_let && code.contains(" && "))
        })
        .map(|(i, _)| {
            format!(
                "{shown}:{}: let chain (stable since {}); nest the `if let` instead",
                i + 1,
                show(LET_CHAINS)
            )
        })
        .collect()
}

/// `cargo metadata` of the workspace, as JSON text.
fn metadata(root: &Path) -> Result<String, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("could not start `cargo metadata`: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo metadata` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("`cargo metadata` is not UTF-8: {e}"))
}

/// Packages of the metadata whose `rust_version` is newer than `declared`.
///
/// xtask has no JSON parser (no dependencies), so this reads the two fields it needs in the
/// order cargo writes a package: its `manifest_path`, then later its `rust_version`. Neither
/// key occurs inside a package's dependency or target lists.
fn newer_dependencies(metadata: &str, declared: Version) -> Vec<String> {
    const PATH: &str = "\"manifest_path\":\"";
    const RUST: &str = "\"rust_version\":\"";
    let mut problems = Vec::new();
    let mut rest = metadata;
    while let Some(at) = rest.find(RUST) {
        let before = &rest[..at];
        let package = before
            .rfind(PATH)
            .map(|p| &before[p + PATH.len()..])
            .and_then(|p| p.split('"').next())
            .unwrap_or("(unknown package)");
        rest = &rest[at + RUST.len()..];
        let value = rest.split('"').next().unwrap_or("");
        match parse_version(value) {
            Some(version) if version > declared => problems.push(format!(
                "{package} needs Rust {value}, newer than our rust-version {}",
                show(declared)
            )),
            Some(_) => {}
            None => problems.push(format!(
                "{package}: rust-version `{value}` is not a version"
            )),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::{installed_toolchain, let_chains, newer_dependencies, parse_version};

    #[test]
    fn the_declared_toolchain_is_found_as_rustup_lists_it() {
        let listed = "stable-x86_64-unknown-linux-gnu (active, default)\n\
                      1.95.0-x86_64-unknown-linux-gnu\n\
                      1.89.0-x86_64-unknown-linux-gnu\n";
        assert_eq!(
            installed_toolchain(listed, "1.89"),
            Some("1.89.0-x86_64-unknown-linux-gnu")
        );
        assert_eq!(installed_toolchain(listed, "1.9"), None);
        assert_eq!(
            installed_toolchain("1.89-x86_64-unknown-linux-gnu\n", "1.89"),
            Some("1.89-x86_64-unknown-linux-gnu")
        );
        assert_eq!(installed_toolchain("", "1.89"), None);
    }

    #[test]
    fn let_chains_are_found_and_plain_conditions_are_not() {
        // Built from pieces so that this file does not match itself.
        let text = [
            "if let Some(x) = a AND x > 1 {",
            "if a AND let Some(x) = b {",
            "if let Some(x) = a {",
            "let both = a AND b;",
            "// if let Some(x) = a AND b",
        ]
        .join("\n")
        .replace("AND", concat!("&", "&"));
        let text = text.as_str();
        let found = let_chains("f.rs", text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("f.rs:1: let chain"));
        assert!(found[1].starts_with("f.rs:2: let chain"));
    }

    #[test]
    fn dependencies_newer_than_declared_are_named() {
        let metadata = r#"{"packages":[
            {"name":"old","manifest_path":"/r/old-1.0/Cargo.toml","rust_version":"1.70"},
            {"name":"none","manifest_path":"/r/none-1.0/Cargo.toml","rust_version":null},
            {"name":"new","dependencies":[{"name":"x"}],"manifest_path":"/r/new-2.0/Cargo.toml","rust_version":"1.88.1"}
        ]}"#;
        let problems = newer_dependencies(metadata, parse_version("1.85").unwrap());
        assert_eq!(
            problems,
            ["/r/new-2.0/Cargo.toml needs Rust 1.88.1, newer than our rust-version 1.85.0"]
        );
    }
}
