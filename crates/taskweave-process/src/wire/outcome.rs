//! The outcome encoding inside a result frame: one outcome per argument of a call, each a tag
//! byte and its postcard body: a value, a panic (message and backtrace), a wire error (a
//! result that could not be serialised, an argument that could not be decoded), or a refusal
//! (a named call whose name or signature the worker does not register).
//!
//! The worker writes outcomes with the `push_*` functions; the pool reads them back one at a
//! time with [`next`], which is total: any bytes give a value or an error, never a panic of
//! the pool's own (a panicking `Deserialize` of the user's type is caught and becomes that
//! outcome's error).

use serde::Serialize;
use serde::de::DeserializeOwned;
use taskweave_core::Error;

/// A value's outcome: this tag, then the value's postcard bytes.
pub(crate) const OK: u8 = 0;
const PANICKED: u8 = 1;
const WIRE: u8 = 2;
const REFUSED: u8 = 3;

/// Where a worker writes a reply's outcomes: a `Vec`, or a result frame that may live in the
/// worker's shared results region (`arena::ResultBuf`).
pub(crate) trait Out {
    /// Bytes written so far.
    fn len(&self) -> usize;
    /// Drops everything after the first `len` bytes.
    fn truncate(&mut self, len: usize);
    /// Appends `bytes`.
    fn append(&mut self, bytes: &[u8]);
}

impl Out for Vec<u8> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len);
    }
    fn append(&mut self, bytes: &[u8]) {
        // Writing into a Vec cannot fail.
        let _ = std::io::Write::write_all(&mut crate::bytes::FrameWriter(self), bytes);
    }
}

/// A serialiser's writer into an [`Out`].
struct Writer<'a, O: Out + ?Sized>(&'a mut O);

impl<O: Out + ?Sized> std::io::Write for Writer<'_, O> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.append(data);
        Ok(data.len())
    }
    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.0.append(data);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Appends a value's outcome; a value whose `Serialize` refuses becomes a wire-error outcome.
/// A panic in `Serialize` unwinds to the caller, which must truncate `out` to where it was.
pub(crate) fn push_value<R: Serialize, O: Out + ?Sized>(out: &mut O, value: &R) {
    let mark = out.len();
    out.append(&[OK]);
    if let Err(e) = postcard::to_io(value, Writer(&mut *out)) {
        out.truncate(mark);
        let why = super::serialise_failure(value, &e);
        push_wire(out, &format!("result could not be serialised: {why}"));
    }
}

/// Appends a panic's outcome.
pub(crate) fn push_panic<O: Out + ?Sized>(out: &mut O, message: &str, backtrace: &str) {
    out.append(&[PANICKED]);
    // Serialising strings cannot fail: the writer takes every byte.
    let _ = postcard::to_io(&(message, backtrace), Writer(&mut *out));
}

/// Appends a refusal's outcome: the worker would not run the call (an unknown name, a signature
/// that does not match).
pub(crate) fn push_refused<O: Out + ?Sized>(out: &mut O, detail: &str) {
    out.append(&[REFUSED]);
    // Serialising a `&str` cannot fail: the writer takes every byte.
    let _ = postcard::to_io(&detail, Writer(&mut *out));
}

/// Appends a wire error's outcome.
pub(crate) fn push_wire<O: Out + ?Sized>(out: &mut O, detail: &str) {
    out.append(&[WIRE]);
    // Serialising a `&str` cannot fail: the writer takes every byte.
    let _ = postcard::to_io(&detail, Writer(&mut *out));
}

/// Decodes the next outcome of a reply; a panic in `R`'s `Deserialize` fails this outcome (and,
/// since the rest of the reply cannot be framed any more, the ones after it).
pub(crate) fn next<R: DeserializeOwned>(
    rest: &mut &[u8],
    what: &str,
    pid: u32,
) -> Result<R, Error> {
    let mut cursor = *rest;
    match crate::unwind::catch(|| decode::<R>(&mut cursor, what, pid)) {
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

fn decode<R: DeserializeOwned>(rest: &mut &[u8], what: &str, pid: u32) -> Result<R, Error> {
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
        REFUSED => match postcard::take_from_bytes::<String>(rest) {
            Ok((detail, tail)) => {
                *rest = tail;
                Err(Error::refused(format!(
                    "{what} refused by worker pid {pid}: {detail}"
                )))
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
