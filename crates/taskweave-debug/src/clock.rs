//! One process-wide monotonic epoch, so that times stored as plain `u64` nanoseconds (cheap to
//! keep in atomics and records) can be compared across threads and written to the timeline.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The epoch; fixed the first time anything in this crate reads the clock.
pub(crate) fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since [`epoch`].
pub(crate) fn now_ns() -> u64 {
    nanos(epoch().elapsed())
}

/// A duration in nanoseconds, saturating (585 years fit).
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Seconds between two epoch times, as a float for reports (`0.150`).
pub(crate) fn secs_between(from_ns: u64, to_ns: u64) -> f64 {
    to_ns.saturating_sub(from_ns) as f64 / 1e9
}
