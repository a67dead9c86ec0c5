//! [`Queued`]: what an executor that shuts down does with the work it has not started.

/// What shutting an executor down does with work that is queued but has not started: it still
/// runs ([`Run`](Queued::Run)), or it is cancelled ([`Cancel`](Queued::Cancel)). Running work
/// always runs to its end.
///
/// It names the choice Python's `shutdown(cancel_futures=…)` makes with a bool, so that a call
/// reads as what it does: `pool.shutdown_async(Queued::Cancel)` rather than
/// `pool.shutdown_async(true)`. The default is [`Run`](Queued::Run), as Python's
/// `cancel_futures=False`.
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// use taskweave_bridge::ThreadPoolExecutor;
/// use taskweave_executor::Queued;
///
/// let pool = ThreadPoolExecutor::new();
/// let p = pool.submit(|| 5);
/// pool.shutdown_async(Queued::Run).await; // queued work still runs
/// assert_eq!(p.await.unwrap(), 5);
/// assert!(Queued::Cancel.cancels());
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Queued {
    /// Queued work still runs before the executor stops (Python's `cancel_futures=False`).
    #[default]
    Run,
    /// Queued work is cancelled: its promises end with
    /// [`ErrorKind::Cancelled`](taskweave_core::ErrorKind::Cancelled) (Python's
    /// `cancel_futures=True`).
    Cancel,
}

impl Queued {
    /// `true` for [`Cancel`](Queued::Cancel): the value of Python's `cancel_futures`.
    ///
    /// ```
    /// use taskweave_executor::Queued;
    /// assert!(Queued::Cancel.cancels());
    /// assert!(!Queued::Run.cancels());
    /// ```
    pub fn cancels(self) -> bool {
        self == Queued::Cancel
    }
}
