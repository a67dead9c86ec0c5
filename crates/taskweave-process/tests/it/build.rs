//! Workers that are not this build, or not taskweave workers at all, are refused at the
//! handshake with a clear error; nothing of theirs is ever run.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use taskweave_process::ProcessPoolExecutor;

use crate::work::square;
use crate::{exclusive, shared};

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("taskweave-process-{}-{name}", std::process::id()))
}

/// Writes an executable file and closes it before anything is spawned from it.
fn write_executable(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The position of the GNU build id's descriptor in an ELF file, if it has one.
fn build_id_at(elf: &[u8]) -> Option<usize> {
    let header: &[u8] = &[4, 0, 0, 0, 20, 0, 0, 0, 3, 0, 0, 0, b'G', b'N', b'U', 0];
    elf.windows(header.len())
        .position(|w| w == header)
        .map(|i| i + header.len())
}

fn broken_reason(pool: &ProcessPoolExecutor) -> String {
    match pool.submit(square, 2).result(Some(Duration::from_secs(30))) {
        Err(e) if e.is_broken() => e.reason().unwrap_or_default().to_owned(),
        other => panic!("expected a broken pool, got {other:?}"),
    }
}

#[test]
fn a_copy_of_the_same_build_is_accepted() {
    // Exclusive: no other test forks while the copy's write descriptor exists (ETXTBSY).
    let _g = exclusive();
    let copy = temp_path("same");
    write_executable(
        &copy,
        &std::fs::read(std::env::current_exe().unwrap()).unwrap(),
    );
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .worker_program(&copy)
        .build()
        .unwrap();
    assert_eq!(
        pool.submit(square, 4)
            .result(Some(Duration::from_secs(30)))
            .unwrap(),
        16
    );
    drop(pool);
    let _ = std::fs::remove_file(copy);
}

#[test]
fn a_different_build_is_refused_at_the_handshake() {
    let _g = exclusive();
    let mut bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    match build_id_at(&bytes) {
        Some(at) => bytes[at] ^= 0xff,
        // Without a build id the pool hashes the executable: any change is another build.
        None => bytes.extend_from_slice(b"another build"),
    }
    let other = temp_path("other");
    write_executable(&other, &bytes);
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .worker_program(&other)
        .build()
        .unwrap();
    let reason = broken_reason(&pool);
    assert!(
        reason.contains("refused at the handshake") && reason.contains("not the same build"),
        "{reason}"
    );
    drop(pool);
    let _ = std::fs::remove_file(other);
}

fn script(name: &str, body: &str) -> PathBuf {
    let path = temp_path(name);
    // bash, not sh: dash takes only one-digit descriptors in `>&$out`, and with other tests'
    // pipes open the pool's descriptor can be 10 or more.
    write_executable(&path, format!("#!/bin/bash\n{body}\n").as_bytes());
    path
}

/// The output descriptor the pool hands a worker, from the worker marker.
const OUT_FD: &str = r#"out=$(echo "$TASKWEAVE_PROCESS_WORKER" | cut -d: -f3)"#;

#[test]
fn a_program_that_is_no_worker_is_refused() {
    let _g = exclusive();
    let silent = script("silent", "exec sleep 30");
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .worker_program(&silent)
        .handshake_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let reason = broken_reason(&pool);
    assert!(reason.contains("did not answer the handshake"), "{reason}");
    drop(pool);

    let garbage = script(
        "garbage",
        &format!("{OUT_FD}\nprintf '\\005\\000\\000\\000\\377abcd' >&$out\nexec sleep 30"),
    );
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .worker_program(&garbage)
        .build()
        .unwrap();
    let reason = broken_reason(&pool);
    assert!(reason.contains("refused at the handshake"), "{reason}");
    drop(pool);

    let truncated = script(
        "truncated",
        &format!("{OUT_FD}\nprintf '\\100\\000\\000\\000\\012' >&$out\nexit 0"),
    );
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .worker_program(&truncated)
        .build()
        .unwrap();
    let reason = broken_reason(&pool);
    assert!(
        reason.contains("malformed handshake") && reason.contains("cut short"),
        "{reason}"
    );
    drop(pool);
    for p in [silent, garbage, truncated] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn nested_pools_start_their_own_workers() {
    let _g = shared();
    fn inner_square(x: u64) -> u64 {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap();
        pool.submit(square, x).result(None).unwrap()
    }
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    assert_eq!(pool.submit(inner_square, 12).result(None).unwrap(), 144);
}

#[test]
fn every_builder_argument_is_validated_with_a_clear_error() {
    let _g = shared();
    let refused = |b: taskweave_process::ProcessPoolBuilder, needle: &str| match b.build() {
        Err(e) if e.is_refused() => {
            let reason = e.reason().unwrap_or_default();
            assert!(reason.contains(needle), "{reason}");
        }
        Err(e) => panic!("expected a refusal naming {needle}, got {e}"),
        Ok(_) => panic!("expected a refusal naming {needle}"),
    };
    refused(
        ProcessPoolExecutor::builder().max_tasks_per_child(0),
        "max_tasks_per_child",
    );
    refused(ProcessPoolExecutor::builder().max_workers(0), "max_workers");
    refused(
        ProcessPoolExecutor::builder().max_workers(1 << 40),
        "max_workers",
    );
    refused(ProcessPoolExecutor::builder().max_frame(3), "max_frame");
    refused(
        ProcessPoolExecutor::builder().max_frame(usize::MAX),
        "max_frame",
    );
    refused(
        ProcessPoolExecutor::builder().handshake_timeout(Duration::ZERO),
        "handshake_timeout",
    );
    refused(
        ProcessPoolExecutor::builder().worker_program("/nonexistent/taskweave-worker"),
        "worker_program",
    );
}

#[test]
fn extreme_but_valid_arguments_work() {
    let _g = shared();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .handshake_timeout(Duration::MAX)
        .build()
        .unwrap();
    assert_eq!(
        pool.submit(square, 3)
            .result(Some(Duration::from_secs(30)))
            .unwrap(),
        9
    );
    // A chunk size and a window far beyond the input reserve nothing up front.
    let huge = taskweave_process::MapOptions::new()
        .chunksize(1 << 40)
        .window(1 << 40);
    let out: Vec<u64> = pool
        .map_with(square, 0..10, huge)
        .map(Result::unwrap)
        .collect();
    assert_eq!(out[9], 81);
    let huge = taskweave_process::MapOptions::new().chunksize(usize::MAX);
    let out: Vec<u64> = pool
        .map_unordered_with(square, 0..10, huge)
        .map(|(_, r)| r.unwrap())
        .collect();
    assert_eq!(out.len(), 10);
}
