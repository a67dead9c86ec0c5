//! Integration tests of taskweave-executor: the map engine on a real executor of plain threads
//! (`support::Threads`), real tokio runtimes for the async side.

mod extremes;
mod map;
mod support;
