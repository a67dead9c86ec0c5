//! Running the tools xtask drives (cargo, mostly): one command line, shown before it runs, with
//! its exit status turned into an error message.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A command to run from the workspace root, with the extra environment it needs.
pub(crate) struct Cmd {
    program: OsString,
    args: Vec<String>,
    envs: Vec<(String, OsString)>,
    dir: PathBuf,
}

impl Cmd {
    /// `cargo` with `args`, the same cargo that runs xtask when there is one.
    pub(crate) fn cargo(root: &Path, args: &[&str]) -> Cmd {
        let program = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        Cmd {
            program,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            envs: Vec::new(),
            dir: root.to_path_buf(),
        }
    }

    /// Appends more arguments.
    pub(crate) fn args(mut self, args: &[String]) -> Cmd {
        self.args.extend(args.iter().cloned());
        self
    }

    /// Sets an environment variable for the command.
    pub(crate) fn env(mut self, key: &str, value: impl Into<OsString>) -> Cmd {
        self.envs.push((key.to_owned(), value.into()));
        self
    }

    /// Adds `flags` to a space-separated flags variable such as `RUSTFLAGS`, keeping what the
    /// caller's environment already puts there.
    pub(crate) fn env_flags(self, key: &str, flags: &str) -> Cmd {
        let value = match std::env::var(key) {
            Ok(existing) if !existing.trim().is_empty() => format!("{existing} {flags}"),
            _ => flags.to_owned(),
        };
        self.env(key, value)
    }

    /// The command as a person would type it, environment first.
    pub(crate) fn display(&self) -> String {
        let mut parts: Vec<String> = self
            .envs
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.to_string_lossy()))
            .collect();
        parts.push("cargo".to_owned());
        parts.extend(self.args.iter().cloned());
        parts.join(" ")
    }

    /// Runs the command with the terminal's stdout and stderr.
    ///
    /// Errors when it cannot start or exits unsuccessfully.
    pub(crate) fn run(&self) -> Result<(), String> {
        println!("$ {}", self.display());
        let status = self
            .command()
            .status()
            .map_err(|e| format!("could not start `{}`: {e}", self.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`{}` failed ({status})", self.display()))
        }
    }

    /// Runs the command, echoing its stdout line by line and handing each line to `on_line`.
    ///
    /// Errors when it cannot start or exits unsuccessfully.
    pub(crate) fn run_watching(&self, mut on_line: impl FnMut(&str)) -> Result<(), String> {
        println!("$ {}", self.display());
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not start `{}`: {e}", self.display()))?;
        if let Some(stdout) = child.stdout.take() {
            for line in BufReader::new(stdout).lines() {
                let line = line.map_err(|e| format!("reading `{}`: {e}", self.display()))?;
                println!("{line}");
                on_line(&line);
            }
        }
        let status = child
            .wait()
            .map_err(|e| format!("waiting for `{}`: {e}", self.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`{}` failed ({status})", self.display()))
        }
    }

    /// `true` when the command runs and succeeds; its output is discarded. For probes such as
    /// `cargo fmt --version`.
    pub(crate) fn succeeds_quietly(&self) -> bool {
        self.command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args).current_dir(&self.dir);
        for (k, v) in &self.envs {
            command.env(k, v);
        }
        command
    }
}
