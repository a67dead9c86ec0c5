//! The handshake frames: a worker's hello as the pool checks it, the pool's setup as a worker
//! checks it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taskweave_process::fuzzing::handshake(data));
