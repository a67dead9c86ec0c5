//! The failures only a distributed executor has, carried inside [`taskweave_core::Error`].

use std::fmt;

use taskweave_core::Error;

/// What went wrong between the client, NATS and the workers.
///
/// It reaches callers as [`ErrorKind::Failed`](taskweave_core::ErrorKind::Failed); [`NatsError::of`] finds it. A worker that stopped
/// answering is [`ErrorKind::WorkerDied`](taskweave_core::ErrorKind::WorkerDied) instead (host and pid in its text), a function the worker
/// does not have or whose signature differs is [`ErrorKind::Refused`](taskweave_core::ErrorKind::Refused), a panic on the worker is
/// [`ErrorKind::Panicked`](taskweave_core::ErrorKind::Panicked), and a value that does not decode is [`ErrorKind::Wire`](taskweave_core::ErrorKind::Wire).
///
/// # Examples
///
/// ```
/// use taskweave_nats::NatsError;
/// let err = NatsError::NoWorkers { function: "app::square".into(), subject: "ns.call.app::square".into() }.into_error();
/// assert!(matches!(NatsError::of(&err), Some(NatsError::NoWorkers { .. })));
/// assert!(err.to_string().contains("app::square"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NatsError {
    /// Fast mode: nobody subscribes to the function's subject (NATS "no responders"): no worker
    /// runs in this namespace, or none registers this function.
    NoWorkers {
        /// The function called.
        function: String,
        /// The subject nobody listens on.
        subject: String,
    },
    /// Durable mode: the call was delivered `max_deliver` times and never finished (every worker
    /// that took it died or let its `ack_wait` run out).
    MaxDeliveries {
        /// The function called.
        function: String,
        /// The call's id.
        call_id: String,
        /// The consumer's `max_deliver`.
        max_deliver: i64,
    },
    /// NATS refused or lost a message, or a value could not go through the object store.
    Transport {
        /// What was being done.
        what: String,
        /// The underlying error.
        detail: String,
    },
}

impl NatsError {
    /// This error as a [`taskweave_core::Error`] ([`ErrorKind::Failed`](taskweave_core::ErrorKind::Failed)).
    ///
    /// ```
    /// let e = taskweave_nats::NatsError::Transport { what: "publish".into(), detail: "closed".into() };
    /// assert!(e.into_error().to_string().contains("closed"));
    /// ```
    pub fn into_error(self) -> Error {
        Error::failed(self)
    }

    /// The `NatsError` inside `error`, if it holds one.
    ///
    /// ```
    /// assert!(taskweave_nats::NatsError::of(&taskweave_core::Error::abandoned()).is_none());
    /// ```
    pub fn of(error: &Error) -> Option<&NatsError> {
        error.downcast_ref::<NatsError>()
    }
}

impl fmt::Display for NatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatsError::NoWorkers { function, subject } => write!(
                f,
                "no worker serves remote function `{function}`: nobody subscribes to `{subject}` (start a worker of a build that registers it in this namespace)"
            ),
            NatsError::MaxDeliveries {
                function,
                call_id,
                max_deliver,
            } => write!(
                f,
                "call {call_id} of `{function}` exhausted max_deliver ({max_deliver} deliveries) without finishing: each worker that took it died or exceeded ack_wait"
            ),
            NatsError::Transport { what, detail } => write!(f, "NATS could not {what}: {detail}"),
        }
    }
}

impl std::error::Error for NatsError {}

/// A transport error as a taskweave error.
pub(crate) fn transport(what: impl Into<String>, detail: impl fmt::Display) -> Error {
    NatsError::Transport {
        what: what.into(),
        detail: detail.to_string(),
    }
    .into_error()
}
