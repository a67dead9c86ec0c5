//! The wire format spoken between a pool and its workers over a pair of pipes, in one place:
//! the frames here, the outcomes inside a result frame in [`outcome`].
//!
//! Every message is one frame: a little-endian `u32` body length followed by the body, whose first
//! byte is the message kind. Fixed fields are little-endian integers; payloads (arguments and
//! results) are postcard bytes and are placed last in the body, so a frame is built in one buffer
//! with one copy of the payload and read with one read into an exactly sized buffer.
//!
//! The decoder is total: any byte string gives a message or an `ErrorKind::Wire`, never a panic, and
//! a body longer than the frame limit is refused before anything is allocated for it. A reader that
//! hits end of file in the middle of a frame reports a truncated frame instead of waiting.
//!
//! A body of [`SHARED_MIN`](crate::arena::SHARED_MIN) bytes or more may travel through the
//! direction's shared region instead (`arena`): the pipe then carries an envelope, a frame of
//! its own kind that holds the post's number and the body's length, and the receiver decodes
//! the body from the region as if it had come through the pipe.
//!
//! The format is an internal protocol between a pool and its workers, versioned by
//! [`PROTOCOL_VERSION`] and checked at the handshake. Workers of the pool's own build take both
//! call forms (a code offset, a registered name); workers of another build (a pool made with
//! `named_worker_program`) get a named setup and only named calls. It is not public API (the setup frame
//! carries the pool's secret); with the `fuzzing` feature, `taskweave_process::fuzzing` exposes
//! its decoders to fuzz targets, nothing else.

use std::io::{self, Read};

use serde::Serialize;
use taskweave_core::Error;

pub(crate) mod outcome;
#[cfg(test)]
pub(crate) mod tests;

/// The default largest frame body a pool or worker accepts: 1 GiB.
pub(crate) const DEFAULT_MAX_FRAME: usize = 1 << 30;

/// The first allocation for a frame body whose buffer is empty.
const FIRST_READ: usize = 64 * 1024;

/// The protocol version; a worker that speaks another one is refused at the handshake.
pub(crate) const PROTOCOL_VERSION: u16 = 3;

/// The first field of a worker's hello: "TWPW" in ASCII.
pub(crate) const MAGIC: u32 = u32::from_le_bytes(*b"TWPW");

const K_SETUP: u8 = 1;
const K_CALL: u8 = 2;
const K_SETUP_NAMED: u8 = 3;
const K_CALL_NAMED: u8 = 4;
const K_HELLO: u8 = 10;
const K_READY: u8 = 11;
const K_INIT_FAILED: u8 = 12;
const K_RESULT: u8 = 13;
const K_FAILED: u8 = 14;
const K_FATAL: u8 = 15;
/// Either way: the frame's body is in the direction's shared region (`arena`).
const K_SHARED: u8 = 30;

/// The size of a complete envelope frame: length (4), kind (1), post number (8), body length (8).
pub(crate) const SHARED_FRAME: usize = 4 + 1 + 8 + 8;

/// The bytes before a call's payload: 4 (length) + 1 (kind) + 8 (id) + 3 * 8 (function) + 4
/// (count).
pub(crate) const CALL_HEADER: usize = 4 + 1 + 8 + 24 + 4;

/// The bytes of a named call before its name: 4 (length) + 1 (kind) + 8 (id) + 8 (signature
/// hash) + 4 (count).
pub(crate) const NAMED_HEADER: usize = 4 + 1 + 8 + 8 + 4;

/// The longest function name or signature text a named call carries (its length is a `u16`).
pub(crate) const MAX_NAME: usize = u16::MAX as usize;

/// A function in the image: offsets from the image anchor plus an integrity tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FnRef {
    /// The user function's address minus the anchor's.
    pub(crate) func: i64,
    /// The typed trampoline's address minus the anchor's.
    pub(crate) trampoline: i64,
    /// A keyed check over both offsets; a worker runs nothing whose tag does not match.
    pub(crate) tag: u64,
}

