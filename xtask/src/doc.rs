//! `cargo xtask doc`: the API docs of every published crate, with rustdoc warnings (broken
//! intra-doc links above all) as errors, then a look at the rendered pages for links that
//! rustdoc left as text without a warning.
//!
//! Why one crate at a time: rustdoc writes a link into another crate only if that crate's docs
//! already exist in `target/doc`; otherwise it keeps "[`Promise`]" as literal text and says
//! nothing. A plain `cargo doc --workspace --no-deps` documents the crates in parallel, so which
//! links survive depends on scheduling. Documenting dependencies first, from a clean slate,
//! makes every page come out linked.

use std::fs;
use std::path::{Path, PathBuf};

use crate::command::Cmd;
use crate::tidy;

/// rustdoc's flags for every crate: warnings, and broken intra-doc links by name, are errors.
const RUSTDOCFLAGS: &str = "-D warnings -D rustdoc::broken_intra_doc_links";

/// Builds the docs and checks the rendered pages.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    let crates = build(root)?;
    println!(
        "docs ({}): {}",
        crates.join(", "),
        doc_dir(root).join("taskweave/index.html").display()
    );
    Ok(())
}

/// Documents each published crate after the crates it depends on (all features, as docs.rs
/// does), then fails on any intra-doc link that rendered as text. Returns the crates, in the
/// order documented.
pub(crate) fn build(root: &Path) -> Result<Vec<String>, String> {
    let crates = documentation_order(root)?;
    let doc_dir = doc_dir(root);
    for name in &crates {
        // Stale pages from an earlier, racing `cargo doc` would otherwise count as fresh.
        let dir = doc_dir.join(name.replace('-', "_"));
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", dir.display())),
        }
    }
    for name in &crates {
        Cmd::cargo(root, &["doc", "--no-deps", "--all-features", "-p", name])
            .env_flags("RUSTDOCFLAGS", RUSTDOCFLAGS)
            .run()?;
    }
    let problems = unresolved_links(root, &doc_dir, &crates)?;
    if problems.is_empty() {
        return Ok(crates);
    }
    for problem in &problems {
        println!("doc: {problem}");
    }
    Err(format!(
        "{} intra-doc link(s) rendered as text, listed above",
        problems.len()
    ))
}

fn doc_dir(root: &Path) -> PathBuf {
    crate::target_dir(root).join("doc")
}

/// The published crates under `crates/`, each after every taskweave crate it depends on.
fn documentation_order(root: &Path) -> Result<Vec<String>, String> {
    let mut pending: Vec<(String, Vec<String>)> = Vec::new();
    for (shown, text) in tidy::crate_manifests(root)? {
        let manifest = tidy::parse_manifest(&text);
        let name = manifest
            .name
            .ok_or_else(|| format!("{shown}: no [package] name"))?;
        if manifest.publish {
            pending.push((name, manifest.taskweave_dependencies));
        }
    }
    topological(pending)
}

/// Orders `crates` (name, dependencies) so that each comes after its dependencies among them;
/// ties in name order. Dependencies outside the list are ignored.
fn topological(mut crates: Vec<(String, Vec<String>)>) -> Result<Vec<String>, String> {
    crates.sort();
    let names: Vec<String> = crates.iter().map(|(n, _)| n.clone()).collect();
    let mut done: Vec<String> = Vec::new();
    while !crates.is_empty() {
        let ready = crates
            .iter()
            .position(|(_, deps)| deps.iter().all(|d| done.contains(d) || !names.contains(d)));
        let Some(at) = ready else {
            let left: Vec<&str> = crates.iter().map(|(n, _)| n.as_str()).collect();
            return Err(format!(
                "the crates {} depend on each other in a cycle",
                left.join(", ")
            ));
        };
        done.push(crates.remove(at).0);
    }
    Ok(done)
}

