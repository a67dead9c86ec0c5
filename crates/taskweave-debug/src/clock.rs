//! One process-wide monotonic epoch, so that times stored as plain `u64` nanoseconds (cheap to
//! keep in atomics and records) can be compared across threads and written to the timeline, and
//! a coarse clock for the per-task hot path.
//!
//! Reading the precise clock costs tens of nanoseconds (about 50 on a virtual machine), as much
//! as a tenth of a whole task spawn and await. Creation times, last-progress times and poll
//! starts therefore come from the coarse clock: the precise time of the watchdog's last tick,
//! one relaxed load to read. It is never ahead of the true time and at most one tick
//! ([`TICK_MAX`]) behind, so ages and idle times read against the precise clock are
//! overestimated by at most one tick. Slow-poll durations are core's precise measurement.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The epoch; fixed the first time anything in this crate reads the clock.
pub(crate) fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

static COARSE: AtomicU64 = AtomicU64::new(0);

/// The longest interval between two ticks of the coarse clock.
pub(crate) const TICK_MAX: Duration = Duration::from_millis(50);

/// Nanoseconds since [`epoch`], precise.
pub(crate) fn now_ns() -> u64 {
    nanos(epoch().elapsed())
}

/// The coarse clock: [`now_ns`] as of the last [`tick`].
pub(crate) fn coarse_ns() -> u64 {
    COARSE.load(Ordering::Relaxed)
}

/// Advances the coarse clock to now and returns the precise time. Several watchdogs may tick;
/// `fetch_max` keeps the clock from going back.
pub(crate) fn tick() -> u64 {
    let now = now_ns();
    COARSE.fetch_max(now, Ordering::Relaxed);
    now
}

/// A duration in nanoseconds, saturating (585 years fit).
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Seconds between two epoch times, as a float for reports (`0.150`).
pub(crate) fn secs_between(from_ns: u64, to_ns: u64) -> f64 {
    to_ns.saturating_sub(from_ns) as f64 / 1e9
}
