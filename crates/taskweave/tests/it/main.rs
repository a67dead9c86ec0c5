//! Tests of the facade: the attributes, the prelude and the cargo features.

mod attributes;
mod features;
