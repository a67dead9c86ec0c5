//! Cases of the process pool, each beside a bare-process floor measured in the same
//! run and/or Python's `ProcessPoolExecutor` (`peers/process.py`, 2 workers, fork start). Our
//! pool also runs 2 workers, which are this benchmark binary started again.
//!
//! - `process_rtt`: `submit(trivial).result()` one at a time on a warm pool; baselines `pipe` (a
//!   bare length-prefixed ping-pong with a forked child, the physical floor of a round trip
//!   between two processes) and `python`. us per call.
//! - `process_inflight_20k`: 20k trivial submits in flight, then every result; us per task.
//! - `process_map_c1`: `map` over 100k trivial items with chunksize 1; ns per item.
//! - `process_map_best`: the same at the best of chunksizes 100 / 1000 / 10000, against Python's
//!   best of 100 / 1000; ns per item.
//! - `process_payload_1m`, `process_payload_64m`: echo a byte payload (ours as
//!   [`taskweave_process::Bytes`]); us and ms per call.
//! - `process_first_result`: from building the pool to the first result (pool start and one
//!   round trip; shutdown not timed); ms.
//! - `process_cpu_map`: 64 CPU-heavy items; ours = speedup of `map` on a warm pool, theirs = the
//!   speedup of the same items split over `WORKERS` bare forked processes (the machine's
//!   ceiling), both in units of the work's CPU time as the split's processes spent it in the
//!   same round (serial runs, pool and split alternate round by round), medians over rounds. The
//!   ceiling is thereby the number of cores the split kept busy: it cannot exceed min(workers,
//!   cores), however the machine is loaded. A serial bare process runs in every round too, for
//!   context only (the items' cost alone, and the share of a core it got). Unit `x`: higher is
//!   better, so this row's ratio (speedup / ceiling, the split's wall time over the pool's)
//!   should be at least 0.97.

use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

use taskweave_process::{Bytes, MapOptions, ProcessPoolExecutor};

use super::{Case, Config, Row};
use crate::measure::{Rounds, median, millis, rotate, spread};
use crate::peer;

/// The cases of this area.
pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "process_rtt",
            run: rtt,
        },
        Case {
            name: "process_inflight_20k",
            run: inflight,
        },
        Case {
            name: "process_map_c1",
            run: map_c1,
        },
        Case {
            name: "process_map_best",
            run: map_best,
        },
        Case {
            name: "process_payload_1m",
            run: payload_1m,
        },
        Case {
            name: "process_payload_64m",
            run: payload_64m,
        },
        Case {
            name: "process_first_result",
            run: first_result,
        },
        Case {
            name: "process_cpu_map",
            run: cpu_map,
        },
    ]
}

const WORKERS: usize = 2;

fn trivial(_: ()) {}

fn square(x: u64) -> u64 {
    x * x
}

fn echo(b: Bytes) -> Bytes {
    b
}

/// About 5 ms of arithmetic in a release build, without allocating (it also runs in forked
/// children).
fn heavy(item: u64) -> u64 {
    let bound = black_box(4_000_000 + item);
    let mut total = 0u64;
    for j in 0..bound {
        total = total.wrapping_add(black_box(j).wrapping_mul(j));
    }
    total
}

fn pool() -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(WORKERS)
        .build()
        .unwrap_or_else(|e| panic!("cannot start the process pool: {e}"))
}

/// Starts every worker and lets the pool learn that calls are short.
fn warm(pool: &ProcessPoolExecutor) {
    for r in pool.map(square, 0..(WORKERS as u64 * 200)) {
        r.unwrap_or_else(|e| panic!("warm-up failed: {e}"));
    }
}

fn args(values: &[&dyn ToString]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: two fresh descriptors nothing else owns.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// A forked child that echoes length-prefixed frames: the floor of a process round trip.
struct PipePeer {
    pid: libc::pid_t,
    to: Option<File>,
    from: File,
    buf: Vec<u8>,
}

impl PipePeer {
    fn start() -> PipePeer {
        let (req_r, req_w) = pipe();
        let (resp_r, resp_w) = pipe();
        let (rfd, wfd) = (req_r.as_raw_fd(), resp_w.as_raw_fd());
        // SAFETY: the child only makes async-signal-safe calls (close, read, write, _exit) on
        // descriptors it owns and a stack buffer, so forking a multi-threaded process is sound.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: see above; the child never returns from this block.
            unsafe {
                for fd in 3..4096 {
                    if fd != rfd && fd != wfd {
                        libc::close(fd);
                    }
                }
                echo_frames(rfd, wfd);
                libc::_exit(0);
            }
        }
        drop((req_r, resp_w));
        PipePeer {
            pid,
            to: Some(req_w),
            from: resp_r,
            buf: vec![0; 64],
        }
    }

    fn ping(&mut self, frame: &[u8]) {
        let to = self.to.as_mut().expect("the pipe peer is running");
        to.write_all(frame).expect("write to the pipe peer");
        self.from
            .read_exact(&mut self.buf[..frame.len()])
            .expect("read from the pipe peer");
    }
}

