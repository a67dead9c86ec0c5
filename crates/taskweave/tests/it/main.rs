//! Tests of the facade: the attributes and the prelude.

mod attributes;
