//! `cargo xtask doc`: the API docs of every crate, with rustdoc warnings (broken links, missing
//! code blocks' languages, ...) as errors.

use std::path::Path;

use crate::command::Cmd;

/// Builds the docs of the workspace's own crates.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    command(root).run()?;
    println!("docs: {}", root.join("target/doc").display());
    Ok(())
}

/// The doc build that `ci` runs too.
pub(crate) fn command(root: &Path) -> Cmd {
    Cmd::cargo(root, &["doc", "--workspace", "--no-deps"]).env_flags("RUSTDOCFLAGS", "-D warnings")
}
