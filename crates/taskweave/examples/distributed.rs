//! Beyond one machine: the asyncio cheat sheet's map (`intensive_computation` over `[1, 2, 3, 4, 5]`) on two NATS worker processes.
//!
//! The example starts its own `nats-server` (from `TASKWEAVE_NATS_SERVER`, `PATH` or what
//! `cargo xtask nats-server` installed under `target/`) on a free port with JetStream and a
//! temporary store, starts two worker processes of this program, and maps the function over
//! them: `[1, 4, 9, 16, 25]` in input order, each line saying which worker ran it. Then it prints
//! the command lines that run the same workers on other machines.
//!
//! Run with `cargo xtask nats-server && cargo run -p taskweave --features nats --example distributed`.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use taskweave::Error;
use taskweave::nats::{LocalWorkers, Mode, NatsExecutor};

/// The asyncio cheat sheet's function, registered so that workers of this build find it by name. It
/// returns the worker's pid beside the square, to show where it ran.
#[taskweave::remote]
fn intensive_computation(n: u64) -> (u64, u32) {
    std::thread::sleep(Duration::from_secs(2));
    (n * n, std::process::id())
}

/// Tells the launcher which workers are up.
#[taskweave::remote]
fn worker_pid(_: ()) -> u32 {
    std::process::id()
}

fn main() -> Result<(), Error> {
    // A process started as a worker serves calls here and exits (on Linux even before `main`).
    taskweave::nats::main_if_worker();

    let server = NatsServer::start()?;
    let url = server.url();
    let namespace = "distributed_example";
    // Durable mode: workers pull calls as they have free slots, so two-second calls spread
    // evenly; fast mode hands each call to a random worker of the queue group, busy or not.
    let nats = NatsExecutor::builder()
        .server(&url)
        .namespace(namespace)
        .mode(Mode::Durable)
        .connect()?;
    let mut workers = LocalWorkers::start(2, &url, namespace, 1)?;
    workers.wait_ready(&nats, worker_pid, Duration::from_secs(20))?;
    println!("nats-server on {url}; workers (pids) {:?}", workers.pids());

    let started = Instant::now();
    let inputs = [1u64, 2, 3, 4, 5];
    let results: Vec<(u64, u32)> =
        taskweave::Executor::map(&nats, intensive_computation, inputs).collect::<Result<_, _>>()?;
    for (n, (square, pid)) in inputs.iter().zip(&results) {
        println!("intensive_computation({n}) = {square:>2}   ran on worker pid {pid}");
    }
    let squares: Vec<u64> = results.iter().map(|(s, _)| *s).collect();
    println!("{squares:?} in {:.1} s", started.elapsed().as_secs_f64());

    let exe = std::env::current_exe().map_or_else(|_| "myapp".into(), |p| p.display().to_string());
    println!("\nThe same workers on other machines (this build, pointed at a reachable server):");
    println!(
        "  {exe} --taskweave-worker nats://<server>:4222 --taskweave-namespace {namespace} --taskweave-concurrency 4"
    );
    println!(
        "and here: NatsExecutor::builder().server(\"nats://<server>:4222\").namespace(\"{namespace}\")"
    );

    drop(workers);
    drop(server);
    Ok(())
}

/// A nats-server of its own for the example, killed on drop.
struct NatsServer {
    child: Child,
    port: u16,
    store: PathBuf,
}

impl NatsServer {
    fn start() -> Result<NatsServer, Error> {
        let binary = find_server()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| Error::broken(format!("no free port: {e}")))?
            .port();
        let store =
            std::env::temp_dir().join(format!("taskweave-distributed-{}", std::process::id()));
        let child = Command::new(&binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::broken(format!("cannot start {}: {e}", binary.display())))?;
        let server = NatsServer { child, port, store };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                return Err(Error::broken("nats-server did not start within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

fn find_server() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os("TASKWEAVE_NATS_SERVER").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let installed = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/nats-server/nats-server-2.15.1");
    if installed.is_file() {
        return Ok(installed);
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("nats-server"))
                .find(|c| c.is_file())
        })
        .ok_or_else(|| {
            Error::broken(
                "no nats-server found: run `cargo xtask nats-server` (installs the pinned one under target/), \
                 put nats-server >= 2.10 on PATH, or set TASKWEAVE_NATS_SERVER",
            )
        })
}
