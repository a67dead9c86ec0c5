//! The call envelope: what a client sends a worker and what comes back, postcard-encoded. NATS
//! carries it; nothing in it is code, only a registered function's name and encoded values.

use serde::{Deserialize, Serialize};

/// One call, as published to `<ns>.call.<fn>` (fast) or `<ns>.jobs.<fn>` (durable).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Call {
    /// Unique per call; in durable mode also the `Nats-Msg-Id` and the result's key.
    pub(crate) id: String,
    pub(crate) function: String,
    /// The caller's [`taskweave_registry::Signature`] hash and its text, for the refusal.
    pub(crate) signature_hash: u64,
    pub(crate) signature: String,
    /// Fast mode: how often the worker must say it is still running.
    pub(crate) heartbeat_ms: u64,
    pub(crate) argument: Body,
    /// Durable mode: where to tell the client that the result is stored.
    pub(crate) notify: Option<String>,
}

/// A value inline, or the name of an object in the namespace's object store (values over the
/// server's max payload).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Body {
    Inline(Vec<u8>),
    Object(String),
}

/// Which worker process: enough to find it on its machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WorkerId {
    pub(crate) host: String,
    pub(crate) pid: u32,
}

impl WorkerId {
    pub(crate) fn this_process() -> WorkerId {
        WorkerId {
            host: crate::worker::host_name(),
            pid: std::process::id(),
        }
    }
}

impl std::fmt::Display for WorkerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} pid {}", self.host, self.pid)
    }
}

/// Fast mode: the messages a worker sends to a call's reply subject, in this order.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The worker took the call and is about to run it.
    Accepted(WorkerId),
    /// Still running.
    Heartbeat,
    /// Finished.
    Done(Outcome),
}

/// How a call ended on its worker; in durable mode also the value stored under the call's key.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Outcome {
    pub(crate) worker: WorkerId,
    /// The delivery attempt that produced it (1 in fast mode).
    pub(crate) attempt: u64,
    pub(crate) result: Result<Body, Refusal>,
}

/// Why a worker produced no result value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Refusal {
    /// The name, or the signature, is not what the worker registers; the full message.
    Refused(String),
    /// The function panicked; its message.
    Panicked(String),
    /// The argument did not decode or the result did not encode; what and why.
    Wire(String),
    /// The worker could not move a value through NATS (object store); what failed.
    Transport(String),
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_stdvec(value)
}

pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}
