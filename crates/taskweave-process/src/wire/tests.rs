//! The frame format: round trips, and the decoder under random and hostile input (an error,
//! never a panic or a hang), also in a real worker process.

use proptest::prelude::*;

use super::*;
use crate::wire;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut reader = &bytes[..];
        // Read frames until the input is used up or an error: each step consumes input, so
        // this ends.
        while let Ok(Some(body)) = wire::read_frame(&mut reader, 4096) {
            let _ = wire::decode_from_worker(&body);
            let _ = wire::decode_to_worker(&body);
        }
        let _ = wire::decode_from_worker(&bytes);
        let _ = wire::decode_to_worker(&bytes);
    }

    #[test]
    fn truncated_frames_are_errors(body in proptest::collection::vec(any::<u8>(), 1..512), cut in 0usize..512) {
        let mut frame = (body.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&body);
        let cut = cut.min(frame.len() - 1).max(1);
        let mut reader = &frame[..cut];
        prop_assert!(wire::read_frame(&mut reader, DEFAULT_MAX_FRAME).is_err());
    }
}

#[test]
fn oversized_length_is_refused_before_allocating() {
    let frame = u32::MAX.to_le_bytes();
    let err = wire::read_frame(&mut &frame[..], 1 << 20).unwrap_err();
    assert!(err.to_string().contains("exceeds the limit"), "{err}");
}

#[test]
fn a_lying_length_under_the_limit_is_a_truncation_error() {
    let mut frame = (900_000_000u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&[13; 100]);
    let err = wire::read_frame(&mut &frame[..], DEFAULT_MAX_FRAME).unwrap_err();
    assert!(err.to_string().contains("cut short"), "{err}");
}

#[test]
fn empty_frames_are_errors() {
    assert!(wire::read_frame(&mut &[0u8, 0, 0, 0][..], 64).is_err());
}

pub(crate) mod live_worker {
    //! Random bytes into a real worker process (this test binary started as one): it exits,
    //! never hangs and never runs anything.

    use std::fs::File;
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use proptest::prelude::*;

    use crate::wire::{self, FromWorker};

    /// Held while a test's descriptors are inheritable, and by every other test of this binary
    /// that starts processes.
    pub(crate) static SPAWNING: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// A close-on-exec pipe.
    fn pipe() -> (File, File) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: two fresh descriptors nothing else owns.
        unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        #[test]
        fn garbage_makes_a_worker_exit(garbage in proptest::collection::vec(any::<u8>(), 0..512)) {
            // One at a time: the pipes are inheritable until the child is started.
            let _g = SPAWNING.lock().unwrap_or_else(|p| p.into_inner());
            let (child_in, mut to_worker) = pipe();
            let (mut from_worker, child_out) = pipe();
            for fd in [child_in.as_raw_fd(), child_out.as_raw_fd()] {
                // SAFETY: fcntl on descriptors this test owns: the child's ends are inherited.
                unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
            }
            let marker = format!(
                "1:{}:{}:{}:{}",
                child_in.as_raw_fd(),
                child_out.as_raw_fd(),
                std::process::id(),
                wire::DEFAULT_MAX_FRAME
            );
            let mut child = Command::new(std::env::current_exe().unwrap())
                .env("TASKWEAVE_PROCESS_WORKER", marker)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            drop((child_in, child_out));
            let hello = wire::read_frame(&mut from_worker, 1 << 20);
            let hello = match hello {
                Ok(Some(hello)) => hello,
                other => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("no hello: {other:?}");
                }
            };
            let is_hello = matches!(wire::decode_from_worker(&hello), Ok(FromWorker::Hello { .. }));
            prop_assert!(is_hello);
            let _ = to_worker.write_all(&garbage);
            drop(to_worker);
            let deadline = Instant::now() + Duration::from_secs(20);
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    prop_assert!(false, "the worker did not exit");
                }
                std::thread::sleep(Duration::from_millis(2));
            };
            // A clean exit (end of input) or the protocol-error status; never a crash.
            prop_assert!(status.code() == Some(0) || status.code() == Some(86), "{status}");
        }
    }
}

#[test]
fn memory_follows_the_bytes_that_arrived_not_the_claimed_length() {
    // 1 MiB + 4 bytes of input that claim a frame of almost 1 GiB.
    let mut input = ((1u32 << 30) - 1).to_le_bytes().to_vec();
    input.extend(std::iter::repeat_n(7u8, 1 << 20));
    let mut body = Vec::new();
    let err = wire::read_frame_into(&mut &input[..], DEFAULT_MAX_FRAME, &mut body).unwrap_err();
    assert!(err.to_string().contains("cut short"), "{err}");
    assert!(
        body.capacity() <= 4 << 20,
        "{} bytes reserved for 1 MiB of input",
        body.capacity()
    );
    // A whole large frame still arrives whole.
    let mut frame = (3_000_000u32).to_le_bytes().to_vec();
    frame.extend((0..3_000_000u32).map(|i| i as u8));
    let got = wire::read_frame(&mut &frame[..], DEFAULT_MAX_FRAME)
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 3_000_000);
    assert_eq!(got[2_999_999], (2_999_999u32) as u8);
}

