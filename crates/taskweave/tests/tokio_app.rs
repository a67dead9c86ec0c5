//! Debug mode inside a plain `#[tokio::main]` application that installed its own
//! `tracing_subscriber::fmt`: switched on by one line (`taskweave::debug::enable()`) or by
//! `TASKWEAVE_DEBUG=1` alone, its reports appear in the application's own log.
//!
//! This test binary has no test harness: run without arguments it is the test, and starts
//! itself again as the application, once per way of switching debug mode on, reading the
//! application's stdout.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROLE: &str = "TOKIO_APP_ROLE";
const WAIT: Duration = Duration::from_secs(30);

fn main() {
    match std::env::var(ROLE) {
        Ok(role) => application(&role),
        Err(_) => test(),
    }
}

/// The application: a plain tokio program that uses taskweave.
#[tokio::main]
async fn application(role: &str) {
    tracing_subscriber::fmt()
        .with_writer(std::io::stdout)
        .init();
    let debug = match role {
        "enable" => Some(taskweave::debug::enable().expect("inside the tokio runtime")),
        _ => None,
    };
    tracing::info!("the application starts");
    // Never awaited: its handle is dropped while it is still pending.
    drop(taskweave::create_task_named(
        "forgotten",
        tokio::time::sleep(Duration::from_millis(50)),
    ));
    // A slow poll: it holds its worker thread for 150 ms.
    taskweave::create_task_named("blocker", async {
        std::thread::sleep(Duration::from_millis(150));
    })
    .await
    .expect("the blocker finishes");
    // Still pending when debug mode is switched off at the end of main.
    taskweave::create_task_named("listener", std::future::pending::<()>()).detach();
    let answer = taskweave::to_thread(|| 6 * 7)
        .await
        .expect("to_thread runs");
    drop(debug);
    tracing::info!(answer, "the application ends");
}

struct Ran {
    stdout: String,
    stderr: String,
}

/// Runs this binary as the application with `role` and `envs`, waiting at most [`WAIT`].
fn run_application(role: &str, envs: &[(&str, &Path)]) -> Ran {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.env(ROLE, role)
        .env_remove("TASKWEAVE_DEBUG")
        .env_remove("TASKWEAVE_TRACE")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the application starts");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).map(|_| text)
    });
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the application") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the {role} application did not end within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let ran = Ran {
        stdout: out.join().unwrap().expect("stdout is text"),
        stderr: err.join().unwrap().expect("stderr is text"),
    };
    assert!(
        status.success(),
        "the {role} application failed ({status}):\n{}\n{}",
        ran.stdout,
        ran.stderr
    );
    assert!(
        ran.stdout.contains("the application ends answer=42"),
        "the {role} application ran to its end:\n{}",
        ran.stdout
    );
    ran
}

/// The lines of the application's log that are debug-mode reports of `kind`.
fn reports<'a>(ran: &'a Ran, kind: &str) -> Vec<&'a str> {
    let field = format!("kind=\"{kind}\"");
    ran.stdout
        .lines()
        .filter(|l| l.contains("taskweave::debug") && l.contains(&field))
        .collect()
}

fn assert_live_reports(role: &str, ran: &Ran) {
    let never = reports(ran, "never_awaited");
    assert_eq!(never.len(), 1, "{role}:\n{}", ran.stdout);
    assert!(never[0].contains(" WARN "), "{}", never[0]);
    assert!(never[0].contains("name='forgotten'"), "{}", never[0]);
    let slow = reports(ran, "slow_poll");
    assert_eq!(slow.len(), 1, "{role}:\n{}", ran.stdout);
    assert!(
        slow[0].contains("Executing <Task name='blocker'"),
        "{}",
        slow[0]
    );
}

fn trace_names(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("no timeline at {path:?}: {e}"))
}

fn test() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("taskweave-tokio-app-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");

    // Off: the same application reports nothing.
    let off = run_application("off", &[]);
    assert!(!off.stdout.contains("taskweave::debug"), "{}", off.stdout);
    println!("debug mode off: no reports");

    // One line in main.
    let trace = dir.join("enable.json");
    let on = run_application("enable", &[("TASKWEAVE_TRACE", &trace)]);
    assert_live_reports("enable", &on);
    let pending = reports(&on, "pending_at_shutdown");
    assert_eq!(pending.len(), 1, "{}", on.stdout);
    assert!(
        pending[0].contains("switched off") && pending[0].contains("name='listener'"),
        "{}",
        pending[0]
    );
    assert!(trace_names(&trace).contains("\"blocker\""));
    println!("taskweave::debug::enable(): reports in the application's log");

    // The environment alone.
    let trace = dir.join("env.json");
    let env = run_application(
        "env",
        &[
            ("TASKWEAVE_DEBUG", Path::new("1")),
            ("TASKWEAVE_TRACE", &trace),
        ],
    );
    assert_live_reports("env", &env);
    assert!(trace_names(&trace).contains("\"forgotten\""));
    println!("TASKWEAVE_DEBUG=1: reports in the application's log");

    std::fs::remove_dir_all(&dir).ok();
}
