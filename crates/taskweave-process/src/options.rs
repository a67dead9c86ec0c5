//! [`CallOptions`]: the options of one call to a worker (its timeout), shared by `submit_with`
//! and the maps that make one call per chunk.

use std::time::Duration;

use taskweave_core::Error;

/// Options of one call: [`ProcessPoolExecutor::submit_with`](crate::ProcessPoolExecutor::submit_with).
///
/// ```
/// use std::time::Duration;
/// let options = taskweave_process::CallOptions::new().timeout(Duration::from_secs(5));
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use]
pub struct CallOptions {
    timeout: Option<Duration>,
}

impl CallOptions {
    /// No options: the call may run as long as it takes.
    ///
    /// ```
    /// assert_eq!(taskweave_process::CallOptions::new(), Default::default());
    /// ```
    pub fn new() -> CallOptions {
        CallOptions { timeout: None }
    }

    /// The longest the call may run in its worker, counted from when the worker starts it;
    /// past it the worker is ended and the call fails with
    /// [`ErrorKind::TimedOut`](taskweave_core::ErrorKind::TimedOut).
    /// [`Duration::MAX`] is no limit; zero is refused when the call is submitted.
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = taskweave_process::CallOptions::new().timeout(Duration::from_millis(250));
    /// # let _ = options;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> CallOptions {
        self.timeout = Some(timeout);
        self
    }

    pub(crate) fn limit(&self) -> Option<Duration> {
        self.timeout
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        match self.timeout {
            Some(t) if t.is_zero() => Err(zero_timeout()),
            _ => Ok(()),
        }
    }
}

fn zero_timeout() -> Error {
    Error::refused("a call timeout must be positive, got 0 (no call can finish in no time)")
}
