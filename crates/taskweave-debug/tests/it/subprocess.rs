//! What only a fresh process can show: environment variables read at start-up
//! (`TASKWEAVE_DEBUG`, `TASKWEAVE_TRACE`, `RUST_BACKTRACE`). The parent test runs a child test of
//! this same binary with the variables set; each child test also runs, and asserts, on its own.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use taskweave_core::{Runtime, create_task_named, debug_requested_by_env};

use crate::capture::{self, of_kind};

const CHILD_WAIT: Duration = Duration::from_secs(60);

/// Runs the child test `test` of this binary with `envs`, failing if it does not pass within
/// [`CHILD_WAIT`].
fn run_child(test: &str, envs: &[(&str, &Path)]) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--test-threads=1"])
        .env_remove("TASKWEAVE_DEBUG")
        .env_remove("TASKWEAVE_TRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the child test starts");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + CHILD_WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child test") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {test} did not end within {CHILD_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.success(), "child {test} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child ran its test");
}

#[test]
fn child_panic_report() {
    let _serial = capture::serial();
    let debug = taskweave_debug::Debug::new().build();
    crate::runtime(&debug)
        .run(async {
            let task = create_task_named("exploding", async { panic!("kaboom {}", 42) });
            while !task.done() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .unwrap();
    let reports = of_kind("error_not_retrieved");
    assert_eq!(reports.len(), 1);
    let e = &reports[0];
    assert!(
        e.field("error")
            .unwrap()
            .starts_with("task 'exploding' panicked: kaboom 42")
    );
    let wanted = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
    match e.field("backtrace") {
        Some(bt) => {
            assert!(wanted, "a backtrace without RUST_BACKTRACE");
            assert!(bt.contains("child_panic_report"), "{bt}");
        }
        None => assert!(
            !wanted,
            "RUST_BACKTRACE is set but the report has no backtrace"
        ),
    }
}

#[test]
fn rust_backtrace_puts_the_panic_backtrace_in_the_report() {
    run_child(
        "subprocess::child_panic_report",
        &[("RUST_BACKTRACE", Path::new("1"))],
    );
}

#[test]
fn child_env_switches() {
    let _serial = capture::serial();
    taskweave_debug::enable_on_request();
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    assert_eq!(rt.debug(), debug_requested_by_env());
    let debug = rt.debug();
    rt.run(async {
        drop(create_task_named(
            "forgotten",
            tokio::time::sleep(Duration::from_millis(5)),
        ));
        tokio::time::sleep(Duration::from_millis(20)).await;
    })
    .unwrap();
    assert_eq!(of_kind("never_awaited").len(), usize::from(debug));
    if let Some(path) = std::env::var_os("TASKWEAVE_TRACE") {
        let text = std::fs::read_to_string(path).expect("the trace was written at shutdown");
        assert!(text.contains("\"forgotten\""));
    }
}

#[test]
fn taskweave_debug_and_taskweave_trace_switch_debug_mode_on() {
    let dir = std::env::temp_dir().join(format!("taskweave-debug-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trace.json");
    run_child(
        "subprocess::child_env_switches",
        &[
            ("TASKWEAVE_DEBUG", Path::new("1")),
            ("TASKWEAVE_TRACE", &path),
        ],
    );
    let text = std::fs::read_to_string(&path).expect("the child wrote the trace");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(doc["traceEvents"].as_array().unwrap().len() > 3);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn child_debug_off_stays_off() {
    let _serial = capture::serial();
    // Run by the parent test with TASKWEAVE_DEBUG=1; without it, it checks that nothing reports.
    let env = debug_requested_by_env();
    // Built with debug mode off: the environment must not switch it on behind the program's back.
    let rt = Runtime::builder()
        .worker_threads(1)
        .debug(false)
        .build()
        .unwrap();
    assert!(!rt.debug());
    rt.run(async {
        drop(create_task_named(
            "forgotten",
            tokio::time::sleep(Duration::from_millis(5)),
        ));
        tokio::time::sleep(Duration::from_millis(20)).await;
    })
    .unwrap();
    assert!(of_kind("never_awaited").is_empty());
    // A runtime nobody configured gets debug mode from the environment on first use.
    let plain = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    plain.block_on(async {
        drop(create_task_named(
            "forgotten-on-tokio",
            tokio::time::sleep(Duration::from_millis(5)),
        ));
    });
    let never = of_kind("never_awaited");
    assert_eq!(never.len(), usize::from(env), "{never:?}");
    if env {
        assert_eq!(never[0].field("task.name"), Some("forgotten-on-tokio"));
    }
}

#[test]
fn taskweave_debug_does_not_override_debug_off() {
    run_child(
        "subprocess::child_debug_off_stays_off",
        &[("TASKWEAVE_DEBUG", Path::new("1"))],
    );
}
