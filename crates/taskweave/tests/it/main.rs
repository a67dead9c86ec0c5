//! Tests of the facade: the attributes, the prelude, the cargo features, Ctrl-C.

mod attributes;
mod features;
mod gather;
#[cfg(target_os = "linux")]
mod interrupt;
