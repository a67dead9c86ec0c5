//! Thread pools, to_thread / run_in_executor, a rayon bridge and sync-to-async calls for
//! taskweave.
//!
//! This crate is where blocking work meets async code, the part of Python's asyncio and
//! concurrent.futures that deals with threads:
//!
//! - [`ThreadPoolExecutor`]: `concurrent.futures.ThreadPoolExecutor` with closures: `submit`,
//!   a lazy windowed `map` (ordered and [unordered](ThreadPoolExecutor::map_unordered), with a
//!   chunksize, a timeout and [progress](MapOptions::on_progress)), `shutdown(wait, cancel_futures)`, an
//!   initializer that breaks the pool when it fails.
//! - [`to_thread`] and [`run_in_executor`]: asyncio's `to_thread` and `loop.run_in_executor`,
//!   with a [default executor](default_executor) per runtime.
//! - The rayon bridge: [`spawn_rayon`], [`par_map`] and [`RayonExecutor`] await CPU work run on
//!   rayon.
//! - [`run_coroutine_threadsafe`]: a plain thread hands a future to a running runtime and
//!   waits for its result.
//! - [`Executor`], [`Map`], [`MapOptions`]: re-exported from `taskweave-executor`, the layer
//!   thread pools, rayon and process pools share, so code can be generic over where work runs.
//!
//! Every call hands back taskweave's general future, [`Promise`](taskweave_core::Promise): await it
//! from async code, or block on it from a plain thread with
//! [`result`](taskweave_core::Promise::result). Blocking waits (`result`, iterating a map,
//! `shutdown(wait = true)`) refuse to run inside an async task, where they would stall the runtime,
//! with an [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) that says what to use
//! instead.
//!
//! What it is not: it has no process pool (that is `taskweave-process`, which implements
//! [`Executor`] too), no task types of its own (those are `taskweave-core`'s) and no map engine
//! of its own (that is `taskweave-executor`'s; this crate implements its `Dispatch`).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use taskweave_bridge::{run_in_executor, to_thread, ThreadPoolExecutor};
//!
//! fn blocking_function() -> u32 {
//!     std::thread::sleep(Duration::from_millis(10));
//!     42
//! }
//!
//! taskweave_core::run(async {
//!     let pool = ThreadPoolExecutor::new();
//!     assert_eq!(run_in_executor(&pool, blocking_function).await.unwrap(), 42);
//!     assert_eq!(to_thread(blocking_function).await.unwrap(), 42);
//! })
//! .unwrap();
//! ```
//!
//! # Features
//!
//! - `progress`: `MapOptions::progress_bar` draws an indicatif progress bar for a map.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod blocking;
mod executor;
mod job;
mod map;
mod poison;
mod pool;
mod rayon_bridge;
mod threadsafe;

pub use blocking::{
    DEFAULT_KEEP_ALIVE, default_executor, run_in_executor, set_default_executor, to_thread,
};
pub use pool::{Builder as ThreadPoolBuilder, ThreadPoolExecutor};
pub use rayon_bridge::{RayonExecutor, par_map, spawn_rayon};
/// The executor layer's traits and map types, which this crate's executors implement and return.
pub use taskweave_executor::{
    Executor, Map, MapOptions, MapUnordered, Payload, Progress, ProgressStream, Queued, Runs,
};
pub use threadsafe::run_coroutine_threadsafe;
