//! Named calls in a worker: the function is found by name in this program's registry
//! (`taskweave-registry`), its signature hash compared with the caller's, and each argument run
//! through the registry's trampoline. Nothing received is turned into an address: a name that is
//! not registered, or registered with other types, is refused with both sides named.

use taskweave_registry::CallFailure;

use crate::wire::{self, outcome};

use super::trampoline::LAST_PANIC;

/// Runs a named call of `count` arguments and appends one outcome per argument to `out`.
pub(crate) fn run(
    name: &str,
    hash: u64,
    caller: &str,
    count: u32,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    let entry = match taskweave_registry::lookup(name) {
        Ok(entry) => match entry.check_hash(hash, caller) {
            Ok(()) => entry,
            Err(e) => return refuse_all(out, count, &e.to_string()),
        },
        Err(e) => return refuse_all(out, count, &e.to_string()),
    };
    let mut rest = payload;
    for i in 0..count {
        let item = match wire::next_named_item(&mut rest) {
            Ok(item) => item,
            Err(detail) => {
                for _ in i..count {
                    outcome::push_wire(out, &detail);
                }
                return;
            }
        };
        // The registry's trampoline catches the function's panic; one that still escapes (in
        // the result's `Serialize`, or a payload that panics as it is dropped) is this item's
        // panic, never the worker's end. The result is encoded straight into the reply.
        let mark = out.len();
        out.push(outcome::OK);
        let ran = crate::unwind::catch(|| entry.call_into(item, out));
        if !matches!(ran, Ok(Ok(()))) {
            out.truncate(mark);
        }
        match ran {
            Ok(Ok(())) => {}
            Ok(Err(CallFailure::Panicked(message))) => {
                outcome::push_panic(out, &message, &caught_backtrace());
            }
            Ok(Err(CallFailure::Decode(e))) => outcome::push_wire(
                out,
                &format!("argument could not be decoded in the worker: {e}"),
            ),
            Ok(Err(CallFailure::Encode(e))) => {
                outcome::push_wire(out, &format!("result could not be serialised: {e}"));
            }
            Err(message) => outcome::push_panic(out, &message, &caught_backtrace()),
        }
    }
}

fn refuse_all(out: &mut Vec<u8>, count: u32, detail: &str) {
    for _ in 0..count {
        outcome::push_refused(out, detail);
    }
}

/// Where the last panic of this worker happened and its backtrace, as the worker's panic hook
/// recorded them.
fn caught_backtrace() -> String {
    match LAST_PANIC.with(|p| p.borrow_mut().take()) {
        Some(c) => format!("panicked at {}\n{}", c.location, c.backtrace),
        None => String::new(),
    }
}
