//! Under random faults (workers exiting, aborting, panicking, killed from outside) every
//! submitted call gets exactly one outcome, every call that succeeded ran exactly once, and no
//! call ran twice.

use std::path::PathBuf;
use std::time::Duration;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use taskweave_process::ProcessPoolExecutor;

use crate::shared;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum Fault {
    None,
    Exit,
    Abort,
    Panic,
    Slow,
}

#[derive(Serialize, Deserialize)]
struct Call {
    index: u64,
    fault: Fault,
    dir: PathBuf,
}

/// Records that it ran (a second run of the same call finds its mark and says so), then
/// misbehaves as told.
fn faulty(call: Call) -> u64 {
    let mark = call.dir.join(call.index.to_string());
    if std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&mark)
        .is_err()
    {
        return u64::MAX;
    }
    match call.fault {
        Fault::None => {}
        Fault::Exit => std::process::exit(3),
        Fault::Abort => std::process::abort(),
        Fault::Panic => panic!("fault in call {}", call.index),
        Fault::Slow => std::thread::sleep(Duration::from_millis(15)),
    }
    call.index * 2
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        10 => Just(Fault::None),
        1 => Just(Fault::Exit),
        1 => Just(Fault::Abort),
        1 => Just(Fault::Panic),
        2 => Just(Fault::Slow),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn no_result_is_lost_or_duplicated(
        faults in proptest::collection::vec(fault(), 1..40),
        workers in 1usize..3,
        kill_after in proptest::option::of(0usize..40),
    ) {
        let _g = shared();
        let dir = std::env::temp_dir().join(format!(
            "taskweave-process-props-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let pool = ProcessPoolExecutor::builder().max_workers(workers).build().unwrap();
        let mut promises = Vec::new();
        for (i, &fault) in faults.iter().enumerate() {
            promises.push(pool.submit(faulty, Call { index: i as u64, fault, dir: dir.clone() }));
            if kill_after == Some(i) {
                // A fault from outside: kill whatever worker is alive right now.
                for pid in pool.worker_pids() {
                    // SAFETY: signalling a worker of this pool.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
            }
        }
        for (i, (mut p, fault)) in promises.into_iter().zip(&faults).enumerate() {
            let out = p.result(Some(Duration::from_secs(60)));
            let ran = dir.join(i.to_string()).exists();
            match (fault, out) {
                (_, Ok(v)) => {
                    prop_assert_ne!(v, u64::MAX, "call {} ran twice", i);
                    prop_assert_eq!(v, i as u64 * 2);
                    prop_assert!(ran);
                }
                (Fault::Panic, Err(e)) if e.is_panic() => prop_assert!(ran),
                (f, Err(e)) if e.is_worker_died() => {
                    prop_assert!(matches!(f, Fault::Exit | Fault::Abort) || kill_after.is_some());
                }
                (f, Err(e)) => prop_assert!(false, "call {} ({:?}) failed with {}", i, f, e),
            }
        }
        drop(pool);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
