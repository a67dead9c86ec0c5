//! The process pool's side of the map engine: [`ProcessMap`] turns each chunk of a map into one
//! call frame for a worker, and [`MapSink`] turns the worker's reply back into one result per
//! input. Ordering, the window, timeouts, progress and cancellation are the engine's
//! (`taskweave-executor`).

use std::marker::PhantomData;
use std::sync::Arc;

use taskweave_core::instrument::ObserverRef;
use taskweave_core::{Error, TaskInfo};
use taskweave_executor::{Chunk, ChunkResults, Dispatch, Payload};

use crate::job::{Job, Reply, Sink};
use crate::options::CallOptions;
use crate::shared::Inner;
use crate::wire::{self, FnRef, outcome};

/// One map's dispatcher: the pool, the function's reference, its name for errors, and the
/// options of each call (one per chunk).
pub(crate) struct ProcessMap<A, R> {
    pool: Arc<Inner>,
    /// `Ok(None)`: the function is outside the executable's code; `Err`: it cannot be sent at
    /// all (a closure that captures).
    fref: Result<Option<FnRef>, Error>,
    what: Arc<str>,
    calls: CallOptions,
    _types: PhantomData<fn(A) -> R>,
}

impl<A: Payload, R: Payload> ProcessMap<A, R> {
    /// A dispatcher of the function `fref` names, called `name` in errors.
    pub(crate) fn new(
        pool: Arc<Inner>,
        fref: Result<Option<FnRef>, Error>,
        name: &str,
        calls: CallOptions,
    ) -> ProcessMap<A, R> {
        ProcessMap {
            pool,
            fref,
            what: format!("map of {name}").into(),
            calls,
            _types: PhantomData,
        }
    }

    /// Encodes the chunk as one call and queues it; inputs that cannot be encoded get their
    /// error in their place, and a chunk with nothing to send completes at once.
    fn send(&self, chunk: Chunk<A, R>) {
        let first = chunk.first_index();
        let len = chunk.len();
        let (items, results) = chunk.into_parts();
        if let Err(e) = self.calls.check() {
            results.fail(e);
            return;
        }
        if self.pool.config.named_only {
            results.fail(Error::refused(crate::image::other_build()));
            return;
        }
        let fref = match &self.fref {
            Ok(Some(fref)) => *fref,
            Ok(None) => {
                results.fail(Error::refused(crate::image::not_in_code()));
                return;
            }
            Err(e) => {
                results.fail(e.clone());
                return;
            }
        };
        let id = self.pool.next_id();
        // Sized for small items; grown as they come, never reserved from the chunksize.
        let mut frame = Vec::with_capacity(wire::CALL_HEADER + 16 * len.min(1024));
        let start = wire::begin_call(&mut frame, id, fref, 0);
        let chunk = EncodedChunk {
            pool: &self.pool,
            id,
            frame,
            start,
            first,
            len,
            what: &self.what,
            timeout: self.calls.limit(),
        };
        chunk.fill_and_queue(
            items,
            results,
            |frame, item| {
                let mark = frame.len();
                postcard::to_io(item, &mut *frame).map(drop).map_err(|e| {
                    frame.truncate(mark);
                    wire::serialise_failure(item, &e)
                })
            },
            wire::set_call_count,
        );
    }
}

/// One map chunk being encoded as one call frame, by offset or by name: what both kinds of
/// call share from the frame's header on.
pub(crate) struct EncodedChunk<'a> {
    pub(crate) pool: &'a Arc<Inner>,
    pub(crate) id: u64,
    /// The frame, its header written.
    pub(crate) frame: Vec<u8>,
    /// Where the call's header starts in `frame`.
    pub(crate) start: usize,
    /// The index of the chunk's first input in the whole map.
    pub(crate) first: usize,
    /// How many inputs the chunk covers.
    pub(crate) len: usize,
    /// The map, for errors.
    pub(crate) what: &'a Arc<str>,
    pub(crate) timeout: Option<std::time::Duration>,
}

