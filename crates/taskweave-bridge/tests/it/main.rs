//! Integration tests of taskweave-bridge: real threads, real runtimes, real rayon pools.

mod blocking;
mod events;
mod map;
mod pool;
mod rayon;
mod strict;
mod support;
mod threadsafe;
