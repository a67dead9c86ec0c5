//! Cases of the executor on NATS, each on a `nats-server` of its own (127.0.0.1, a free port,
//! JetStream, a temporary store) with 2 local worker processes (this benchmark binary started
//! again as workers) running one call at a time each, as the Dask peer's 2 single-threaded
//! workers do.
//!
//! - `nats_rtt`: fast mode, `submit(square, i).result()` one call at a time; baselines
//!   `nats_raw` (bare async-nats request/reply to a responder process, which is this binary
//!   started again with `--child nats_responder`: the floor of a round trip through the
//!   server) and `dask` (`client.submit(square, i).result()` on a `LocalCluster`). us per call.
//! - `nats_inflight_10k`: 10k fast-mode submits (quick: 2k), then every result; us per task,
//!   against `dask` (submit 10k, gather).
//! - `nats_map_10k`: `Executor::map` over 10k integers (quick: 2k), fast mode, default window;
//!   us per item, against `dask` (`client.map` + `gather`).
//! - `nats_durable_rtt`: durable mode (JetStream work queue, results in a key-value bucket), one
//!   call at a time; against `nats_raw`. us per call.
//!
//! The server binary comes from `TASKWEAVE_NATS_SERVER` (`cargo xtask bench` sets it), else
//! the one `cargo xtask nats-server` installs under `target/`, else `nats-server` on `PATH`.
//! The Dask peer (`peers/dask_peer.py`) runs in a virtualenv under `target/` that the bench makes
//! and installs the pinned `distributed` into; where that fails its rows are skipped with a
//! note.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use taskweave_executor::Executor;
use taskweave_nats::{LocalWorkers, Mode, NatsExecutor};

use super::{Case, Config, Row};
use crate::measure::{CHILD_FLAG, Rounds, median, rotate, spread};
use crate::peer::{self, KeyValues};

/// The cases of this area.
pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "nats_rtt",
            run: rtt,
        },
        Case {
            name: "nats_inflight_10k",
            run: inflight,
        },
        Case {
            name: "nats_map_10k",
            run: map,
        },
        Case {
            name: "nats_durable_rtt",
            run: durable_rtt,
        },
    ]
}

const WORKERS: usize = 2;
const NAMESPACE: &str = "bench";
/// The subject the raw responder answers on.
const RAW_SUBJECT: &str = "bench.raw.square";

#[taskweave_macros::remote(crate = taskweave_registry)]
fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

/// What `LocalWorkers::wait_ready` calls until every worker answered.
#[taskweave_macros::remote(crate = taskweave_registry)]
fn worker_pid(_: ()) -> u32 {
    std::process::id()
}

/// A server, an executor in `mode` and its warm workers; dropped in reverse order of need.
struct Cluster {
    nats: NatsExecutor,
    workers: LocalWorkers,
    server: Server,
}

impl Cluster {
    fn start(mode: Mode) -> Cluster {
        let server = Server::start();
        let nats = NatsExecutor::builder()
            .server(server.url())
            .namespace(NAMESPACE)
            .mode(mode)
            .connect()
            .unwrap_or_else(|e| panic!("cannot connect to the bench's nats-server: {e}"));
        let mut workers = LocalWorkers::start(WORKERS, &server.url(), NAMESPACE, 1)
            .unwrap_or_else(|e| panic!("cannot start the NATS workers: {e}"));
        workers
            .wait_ready(&nats, worker_pid, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("the NATS workers did not answer: {e}"));
        let cluster = Cluster {
            nats,
            workers,
            server,
        };
        // Warm every connection and, in durable mode, the function's consumer.
        cluster.sequential(200);
        cluster
    }

    /// us per call of `n` calls one at a time, results checked.
    fn sequential(&self, n: u64) -> f64 {
        let started = Instant::now();
        for i in 0..n {
            let got = self
                .nats
                .submit(square, i)
                .result(Some(Duration::from_secs(30)))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(got, i * i);
        }
        started.elapsed().as_secs_f64() * 1e6 / n as f64
    }

    /// us per task of `n` submits in flight, then every result in order, checked.
    fn in_flight(&self, n: u64) -> f64 {
        let started = Instant::now();
        let promises: Vec<_> = (0..n).map(|i| self.nats.submit(square, i)).collect();
        for (i, mut p) in (0u64..).zip(promises) {
            let got = p
                .result(Some(Duration::from_secs(60)))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(got, i * i);
        }
        started.elapsed().as_secs_f64() * 1e6 / n as f64
    }

    /// us per item of `map(square, 0..n)`, collected and checked.
    fn map(&self, n: u64) -> f64 {
        let started = Instant::now();
        let mut count = 0u64;
        for (i, r) in (0u64..).zip(Executor::map(&self.nats, square, 0..n)) {
            assert_eq!(r.unwrap_or_else(|e| panic!("{e}")), i * i);
            count += 1;
        }
        assert_eq!(count, n);
        started.elapsed().as_secs_f64() * 1e6 / n as f64
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nats.shutdown(true, true);
        self.workers.stop(Duration::from_secs(5));
    }
}

