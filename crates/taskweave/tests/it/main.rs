//! Tests of the facade: the attributes, the prelude, and observers across crates.

mod attributes;
mod observers;