#[test]
fn call_round_trip() {
    let f = FnRef {
        func: -5,
        trampoline: 77,
        tag: 9,
    };
    let mut out = Vec::new();
    let start = begin_call(&mut out, 3, f, 0);
    out.extend_from_slice(b"abc");
    set_call_count(&mut out, start, 2);
    finish(&mut out, start, DEFAULT_MAX_FRAME).unwrap();
    let body = read_frame(&mut &out[..], DEFAULT_MAX_FRAME)
        .unwrap()
        .unwrap();
    assert_eq!(
        decode_to_worker(&body).unwrap(),
        ToWorker::Call {
            id: 3,
            func: f,
            count: 2,
            payload: b"abc"
        }
    );
}

#[test]
fn a_ready_frame_is_one_kind_byte() {
    let mut frame = Vec::new();
    encode_ready(&mut frame);
    assert_eq!(frame, [1, 0, 0, 0, 11]);
    let body = read_frame(&mut &frame[..], DEFAULT_MAX_FRAME)
        .unwrap()
        .unwrap();
    assert!(matches!(decode_from_worker(&body), Ok(FromWorker::Ready)));
}

#[test]
fn short_input_and_clean_ends() {
    let bytes = [3u8, 0, 0, 0, 1, 2]; // claims 3 bytes, has 2
    assert!(read_frame(&mut &bytes[..], 1024).is_err());
    assert!(read_frame(&mut &[][..], 1024).unwrap().is_none());
    let mut body = Vec::new();
    assert!(read_frame_into(&mut &[2u8, 0, 0, 0, 11, 12][..], 64, &mut body).unwrap());
    assert_eq!(body, [11, 12]);
    assert!(decode_to_worker(&[99]).is_err());
    assert!(decode_from_worker(&[13, 1, 2]).is_err());
}

#[test]
fn setup_round_trip() {
    let f = FnRef {
        func: 1,
        trampoline: -2,
        tag: 3,
    };
    let mut out = Vec::new();
    encode_setup(&mut out, b"build", 42, Some((f, b"arg")), DEFAULT_MAX_FRAME).unwrap();
    let body = read_frame(&mut &out[..], DEFAULT_MAX_FRAME)
        .unwrap()
        .unwrap();
    assert_eq!(
        decode_to_worker(&body).unwrap(),
        ToWorker::Setup {
            build_id: b"build",
            secret: 42,
            initializer: Some((f, &b"arg"[..])),
        }
    );
}

#[test]
fn named_frames_round_trip() {
    let mut out = Vec::new();
    encode_setup_named(&mut out, 7);
    let body = read_frame(&mut &out[..], DEFAULT_MAX_FRAME)
        .unwrap()
        .unwrap();
    assert_eq!(
        decode_to_worker(&body).unwrap(),
        ToWorker::SetupNamed { abi: 7 }
    );

    let mut frame = Vec::new();
    let start = begin_named_call(&mut frame, 9, 0xfeed, 0, "app::square", "fn(u64) -> u64");
    push_named_item(&mut frame, &5u64).unwrap();
    push_named_item(&mut frame, &"two".to_string()).unwrap();
    set_named_call_count(&mut frame, start, 2);
    finish(&mut frame, start, DEFAULT_MAX_FRAME).unwrap();
    let body = read_frame(&mut &frame[..], DEFAULT_MAX_FRAME)
        .unwrap()
        .unwrap();
    let Ok(ToWorker::NamedCall {
        id,
        hash,
        count,
        name,
        caller,
        payload,
    }) = decode_to_worker(&body)
    else {
        panic!("not a named call");
    };
    assert_eq!((id, hash, count), (9, 0xfeed, 2));
    assert_eq!((name, caller), ("app::square", "fn(u64) -> u64"));
    let mut rest = payload;
    let first = next_named_item(&mut rest).unwrap();
    assert_eq!(postcard::from_bytes::<u64>(first).unwrap(), 5);
    let second = next_named_item(&mut rest).unwrap();
    assert_eq!(postcard::from_bytes::<String>(second).unwrap(), "two");
    assert!(rest.is_empty());
    assert!(next_named_item(&mut rest).is_err());
}

#[test]
fn a_named_call_cut_inside_an_argument_is_an_error() {
    let mut payload = 100u32.to_le_bytes().to_vec();
    payload.extend_from_slice(&[1, 2, 3]);
    let mut rest = &payload[..];
    let err = next_named_item(&mut rest).unwrap_err();
    assert!(err.contains("100 bytes"), "{err}");
    // A count the payload cannot hold is refused before anything runs.
    let mut frame = Vec::new();
    let start = begin_named_call(&mut frame, 1, 2, u32::MAX, "f", "fn(u8) -> u8");
    push_named_item(&mut frame, &1u8).unwrap();
    finish(&mut frame, start, DEFAULT_MAX_FRAME).unwrap();
    let err = decode_to_worker(&frame[4..]).unwrap_err();
    assert!(
        err.to_string().contains("claims 4294967295 arguments"),
        "{err}"
    );
    // A name that is not UTF-8 is refused as a frame error.
    let body = [
        K_CALL_NAMED,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        1,
        0,
        0xff,
    ];
    assert!(decode_to_worker(&body).is_err());
}

#[test]
fn a_refused_outcome_is_a_refusal() {
    let mut out = Vec::new();
    outcome::push_refused(&mut out, "unknown remote function `x`");
    outcome::push_value(&mut out, &3u8);
    let mut rest = &out[..];
    let err = outcome::next::<u8>(&mut rest, "task 1", 42).unwrap_err();
    assert!(err.is_refused(), "{err}");
    assert!(err.to_string().contains("worker pid 42"), "{err}");
    assert_eq!(outcome::next::<u8>(&mut rest, "task 2", 42).unwrap(), 3);
    assert!(rest.is_empty());
}
