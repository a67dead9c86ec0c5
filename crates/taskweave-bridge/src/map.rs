//! The thread pool's and the rayon executor's side of the map engine: [`ClosureMap`] turns each
//! chunk of a map into one queued [`Job`] that runs the closure over the chunk's inputs.

use std::marker::PhantomData;
use std::sync::Arc;

use taskweave_core::{Error, TaskInfo};
use taskweave_executor::{Chunk, Dispatch};

use crate::job::{self, Job, Run};

/// An executor queue that maps can put jobs on.
pub(crate) trait JobQueue: Send + Sync + 'static {
    /// Queues the jobs (draining `jobs`), or completes them at once with [`Run::Skip`] when
    /// the executor refuses work.
    fn push_jobs(self: Arc<Self>, jobs: &mut Vec<Job>);
    /// How many jobs the executor runs at once (sizes the default window).
    fn parallelism(&self) -> usize;
}

/// One map's dispatcher: the closure, what the debug events call it, and the queue.
pub(crate) struct ClosureMap<Q: ?Sized, F, A, R> {
    queue: Arc<Q>,
    f: Arc<F>,
    info: Arc<TaskInfo>,
    jobs: Vec<Job>,
    _types: PhantomData<fn(A) -> R>,
}

impl<Q: JobQueue + ?Sized, F, A, R> ClosureMap<Q, F, A, R>
where
    F: Fn(A) -> R + Send + Sync + 'static,
{
    /// A dispatcher for a map of `f` on `queue`, named after `F` and the caller's location.
    #[track_caller]
    pub(crate) fn new(queue: Arc<Q>, f: F) -> ClosureMap<Q, F, A, R> {
        ClosureMap {
            queue,
            f: Arc::new(f),
            info: Arc::new(job::describe::<F>()),
            jobs: Vec::new(),
            _types: PhantomData,
        }
    }
}

impl<Q, F, A, R> Dispatch for ClosureMap<Q, F, A, R>
where
    Q: JobQueue + ?Sized,
    F: Fn(A) -> R + Send + Sync + 'static,
    A: Send + 'static,
    R: Send + 'static,
{
    type Input = A;
    type Output = R;

    fn default_window(&self, chunksize: usize) -> usize {
        let workers = self.queue.parallelism();
        // Eight items per worker, and at least two chunks each so none waits for the next.
        (workers.saturating_mul(8))
            .max(64)
            .max(workers.saturating_mul(2).saturating_mul(chunksize))
    }

    fn dispatch(&mut self, chunks: &mut Vec<Chunk<A, R>>) {
        for chunk in chunks.drain(..) {
            let (items, mut results) = chunk.into_parts();
            let f = self.f.clone();
            let info = self.info.clone();
            self.jobs.push(Box::new(move |run: Run| match run {
                Run::Go => {
                    for arg in items {
                        if results.is_cancelled() {
                            results.fail(Error::cancelled(Some("the map was dropped".to_owned())));
                            return;
                        }
                        results.push(job::call_observed("map", Some(&info), || f(arg)));
                    }
                }
                Run::Skip(e) => results.fail(e),
            }));
        }
        self.queue.clone().push_jobs(&mut self.jobs);
    }
}
