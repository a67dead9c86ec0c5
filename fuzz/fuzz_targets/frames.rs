//! The frame reader and the message decoders of both directions, on arbitrary streams.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taskweave_process::fuzzing::frames(data));
