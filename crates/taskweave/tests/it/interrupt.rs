//! Ctrl-C: a real SIGINT sent to a real child process (this test binary run again, on one child
//! test) that is running a process-pool map.
//!
//! Each `child_*` test is also a test on its own: without `WAIT_FOR_CTRL_C` in its environment its
//! map is finite and it checks the results. With it, the map is endless and the child waits for
//! the parent's signal.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use taskweave::{Error, OnInterrupt, ProcessPoolExecutor, Runtime};

/// Set in a child's environment: run until Ctrl-C.
const WAIT_FOR_CTRL_C: &str = "TASKWEAVE_TEST_WAIT_FOR_CTRL_C";

fn waiting() -> bool {
    std::env::var_os(WAIT_FOR_CTRL_C).is_some()
}

/// Prints `marker` when dropped: shows that the main future's clean-up ran.
struct Marker(&'static str);

impl Drop for Marker {
    fn drop(&mut self) {
        println!("{}", self.0);
    }
}

fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(20));
    x * x
}

/// The main future of the children: a clean-up guard, a pool owned by the future, and a map
/// that never ends when waiting for Ctrl-C.
async fn pool_map() -> Result<Vec<u64>, Error> {
    let _guard = Marker("clean-up ran");
    let pool = ProcessPoolExecutor::builder().max_workers(2).build()?;
    let inputs: Box<dyn Iterator<Item = u64> + Send> = if waiting() {
        Box::new(0..)
    } else {
        Box::new(0..6)
    };
    let mut map = pool.map(slow_square, inputs);
    let mut out = Vec::new();
    while let Some(r) = map.next_async().await {
        out.push(r?);
        if out.len() == 1 {
            let pids: Vec<String> = pool.worker_pids().iter().map(u32::to_string).collect();
            println!("workers {}", pids.join(" "));
            println!("ready");
        }
    }
    Ok(out)
}

#[test]
fn child_map_in_run() {
    let out = taskweave::run(pool_map()).unwrap().unwrap();
    assert_eq!(out, vec![0, 1, 4, 9, 16, 25]);
}

#[test]
fn child_map_in_run_task() {
    let out = taskweave::run_task(pool_map()).unwrap().unwrap();
    assert_eq!(out, vec![0, 1, 4, 9, 16, 25]);
}

#[test]
fn child_map_in_runtime_run() {
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let out = rt.run_try(pool_map()).unwrap();
    assert_eq!(out, vec![0, 1, 4, 9, 16, 25]);
}

#[taskweave::main(worker_threads = 2)]
async fn attributed_main() -> Result<Vec<u64>, Error> {
    pool_map().await
}

#[test]
fn child_map_in_attributed_main() {
    assert_eq!(attributed_main().unwrap(), vec![0, 1, 4, 9, 16, 25]);
}

#[test]
fn child_main_ends_while_ctrl_c_is_pending() {
    let out = taskweave::run(async {
        let _guard = Marker("clean-up ran");
        println!("ready");
        if waiting() {
            // Blocks inside the poll: the Ctrl-C arrives meanwhile, and the future then ends
            // without another await, as a main that was just finishing does.
            std::thread::sleep(Duration::from_millis(500));
        }
        5
    });
    assert_eq!(out.unwrap(), 5);
}

/// A clean-up that hangs (for a minute) when waiting for Ctrl-C.
struct StuckCleanUp;

impl Drop for StuckCleanUp {
    fn drop(&mut self) {
        println!("clean-up started");
        let stuck_for = if waiting() {
            Duration::from_secs(60)
        } else {
            Duration::from_millis(1)
        };
        std::thread::sleep(stuck_for);
        println!("clean-up finished");
    }
}

#[test]
fn child_stuck_cleanup() {
    let out = taskweave::run(async {
        let _stuck = StuckCleanUp;
        pool_map().await
    });
    assert_eq!(out.unwrap().unwrap().len(), 6);
}

