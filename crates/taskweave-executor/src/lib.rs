//! The executor layer of taskweave: the [`Executor`] trait, [`Payload`], and the one windowed
//! map engine every executor shares.
//!
//! What it is:
//!
//! - [`Executor`] (`submit`, `map`, `map_unordered`, `shutdown` over `fn` pointers and
//!   [`Payload`]s) and [`Runs`] (what `run_in_executor` accepts): the traits thread pools,
//!   rayon and process pools implement, so code can be generic over where work runs.
//! - The map engine: [`Map`] (input order) and [`MapUnordered`] (`(index, result)` in
//!   completion order), lazy and windowed, a blocking `Iterator` for plain threads and a
//!   `Stream` with [`next_async`](Map::next_async) and [`collect_async`](Map::collect_async)
//!   for async code; configured by [`MapOptions`] (window, chunksize, timeout, progress, total)
//!   and reporting one [`Progress`] type.
//! - [`Queued`]: what shutting an executor down does with work not yet started (run it, or
//!   cancel it), for the `shutdown_async` methods.
//! - [`Dispatch`]: the one trait an executor implements to get all of that: take [`Chunk`]s of
//!   inputs, deliver their results through [`ChunkResults`].
//!
//! What it is not: it runs nothing itself, starts no thread or process, and serialises nothing.
//! The executors live in `taskweave-bridge` (threads, rayon) and `taskweave-process` (worker
//! processes).
//!
//! Where it sits: above `taskweave-core` (promises, errors, the strict blocking-wait check) and
//! below every executor crate, so none of them depends on another.
//!
//! # Example
//!
//! ```
//! use taskweave_bridge::ThreadPoolExecutor;
//! use taskweave_executor::{Executor, MapOptions};
//!
//! fn square(x: u64) -> u64 { x * x }
//!
//! // Any executor: the same map, options and result types.
//! fn sum_of_squares(executor: &impl Executor) -> u64 {
//!     let options = MapOptions::new().chunksize(16);
//!     executor.map_with(square, 1..=100u64, options).map(Result::unwrap).sum()
//! }
//! assert_eq!(sum_of_squares(&ThreadPoolExecutor::new()), 338_350);
//! ```
//!
//! # Features
//!
//! - `progress`: `MapOptions::progress_bar` draws an indicatif progress bar for a map.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod dispatch;
mod executor;
mod map;
mod options;
mod poison;
mod progress;
mod queued;

pub use dispatch::{Chunk, ChunkResults, Dispatch, Items};
pub use executor::{Executor, Payload, Runs};
pub use map::{Map, MapUnordered};
pub use options::MapOptions;
pub use progress::{Progress, ProgressStream};
pub use queued::Queued;
