//! Integration tests of taskweave-bridge: real threads, real runtimes, real rayon pools.

mod blocking;
mod context;
mod events;
mod faults;
mod map;
mod pool;
mod rayon;
mod reuse;
mod strict;
mod support;
mod threadsafe;