#[test]
fn child_stuck_cleanup_in_run_task() {
    let out = taskweave::run_task(async {
        let _stuck = StuckCleanUp;
        pool_map().await
    });
    assert_eq!(out.unwrap().unwrap().len(), 6);
}

#[test]
fn child_return_error_then_default_ctrl_c() {
    let rt = Runtime::builder()
        .on_interrupt(OnInterrupt::ReturnError)
        .build()
        .unwrap();
    let out = rt.run_try(pool_map());
    if !waiting() {
        assert_eq!(out.unwrap().len(), 6);
        return;
    }
    assert!(out.as_ref().is_err_and(|e| e.is_interrupted()), "{out:?}");
    println!("run returned interrupted");
    // SIGINT has its default disposition again: the next one ends the process by the signal.
    std::thread::sleep(Duration::from_secs(60));
    panic!("the second SIGINT did not end the process");
}

#[test]
fn child_off_leaves_sigint_alone() {
    let rt = Runtime::builder()
        .on_interrupt(OnInterrupt::Off)
        .build()
        .unwrap();
    let out = rt.run_try(pool_map()).unwrap();
    assert_eq!(out.len(), 6);
}

#[taskweave::main(worker_threads = 2, on_interrupt = off)]
async fn attributed_main_leaving_ctrl_c_alone() -> Result<Vec<u64>, Error> {
    pool_map().await
}

#[test]
fn child_attribute_off_leaves_sigint_alone() {
    assert_eq!(attributed_main_leaving_ctrl_c_alone().unwrap().len(), 6);
}

/// A child test running with its stdout read line by line.
struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

fn start(test: &str) -> Running {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        // Its own process group, as a terminal gives a program: Ctrl-C at a terminal goes to
        // the whole group, the pool's workers included.
        .process_group(0)
        .args([
            &format!("interrupt::{test}"),
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(WAIT_FOR_CTRL_C, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the child test starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Running {
        child,
        lines,
        seen: Vec::new(),
    }
}

impl Running {
    /// Waits (bounded) for a line holding `prefix` (the test harness may have written on the
    /// same line before it); returns the line from `prefix` on.
    fn line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Some(at) = line.find(prefix) {
                        return line[at..].to_owned();
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no line {prefix:?} from the child; it wrote {:?}",
                        self.seen
                    );
                }
            }
        }
    }

    /// SIGINT to the child alone.
    fn ctrl_c(&self) {
        self.kill_int(&self.child.id().to_string());
    }

    /// SIGINT to the child's process group: what Ctrl-C at a terminal does.
    fn ctrl_c_at_the_terminal(&self) {
        self.kill_int(&format!("-{}", self.child.id()));
    }

    fn kill_int(&self, target: &str) {
        let status = Command::new("kill")
            .args(["-INT", "--", target])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits (bounded by `limit`) for the child to end; returns its status and everything it
    /// wrote.
    fn exit(mut self, limit: Duration) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the child did not end within {limit:?}; it wrote {:?}",
                    self.seen
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // The reader thread ends at end-of-file.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (status, self.seen)
    }
}

fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie is dead too.
        Ok(stat) => stat
            .rfind(')')
            .is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z')),
    }
}

fn worker_pids(line: &str) -> Vec<u32> {
    let pids: Vec<u32> = line
        .split_whitespace()
        .skip(1)
        .map(|p| p.parse().expect("a pid"))
        .collect();
    assert!(!pids.is_empty(), "no workers in {line:?}");
    pids
}

/// SIGINT while a process-pool map runs: clean-up ran, the workers are gone, status 130.
fn interrupt_cleans_up_and_exits_130(test: &str, at_the_terminal: bool) {
    let mut child = start(test);
    let workers = worker_pids(&child.line("workers"));
    assert!(workers.iter().all(|&pid| !gone(pid)));
    child.line("ready");
    if at_the_terminal {
        child.ctrl_c_at_the_terminal();
    } else {
        child.ctrl_c();
    }
    let (status, out) = child.exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(130), "{status:?}; wrote {out:?}");
    assert!(
        out.iter().any(|l| l.contains("clean-up ran")),
        "wrote {out:?}"
    );
    // The pool was dropped with the main future, which joined its workers before the exit.
    let still: Vec<u32> = workers.into_iter().filter(|&pid| !gone(pid)).collect();
    assert!(still.is_empty(), "workers left alive: {still:?}");
}

