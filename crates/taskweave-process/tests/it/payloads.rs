//! Large arguments and results, which travel through shared memory regions on Linux: they
//! arrive intact at every size around the threshold, a worker killed in the middle of a
//! transfer fails only its call, nothing is left behind (descriptors, mappings), and an
//! envelope that lies about its body is a wire error for the worker that sent it.

use std::time::Duration;

use taskweave_process::{Bytes, ProcessPoolExecutor};

#[cfg(target_os = "linux")]
use crate::corrupt::write_to_reply_pipe;
use crate::work::{pid, square};
use crate::{exclusive, open_fds, shared};

fn echo(b: Bytes) -> Bytes {
    b
}

fn grow(n: usize) -> Bytes {
    Bytes((0..n).map(|i| (i % 251) as u8).collect())
}

fn sum(b: Bytes) -> u64 {
    b.iter().map(|&x| x as u64).sum()
}

fn data(n: usize, salt: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ salt).collect()
}

/// Bytes of this process's mappings of the shared regions.
fn mapped_regions() -> u64 {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    maps.lines()
        .filter(|l| l.contains("taskweave-payload"))
        .filter_map(|l| {
            let range = l.split_whitespace().next()?;
            let (a, b) = range.split_once('-')?;
            Some(u64::from_str_radix(b, 16).ok()? - u64::from_str_radix(a, 16).ok()?)
        })
        .sum()
}

#[test]
fn payloads_around_the_threshold_arrive_intact_and_leave_nothing_behind() {
    let _g = exclusive();
    let fds_before = open_fds();
    let mapped_before = mapped_regions();
    {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(2)
            .build()
            .unwrap();
        let k = 256 * 1024;
        for (i, n) in [0, 1, k - 64, k - 1, k, k + 1, 1 << 20, 9 << 20]
            .into_iter()
            .enumerate()
        {
            let v = data(n, i as u8);
            let back = pool.submit(echo, Bytes(v.clone())).result(None).unwrap();
            assert!(back.0 == v, "echo of {n} bytes came back different");
            assert_eq!(pool.submit(grow, n).result(None).unwrap().0, grow(n).0);
            let expect: u64 = v.iter().map(|&x| x as u64).sum();
            assert_eq!(pool.submit(sum, Bytes(v)).result(None).unwrap(), expect);
        }
        if cfg!(target_os = "linux") {
            // The 9 MiB result was read from a region mapped here, not from the pipe.
            assert!(mapped_regions() > mapped_before + (9 << 20));
        }
        // Many large calls in flight at once: while a worker still reads one region, the next
        // call goes by pipe; every result comes back in its place.
        let inputs: Vec<Vec<u8>> = (0..24).map(|i| data(300_000 + i * 1000, i as u8)).collect();
        let results: Vec<Bytes> = pool
            .map(echo, inputs.clone().into_iter().map(Bytes))
            .collect::<Result<_, _>>()
            .unwrap();
        for (got, want) in results.iter().zip(&inputs) {
            assert!(&got.0 == want);
        }
        pool.shutdown(true, false);
    }
    assert_eq!(open_fds(), fds_before);
    assert_eq!(mapped_regions(), mapped_before);
}

#[test]
fn a_worker_killed_in_the_middle_of_a_transfer_fails_only_its_call() {
    let _g = exclusive();
    let fds_before = open_fds();
    let mapped_before = mapped_regions();
    {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap();
        let v = data(24 << 20, 5);
        let (mut died, mut survived) = (0, 0);
        for delay_us in [0u64, 300, 1000, 2000, 4000, 8000, 15_000, 30_000] {
            let worker = pool.submit(pid, ()).result(None).unwrap();
            let mut big = pool.submit(echo, Bytes(v.clone()));
            std::thread::sleep(Duration::from_micros(delay_us));
            // SAFETY: signalling our own worker; it is alive or unreaped (the pool reaps it
            // only after it has seen it end, and has no other worker to recycle the pid).
            unsafe { libc::kill(worker as i32, libc::SIGKILL) };
            match big.result(Some(Duration::from_secs(30))) {
                Ok(back) => {
                    assert!(back.0 == v, "a call that survived came back different");
                    survived += 1;
                }
                Err(e) => {
                    let d = e
                        .worker()
                        .unwrap_or_else(|| panic!("expected WorkerDied: {e}"));
                    assert_eq!(d.pid(), worker);
                    died += 1;
                }
            }
            // The pool goes on with a fresh worker.
            assert_eq!(pool.submit(square, 12).result(None).unwrap(), 144);
        }
        assert_eq!(died + survived, 8);
        let back = pool.submit(echo, Bytes(v.clone())).result(None).unwrap();
        assert!(back.0 == v);
        pool.shutdown(true, false);
    }
    assert_eq!(open_fds(), fds_before);
    assert_eq!(mapped_regions(), mapped_before);
}

/// An envelope frame: `len` bytes said to be post `number` of the results region.
#[cfg(target_os = "linux")]
fn envelope(number: u64, len: u64) -> Vec<u8> {
    let mut f = 17u32.to_le_bytes().to_vec();
    f.push(30);
    f.extend_from_slice(&number.to_le_bytes());
    f.extend_from_slice(&len.to_le_bytes());
    f
}

#[cfg(target_os = "linux")]
fn claim_too_much(x: u64) -> u64 {
    write_to_reply_pipe(&envelope(1, u64::MAX));
    x
}

#[cfg(target_os = "linux")]
fn claim_a_post_never_made(x: u64) -> u64 {
    write_to_reply_pipe(&envelope(77, 1000));
    x
}

#[cfg(target_os = "linux")]
fn claim_on_its_own(x: u64) -> u64 {
    // An envelope too short for its fields.
    write_to_reply_pipe(&[9, 0, 0, 0, 30, 1, 0, 0, 0, 0, 0, 0, 0]);
    x
}

// Elsewhere there are no regions, and any envelope is refused as such.
#[cfg(target_os = "linux")]
#[test]
fn lying_envelopes_fail_their_worker_with_a_wire_error() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    for (liar, says) in [
        (claim_too_much as fn(u64) -> u64, "exceeds the limit"),
        (claim_a_post_never_made, "holds post"),
        (claim_on_its_own, "too short"),
    ] {
        let err = pool
            .submit(liar, 1)
            .result(Some(Duration::from_secs(15)))
            .unwrap_err();
        assert!(err.is_wire(), "{err}");
        assert!(err.to_string().contains(says), "{err}");
        // A fresh worker serves the next call.
        assert_eq!(pool.submit(square, 3).result(None).unwrap(), 9);
    }
}

#[taskweave_macros::remote(crate = taskweave_registry, name = "payloads::reverse")]
fn reverse(mut b: Bytes) -> Bytes {
    b.reverse();
    b
}

#[test]
fn large_named_calls_cross_through_shared_memory_too() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    for n in [1000, 300_000, 5 << 20] {
        let v = data(n, 9);
        let mut want = v.clone();
        want.reverse();
        let got = pool
            .submit_remote(reverse, Bytes(v.clone()))
            .result(Some(Duration::from_secs(30)))
            .unwrap();
        assert!(got.0 == want, "{n} bytes by reference came back different");
        let got = pool
            .submit_named::<Bytes, Bytes>("payloads::reverse", Bytes(v))
            .result(Some(Duration::from_secs(30)))
            .unwrap();
        assert!(got.0 == want, "{n} bytes by name came back different");
    }
}
