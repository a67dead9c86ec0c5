//! Work as it travels: the typed trampolines a worker runs, the encoding of outcomes, and the
//! type-erased jobs and sinks the pool queues and completes.
//!
//! A call carries `count` arguments of one function. The worker decodes them one at a time, runs
//! the function under `catch_unwind` for each, and appends one outcome per argument: a value, a
//! panic (message and backtrace) or a wire error (a result that could not be serialised, or an
//! argument that could not be decoded). So every argument gets exactly one outcome, and one bad
//! item fails only its own future.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use taskweave_core::{Error, Resolver, TaskInfo};

const OK: u8 = 0;
const PANICKED: u8 = 1;
const WIRE: u8 = 2;

/// Runs a call in a worker: `func` is a `fn(A) -> R` of this image, `input` holds `count`
/// serialised arguments, outcomes are appended to `out`.
pub(crate) type Trampoline = fn(func: usize, count: u32, input: &[u8], out: &mut Vec<u8>);

/// Runs an initializer in a worker: `func` is a `fn(A) -> O` of this image.
pub(crate) type InitTrampoline = fn(func: usize, input: &[u8]) -> Result<(), String>;

/// The panic last caught in this worker, filled by the worker's panic hook.
pub(crate) struct CaughtPanic {
    pub(crate) location: String,
    pub(crate) backtrace: String,
}

thread_local! {
    pub(crate) static LAST_PANIC: std::cell::RefCell<Option<CaughtPanic>> =
        const { std::cell::RefCell::new(None) };
}

fn take_panic(payload: &(dyn std::any::Any + Send)) -> (String, String) {
    let message = taskweave_core::error::panic_message(payload);
    let caught = LAST_PANIC.with(|p| p.borrow_mut().take());
    let backtrace = match caught {
        Some(c) => format!("panicked at {}\n{}", c.location, c.backtrace),
        None => String::new(),
    };
    (message, backtrace)
}

fn push_wire(out: &mut Vec<u8>, detail: &str) {
    out.push(WIRE);
    // Serialising a `&str` into a Vec cannot fail.
    let _ = postcard::to_io(&detail, &mut *out);
}

/// The trampoline for `fn(A) -> R`.
pub(crate) fn run_chunk<A: DeserializeOwned, R: Serialize>(
    func: usize,
    count: u32,
    input: &[u8],
    out: &mut Vec<u8>,
) {
    // SAFETY: `func` was resolved from a reference whose tag matched and which lies in this
    // image's code, and the handshake proved this image is the pool's build: the pool made the
    // reference from a `fn(A) -> R` with exactly these `A` and `R`, since it paired it with this
    // trampoline's monomorphisation, so the address is that function.
    let f = unsafe { std::mem::transmute::<*const (), fn(A) -> R>(func as *const ()) };
    run_items(f, count, input, out);
}

/// The trampoline for `fn() -> R` (each call's argument is `()`).
pub(crate) fn run_thunk<R: Serialize>(func: usize, count: u32, input: &[u8], out: &mut Vec<u8>) {
    // SAFETY: as in `run_chunk`, for a reference the pool made from a `fn() -> R` paired with
    // this monomorphisation.
    let f = unsafe { std::mem::transmute::<*const (), fn() -> R>(func as *const ()) };
    run_items(|(): ()| f(), count, input, out);
}

fn run_items<A: DeserializeOwned, R: Serialize>(
    f: impl Fn(A) -> R,
    count: u32,
    input: &[u8],
    out: &mut Vec<u8>,
) {
    let mut rest = input;
    for i in 0..count {
        let arg = match postcard::take_from_bytes::<A>(rest) {
            Ok((arg, tail)) => {
                rest = tail;
                arg
            }
            Err(e) => {
                let detail = format!("argument could not be decoded in the worker: {e}");
                for _ in i..count {
                    push_wire(out, &detail);
                }
                return;
            }
        };
        // The value's serialisation and drop are user code too: a panic there is this item's
        // panic, never the worker's end.
        let mark = out.len();
        let ran = catch_unwind(AssertUnwindSafe(|| {
            let value = f(arg);
            out.push(OK);
            if let Err(e) = postcard::to_io(&value, crate::bytes::FrameWriter(&mut *out)) {
                out.truncate(mark);
                let why = crate::wire::serialise_failure(&value, &e);
                push_wire(out, &format!("result could not be serialised: {why}"));
            }
        }));
        if let Err(payload) = ran {
            out.truncate(mark);
            let (message, backtrace) = take_panic(&*payload);
            taskweave_core::error::drop_panic_payload(payload);
            out.push(PANICKED);
            let _ = postcard::to_io(&(message, backtrace), &mut *out);
        }
    }
}

