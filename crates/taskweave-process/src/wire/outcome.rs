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

/// Appends a value's outcome; a value whose `Serialize` refuses becomes a wire-error outcome.
/// A panic in `Serialize` unwinds to the caller, which must truncate `out` to where it was.
pub(crate) fn push_value<R: Serialize>(out: &mut Vec<u8>, value: &R) {
    let mark = out.len();
    out.push(OK);
    if let Err(e) = postcard::to_io(value, crate::bytes::FrameWriter(&mut *out)) {
        out.truncate(mark);
        let why = super::serialise_failure(value, &e);
        push_wire(out, &format!("result could not be serialised: {why}"));
    }
}

/// Appends a panic's outcome.
pub(crate) fn push_panic(out: &mut Vec<u8>, message: &str, backtrace: &str) {
    out.push(PANICKED);
    // Serialising strings into a Vec cannot fail.
    let _ = postcard::to_io(&(message, backtrace), &mut *out);
}

/// Appends a refusal's outcome: the worker would not run the call (an unknown name, a signature
/// that does not match).
pub(crate) fn push_refused(out: &mut Vec<u8>, detail: &str) {
    out.push(REFUSED);
    // Serialising a `&str` into a Vec cannot fail.
    let _ = postcard::to_io(&detail, &mut *out);
}

/// Appends a wire error's outcome.
pub(crate) fn push_wire(out: &mut Vec<u8>, detail: &str) {
    out.push(WIRE);
    // Serialising a `&str` into a Vec cannot fail.
    let _ = postcard::to_io(&detail, &mut *out);
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
