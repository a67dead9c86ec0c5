//! Debug mode for taskweave: what asyncio's debug mode finds, for taskweave programs, reported as
//! `tracing` events.
//!
//! Debug mode belongs to a runtime. It is switched on
//!
//! - for a taskweave runtime, with `Runtime::builder().debug(true)`, `#[taskweave::main(debug)]`,
//!   or by handing an observer built from [`Debug`](struct@Debug) to
//!   `Runtime::builder().observer(..)`;
//! - for a tokio runtime the program built itself (`#[tokio::main]`), with
//!   `let _debug = taskweave_debug::enable()?;` ([`enable`], [`attach`]);
//! - for any runtime, with `TASKWEAVE_DEBUG=1` in the environment: the first taskweave call on a
//!   runtime checks it.
//!
//! The last two need this crate to answer requests for debug mode, which it does by itself on
//! Linux, Android and FreeBSD (before `main`) and after [`enable_on_request`] elsewhere (the
//! `taskweave` facade's `run` and `#[taskweave::main]` call it). Two runtimes in one process
//! each have their own observer and never see each other's tasks. When on, it reports:
//!
//! | report (`kind` field) | level | when |
//! |---|---|---|
//! | `slow_poll` | WARN | a poll held its thread at least the slow-poll threshold (100 ms) |
//! | `blocked_worker` | WARN | a poll is still running far past it (watchdog, with a dump) |
//! | `hang` | WARN | a task has not been polled for the hang threshold (watchdog, with a dump) |
//! | `never_awaited` | WARN | a task handle was dropped while the task was pending, not detached |
//! | `error_not_retrieved` | ERROR | a task or future failed and its last handle is gone unread |
//! | `pending_at_shutdown` | WARN | a task was still pending when `run` ended |
//! | `runtime_dropped_with_tasks` | WARN | tasks were still inside a poll after the runtime shut down |
//! | `executor_dropped_with_pending` | WARN | a pool was dropped without shutdown with work pending |
//! | `blocking_wait_refused` | ERROR | a blocking wait was refused inside a task |
//! | `callback_panicked` | ERROR | a done-callback panicked |
//! | `spawn`, `finished`, `failed`, `cancelled`, `submitted`, `started`, `work_finished`, `work_ended` | DEBUG | debug logs |
//!
//! Every event has target [`TARGET`] and the fields `kind`, `task.id`, `task.name`,
//! `task.site` and, where they apply, `duration_s`, `age_s`, `polls`, `error`, `backtrace`
//! (a panic's, captured with `RUST_BACKTRACE=1`), `executor`, `pending`, `hint` and
//! `dump`. [`PrettyLayer`] prints them for people; with no subscriber at all, warnings and errors
//! still reach stderr.
//!
//! The **timeline** (`TASKWEAVE_TRACE=run.json`, or [`Debug::trace_file`]) is a Chrome /
//! Perfetto trace of the run: tasks from spawn to end, their polls on the threads that ran them,
//! executor work on its workers. It is written when the runtime shuts down.
//!
//! What it is not: a profiler or a replacement for tokio-console. It sees taskweave tasks and
//! executor work (through `taskweave_core::instrument`), not raw `tokio::spawn` tasks, and costs
//! nothing when off: core then does one branch per poll and never calls into this crate.
//!
//! Where it sits: it depends on `taskweave-core` (the seam), `tokio` (for a runtime's handle),
//! `tracing` and `tracing-subscriber`; nothing below the facade depends on it.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use taskweave_core::{create_task_named, Runtime};
//!
//! let debug = taskweave_debug::Debug::new().slow_poll(Duration::from_millis(20)).build();
//! let rt = Runtime::builder().observer(debug.clone()).build().unwrap();
//! rt.run(async {
//!     // Reported as "Executing <Task name='blocker' ...> took 0.03x seconds".
//!     let task = create_task_named("blocker", async { std::thread::sleep(Duration::from_millis(30)) });
//!     task.await.unwrap();
//! })
//! .unwrap();
//! ```

mod attach;
mod clock;
mod config;
mod layer;
mod observer;
mod registry;
mod report;
mod threads;
mod timeline;

pub use attach::{DebugGuard, attach, enable};
pub use config::{Debug, enable_on_request};
pub use layer::PrettyLayer;
pub use observer::{DebugObserver, current, dump};
pub use registry::{Dump, TaskSnapshot, TaskState};
pub use report::TARGET;
