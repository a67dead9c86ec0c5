//! Panics of user code on the pool's own threads and in workers: caught, turned into errors,
//! and never allowed to escape, not even from a panic payload whose own `Drop` panics.
//!
//! User code runs on the pool's supervising threads when a result is deserialised and when a
//! promise's done-callbacks run. A panic escaping there would leave a slot busy forever, so every
//! completion goes through [`settle`].

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::job::{Reply, Sink};

/// Runs `f`, turning a panic into `Err(message)`; the payload is dropped safely.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = taskweave_core::error::panic_message(&*payload);
        taskweave_core::error::drop_panic_payload(payload);
        message
    })
}

/// Delivers a job's outcome; a panic in user code reached from there (a result's
/// `Deserialize`, a done-callback) is contained, so the calling slot thread carries on.
pub(crate) fn settle(sink: Box<dyn Sink>, reply: Reply<'_>) {
    let _ = catch(move || sink.finish(reply));
}
