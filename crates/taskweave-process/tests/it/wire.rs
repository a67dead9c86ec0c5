//! The frame decoder under random and hostile input: an error, never a panic or a hang.

use proptest::prelude::*;
use taskweave_process::wire::{self, DEFAULT_MAX_FRAME};

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