impl EncodedChunk<'_> {
    /// Appends each input with `push` (which leaves the frame as it was and names the reason
    /// when an input cannot be serialised: that input gets the error in its place), sets the
    /// call's count with `set_count` and queues the call; a chunk with nothing to send
    /// completes at once.
    pub(crate) fn fill_and_queue<A, R: Payload>(
        mut self,
        items: impl Iterator<Item = A>,
        mut results: ChunkResults<R>,
        push: impl Fn(&mut Vec<u8>, &A) -> Result<(), String>,
        set_count: fn(&mut [u8], usize, u32),
    ) {
        let max = self.pool.config.max_frame;
        let mut holes = Vec::new();
        let mut sent = 0u32;
        for (at, item) in items.enumerate() {
            if let Err(detail) = push(&mut self.frame, &item) {
                let input = format!("input {} of {}", self.first + at, self.what);
                holes.push((at, Error::wire(input, detail)));
                continue;
            }
            sent += 1;
            if self.frame.len() > max || sent == u32::MAX {
                // Bigger than any frame may be: stop encoding what cannot be sent anyway.
                break;
            }
        }
        if sent == 0 {
            results.extend(holes.into_iter().map(|(_, e)| Err(e)));
            return;
        }
        set_count(&mut self.frame, self.start, sent);
        let what: Arc<str> = format!(
            "chunk at input {} (call {}) of {}",
            self.first, self.id, self.what
        )
        .into();
        if let Err(e) = wire::finish(&mut self.frame, self.start, max) {
            results.fail(Error::wire(what.to_string(), e.to_string()));
            return;
        }
        self.pool.enqueue(Job {
            id: self.id,
            frame: Arc::new(self.frame),
            what,
            sink: Box::new(MapSink::new(self.len, holes, self.what.clone(), results)),
            position: 0,
            timeout: self.timeout,
            started_on: None,
        });
    }
}

impl<A: Payload, R: Payload> Dispatch for ProcessMap<A, R> {
    type Input = A;
    type Output = R;

    /// Enough chunks to keep every worker's pipeline full, and no more.
    fn default_window(&self, chunksize: usize) -> usize {
        let chunks = self
            .pool
            .config
            .max_workers
            .saturating_mul(self.pool.depth() + 2);
        chunks.saturating_mul(chunksize)
    }

    fn dispatch(&mut self, chunks: &mut Vec<Chunk<A, R>>) {
        for chunk in chunks.drain(..) {
            self.send(chunk);
        }
    }
}

/// The sink of one chunk of a map: hands its results, in input order, to the map's engine.
pub(crate) struct MapSink<R> {
    /// How many inputs the chunk covers (sent ones plus `holes`).
    total: usize,
    /// Inputs that could not be serialised: their position in the chunk and their error.
    holes: Vec<(usize, Error)>,
    what: Arc<str>,
    results: ChunkResults<R>,
}

impl<R> MapSink<R> {
    /// The sink of a chunk of `total` inputs, of which `holes` could not be sent.
    pub(crate) fn new(
        total: usize,
        holes: Vec<(usize, Error)>,
        what: Arc<str>,
        results: ChunkResults<R>,
    ) -> MapSink<R> {
        MapSink {
            total,
            holes,
            what,
            results,
        }
    }
}

impl<R: Payload> Sink for MapSink<R> {
    fn start(&mut self) -> bool {
        !self.results.is_cancelled()
    }

    fn finish(self: Box<Self>, reply: Reply<'_>) {
        let MapSink {
            total,
            holes,
            what,
            mut results,
        } = *self;
        let mut out = Vec::with_capacity(total);
        let mut poisoned: Option<Error> = None;
        let mut holes = holes.into_iter().peekable();
        let (mut payload, pid, failed) = match reply {
            Reply::Outcomes { payload, pid } => (payload, pid, None),
            Reply::Failed(e) => (&[][..], 0, Some(e)),
        };
        for i in 0..total {
            if holes.peek().is_some_and(|(at, _)| *at == i) {
                if let Some((_, e)) = holes.next() {
                    out.push(Err(e));
                }
                continue;
            }
            out.push(match (&failed, &poisoned) {
                (Some(e), _) | (None, Some(e)) => Err(e.clone()),
                (None, None) => {
                    let outcome = outcome::next(&mut payload, &what, pid);
                    // A `Deserialize` that panicked leaves the rest of the reply unframed: the
                    // items after it share its error.
                    if let Err(e) = &outcome
                        && e.is_panic()
                        && payload.is_empty()
                    {
                        poisoned = Some(e.clone());
                    }
                    outcome
                }
            });
        }
        results.extend(out);
    }

    fn observed(&self) -> Option<(&TaskInfo, &ObserverRef)> {
        None
    }
}
