//! Tests of the facade: the attributes, the prelude, Ctrl-C.

mod attributes;
mod gather;
#[cfg(target_os = "linux")]
mod interrupt;