/// A message from the pool to a worker.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToWorker<'a> {
    /// Sent once after the worker's hello: what the worker must check and run before calls.
    Setup {
        /// The pool's build id; the worker compares it with its own.
        build_id: &'a [u8],
        /// The key of the function tags.
        secret: u64,
        /// The initializer and its serialised argument, if any.
        initializer: Option<(FnRef, &'a [u8])>,
    },
    /// Sent instead of [`Setup`](Self::Setup) to a worker of another build: it must run only
    /// named calls.
    SetupNamed {
        /// The pool's `taskweave_registry::ABI_VERSION`; the worker compares it with its own.
        abi: u16,
    },
    /// Run `count` calls of the registered function `name`; `payload` holds the `count`
    /// serialised arguments, each behind its `u32` length.
    NamedCall {
        /// The call id, echoed in the reply.
        id: u64,
        /// The hash of the signature the caller expects.
        hash: u64,
        /// How many arguments follow.
        count: u32,
        /// The registered name.
        name: &'a str,
        /// The signature the caller expects, as text, for the error if it does not match.
        caller: &'a str,
        /// The length-prefixed serialised arguments.
        payload: &'a [u8],
    },
    /// Run `count` calls of one function; `payload` holds the `count` serialised arguments.
    Call {
        /// The call id, echoed in the reply.
        id: u64,
        /// The function.
        func: FnRef,
        /// How many arguments follow.
        count: u32,
        /// The serialised arguments.
        payload: &'a [u8],
    },
}

