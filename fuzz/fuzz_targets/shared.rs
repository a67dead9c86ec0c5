//! Frames whose body is in a shared memory region: envelopes resolved against a region holding
//! an arbitrary body, and the bodies decoded both ways.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taskweave_process::fuzzing::shared(data));
