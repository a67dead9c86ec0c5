//! The outcome decoder of a result frame, for several result types.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taskweave_process::fuzzing::outcomes(data));