/// A message from a worker to its pool.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FromWorker<'a> {
    /// The first frame a worker sends.
    Hello {
        /// Must be [`MAGIC`].
        magic: u32,
        /// The worker's [`PROTOCOL_VERSION`].
        version: u16,
        /// The worker's process id.
        pid: u32,
        /// The worker's build id.
        build_id: &'a [u8],
    },
    /// Setup done, initializer (if any) succeeded; calls may follow.
    Ready,
    /// The initializer failed; the text says how.
    InitFailed(&'a str),
    /// The outcomes of a call, in argument order.
    Result {
        /// The call id.
        id: u64,
        /// How long the call ran in the worker, in nanoseconds.
        exec_nanos: u64,
        /// The encoded outcomes.
        payload: &'a [u8],
    },
    /// The call could not be run (its arguments did not decode); the text says why.
    Failed {
        /// The call id.
        id: u64,
        /// What went wrong.
        detail: &'a str,
    },
    /// The worker received something it cannot handle and exits.
    Fatal(&'a str),
}

fn wire_err(detail: impl Into<String>) -> Error {
    Error::wire("frame", detail)
}

/// Reads one frame body from `reader`.
///
/// Returns `Ok(None)` on a clean end of file before the first byte of a frame.
///
/// # Errors
///
/// [`ErrorKind::Wire`] for a body longer than `max` (nothing is read or allocated for it), for a frame
/// cut short by end of file, and for I/O errors. Memory is reserved as bytes arrive, at most
/// twice what was received, so a length prefix that lies costs nothing beyond the data sent.
pub(crate) fn read_frame<R: Read>(reader: &mut R, max: usize) -> Result<Option<Vec<u8>>, Error> {
    let mut body = Vec::new();
    Ok(read_frame_into(reader, max, &mut body)?.then_some(body))
}

/// Reads one frame body into `body`, replacing its contents and reusing its allocation (a
/// reader that receives large frames over and over touches fresh memory only once).
///
/// Returns `Ok(false)` on a clean end of file before the first byte of a frame.
///
/// # Errors
///
/// As [`read_frame`].
pub(crate) fn read_frame_into<R: Read>(
    reader: &mut R,
    max: usize,
    body: &mut Vec<u8>,
) -> Result<bool, Error> {
    body.clear();
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match reader.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(wire_err("frame length cut short by end of stream")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(wire_err(format!("reading a frame: {e}"))),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 {
        return Err(wire_err("empty frame"));
    }
    if len > max {
        return Err(wire_err(format!(
            "frame of {len} bytes exceeds the limit of {max} bytes"
        )));
    }
    // Memory follows the bytes that arrived, never the length a frame claims: a lying length
    // costs at most twice what was really sent. Each step at most doubles the buffer, and large
    // allocations grow in place (mremap), so the growth is not a copy.
    let mut limited = reader.take(len as u64);
    loop {
        let missing = len - body.len();
        if missing == 0 {
            break;
        }
        if body.capacity() == body.len() {
            let step = missing.min(body.len().max(FIRST_READ));
            body.reserve_exact(step);
            crate::bytes::advise_huge(body);
        }
        let spare = (body.capacity() - body.len()).min(missing);
        let got = (&mut limited)
            .take(spare as u64)
            .read_to_end(body)
            .map_err(|e| wire_err(format!("reading a frame: {e}")))?;
        if got < spare {
            break;
        }
    }
    if body.len() != len {
        return Err(wire_err(format!(
            "frame cut short by end of stream: {} of {len} bytes",
            body.len()
        )));
    }
    Ok(true)
}

/// Says why `value`, of type `T`, could not be serialised: its type and, when its `Serialize`
/// gave one, its own message (postcard keeps only "Serde Serialization Error", so the value is
/// serialised once more, into nothing, by a serialiser that keeps messages).
pub(crate) fn serialise_failure<T: serde::Serialize + ?Sized>(
    value: &T,
    error: &postcard::Error,
) -> String {
    let ty = std::any::type_name::<T>();
    let why = match error {
        postcard::Error::SerdeSerCustom => serde_json::to_writer(io::sink(), value)
            .err()
            .map(|e| e.to_string())
            // Failures of JSON's own limits say nothing about the value's refusal.
            .filter(|m| !m.starts_with("key must be")),
        _ => None,
    };
    match why {
        Some(why) => format!("a value of type `{ty}` could not be serialised: {why}"),
        None => format!("a value of type `{ty}` could not be serialised: {error}"),
    }
}

/// Gives a reused buffer's memory back when it is far larger than what it holds now.
pub(crate) fn trim(buf: &mut Vec<u8>) {
    if buf.capacity() > (16 << 20) && buf.capacity() > 4 * buf.len() {
        *buf = Vec::new();
    }
}

struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Error> {
        if self.rest.len() < n {
            return Err(wire_err(format!("frame too short for {what}")));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn u8(&mut self, what: &str) -> Result<u8, Error> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, Error> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, Error> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self, what: &str) -> Result<u64, Error> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(a))
    }
    fn short_bytes(&mut self, what: &str) -> Result<&'a [u8], Error> {
        let n = self.u8(what)? as usize;
        self.take(n, what)
    }
    fn fn_ref(&mut self) -> Result<FnRef, Error> {
        Ok(FnRef {
            func: self.u64("function offset")? as i64,
            trampoline: self.u64("trampoline offset")? as i64,
            tag: self.u64("function tag")?,
        })
    }
    fn short_text(&mut self, what: &str) -> Result<&'a str, Error> {
        let n = self.u16(what)? as usize;
        std::str::from_utf8(self.take(n, what)?)
            .map_err(|_| wire_err(format!("{what} is not UTF-8")))
    }
    fn text(self, what: &str) -> Result<&'a str, Error> {
        std::str::from_utf8(self.rest).map_err(|_| wire_err(format!("{what} is not UTF-8")))
    }
    fn end(self, what: &str) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(wire_err(format!(
                "{} stray bytes after {what}",
                self.rest.len()
            )))
        }
    }
}