impl Drop for PipePeer {
    fn drop(&mut self) {
        drop(self.to.take());
        let mut status = 0;
        // SAFETY: reaping our own child, which exits on the end of its input.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
    }
}

/// The pipe peer's loop: reads a `u32` length and that many bytes (at most 60), writes them back.
///
/// # Safety
///
/// Runs in a forked child: only async-signal-safe calls, on descriptors the child owns.
unsafe fn echo_frames(rfd: i32, wfd: i32) {
    let mut buf = [0u8; 64];
    loop {
        let mut got = 0usize;
        let mut want = 4usize;
        while got < want {
            // SAFETY: reading into the stack buffer, within its bounds.
            let n = unsafe { libc::read(rfd, buf.as_mut_ptr().add(got).cast(), want - got) };
            if n <= 0 {
                return;
            }
            got += n as usize;
            if got == 4 && want == 4 {
                want = 4 + u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                if want > buf.len() {
                    return;
                }
            }
        }
        let mut sent = 0;
        while sent < want {
            // SAFETY: writing from the stack buffer, within its bounds.
            let n = unsafe { libc::write(wfd, buf.as_ptr().add(sent).cast(), want - sent) };
            if n <= 0 {
                return;
            }
            sent += n as usize;
        }
    }
}

fn rtt(config: &Config) -> Vec<Row> {
    let (n, rounds, reps) = if config.quick {
        (2_000, Rounds { warm_up: 1, measured: 5 }, 3)
    } else {
        (5_000, Rounds { warm_up: 1, measured: 9 }, 5)
    };
    let pool = pool();
    warm(&pool);
    let mut peer = PipePeer::start();
    // A frame the size of a small call: length, kind, id and an argument.
    let mut frame = 12u32.to_le_bytes().to_vec();
    frame.extend_from_slice(&[2; 12]);
    let mut ours = || {
        let started = Instant::now();
        for _ in 0..n {
            pool.submit(trivial, ())
                .result(None)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        started.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    let mut bare = || {
        let started = Instant::now();
        for _ in 0..n {
            peer.ping(&frame);
        }
        started.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    let samples = rotate(rounds, &mut [&mut ours, &mut bare]);
    drop(peer);
    drop(pool);
    let ours = median(&samples[0]);
    let mut rows = vec![Row::new("process_rtt", ours, median(&samples[1]), "pipe", "us/call")];
    if let Some(py) = peer::python(config, "process.py", &args(&[&"rtt", &(n / 5), &reps])) {
        rows.push(Row::new("process_rtt", ours, py.get("us_per_call"), "python", "us/call"));
    }
    rows
}

fn inflight(config: &Config) -> Vec<Row> {
    let (n, rounds, reps) = if config.quick {
        (20_000, Rounds { warm_up: 1, measured: 3 }, 2)
    } else {
        (20_000, Rounds { warm_up: 1, measured: 7 }, 5)
    };
    let pool = pool();
    warm(&pool);
    let mut ours = || {
        let started = Instant::now();
        let promises: Vec<_> = (0..n).map(|_| pool.submit(trivial, ())).collect();
        for mut p in promises {
            p.result(None).unwrap_or_else(|e| panic!("{e}"));
        }
        started.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    let samples = rotate(rounds, &mut [&mut ours]);
    drop(pool);
    let ours = median(&samples[0]);
    peer::python(config, "process.py", &args(&[&"inflight", &n, &reps]))
        .map(|py| {
            vec![Row::new(
                "process_inflight_20k",
                ours,
                py.get("us_per_task"),
                "python",
                "us/task",
            )]
        })
        .unwrap_or_default()
}

/// ns per item of `map(square, 0..n, chunksize)` on `pool`, results checked.
fn map_once(pool: &ProcessPoolExecutor, n: u64, chunksize: usize) -> f64 {
    let started = Instant::now();
    let mut count = 0u64;
    for (i, r) in pool
        .map_with(square, 0..n, MapOptions::new().chunksize(chunksize))
        .enumerate() {
        let v = r.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v, (i as u64) * (i as u64));
        count += 1;
    }
    assert_eq!(count, n);
    started.elapsed().as_secs_f64() * 1e9 / n as f64
}

fn map_c1(config: &Config) -> Vec<Row> {
    let (n, py_n, rounds, reps) = if config.quick {
        (20_000u64, 5_000u64, Rounds { warm_up: 1, measured: 3 }, 1)
    } else {
        (100_000, 20_000, Rounds { warm_up: 1, measured: 5 }, 3)
    };
    let pool = pool();
    warm(&pool);
    let samples = rotate(rounds, &mut [&mut || map_once(&pool, n, 1)]);
    drop(pool);
    let ours = median(&samples[0]);
    // Python's chunksize-1 map runs at about 10k items/s, so it maps fewer items; its rate does
    // not depend on the count.
    peer::python(config, "process.py", &args(&[&"map", &py_n, &"1", &reps]))
        .map(|py| vec![Row::new("process_map_c1", ours, py.get("ns_per_item"), "python", "ns/item")])
        .unwrap_or_default()
}

fn map_best(config: &Config) -> Vec<Row> {
    let (n, rounds, reps) = if config.quick {
        (100_000u64, Rounds { warm_up: 1, measured: 3 }, 2)
    } else {
        (100_000, Rounds { warm_up: 1, measured: 7 }, 5)
    };
    let pool = pool();
    warm(&pool);
    let mut best = f64::INFINITY;
    for chunksize in [100, 1000, 10_000] {
        let samples = rotate(rounds, &mut [&mut || map_once(&pool, n, chunksize)]);
        best = best.min(median(&samples[0]));
    }
    drop(pool);
    peer::python(config, "process.py", &args(&[&"map", &n, &"100,1000", &reps]))
        .map(|py| vec![Row::new("process_map_best", best, py.get("ns_per_item"), "python", "ns/item")])
        .unwrap_or_default()
}

fn payload(config: &Config, case: &str, bytes: usize, calls: usize, reps: usize) -> Vec<Row> {
    let rounds = Rounds {
        warm_up: 1,
        measured: reps,
    };
    let data: Vec<u8> = (0..bytes).map(|i| (i * 7 + 3) as u8).collect();
    let pool = pool();
    warm(&pool);
    let back = pool
        .submit(echo, Bytes(data.clone()))
        .result(None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(back.0 == data, "the echo came back different");
    let mut ours = || {
        let mut per_call = Duration::ZERO;
        for _ in 0..calls {
            // The copy into the argument is the caller's business, not the pool's: untimed.
            let arg = Bytes(data.clone());
            let started = Instant::now();
            let back = pool
                .submit(echo, arg)
                .result(None)
                .unwrap_or_else(|e| panic!("{e}"));
            per_call += started.elapsed();
            black_box(back);
        }
        per_call.as_secs_f64() * 1e6 / calls as f64
    };
    let samples = rotate(rounds, &mut [&mut ours]);
    drop(pool);
    let ours = median(&samples[0]);
    let (ours, scale, unit) = if bytes >= 16 << 20 {
        (ours / 1e3, 1e3, "ms/call")
    } else {
        (ours, 1.0, "us/call")
    };
    peer::python(config, "process.py", &args(&[&"payload", &bytes, &calls, &reps]))
        .map(|py| vec![Row::new(case, ours, py.get("us_per_call") / scale, "python", unit)])
        .unwrap_or_default()
}

fn payload_1m(config: &Config) -> Vec<Row> {
    let (calls, reps) = if config.quick { (20, 3) } else { (50, 5) };
    payload(config, "process_payload_1m", 1 << 20, calls, reps)
}

fn payload_64m(config: &Config) -> Vec<Row> {
    let (calls, reps) = if config.quick { (2, 3) } else { (3, 5) };
    payload(config, "process_payload_64m", 64 << 20, calls, reps)
}

fn first_result(config: &Config) -> Vec<Row> {
    let rounds = if config.quick {
        Rounds { warm_up: 1, measured: 5 }
    } else {
        Rounds { warm_up: 2, measured: 11 }
    };
    let mut ours = || {
        let started = Instant::now();
        let pool = pool();
        pool.submit(trivial, ())
            .result(None)
            .unwrap_or_else(|e| panic!("{e}"));
        let elapsed = started.elapsed();
        drop(pool);
        millis(elapsed)
    };
    let samples = rotate(rounds, &mut [&mut ours]);
    let ours = median(&samples[0]);
    peer::python(config, "process.py", &args(&[&"first_result", &rounds.measured]))
        .map(|py| vec![Row::new("process_first_result", ours, py.get("ms"), "python", "ms")])
        .unwrap_or_default()
}

/// Runs `items` split over `procs` forked children; returns when all have exited, with the CPU
/// time (user and system) they used in all, in seconds.
fn bare_processes(items: u64, procs: u64) -> f64 {
    let mut pids = Vec::new();
    for p in 0..procs {
        // SAFETY: the child only computes (no allocation, no locks) and calls `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let mut total = 0u64;
            let mut i = p;
            while i < items {
                total = total.wrapping_add(heavy(i));
                i += procs;
            }
            black_box(total);
            // SAFETY: ending the forked child without running the parent's exit handlers.
            unsafe { libc::_exit(0) };
        }
        pids.push(pid);
    }
    let mut cpu = 0.0;
    for pid in pids {
        let mut status = 0;
        // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: reaping our own child, into a `rusage` we own.
        unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
        cpu += seconds(usage.ru_utime) + seconds(usage.ru_stime);
    }
    cpu
}

fn cpu_map(config: &Config) -> Vec<Row> {
    const ITEMS: u64 = 64;
    let rounds = if config.quick {
        Rounds { warm_up: 1, measured: 5 }
    } else {
        Rounds { warm_up: 1, measured: 9 }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // No split of the work over WORKERS processes can keep more than this many cores busy.
    let bound = WORKERS.min(cores) as f64;
    let pool = pool();
    warm(&pool);
    // Every contender yields (wall seconds, CPU seconds of its processes; 0 where not measured).
    // The serial run is context only: the items' cost alone, and how much of a core it got.
    let mut serial = || {
        let started = Instant::now();
        let cpu = bare_processes(ITEMS, 1);
        (started.elapsed().as_secs_f64(), cpu)
    };
    let mut ours = || {
        let started = Instant::now();
        let total = pool
            .map(heavy, 0..ITEMS)
            .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
            .fold(0u64, u64::wrapping_add);
        black_box(total);
        (started.elapsed().as_secs_f64(), 0.0)
    };
    let mut split = || {
        let started = Instant::now();
        let cpu = bare_processes(ITEMS, WORKERS as u64);
        (started.elapsed().as_secs_f64(), cpu)
    };
    let samples = rotate(rounds, &mut [&mut serial, &mut ours, &mut split]);
    drop(pool);
    let wall = |i: usize| samples[i].iter().map(|s| s.0).collect::<Vec<f64>>();
    let (serial_wall, pool_wall, split_wall) = (wall(0), wall(1), wall(2));
    let split_cpu: Vec<f64> = samples[2].iter().map(|s| s.1).collect();
    // How much of a core the serial run got: near 1 on a quiet machine; well below, other work
    // was running and every ratio of this row is noise.
    let shares: Vec<f64> = samples[0].iter().map(|&(w, c)| c / w).collect();
    let share = median(&shares);
    let (speedups, ceilings) = per_round_speedups(&split_cpu, &pool_wall, &split_wall);
    let (speedup, ceiling) = (median(&speedups), median(&ceilings));
    let serial_cpu: Vec<f64> = samples[0].iter().map(|s| s.1).collect();
    println!(
        "   {cores} cores, {WORKERS} workers: ceiling {ceiling:.2}x (at most {bound:.0}x), pool {speedup:.2}x; \
         the items cost {:.0} ms of CPU in one process, {:.0} ms split; serial {:.0} ms using {:.0}% of a core; \
         spread of rounds: serial {:.0}%, pool {:.0}%, bare split {:.0}%",
        median(&serial_cpu) * 1e3,
        median(&split_cpu) * 1e3,
        median(&serial_wall) * 1e3,
        share * 100.0,
        spread(&serial_wall) * 100.0,
        spread(&pool_wall) * 100.0,
        spread(&split_wall) * 100.0,
    );
    if share < BUSY_SHARE {
        println!(
            "   the serial run got {:.0}% of a core: other work shares the machine, and this row measures its scheduler (re-run when it is quiet)",
            share * 100.0
        );
    }
    vec![Row::new("process_cpu_map", speedup, ceiling, "ceiling", "x")]
}

/// Below this share of a core for the serial run, `process_cpu_map` says the machine is busy.
const BUSY_SHARE: f64 = 0.8;

/// Per round: the pool's speedup and the bare split's (the ceiling), both in units of the
/// work's CPU time as the split's processes spent it that round.
///
/// The ceiling is the split's CPU time over its wall time: how many cores its processes kept
/// busy, which cannot exceed the number of processes (each is one thread that used the CPU
/// only while it lived) nor the cores, whatever else the machine was doing. The pool's speedup
/// puts the same work over the pool's wall time of the same round, so speedup / ceiling is the
/// split's wall time over the pool's: how close the pool comes to bare processes.
fn per_round_speedups(work: &[f64], pool: &[f64], split: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut speedups = Vec::new();
    let mut ceilings = Vec::new();
    for ((w, p), b) in work.iter().zip(pool).zip(split) {
        speedups.push(w / p);
        ceilings.push(w / b);
    }
    (speedups, ceilings)
}

#[cfg(test)]
mod tests {
    use super::per_round_speedups;

    #[test]
    fn speedups_are_the_work_over_each_wall_time_round_by_round() {
        let (speedups, ceilings) =
            per_round_speedups(&[2.0, 3.0, 1.0], &[1.0, 1.5, 1.0], &[1.0, 2.0, 0.5]);
        assert_eq!(speedups, [2.0, 2.0, 1.0]);
        assert_eq!(ceilings, [2.0, 1.5, 2.0]);
    }
}
