//! [`Map`]: a lazy map over worker processes, ordered or not, with a bounded number of chunks in
//! flight, usable as a blocking iterator or from async code.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use taskweave_bridge::Payload;
use taskweave_core::Error;

use crate::job::{ChunkSink, Job};
use crate::pool::{Inner, fn_ref_for};
use crate::wire;

/// Where chunk results arrive, from the pool's reader threads, for one map.
pub(crate) struct Inbox<R> {
    state: Mutex<InboxState<R>>,
    cond: Condvar,
}

struct InboxState<R> {
    ready: VecDeque<(u64, Vec<Result<R, Error>>)>,
    waker: Option<Waker>,
}

impl<R> Inbox<R> {
    fn new() -> Inbox<R> {
        Inbox {
            state: Mutex::new(InboxState {
                ready: VecDeque::new(),
                waker: None,
            }),
            cond: Condvar::new(),
        }
    }

    pub(crate) fn push(&self, seq: u64, results: Vec<Result<R, Error>>) {
        let waker = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.ready.push_back((seq, results));
            st.waker.take()
        };
        self.cond.notify_one();
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn pop_blocking(&self) -> (u64, Vec<Result<R, Error>>) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(item) = st.ready.pop_front() {
                return item;
            }
            st = self.cond.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn poll_pop(&self, waker: &Waker) -> Poll<(u64, Vec<Result<R, Error>>)> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match st.ready.pop_front() {
            Some(item) => Poll::Ready(item),
            None => {
                st.waker = Some(waker.clone());
                Poll::Pending
            }
        }
    }
}

/// A chunk to queue, or one whose results are known without running it.
enum Chunk<R> {
    Job(Job),
    Done(u64, Vec<Result<R, Error>>),
}

/// Builds chunk `seq` from the next inputs; also says how many inputs it took.
type Source<R> = Box<dyn FnMut(u64) -> Option<(Chunk<R>, usize)> + Send>;

/// The results of [`ProcessPoolExecutor::map`](crate::ProcessPoolExecutor::map) and
/// [`map_unordered`](crate::ProcessPoolExecutor::map_unordered): an iterator of one `Result` per input.
///
/// `next` blocks the calling thread until the next result is there (and refuses with
/// [`Error::Refused`] inside an async task); [`next_async`](Self::next_async) awaits it instead.
/// Dropping it cancels the chunks that have not started.
///
/// ```
/// use taskweave_process::ProcessPoolExecutor;
///
/// fn len(s: String) -> usize {
///     s.len()
/// }
///
/// let pool = ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
/// let words = ["a", "bb", "ccc"].map(String::from);
/// let lens = taskweave_core::run(async move {
///     let mut m = pool.map(len, words, 2);
///     let mut out = Vec::new();
///     while let Some(r) = m.next_async().await {
///         out.push(r.unwrap());
///     }
///     out
/// });
/// assert_eq!(lens.unwrap(), [1, 2, 3]);
/// ```
pub struct Map<R> {
    pool: Arc<Inner>,
    source: Source<R>,
    inbox: Arc<Inbox<R>>,
    cancelled: Arc<AtomicBool>,
    ordered: bool,
    next_seq: u64,
    yield_seq: u64,
    in_flight: usize,
    exhausted: bool,
    current: std::vec::IntoIter<Result<R, Error>>,
    early: HashMap<u64, Vec<Result<R, Error>>>,
    progress: Option<ProgressHook>,
    done: MapProgress,
    timeout: Option<Duration>,
}

type ProgressHook = Box<dyn FnMut(MapProgress) + Send>;

/// How far a [`Map`] has come, as handed to its [`on_progress`](Map::on_progress) callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MapProgress {
    /// Results yielded so far.
    pub done: u64,
    /// How many of them were errors.
    pub failed: u64,
    /// Inputs taken from the iterator so far (yielded, in flight or waiting to be yielded).
    pub taken: u64,
    /// `true` once the input iterator is exhausted: `taken` is then the total.
    pub inputs_exhausted: bool,
}

