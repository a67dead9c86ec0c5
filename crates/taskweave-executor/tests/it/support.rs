//! A small real executor for the engine's tests: each chunk runs on a thread of its own.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use taskweave_executor::{Chunk, Dispatch};

/// Runs each chunk on a new thread, skipping the rest of a chunk once the map is cancelled, and
/// records the chunks it was given as `(first index, len)`.
pub(crate) struct Threads<F, A, R> {
    f: Arc<F>,
    types: PhantomData<fn(A) -> R>,
    pub(crate) chunks: Arc<Mutex<Vec<(usize, usize)>>>,
    window: usize,
}

impl<F, A, R> Threads<F, A, R> {
    pub(crate) fn new(f: F) -> Threads<F, A, R> {
        Threads {
            f: Arc::new(f),
            types: PhantomData,
            chunks: Arc::default(),
            window: 8,
        }
    }
}

impl<F, A, R> Dispatch for Threads<F, A, R>
where
    F: Fn(A) -> R + Send + Sync + 'static,
    A: Send + 'static,
    R: Send + 'static,
{
    type Input = A;
    type Output = R;

    fn default_window(&self, chunksize: usize) -> usize {
        self.window.saturating_mul(chunksize)
    }

    fn dispatch(&mut self, chunks: &mut Vec<Chunk<A, R>>) {
        for chunk in chunks.drain(..) {
            self.chunks
                .lock()
                .unwrap()
                .push((chunk.first_index(), chunk.len()));
            let (items, mut results) = chunk.into_parts();
            let f = self.f.clone();
            std::thread::spawn(move || {
                for item in items {
                    if results.is_cancelled() {
                        return;
                    }
                    results.push(Ok(f(item)));
                }
            });
        }
    }
}