/// Decodes a frame body sent to a worker.
///
/// # Errors
///
/// [`ErrorKind::Wire`] for an unknown kind or a body that does not fit its kind.
pub(crate) fn decode_to_worker(body: &[u8]) -> Result<ToWorker<'_>, Error> {
    let mut c = Cursor { rest: body };
    match c.u8("kind")? {
        K_SETUP => {
            let build_id = c.short_bytes("build id")?;
            let secret = c.u64("secret")?;
            let initializer = match c.u8("initializer flag")? {
                0 => {
                    c.end("setup")?;
                    None
                }
                1 => {
                    let f = c.fn_ref()?;
                    Some((f, c.rest))
                }
                other => return Err(wire_err(format!("bad initializer flag {other}"))),
            };
            Ok(ToWorker::Setup {
                build_id,
                secret,
                initializer,
            })
        }
        K_CALL => {
            let id = c.u64("call id")?;
            let func = c.fn_ref()?;
            let count = c.u32("argument count")?;
            Ok(ToWorker::Call {
                id,
                func,
                count,
                payload: c.rest,
            })
        }
        K_SETUP_NAMED => {
            let abi = c.u16("registry version")?;
            c.end("named setup")?;
            Ok(ToWorker::SetupNamed { abi })
        }
        K_CALL_NAMED => {
            let id = c.u64("call id")?;
            let hash = c.u64("signature hash")?;
            let count = c.u32("argument count")?;
            let name = c.short_text("function name")?;
            let caller = c.short_text("caller's signature")?;
            // Each argument has at least its 4-byte length: a larger count is a lie that would
            // have the worker write an outcome per claimed argument.
            if count as usize > c.rest.len() / 4 {
                return Err(wire_err(format!(
                    "named call claims {count} arguments in {} bytes",
                    c.rest.len()
                )));
            }
            Ok(ToWorker::NamedCall {
                id,
                hash,
                count,
                name,
                caller,
                payload: c.rest,
            })
        }
        other => Err(wire_err(format!(
            "unknown message kind {other} to a worker"
        ))),
    }
}

/// Decodes a frame body sent by a worker.
///
/// # Errors
///
/// [`ErrorKind::Wire`] for an unknown kind or a body that does not fit its kind.
pub(crate) fn decode_from_worker(body: &[u8]) -> Result<FromWorker<'_>, Error> {
    let mut c = Cursor { rest: body };
    match c.u8("kind")? {
        K_HELLO => {
            let magic = c.u32("magic")?;
            let version = c.u16("version")?;
            let pid = c.u32("pid")?;
            let build_id = c.short_bytes("build id")?;
            c.end("hello")?;
            Ok(FromWorker::Hello {
                magic,
                version,
                pid,
                build_id,
            })
        }
        K_READY => {
            c.end("ready")?;
            Ok(FromWorker::Ready)
        }
        K_INIT_FAILED => Ok(FromWorker::InitFailed(c.text("initializer error")?)),
        K_RESULT => {
            let id = c.u64("call id")?;
            let exec_nanos = c.u64("run time")?;
            Ok(FromWorker::Result {
                id,
                exec_nanos,
                payload: c.rest,
            })
        }
        K_FAILED => {
            let id = c.u64("call id")?;
            Ok(FromWorker::Failed {
                id,
                detail: c.text("failure detail")?,
            })
        }
        K_FATAL => Ok(FromWorker::Fatal(c.text("fatal error")?)),
        other => Err(wire_err(format!(
            "unknown message kind {other} from a worker"
        ))),
    }
}

/// Whether `body` is an envelope (its frame's real body is in the shared region): `None` if it
/// is any other kind, else its post number and body length.
///
/// # Errors
///
/// [`ErrorKind::Wire`](taskweave_core::ErrorKind::Wire) for an envelope of the wrong size.
pub(crate) fn shared_envelope(body: &[u8]) -> Option<Result<(u64, u64), Error>> {
    let mut c = Cursor { rest: body };
    if body.first() != Some(&K_SHARED) {
        return None;
    }
    let _ = c.u8("kind");
    Some((|| {
        let number = c.u64("post number")?;
        let len = c.u64("body length")?;
        c.end("envelope")?;
        Ok((number, len))
    })())
}