fn print_spreads(labels: &[&str], samples: &[Vec<f64>]) {
    let parts: Vec<String> = labels
        .iter()
        .zip(samples)
        .map(|(l, s)| format!("{l} {:.0} %", spread(s) * 100.0))
        .collect();
    println!("   spread of rounds: {}", parts.join(", "));
}

fn rtt(config: &Config) -> Vec<Row> {
    let (n, rounds) = if config.quick {
        (300, Rounds { warm_up: 1, measured: 3 })
    } else {
        (2_000, Rounds { warm_up: 1, measured: 7 })
    };
    let cluster = Cluster::start(Mode::Fast);
    let mut raw = RawPeer::start(&cluster.server.url());
    let mut ours = || cluster.sequential(n);
    let mut bare = || raw.sequential(n);
    let samples = rotate(rounds, &mut [&mut ours, &mut bare]);
    print_spreads(&["ours", "nats_raw"], &samples);
    drop(raw);
    drop(cluster);
    let ours = median(&samples[0]);
    let mut rows = vec![Row::new(
        "nats_rtt",
        ours,
        median(&samples[1]),
        "nats_raw",
        "us/call",
    )];
    if let Some(dask) = dask(config) {
        rows.push(Row::new("nats_rtt", ours, dask.get("rtt_us"), "dask", "us/call"));
    }
    rows
}

fn inflight(config: &Config) -> Vec<Row> {
    against_dask(config, "nats_inflight_10k", "inflight_us", "us/task", Cluster::in_flight)
}

fn map(config: &Config) -> Vec<Row> {
    against_dask(config, "nats_map_10k", "map_us", "us/item", Cluster::map)
}

/// Measures `measure` over 10k calls (quick: 2k) on a fast-mode cluster, against the Dask
/// peer's figure `key`.
fn against_dask(
    config: &Config,
    case: &str,
    key: &str,
    unit: &str,
    measure: fn(&Cluster, u64) -> f64,
) -> Vec<Row> {
    let (n, rounds) = if config.quick {
        (2_000, Rounds { warm_up: 1, measured: 3 })
    } else {
        (10_000, Rounds { warm_up: 1, measured: 5 })
    };
    let cluster = Cluster::start(Mode::Fast);
    let samples = rotate(rounds, &mut [&mut || measure(&cluster, n)]);
    print_spreads(&["ours"], &samples);
    drop(cluster);
    let ours = median(&samples[0]);
    match dask(config) {
        Some(dask) => vec![Row::new(case, ours, dask.get(key), "dask", unit)],
        None => {
            println!("   ours: {ours:.2} {unit} (no baseline)");
            Vec::new()
        }
    }
}

fn durable_rtt(config: &Config) -> Vec<Row> {
    let (n, raw_n, rounds) = if config.quick {
        (50, 300, Rounds { warm_up: 1, measured: 3 })
    } else {
        (300, 2_000, Rounds { warm_up: 1, measured: 5 })
    };
    let cluster = Cluster::start(Mode::Durable);
    let mut raw = RawPeer::start(&cluster.server.url());
    let mut ours = || cluster.sequential(n);
    let mut bare = || raw.sequential(raw_n);
    let samples = rotate(rounds, &mut [&mut ours, &mut bare]);
    print_spreads(&["ours", "nats_raw"], &samples);
    drop(raw);
    drop(cluster);
    vec![Row::new(
        "nats_durable_rtt",
        median(&samples[0]),
        median(&samples[1]),
        "nats_raw",
        "us/call",
    )]
}

/// The Dask peer's figures, measured once per run on one cluster for every case that wants
/// them; `None` (with a note) when Dask cannot run here.
fn dask(config: &Config) -> Option<&'static KeyValues> {
    static MEASURED: OnceLock<Option<KeyValues>> = OnceLock::new();
    MEASURED
        .get_or_init(|| {
            let python = match peer::dask_python(config) {
                Ok(python) => python,
                Err(why) => {
                    println!("   note: the dask baselines are skipped: {why}");
                    return None;
                }
            };
            // Dask takes about 10 ms per sequential call and 2 ms per task in flight here.
            let (rtt_n, many_n, reps) = if config.quick {
                (30, 500, 1)
            } else {
                (200, 10_000, 3)
            };
            let args: Vec<String> = [rtt_n, many_n, many_n, reps]
                .iter()
                .map(ToString::to_string)
                .collect();
            println!("   running the dask peer (LocalCluster, 2 workers)");
            Some(peer::run_script(&python, &config.peers_dir, "dask_peer.py", &args))
        })
        .as_ref()
}

