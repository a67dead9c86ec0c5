//! Thread pools, to_thread / run_in_executor, a rayon bridge and sync-to-async calls for
//! taskweave.

mod executor;

pub use executor::{Executor, MapResults, Payload};
