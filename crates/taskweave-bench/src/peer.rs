//! The Python peers: finding python3, running a peer script from `peers/`, and reading the one
//! line of `key=value` pairs it prints.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cases::Config;

/// The directory of the peer scripts, beside this crate's manifest.
pub(crate) fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// The first `python3` on `PATH` that actually runs (a version-manager shim may exist without a
/// Python behind it).
pub(crate) fn find_python() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("python3"))
        .filter(|candidate| candidate.is_file())
        .find(|candidate| {
            Command::new(candidate)
                .args(["-c", "import asyncio"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// `python3`'s version and path, for the run's header.
pub(crate) fn describe(python: &Path) -> String {
    let version = Command::new(python)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!("{version} ({})", python.display())
}

/// Runs `peers/<script>` with `args` and returns the pairs it printed, or `None` when there is
/// no python3 (the harness already said so).
///
/// # Panics
///
/// When the script fails or prints no pairs: the case cannot measure.
pub(crate) fn python(config: &Config, script: &str, args: &[String]) -> Option<KeyValues> {
    let python = config.python.as_ref()?;
    Some(run_script(python, &config.peers_dir, script, args))
}

/// Runs `peers_dir/<script>` with `python` and `args`; the pairs it printed.
///
/// # Panics
///
/// As [`python`].
pub(crate) fn run_script(
    python: &Path,
    peers_dir: &Path,
    script: &str,
    args: &[String],
) -> KeyValues {
    let path = peers_dir.join(script);
    let output = Command::new(python)
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        panic!(
            "{script} {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    KeyValues::parse(script, &stdout).unwrap_or_else(|e| panic!("{e}"))
}

/// The `distributed` release the Dask peer runs on (the one the reference numbers in
/// `docs/benchmarks.md` were measured with).
pub(crate) const DISTRIBUTED: &str = "2026.8.0";

/// A python that imports `distributed` [`DISTRIBUTED`]: the one of the virtualenv
/// `<target>/taskweave-bench/dask-venv`, made with the run's python3 and pip-installed into on
/// first use, then reused. Looked up once per run.
///
/// Errors (the Dask rows are then skipped with a note) when there is no python3, or the
/// virtualenv cannot be made or `distributed` cannot be installed (no network to the package
/// index, for one).
pub(crate) fn dask_python(config: &Config) -> Result<PathBuf, String> {
    static FOUND: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let python = config
                .python
                .as_ref()
                .ok_or("python3 was not found, so there is no virtualenv for Dask")?;
            make_dask_venv(
                python,
                &crate::report::target_dir().join("taskweave-bench/dask-venv"),
            )
        })
        .clone()
}

fn make_dask_venv(python: &Path, venv: &Path) -> Result<PathBuf, String> {
    let venv_python = venv.join("bin").join("python");
    let has_pinned = |p: &Path| {
        Command::new(p)
            .args(["-c", "import distributed; print(distributed.__version__)"])
            .output()
            .is_ok_and(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == DISTRIBUTED
            })
    };
    if has_pinned(&venv_python) {
        return Ok(venv_python);
    }
    println!(
        "   making a virtualenv for the Dask peer at {} (distributed=={DISTRIBUTED}, once)",
        venv.display()
    );
    let run = |program: &Path, args: &[&str]| -> Result<(), String> {
        let output = Command::new(program)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Err(format!(
                "`{} {}` failed ({}): {}",
                program.display(),
                args.join(" "),
                output.status,
                last.trim()
            ))
        }
    };
    if !venv_python.is_file() {
        let venv_arg = venv.to_string_lossy();
        run(python, &["-m", "venv", &venv_arg])?;
    }
    let spec = format!("distributed=={DISTRIBUTED}");
    run(
        &venv_python,
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &spec,
        ],
    )?;
    if has_pinned(&venv_python) {
        Ok(venv_python)
    } else {
        Err(format!(
            "{} does not import distributed {DISTRIBUTED} after installing it",
            venv_python.display()
        ))
    }
}

/// The `key=value` pairs of a peer's (or child's) last output line; words without `=`, such as
/// units, are skipped.
#[derive(Debug)]
pub(crate) struct KeyValues {
    source: String,
    pairs: Vec<(String, f64)>,
}

impl KeyValues {
    /// Parses the last non-empty line of `output`.
    ///
    /// Errors when there is no line, a value is not a number, or no pair at all.
    pub(crate) fn parse(source: &str, output: &str) -> Result<KeyValues, String> {
        let line = output
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .ok_or_else(|| format!("{source} printed nothing"))?;
        let mut pairs = Vec::new();
        for word in line.split_whitespace() {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            let value: f64 = value
                .parse()
                .map_err(|_| format!("{source}: `{word}` is not key=number"))?;
            pairs.push((key.to_owned(), value));
        }
        if pairs.is_empty() {
            return Err(format!("{source} printed no key=value pairs: `{line}`"));
        }
        Ok(KeyValues {
            source: source.to_owned(),
            pairs,
        })
    }

    /// The value of `key`.
    ///
    /// # Panics
    ///
    /// When the output had no such key: the peer and the case disagree.
    pub(crate) fn get(&self, key: &str) -> f64 {
        match self.pairs.iter().find(|(k, _)| k == key) {
            Some((_, value)) => *value,
            None => panic!("{} printed no `{key}`", self.source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KeyValues;

    #[test]
    fn pairs_are_read_and_units_skipped() {
        let out = "warming up\nspawn_await=5861.7 ns/task n=100000 count\n";
        let kv = KeyValues::parse("tasks.py", out).unwrap();
        assert_eq!(kv.get("spawn_await"), 5861.7);
        assert_eq!(kv.get("n"), 100000.0);
    }

    #[test]
    fn bad_output_is_an_error() {
        assert!(
            KeyValues::parse("p", "")
                .unwrap_err()
                .contains("printed nothing")
        );
        assert!(
            KeyValues::parse("p", "x=abc")
                .unwrap_err()
                .contains("not key=number")
        );
        assert!(
            KeyValues::parse("p", "hello")
                .unwrap_err()
                .contains("no key=value")
        );
    }
}
