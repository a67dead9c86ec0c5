//! An executor on NATS: registered functions run by worker processes on this machine or many,
//! returning the same [`Promise`](taskweave_core::Promise) as every other taskweave executor.
//!
//! NATS does the routing, load balancing, clustering, persistence and re-delivery; this crate
//! defines only a small call envelope (function name, signature hash, postcard-encoded
//! argument) and the rules around it.
//!
//! - Functions travel by name: mark them `#[taskweave::remote]` (see `taskweave-registry`). A
//!   worker runs only registered functions, and refuses an unknown name or a signature mismatch
//!   with an error naming both sides.
//! - [`Mode::Fast`]: core request/reply to the queue group on `<ns>.call.<fn>`, at most once.
//!   No worker at all is an immediate [`NatsError::NoWorkers`]; the worker accepts a call,
//!   heartbeats while it waits and runs, then replies; a worker that goes silent fails only its
//!   own calls ([`ErrorKind::WorkerDied`](taskweave_core::ErrorKind::WorkerDied), with its host and pid).
//! - [`Mode::Durable`]: a JetStream work-queue stream on `<ns>.jobs.>`, one durable pull consumer
//!   per function shared by all workers, explicit acks, progress heartbeats while a call runs,
//!   `ack_wait` and `max_deliver`, `Nats-Msg-Id` = call id for dedupe, results in a key-value
//!   bucket written with `create` (the first writer wins). At least once: **functions should be
//!   idempotent** in this mode.
//! - Values above the server's max payload (1 MiB by default) go through the namespace's
//!   JetStream object store.
//!
//! Workers: [`Worker`] from the user's own binary, [`main_if_worker`] for the command line
//! `myapp --taskweave-worker nats://host:4222`, and [`LocalWorkers`] to start local worker
//! processes of the current program (tests, examples).
//!
//! # Examples
//!
//! ```no_run
//! #[taskweave_macros::remote(crate = taskweave_registry)]
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() -> Result<(), taskweave_core::Error> {
//!     taskweave_nats::main_if_worker(); // `myapp --taskweave-worker nats://...` serves calls
//!     let nats = taskweave_nats::NatsExecutor::builder()
//!         .server("nats://127.0.0.1:4222")
//!         .namespace("demo")
//!         .connect()?;
//!     let _workers = taskweave_nats::LocalWorkers::start(2, "nats://127.0.0.1:4222", "demo", 1)?;
//!     let mut p = nats.submit(square, 12);
//!     println!("{}", p.result(None)?);
//!     Ok(())
//! }
//! ```

mod client;
mod connect;
mod error;
mod executor_impl;
mod fast;
mod names;
mod objects;
mod wire;
mod worker;

pub use client::{Builder, CallRecord, Mode, NatsExecutor};
pub use connect::Credentials;
pub use error::NatsError;
pub use worker::{
    CONCURRENCY_ENV, LocalWorkers, NAMESPACE_ENV, WORKER_ENV, WORKER_FLAG, Worker, main_if_worker,
};