impl<R: Payload> Map<R> {
    pub(crate) fn new<A, I>(
        pool: Arc<Inner>,
        f: fn(A) -> R,
        mut inputs: I,
        chunksize: usize,
        ordered: bool,
    ) -> Map<R>
    where
        A: Payload,
        I: Iterator<Item = A> + Send + 'static,
    {
        let chunksize = chunksize.max(1);
        let inbox = Arc::new(Inbox::new());
        let cancelled = Arc::new(AtomicBool::new(false));
        let fref = fn_ref_for(&pool, f);
        let what: Arc<str> = format!("map of {}", std::any::type_name::<fn(A) -> R>()).into();
        let source: Source<R> = {
            let pool = pool.clone();
            let inbox = inbox.clone();
            let cancelled = cancelled.clone();
            let mut inputs_taken: u64 = 0;
            Box::new(move |seq| {
                let first_input = inputs_taken;
                let id = pool.next_id();
                // A guess for small items; a huge chunk size must not reserve its claim up front.
                let guess = 16usize.saturating_mul(chunksize).min(64 * 1024);
                let mut frame = Vec::with_capacity(wire::CALL_HEADER + guess);
                let start = fref.map(|fref| wire::begin_call(&mut frame, id, fref, 0));
                let mut holes = Vec::new();
                let (mut total, mut sent) = (0usize, 0u32);
                for item in inputs.by_ref().take(chunksize) {
                    let mark = frame.len();
                    let problem = match start {
                        None => Some(Error::refused(
                            "the function is not part of the main executable's code, so a \
                             worker process cannot find it",
                        )),
                        Some(_) => postcard::to_io(&item, &mut frame).err().map(|e| {
                            Error::wire(
                                format!("input {} of {what}", first_input + total as u64),
                                wire::serialise_failure(&item, &e),
                            )
                        }),
                    };
                    match problem {
                        None => sent += 1,
                        Some(e) => {
                            frame.truncate(mark);
                            holes.push((total, e));
                        }
                    }
                    total += 1;
                }
                if total == 0 {
                    return None;
                }
                inputs_taken += total as u64;
                let start = match start {
                    Some(start) if sent > 0 => start,
                    _ => {
                        let results = holes.into_iter().map(|(_, e)| Err(e)).collect();
                        return Some((Chunk::Done(seq, results), total));
                    }
                };
                wire::set_call_count(&mut frame, start, sent);
                if let Err(e) = wire::finish(&mut frame, start, pool.config.max_frame) {
                    let e = Error::wire(format!("chunk {seq} of {what}"), e.to_string());
                    let results = (0..total).map(|_| Err(e.clone())).collect();
                    return Some((Chunk::Done(seq, results), total));
                }
                let job = Chunk::Job(Job {
                    id,
                    frame: Arc::new(frame),
                    what: format!("chunk {seq} (call {id}) of {what}").into(),
                    sink: Box::new(ChunkSink {
                        seq,
                        total,
                        holes,
                        what: what.clone(),
                        inbox: inbox.clone(),
                        cancelled: cancelled.clone(),
                    }),
                    position: 0,
                    timeout: None,
                });
                Some((job, total))
            })
        };
        Map {
            pool,
            source,
            inbox,
            cancelled,
            ordered,
            next_seq: 0,
            yield_seq: 0,
            in_flight: 0,
            exhausted: false,
            current: Vec::new().into_iter(),
            early: HashMap::new(),
            progress: None,
            done: MapProgress::default(),
            timeout: None,
        }
    }
}

impl<R> Map<R> {
    /// Calls `callback` on the consuming thread after each result is yielded, for progress
    /// reports (a counter, a log line, a progress bar).
    ///
    /// ```
    /// use taskweave_process::ProcessPoolExecutor;
    ///
    /// fn double(x: u32) -> u32 {
    ///     2 * x
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// let out: Vec<u32> = pool
    ///     .map(double, 0..10, 3)
    ///     .on_progress(|p| eprintln!("{} of {} done", p.done, p.taken))
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(out.len(), 10);
    /// ```
    pub fn on_progress<F>(mut self, callback: F) -> Map<R>
    where
        F: FnMut(MapProgress) + Send + 'static,
    {
        self.progress = Some(Box::new(callback));
        self
    }

    /// The longest one chunk (one call) may run in a worker; past it the worker is ended and
    /// the chunk's items fail with [`Error::TimedOut`] (see
    /// [`CallOptions::timeout`](crate::CallOptions::timeout)). Set it before the first result is
    /// taken; a zero timeout fails every item with [`Error::Refused`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskweave_process::ProcessPoolExecutor;
    ///
    /// fn nap(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// let out: Vec<_> = pool.map(nap, [1, 60_000, 2], 1).timeout(Duration::from_millis(300)).collect();
    /// assert!(out[1].as_ref().unwrap_err().is_timeout());
    /// assert_eq!(*out[2].as_ref().unwrap(), 2);
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Map<R> {
        self.timeout = Some(timeout);
        self
    }

