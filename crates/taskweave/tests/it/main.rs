//! Tests of the facade: the attributes, the prelude, the cargo features, Ctrl-C, and observers
//! across crates.

mod attributes;
mod features;
mod gather;
#[cfg(target_os = "linux")]
mod interrupt;
mod observers;
