//! Calls as the pool holds them: the type-erased [`Job`] queued and sent to a worker, the
//! `Sink` that turns its reply into results (a promise for `submit`, a chunk of results for a
//! map), and [`settle`], the one way a job is completed.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use taskweave_core::instrument::ObserverRef;
use taskweave_core::{Error, Resolver, TaskInfo};

use crate::wire::outcome;

/// Delivers a job's outcome; a panic in user code reached from there (a result's
/// `Deserialize`, a done-callback) is contained, so the calling slot thread carries on. Never
/// called with the pool lock held.
pub(crate) fn settle(sink: Box<dyn Sink>, reply: Reply<'_>) {
    let _ = crate::unwind::catch(move || sink.finish(reply));
}

/// How a dispatched job ended, as the pool's reader sees it.
pub(crate) enum Reply<'a> {
    /// The worker's encoded outcomes.
    Outcomes { payload: &'a [u8], pid: u32 },
    /// The job failed as a whole (worker died, call refused, pool shut down).
    Failed(Error),
}

/// The typed end of a job: it turns a reply into results.
pub(crate) trait Sink: Send {
    /// Called when the job is dispatched; `false` means it was cancelled and must not run.
    fn start(&mut self) -> bool;
    /// Delivers the job's outcome.
    fn finish(self: Box<Self>, reply: Reply<'_>);
    /// The work's description and the observer of the code that submitted it, for debug
    /// events, if any.
    fn observed(&self) -> Option<(&TaskInfo, &ObserverRef)>;
}

/// A queued or dispatched call.
pub(crate) struct Job {
    pub(crate) id: u64,
    /// The complete frame, kept until the reply so work a dead worker never started can be
    /// sent again.
    pub(crate) frame: Arc<Vec<u8>>,
    /// "task 17 (fn(u64) -> u64)", for errors.
    pub(crate) what: Arc<str>,
    pub(crate) sink: Box<dyn Sink>,
    /// The call's place among the calls sent to its current worker (its claim word).
    pub(crate) position: u64,
    /// How long the call may run in a worker before the worker is ended.
    pub(crate) timeout: Option<Duration>,
    /// The worker its `Started` event named: a call taken back before it began and sent to
    /// the same worker again is not reported twice.
    pub(crate) started_on: Option<u32>,
}

/// The sink of a single `submit`: completes its promise.
pub(crate) struct PromiseSink<R> {
    pub(crate) resolver: Resolver<R>,
    pub(crate) what: Arc<str>,
}

impl<R: DeserializeOwned + Send + 'static> Sink for PromiseSink<R> {
    fn start(&mut self) -> bool {
        self.resolver.set_running()
    }

    fn finish(self: Box<Self>, reply: Reply<'_>) {
        let result = match reply {
            Reply::Outcomes { mut payload, pid } => outcome::next(&mut payload, &self.what, pid),
            Reply::Failed(e) => Err(e),
        };
        self.resolver.resolve(result);
    }

    fn observed(&self) -> Option<(&TaskInfo, &ObserverRef)> {
        let observer = self.resolver.observer();
        self.resolver
            .info()
            .filter(|_| observer.is_active())
            .map(|info| (info, observer))
    }
}