/// What an initializer may return: nothing (it fails by panicking) or a `Result` whose error
/// breaks the pool.
pub trait InitResult {
    /// `Err(text)` if initialisation failed.
    ///
    /// # Errors
    ///
    /// The failure, as text for [`Error::Broken`].
    fn into_init_result(self) -> Result<(), String>;
}

impl InitResult for () {
    fn into_init_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: std::fmt::Display> InitResult for Result<(), E> {
    fn into_init_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// The trampoline for an initializer `fn(A) -> O`.
pub(crate) fn run_init<A: DeserializeOwned, O: InitResult>(
    func: usize,
    input: &[u8],
) -> Result<(), String> {
    // SAFETY: as in `run_chunk`: a checked reference of this build, made from a `fn(A) -> O`.
    let f = unsafe { std::mem::transmute::<*const (), fn(A) -> O>(func as *const ()) };
    let arg = postcard::from_bytes::<A>(input)
        .map_err(|e| format!("initializer argument could not be decoded: {e}"))?;
    match catch_unwind(AssertUnwindSafe(|| f(arg).into_init_result())) {
        Ok(o) => o,
        Err(payload) => {
            let (message, backtrace) = take_panic(&*payload);
            taskweave_core::error::drop_panic_payload(payload);
            Err(format!("initializer panicked: {message}\n{backtrace}"))
        }
    }
}

/// Decodes the next outcome of a reply; a panic in `R`'s `Deserialize` fails this outcome (and,
/// since the rest of the reply cannot be framed any more, the ones after it).
pub(crate) fn next_outcome<R: DeserializeOwned>(
    rest: &mut &[u8],
    what: &str,
    pid: u32,
) -> Result<R, Error> {
    let mut cursor = *rest;
    match crate::unwind::catch(|| decode_outcome::<R>(&mut cursor, what, pid)) {
        Ok(outcome) => {
            *rest = cursor;
            outcome
        }
        Err(message) => {
            *rest = &[];
            Err(Error::panicked(
                message,
                Some(format!(
                    "deserialising a `{}` for the result of {what}",
                    std::any::type_name::<R>()
                )),
                None,
                None,
            ))
        }
    }
}

fn decode_outcome<R: DeserializeOwned>(rest: &mut &[u8], what: &str, pid: u32) -> Result<R, Error> {
    let Some((&tag, tail)) = rest.split_first() else {
        return Err(Error::wire(
            format!("result of {what}"),
            "reply has fewer outcomes than arguments",
        ));
    };
    *rest = tail;
    let fail = |e: postcard::Error| Error::wire(format!("result of {what}"), e.to_string());
    match tag {
        OK => match postcard::take_from_bytes::<R>(rest) {
            Ok((v, tail)) => {
                *rest = tail;
                Ok(v)
            }
            Err(e) => {
                // The rest of this reply cannot be framed any more.
                *rest = &[];
                Err(fail(e))
            }
        },
        PANICKED => match postcard::take_from_bytes::<(String, String)>(rest) {
            Ok(((message, backtrace), tail)) => {
                *rest = tail;
                Err(Error::panicked(
                    message,
                    Some(format!("{what} in worker pid {pid}")),
                    None,
                    (!backtrace.is_empty()).then_some(backtrace),
                ))
            }
            Err(e) => {
                *rest = &[];
                Err(fail(e))
            }
        },
        WIRE => match postcard::take_from_bytes::<String>(rest) {
            Ok((detail, tail)) => {
                *rest = tail;
                Err(Error::wire(format!("{what} in worker pid {pid}"), detail))
            }
            Err(e) => {
                *rest = &[];
                Err(fail(e))
            }
        },
        other => {
            *rest = &[];
            Err(Error::wire(
                format!("result of {what}"),
                format!("unknown outcome tag {other}"),
            ))
        }
    }
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
    /// The work's description for debug events, if any.
    fn info(&self) -> Option<&TaskInfo>;
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
            Reply::Outcomes { mut payload, pid } => next_outcome(&mut payload, &self.what, pid),
            Reply::Failed(e) => Err(e),
        };
        self.resolver.resolve(result);
    }

    fn info(&self) -> Option<&TaskInfo> {
        self.resolver.info()
    }
}