/// A complete envelope frame for a body of `len` bytes placed in the shared region as post
/// `number`.
pub(crate) fn encode_shared(number: u64, len: u64) -> [u8; SHARED_FRAME] {
    let mut out = [0u8; SHARED_FRAME];
    out[..4].copy_from_slice(&((SHARED_FRAME - 4) as u32).to_le_bytes());
    out[4] = K_SHARED;
    out[5..13].copy_from_slice(&number.to_le_bytes());
    out[13..].copy_from_slice(&len.to_le_bytes());
    out
}

fn begin(out: &mut Vec<u8>, kind: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, kind]);
    start
}

/// Writes the body length of the frame that starts at `start`.
///
/// # Errors
///
/// [`ErrorKind::Wire`](taskweave_core::ErrorKind::Wire) if the body exceeds `max`.
pub(crate) fn finish(out: &mut [u8], start: usize, max: usize) -> Result<(), Error> {
    let len = out.len() - start - 4;
    if len > max || len > u32::MAX as usize {
        return Err(frame_too_large(len, max));
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// The error for a frame body of `len` bytes, over the limit `max`.
pub(crate) fn frame_too_large(len: usize, max: usize) -> Error {
    wire_err(format!(
        "frame of {len} bytes exceeds the limit of {max} bytes"
    ))
}

fn put_fn(out: &mut Vec<u8>, f: FnRef) {
    out.extend_from_slice(&f.func.to_le_bytes());
    out.extend_from_slice(&f.trampoline.to_le_bytes());
    out.extend_from_slice(&f.tag.to_le_bytes());
}

fn put_short(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = bytes.len().min(255);
    out.push(n as u8);
    out.extend_from_slice(&bytes[..n]);
}

/// Appends a complete setup frame (the initializer payload must already be serialised).
pub(crate) fn encode_setup(
    out: &mut Vec<u8>,
    build_id: &[u8],
    secret: u64,
    initializer: Option<(FnRef, &[u8])>,
    max: usize,
) -> Result<(), Error> {
    let start = begin(out, K_SETUP);
    put_short(out, build_id);
    out.extend_from_slice(&secret.to_le_bytes());
    match initializer {
        None => out.push(0),
        Some((f, payload)) => {
            out.push(1);
            put_fn(out, f);
            out.extend_from_slice(payload);
        }
    }
    finish(out, start, max)
}

/// Appends a complete named setup frame.
pub(crate) fn encode_setup_named(out: &mut Vec<u8>, abi: u16) {
    let start = begin(out, K_SETUP_NAMED);
    out.extend_from_slice(&abi.to_le_bytes());
    let _ = finish(out, start, usize::MAX);
}

/// Appends the header of a named call frame; the caller appends each argument with
/// [`push_named_item`] and calls [`finish`]. `name` and `caller` must be at most [`MAX_NAME`]
/// bytes (longer ones are cut, and then refused by the worker as unknown).
pub(crate) fn begin_named_call(
    out: &mut Vec<u8>,
    id: u64,
    hash: u64,
    count: u32,
    name: &str,
    caller: &str,
) -> usize {
    let start = begin(out, K_CALL_NAMED);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&hash.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    for text in [name, caller] {
        let bytes = &text.as_bytes()[..text.len().min(MAX_NAME)];
        out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    start
}

/// Patches the argument count of a named call frame that starts at `start`.
pub(crate) fn set_named_call_count(out: &mut [u8], start: usize, count: u32) {
    let at = start + NAMED_HEADER - 4;
    out[at..at + 4].copy_from_slice(&count.to_le_bytes());
}

/// Appends one argument of a named call: its `u32` length, then its postcard bytes.
///
/// # Errors
///
/// The postcard error if `arg` cannot be serialised (`out` is left as it was), or `None` in
/// it for an argument longer than `u32::MAX` bytes.
pub(crate) fn push_named_item<A: Serialize>(
    out: &mut Vec<u8>,
    arg: &A,
) -> Result<(), Option<postcard::Error>> {
    let mark = out.len();
    out.extend_from_slice(&[0; 4]);
    if let Err(e) = postcard::to_io(arg, crate::bytes::FrameWriter(&mut *out)) {
        out.truncate(mark);
        return Err(Some(e));
    }
    let Ok(len) = u32::try_from(out.len() - mark - 4) else {
        out.truncate(mark);
        return Err(None);
    };
    out[mark..mark + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Splits the next argument off a named call's payload.
///
/// # Errors
///
/// A description when the payload ends before the argument does.
pub(crate) fn next_named_item<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let mut c = Cursor { rest };
    let len = c
        .u32("argument length")
        .map_err(|_| "the call's payload ends before an argument's length".to_owned())?;
    let item = c
        .take(len as usize, "argument")
        .map_err(|_| format!("the call's payload ends inside an argument of {len} bytes"))?;
    *rest = c.rest;
    Ok(item)
}

/// A complete call frame of one argument.
///
/// # Errors
///
/// `ErrorKind::Wire` naming `what` if the argument cannot be serialised or the frame exceeds `max`.
pub(crate) fn encode_call<A: Serialize>(
    id: u64,
    fref: FnRef,
    arg: &A,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, Error> {
    let mut frame = Vec::with_capacity(CALL_HEADER + 16);
    let start = begin_call(&mut frame, id, fref, 1);
    postcard::to_io(arg, crate::bytes::FrameWriter(&mut frame))
        .map_err(|e| Error::wire(format!("argument of {what}"), serialise_failure(arg, &e)))?;
    finish(&mut frame, start, max)
        .map_err(|e| Error::wire(format!("argument of {what}"), e.to_string()))?;
    Ok(frame)
}

/// Appends the header of a call frame; the caller appends the payload and calls [`finish`].
pub(crate) fn begin_call(out: &mut Vec<u8>, id: u64, f: FnRef, count: u32) -> usize {
    let start = begin(out, K_CALL);
    out.extend_from_slice(&id.to_le_bytes());
    put_fn(out, f);
    out.extend_from_slice(&count.to_le_bytes());
    start
}

/// Patches the argument count of a call frame that starts at `start`.
pub(crate) fn set_call_count(out: &mut [u8], start: usize, count: u32) {
    let at = start + CALL_HEADER - 4;
    out[at..at + 4].copy_from_slice(&count.to_le_bytes());
}

/// Appends a complete hello frame.
pub(crate) fn encode_hello(out: &mut Vec<u8>, pid: u32, build_id: &[u8]) {
    let start = begin(out, K_HELLO);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    out.extend_from_slice(&pid.to_le_bytes());
    put_short(out, build_id);
    let _ = finish(out, start, usize::MAX);
}

/// Appends a complete "ready" frame.
pub(crate) fn encode_ready(out: &mut Vec<u8>) {
    let start = begin(out, K_READY);
    let _ = finish(out, start, usize::MAX);
}

/// Appends a frame that carries text (`InitFailed`, `Fatal`).
pub(crate) fn encode_text(out: &mut Vec<u8>, fatal: bool, text: &str) {
    let start = begin(out, if fatal { K_FATAL } else { K_INIT_FAILED });
    out.extend_from_slice(text.as_bytes());
    let _ = finish(out, start, usize::MAX);
}

/// Appends the header of a result frame; the caller appends the outcomes and calls [`finish`].
pub(crate) fn begin_result(out: &mut Vec<u8>, id: u64, exec_nanos: u64) -> usize {
    let start = begin(out, K_RESULT);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&exec_nanos.to_le_bytes());
    start
}

/// Where a result frame's run time sits: after the length (4), the kind (1) and the call id
/// (8); the worker patches it once the call has run.
pub(crate) const RESULT_NANOS_AT: usize = 13;

/// Appends a complete "failed" frame.
pub(crate) fn encode_failed(out: &mut Vec<u8>, id: u64, detail: &str) {
    let start = begin(out, K_FAILED);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(detail.as_bytes());
    let _ = finish(out, start, usize::MAX);
}
