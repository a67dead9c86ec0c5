//! Tests of the facade: the attributes, the prelude, Ctrl-C, and observers across crates.

mod attributes;
mod gather;
#[cfg(target_os = "linux")]
mod interrupt;
mod observers;