    fn report(&mut self, item: &Result<R, Error>) {
        self.done.done += 1;
        if item.is_err() {
            self.done.failed += 1;
        }
        self.done.inputs_exhausted = self.exhausted;
        if let Some(hook) = &mut self.progress {
            hook(self.done);
        }
    }

    /// Chunks kept in flight: enough to keep every worker's pipeline full, and no more.
    fn window(&self) -> usize {
        self.pool.config.max_workers * (self.pool.depth() + 2)
    }

    fn refill(&mut self) {
        while !self.exhausted && self.in_flight < self.window() {
            match (self.source)(self.next_seq) {
                None => self.exhausted = true,
                Some((chunk, taken)) => {
                    self.done.taken += taken as u64;
                    self.next_seq += 1;
                    self.in_flight += 1;
                    match chunk {
                        Chunk::Job(job) if self.timeout.is_some_and(|t| t.is_zero()) => {
                            let e = crate::pool::zero_timeout();
                            drop(job);
                            let results = (0..taken).map(|_| Err(e.clone())).collect();
                            self.inbox.push(self.next_seq - 1, results);
                        }
                        Chunk::Job(mut job) => {
                            job.timeout = self.timeout;
                            self.pool.enqueue(job)
                        }
                        Chunk::Done(seq, results) => self.inbox.push(seq, results),
                    }
                }
            }
        }
    }

    /// Takes what is ready without waiting; `None` means a chunk must be waited for (or the map
    /// is finished, when nothing is in flight).
    fn ready_item(&mut self) -> Option<Result<R, Error>> {
        loop {
            if let Some(item) = self.current.next() {
                self.report(&item);
                return Some(item);
            }
            if self.ordered {
                if let Some(results) = self.early.remove(&self.yield_seq) {
                    self.yield_seq += 1;
                    self.in_flight -= 1;
                    self.current = results.into_iter();
                    continue;
                }
            }
            self.refill();
            return None;
        }
    }

    fn accept(&mut self, seq: u64, results: Vec<Result<R, Error>>) {
        if self.ordered {
            self.early.insert(seq, results);
        } else {
            self.in_flight -= 1;
            self.current = results.into_iter();
        }
    }

    /// Awaits the next result: the async form of [`Iterator::next`], which does not block the
    /// runtime thread.
    ///
    /// ```
    /// use taskweave_process::ProcessPoolExecutor;
    /// fn double(x: u32) -> u32 {
    ///     x * 2
    /// }
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
    /// let got = taskweave_core::run(async {
    ///     let mut map = pool.map(double, 1..=3u32, 1);
    ///     let mut out = Vec::new();
    ///     while let Some(r) = map.next_async().await {
    ///         out.push(r.unwrap());
    ///     }
    ///     out
    /// });
    /// assert_eq!(got.unwrap(), vec![2, 4, 6]);
    /// ```
    pub async fn next_async(&mut self) -> Option<Result<R, Error>> {
        loop {
            if let Some(item) = self.ready_item() {
                return Some(item);
            }
            if self.in_flight == 0 {
                return None;
            }
            let inbox = self.inbox.clone();
            let (seq, results) = poll_fn(|cx| inbox.poll_pop(cx.waker())).await;
            self.accept(seq, results);
        }
    }
}

impl<R> Iterator for Map<R> {
    type Item = Result<R, Error>;

    fn next(&mut self) -> Option<Result<R, Error>> {
        loop {
            if let Some(item) = self.ready_item() {
                return Some(item);
            }
            if self.in_flight == 0 {
                return None;
            }
            if let Err(e) = taskweave_core::strict::check_blocking_wait("process pool map `next`") {
                // Give the error once, then end: the rest of the map is cancelled.
                self.exhausted = true;
                self.in_flight = 0;
                self.cancelled.store(true, Ordering::Relaxed);
                return Some(Err(e));
            }
            let (seq, results) = self.inbox.pop_blocking();
            self.accept(seq, results);
        }
    }
}

impl<R> Drop for Map<R> {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

impl<R> std::fmt::Debug for Map<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map")
            .field("ordered", &self.ordered)
            .field("chunks_in_flight", &self.in_flight)
            .field("inputs_exhausted", &self.exhausted)
            .finish()
    }
}
