//! The typed trampolines a worker runs: each monomorphisation decodes one function's arguments,
//! calls it under `catch_unwind` once per argument and appends one outcome per argument
//! (`wire::outcome`), so every argument gets exactly one outcome and one bad item fails only
//! its own future. The pool names a function by the pair (function, trampoline), made here.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Serialize;
use serde::de::DeserializeOwned;
use taskweave_core::Error;

use crate::arena::ResultBuf;
use crate::image;
use crate::wire::FnRef;
use crate::wire::outcome::{self, Out};

/// Runs a call in a worker: `func` is a `fn(A) -> R` of this image, `input` holds `count`
/// serialised arguments, outcomes are appended to `out`.
pub(crate) type Trampoline = fn(func: usize, count: u32, input: &[u8], out: &mut ResultBuf<'_>);

/// Runs an initializer in a worker: `func` is a `fn(A) -> O` of this image.
pub(crate) type InitTrampoline = fn(func: usize, input: &[u8]) -> Result<(), String>;

/// The reference to `f`, run through the trampoline of its types, keyed by `secret`; `None`
/// if `f` is not in the executable's code.
pub(crate) fn call_ref<A: DeserializeOwned, R: Serialize>(
    f: fn(A) -> R,
    secret: u64,
) -> Option<FnRef> {
    image::fn_ref(f as usize, run_chunk::<A, R> as Trampoline as usize, secret)
}

/// The reference to `f()`, as [`call_ref`].
pub(crate) fn thunk_ref<R: Serialize>(f: fn() -> R, secret: u64) -> Option<FnRef> {
    image::fn_ref(f as usize, run_thunk::<R> as Trampoline as usize, secret)
}

/// The reference to the initializer `f`, as [`call_ref`].
pub(crate) fn init_ref<A: DeserializeOwned, O: InitResult>(
    f: fn(A) -> O,
    secret: u64,
) -> Option<FnRef> {
    image::fn_ref(
        f as usize,
        run_init::<A, O> as InitTrampoline as usize,
        secret,
    )
}

/// Why a closure that captures cannot run in a worker.
const CAPTURES: &str = "a process pool runs functions, not closures that capture: a worker \
    process has none of the captured values; pass them in the argument instead";

/// What the pool calls work of type `F`: a function by its path (`app::square`), a closure by
/// the function it is written in (`closure in app::main`), a function pointer by its type
/// (`fn(u64) -> u64`: a pointer carries no name).
pub(crate) fn work_name<F>() -> String {
    let name = std::any::type_name::<F>();
    match name.find("::{{closure}}") {
        Some(at) => format!("closure in {}", &name[..at]),
        None => name.to_owned(),
    }
}

/// `f` as the plain function pointer `P` (`fn(A) -> R` or `fn() -> R`) that the references
/// are made from: a zero-sized `f` (a function item, a closure that captures nothing) through
/// its trampoline `zst`, a `P` as it is.
///
/// # Errors
///
/// [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused) for anything else, which is a
/// closure that captures (one the size of a pointer: a larger one is refused at compile time).
fn as_pointer<F: 'static, P: Copy + 'static>(f: &F, zst: P) -> Result<P, Error> {
    // Refused where the compiler can tell: nothing but a pointer has the size of one.
    const {
        if size_of::<F>() != 0 && size_of::<F>() != size_of::<P>() {
            panic!("{}", CAPTURES);
        }
    }
    if size_of::<F>() == 0 {
        return Ok(zst);
    }
    (f as &dyn Any)
        .downcast_ref::<P>()
        .copied()
        .ok_or_else(|| Error::refused(CAPTURES))
}

/// `f` as the `fn(A) -> R` that [`call_ref`] takes (see [`as_pointer`]).
pub(crate) fn as_fn<F, A, R>(f: &F) -> Result<fn(A) -> R, Error>
where
    F: Fn(A) -> R + Copy + 'static,
    A: 'static,
    R: 'static,
{
    as_pointer(f, call_zst::<F, A, R> as fn(A) -> R)
}

/// `f` as the `fn() -> R` that [`thunk_ref`] takes (see [`as_pointer`]).
pub(crate) fn as_thunk<F, R>(f: &F) -> Result<fn() -> R, Error>
where
    F: Fn() -> R + Copy + 'static,
    R: 'static,
{
    as_pointer(f, thunk_zst::<F, R> as fn() -> R)
}

/// The value of the zero-sized `F`, made from nothing.
///
/// # Safety
///
/// `F` must be zero-sized, and its caller must hold (or have held, in the pool's process) a
/// value of it: then `F` is inhabited and every value of it is the same value.
unsafe fn conjure<F: Copy>() -> F {
    // A constant condition: compiled away for the zero-sized types this is called for.
    assert!(
        size_of::<F>() == 0,
        "only a zero-sized value can be made from nothing"
    );
    // SAFETY: a zero-sized type has no bytes, so reading one touches no memory and a dangling,
    // aligned pointer is a valid place to read it from; the caller promises `F` is inhabited,
    // so the value read is a valid `F`. It is a value the program could have made anyway: `F`
    // is `Copy`, so the read is a copy of the value the pool was handed, which has the same
    // (no) bytes. Being `Copy`, it has no `Drop` that could run for a value never made.
    unsafe { std::ptr::NonNull::<F>::dangling().as_ptr().read() }
}

/// Calls the zero-sized `F` (a function item or a closure that captures nothing) in a worker:
/// its monomorphisation is the plain function the pool sends in `F`'s place.
fn call_zst<F, A, R>(arg: A) -> R
where
    F: Fn(A) -> R + Copy + 'static,
{
    // SAFETY: `as_pointer` hands this monomorphisation out only when `F` is zero-sized, and only
    // for a value of `F` the pool was given, so `F` is inhabited (`conjure`'s contract); the
    // worker runs it only through a reference the pool made from it. On stable Rust a
    // zero-sized `Fn` type is a function item, a closure that captures nothing, or a closure
    // whose captures are all zero-sized and, `F` being `Copy`, `Copy` themselves: none has
    // bytes, so the value made here is bit for bit the pool's, and making it is what copying
    // that `Copy` value does. (The last kind is the one the type system cannot tell apart: a
    // zero-sized `Copy` token that stands for something done in the pool's process, such as an
    // initialisation, stands for nothing in the worker. No captured state belongs in a process
    // pool's work, tokens included.)
    let f = unsafe { conjure::<F>() };
    f(arg)
}

/// As [`call_zst`], for `F: Fn() -> R`.
fn thunk_zst<F, R>() -> R
where
    F: Fn() -> R + Copy + 'static,
{
    // SAFETY: as in `call_zst`, for `as_thunk`.
    let f = unsafe { conjure::<F>() };
    f()
}

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

/// The trampoline for `fn(A) -> R`.
fn run_chunk<A: DeserializeOwned, R: Serialize>(
    func: usize,
    count: u32,
    input: &[u8],
    out: &mut ResultBuf<'_>,
) {
    // SAFETY: `func` was resolved from a reference whose tag matched and which lies in this
    // image's code, and the handshake proved this image is the pool's build: the pool made the
    // reference from a `fn(A) -> R` with exactly these `A` and `R`, since it paired it with this
    // trampoline's monomorphisation (`call_ref`), so the address is that function.
    let f = unsafe { std::mem::transmute::<*const (), fn(A) -> R>(func as *const ()) };
    run_items(f, count, input, out);
}

/// The trampoline for `fn() -> R` (each call's argument is `()`).
fn run_thunk<R: Serialize>(func: usize, count: u32, input: &[u8], out: &mut ResultBuf<'_>) {
    // SAFETY: as in `run_chunk`, for a reference the pool made from a `fn() -> R` paired with
    // this monomorphisation (`thunk_ref`).
    let f = unsafe { std::mem::transmute::<*const (), fn() -> R>(func as *const ()) };
    run_items(|(): ()| f(), count, input, out);
}

fn run_items<A: DeserializeOwned, R: Serialize>(
    f: impl Fn(A) -> R,
    count: u32,
    input: &[u8],
    out: &mut impl Out,
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
                    outcome::push_wire(out, &detail);
                }
                return;
            }
        };
        // The value's serialisation and drop are user code too: a panic there is this item's
        // panic, never the worker's end.
        let mark = out.len();
        let ran = catch_unwind(AssertUnwindSafe(|| {
            let value = f(arg);
            outcome::push_value(out, &value);
        }));
        if let Err(payload) = ran {
            out.truncate(mark);
            let (message, backtrace) = take_panic(&*payload);
            taskweave_core::error::drop_panic_payload(payload);
            outcome::push_panic(out, &message, &backtrace);
        }
    }
}

/// What an initializer may return: nothing (it fails by panicking) or a `Result` whose error
/// breaks the pool.
///
/// ```
/// use taskweave_process::InitResult;
/// assert!(().into_init_result().is_ok());
/// assert_eq!(Err::<(), _>("no disk").into_init_result(), Err("no disk".to_string()));
/// ```
pub trait InitResult {
    /// `Err(text)` if initialisation failed.
    ///
    /// # Errors
    ///
    /// The failure, as text for the pool's `Broken` error.
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
fn run_init<A: DeserializeOwned, O: InitResult>(func: usize, input: &[u8]) -> Result<(), String> {
    // SAFETY: as in `run_chunk`: a checked reference of this build, made from a `fn(A) -> O`
    // paired with this monomorphisation (`init_ref`).
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