/// The bare async-nats floor: a client in this process, a responder process (this binary with
/// `--child nats_responder`), request/reply through the server.
struct RawPeer {
    runtime: tokio::runtime::Runtime,
    client: async_nats::Client,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl RawPeer {
    fn start(url: &str) -> RawPeer {
        let exe = std::env::current_exe()
            .unwrap_or_else(|e| panic!("cannot find this executable to start a child: {e}"));
        let mut child = Command::new(exe)
            .args([CHILD_FLAG, "nats_responder", url, RAW_SUBJECT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the raw NATS responder: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("the responder's stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut stdout = BufReader::new(stdout);
            let _ = stdout.read_line(&mut line);
            let _ = tx.send(line);
            // Read on to the end, so the responder's last line finds its pipe open.
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        });
        match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(line) if line.trim() == "ready" => {}
            Ok(line) => panic!("the raw NATS responder said `{}`, not `ready`", line.trim()),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the raw NATS responder was not ready within 15 s");
            }
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start a runtime: {e}"));
        let client = runtime
            .block_on(async_nats::connect(url))
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        RawPeer {
            runtime,
            client,
            child,
            stdin,
        }
    }

    /// us per request/reply of `n` one at a time, replies checked.
    fn sequential(&mut self, n: u64) -> f64 {
        let client = self.client.clone();
        self.runtime.block_on(async move {
            let started = Instant::now();
            for i in 0..n {
                let reply = client
                    .request(RAW_SUBJECT, bytes::Bytes::copy_from_slice(&i.to_le_bytes()))
                    .await
                    .unwrap_or_else(|e| panic!("raw request: {e}"));
                assert_eq!(decode_u64(&reply.payload), Some(i.wrapping_mul(i)));
            }
            started.elapsed().as_secs_f64() * 1e6 / n as f64
        })
    }
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        // The responder leaves when its input closes; it is killed if it has not within 5 s.
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// `taskweave-bench --child nats_responder URL SUBJECT`: answers every request on SUBJECT with
/// the square of its little-endian `u64` until its standard input closes. Prints `ready` once
/// subscribed, and the count served at the end.
pub(crate) fn nats_responder_child(args: &[String]) -> Result<String, String> {
    let [url, subject] = args else {
        return Err("usage: nats_responder URL SUBJECT".to_owned());
    };
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        // Read to the end of input: the parent closes it to stop this responder.
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = closed_tx.send(());
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(async move {
        let client = async_nats::connect(url.as_str())
            .await
            .map_err(|e| format!("cannot connect to {url}: {e}"))?;
        let mut requests = client
            .subscribe(subject.clone())
            .await
            .map_err(|e| format!("cannot subscribe to {subject}: {e}"))?;
        client
            .flush()
            .await
            .map_err(|e| format!("cannot flush the subscription: {e}"))?;
        println!("ready");
        let _ = std::io::stdout().flush();
        let mut served = 0u64;
        let mut closed = closed_rx;
        loop {
            tokio::select! {
                message = requests.next() => {
                    let Some(message) = message else { break };
                    let Some(reply) = message.reply else { continue };
                    let x = decode_u64(&message.payload).unwrap_or(0);
                    let answer = bytes::Bytes::copy_from_slice(&x.wrapping_mul(x).to_le_bytes());
                    client
                        .publish(reply, answer)
                        .await
                        .map_err(|e| format!("cannot reply: {e}"))?;
                    served += 1;
                }
                _ = &mut closed => break,
            }
        }
        Ok(format!("served={served} count"))
    })
}

/// A `nats-server` for one case: 127.0.0.1, a free port, JetStream with its own store
/// directory; killed and its directory removed on drop.
struct Server {
    child: Child,
    port: u16,
    store: PathBuf,
}

impl Server {
    fn start() -> Server {
        let binary = server_binary();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("cannot find a free port: {e}"));
        let store = std::env::temp_dir().join(format!(
            "taskweave-bench-nats-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&store)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", store.display()));
        let child = Command::new(&binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let server = Server { child, port, store };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nats-server did not accept connections on {addr} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// The server binary, or a panic saying how to get one.
fn server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TASKWEAVE_NATS_SERVER").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let installed = crate::report::target_dir().join("nats-server/nats-server-2.15.1");
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
        "no nats-server: run the bench through `cargo xtask bench` (it installs the pinned \
         2.15.1 under target/), or set TASKWEAVE_NATS_SERVER to a nats-server >= 2.10"
    );
}

#[cfg(test)]
mod tests {
    use super::decode_u64;

    #[test]
    fn replies_are_little_endian_u64s() {
        assert_eq!(decode_u64(&49u64.to_le_bytes()), Some(49));
        assert_eq!(decode_u64(&[1, 2, 3]), None);
    }

    #[test]
    fn the_server_is_found_or_the_panic_says_how() {
        let found = std::panic::catch_unwind(super::server_binary);
        match found {
            Ok(path) => assert!(!path.as_os_str().is_empty()),
            Err(payload) => {
                let message = payload.downcast_ref::<&str>().copied().unwrap_or_default();
                assert!(message.contains("cargo xtask bench"), "{message}");
            }
        }
    }
}
