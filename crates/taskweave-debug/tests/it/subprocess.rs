//! What only a fresh process can show: environment variables read at start-up
//! (`TASKWEAVE_DEBUG`, `TASKWEAVE_TRACE`, `RUST_BACKTRACE`). The parent test runs a child test of
//! this same binary with the variables set; each child test also runs, and asserts, on its own.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use taskweave_core::{Runtime, create_task_named, debug_requested_by_env};

use crate::capture::{self, of_kind};

fn run_child(test: &str, envs: &[(&str, &Path)]) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--test-threads=1"]);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the child test starts");
    assert!(
        out.status.success(),
        "child {test} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the child ran its test"
    );
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
