//! A real `nats-server` for one test: started on 127.0.0.1 on a free port with JetStream and its
//! own store directory, killed (and its directory removed) on drop.
//!
//! The binary comes from `TASKWEAVE_NATS_SERVER` (set by `cargo xtask ci`), else `nats-server` on
//! `PATH`, else the one `cargo xtask nats-server` installs under `target/nats-server/`. A test
//! never skips when there is none: it fails saying how to get one.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running server; `url()` is what clients and workers connect to.
pub(crate) struct Server {
    child: Child,
    port: u16,
    store: PathBuf,
}

/// A namespace no other test uses, so tests can share nothing by accident.
pub(crate) fn namespace(test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        test
    )
}

impl Server {
    /// Starts a server and waits (at most 10 s) until it accepts connections.
    pub(crate) fn start() -> Server {
        let binary = binary();
        let store = std::env::temp_dir().join(format!(
            "taskweave-nats-{}-{}",
            std::process::id(),
            namespace("store")
        ));
        std::fs::create_dir_all(&store).expect("create the server's store directory");
        let port = free_port();
        let child = spawn(&binary, port, &store);
        let server = Server { child, port, store };
        server.wait_ready(Duration::from_secs(10));
        server
    }

    /// Starts a server on the same port and store as `self` had (after `kill`).
    pub(crate) fn restart(&mut self) {
        let binary = binary();
        self.child = spawn(&binary, self.port, &self.store);
        self.wait_ready(Duration::from_secs(10));
    }

    /// Kills the server at once (SIGKILL) and reaps it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `nats://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&self, limit: Duration) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let started = Instant::now();
        while started.elapsed() < limit {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nats-server did not accept connections on {addr} within {limit:?}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

fn spawn(binary: &Path, port: u16, store: &Path) -> Child {
    Command::new(binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()))
}

/// A port the kernel just handed out; free again once the listener closes.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Where the server binary is, or a panic saying how to install one.
fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TASKWEAVE_NATS_SERVER").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let installed = root.join("target/nats-server/nats-server-2.15.1");
    if installed.is_file() {
        return installed;
    }
    if let Some(path) = std::env::var_os("PATH")
        && let Some(found) = std::env::split_paths(&path)
            .map(|d| d.join("nats-server"))
            .find(|c| c.is_file())
    {
        return found;
    }
    panic!(
        "no nats-server found: these tests need a real one. Run `cargo xtask nats-server` \
         (installs the pinned 2.15.1 under target/), put nats-server >= 2.10 on PATH, or set \
         TASKWEAVE_NATS_SERVER to its path"
    );
}
