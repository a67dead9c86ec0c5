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
    /// The reply protocol the client speaks ([`PROTOCOL`]). Last, so that workers of protocol
    /// 1, which do not know the field, still decode the call (postcard ignores trailing bytes)
    /// and answer in protocol 1; calls of protocol-1 clients lack it ([`decode_call`]).
    pub(crate) protocol: u32,
}

/// The reply protocol of this build. 1: one [`Reply`] message per acceptance, heartbeat and
/// result, to the call's reply subject. 2: also [`Batch`] messages to `<inbox>.batch`, each
/// carrying what one worker has to tell one client at the time.
pub(crate) const PROTOCOL: u32 = 2;

/// The last token of a [`Batch`]'s subject, beside the call numbers of the reply subjects.
pub(crate) const BATCH_TOKEN: &str = "batch";

/// A call of a protocol-1 client: [`Call`] without the protocol.
#[derive(Deserialize)]
struct CallV1 {
    id: String,
    function: String,
    signature_hash: u64,
    signature: String,
    heartbeat_ms: u64,
    argument: Body,
    notify: Option<String>,
}

/// Decodes a call envelope of any client: one of protocol 1 has no protocol field.
pub(crate) fn decode_call(bytes: &[u8]) -> Result<Call, postcard::Error> {
    match decode::<Call>(bytes) {
        Ok(call) if call.protocol >= 2 => Ok(call),
        _ => {
            let v1: CallV1 = decode(bytes)?;
            Ok(Call {
                id: v1.id,
                function: v1.function,
                signature_hash: v1.signature_hash,
                signature: v1.signature,
                heartbeat_ms: v1.heartbeat_ms,
                argument: v1.argument,
                notify: v1.notify,
                protocol: 1,
            })
        }
    }
}

/// Protocol 2, fast mode: what one worker tells one client at once, for many calls by their
/// numbers (the last token of each call's reply subject). Acceptances are sent as soon as the
/// calls arrive, before any of them runs; heartbeats name the calls still held; results come
/// as they finish, several in one message when they finish together.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Batch {
    pub(crate) accepted: Vec<u64>,
    pub(crate) alive: Vec<u64>,
    pub(crate) done: Vec<(u64, Outcome)>,
    /// Who accepted the calls of `accepted` (a result names its worker itself).
    pub(crate) worker: Option<WorkerId>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn call(protocol: u32) -> Call {
        Call {
            id: "c-1".into(),
            function: "app::f".into(),
            signature_hash: 7,
            signature: "fn(u64) -> u64".into(),
            heartbeat_ms: 250,
            argument: Body::Inline(vec![1, 2]),
            notify: None,
            protocol,
        }
    }

    #[test]
    fn calls_of_both_protocols_decode() {
        let v2 = decode_call(&encode(&call(PROTOCOL)).unwrap()).unwrap();
        assert_eq!((v2.protocol, v2.id.as_str()), (PROTOCOL, "c-1"));
        // A protocol-1 client's envelope: the same fields without the last one.
        let mut v1 = encode(&call(PROTOCOL)).unwrap();
        v1.pop();
        let v1 = decode_call(&v1).unwrap();
        assert_eq!((v1.protocol, v1.function.as_str()), (1, "app::f"));
        assert_eq!(v1.heartbeat_ms, 250);
    }

    #[test]
    fn a_batch_round_trips() {
        let batch = Batch {
            accepted: vec![3, 4],
            alive: vec![1],
            done: vec![(
                2,
                Outcome {
                    worker: WorkerId {
                        host: "h".into(),
                        pid: 9,
                    },
                    attempt: 1,
                    result: Ok(Body::Inline(vec![5])),
                },
            )],
            worker: Some(WorkerId {
                host: "h".into(),
                pid: 9,
            }),
        };
        let back: Batch = decode(&encode(&batch).unwrap()).unwrap();
        assert_eq!((back.accepted, back.alive), (vec![3, 4], vec![1]));
        assert_eq!(back.done[0].0, 2);
        assert_eq!(back.worker.map(|w| w.pid), Some(9));
    }
}