/// Every "[`Name`]" on the rendered pages of `crates` whose text our own doc comments write as
/// an intra-doc link: rustdoc left it unresolved. Brackets in docs that other crates' traits
/// bring onto our pages (tracing's `Instrument`, futures' `StreamExt`) are theirs: with
/// `--no-deps` their targets are not documented here, and docs.rs links them.
fn unresolved_links(root: &Path, doc_dir: &Path, crates: &[String]) -> Result<Vec<String>, String> {
    let mut ours = Vec::new();
    for name in crates {
        let mut sources = Vec::new();
        collect(
            &root.join("crates").join(name).join("src"),
            "rs",
            &mut sources,
        )?;
        for path in sources {
            let text = fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            ours.extend(doc_link_texts(&text));
        }
    }
    ours.sort();
    ours.dedup();
    let mut problems = Vec::new();
    for name in crates {
        let mut pages = Vec::new();
        collect(&doc_dir.join(name.replace('-', "_")), "html", &mut pages)?;
        pages.sort();
        for page in pages {
            let html = fs::read_to_string(&page)
                .map_err(|e| format!("cannot read {}: {e}", page.display()))?;
            let shown = page.strip_prefix(doc_dir).unwrap_or(&page).display();
            for text in bracketed_code(&html) {
                if ours.binary_search(&text).is_ok() {
                    problems.push(format!("{shown}: [`{text}`] is not a link"));
                }
            }
        }
    }
    problems.dedup();
    Ok(problems)
}

/// The files ending in `.{ext}` below `dir`.
fn collect(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, ext, out)?;
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    Ok(())
}

/// The `X` of every "[`X`]" in the `///` and `//!` lines of a Rust source.
fn doc_link_texts(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in source.lines() {
        let line = line.trim_start();
        if !(line.starts_with("///") || line.starts_with("//!")) {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("[`") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find("`]") else {
                break;
            };
            found.push(rest[..end].to_owned());
            rest = &rest[end + 2..];
        }
    }
    found
}

/// The text of every `[<code>X</code>]` in rendered HTML, entities decoded: what rustdoc
/// makes of "[`X`]" when it cannot link it.
fn bracketed_code(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("[<code>") {
        rest = &rest[at + "[<code>".len()..];
        let Some(end) = rest.find("</code>") else {
            break;
        };
        if rest[end..].starts_with("</code>]") {
            found.push(decode_entities(&rest[..end]));
        }
        rest = &rest[end..];
    }
    found
}

fn decode_entities(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::{bracketed_code, doc_link_texts, topological};

    #[test]
    fn dependencies_are_documented_first() {
        let order = topological(vec![
            (
                "taskweave".into(),
                vec!["taskweave-bridge".into(), "taskweave-core".into()],
            ),
            ("taskweave-bridge".into(), vec!["taskweave-core".into()]),
            ("taskweave-core".into(), vec![]),
            ("taskweave-macros".into(), vec!["not-listed".into()]),
        ])
        .unwrap();
        assert_eq!(
            order,
            [
                "taskweave-core",
                "taskweave-bridge",
                "taskweave",
                "taskweave-macros"
            ]
        );
        let cycle = topological(vec![
            ("a".into(), vec!["b".into()]),
            ("b".into(), vec!["a".into()]),
        ]);
        assert!(cycle.unwrap_err().contains("cycle"));
    }

    #[test]
    fn link_texts_come_from_doc_comments_only() {
        let source = "//! See [`Promise`]s and [`Error::Shutdown`].\n\
                      let s = \"[`NotDoc`]\";\n    /// [`gather()`] and [`Vec<T>`]\n";
        assert_eq!(
            doc_link_texts(source),
            ["Promise", "Error::Shutdown", "gather()", "Vec<T>"]
        );
    }

    #[test]
    fn unresolved_links_are_found_in_html() {
        let html = "<p>the general future, [<code>Promise</code>]s; a \
                    <a href=\"x\"><code>Task</code></a>; [<code>Vec&lt;T&gt;</code>]; \
                    [<code>a</code> b]</p>";
        assert_eq!(bracketed_code(html), ["Promise", "Vec<T>"]);
    }
}