#[test]
fn ctrl_c_cancels_run_cleans_up_and_exits_130() {
    interrupt_cleans_up_and_exits_130("child_map_in_run", false);
}

#[test]
fn ctrl_c_at_the_terminal_also_reaching_the_workers_still_exits_130() {
    interrupt_cleans_up_and_exits_130("child_map_in_run", true);
}

#[test]
fn ctrl_c_stops_the_main_task_of_run_task_cleans_up_and_exits_130() {
    interrupt_cleans_up_and_exits_130("child_map_in_run_task", false);
}

#[test]
fn ctrl_c_cancels_runtime_run_cleans_up_and_exits_130() {
    interrupt_cleans_up_and_exits_130("child_map_in_runtime_run", false);
}

#[test]
fn ctrl_c_cancels_an_attributed_main_cleans_up_and_exits_130() {
    interrupt_cleans_up_and_exits_130("child_map_in_attributed_main", false);
}

#[test]
fn a_second_ctrl_c_exits_at_once_while_cleanup_is_stuck() {
    second_ctrl_c_exits_at_once("child_stuck_cleanup");
}

#[test]
fn a_second_ctrl_c_exits_at_once_while_the_main_tasks_cleanup_is_stuck() {
    second_ctrl_c_exits_at_once("child_stuck_cleanup_in_run_task");
}

fn second_ctrl_c_exits_at_once(test: &str) {
    let mut child = start(test);
    child.line("ready");
    child.ctrl_c();
    child.line("clean-up started");
    let sent = Instant::now();
    child.ctrl_c();
    // The stuck clean-up would take a minute.
    let (status, out) = child.exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(130), "{status:?}; wrote {out:?}");
    assert!(sent.elapsed() < Duration::from_secs(20));
    assert!(
        !out.iter().any(|l| l.contains("clean-up finished")),
        "wrote {out:?}"
    );
}

#[test]
fn return_error_hands_back_interrupted_and_restores_sigint() {
    use std::os::unix::process::ExitStatusExt;
    let mut child = start("child_return_error_then_default_ctrl_c");
    child.line("ready");
    child.ctrl_c();
    child.line("run returned interrupted");
    child.ctrl_c();
    let (status, out) = child.exit(Duration::from_secs(20));
    assert_eq!(status.signal(), Some(2), "{status:?}; wrote {out:?}");
    assert!(
        out.iter().any(|l| l.contains("clean-up ran")),
        "wrote {out:?}"
    );
}

#[test]
fn off_installs_no_handler() {
    default_sigint_ends("child_off_leaves_sigint_alone");
}

#[test]
fn the_attributes_off_installs_no_handler() {
    default_sigint_ends("child_attribute_off_leaves_sigint_alone");
}

fn default_sigint_ends(test: &str) {
    use std::os::unix::process::ExitStatusExt;
    let mut child = start(test);
    child.line("ready");
    child.ctrl_c();
    let (status, out) = child.exit(Duration::from_secs(20));
    assert_eq!(status.signal(), Some(2), "{status:?}; wrote {out:?}");
    assert!(
        !out.iter().any(|l| l.contains("clean-up ran")),
        "wrote {out:?}"
    );
}

#[test]
fn a_main_that_ends_while_ctrl_c_is_pending_still_exits_130() {
    let mut child = start("child_main_ends_while_ctrl_c_is_pending");
    child.line("ready");
    child.ctrl_c();
    let (status, out) = child.exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(130), "{status:?}; wrote {out:?}");
    assert!(
        out.iter().any(|l| l.contains("clean-up ran")),
        "wrote {out:?}"
    );
}
