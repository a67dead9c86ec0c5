//! [`TaskGroup`]: structured concurrency (asyncio's `TaskGroup`).
//!
//! Every task spawned into a group is awaited by [`TaskGroup::join`]. The first task that fails
//! cancels its siblings; `join` then reports every failure, not only the first, as
//! [`Error::Group`] (Python's `ExceptionGroup`). Cancellations the group caused are not
//! failures. Dropping the group, or the `join` future, cancels the tasks still running, so no
//! group task outlives its scope unobserved; when a deadline ([`timeout`](crate::timeout),
//! [`wait_for`](crate::wait_for)) dropped it, the deadline reports its timeout only once they
//! have all finished.
//!
//! Once the group has failed no member body starts: a spawn into it returns a task that is
//! already cancelled, and a member spawned earlier that had not been polled yet checks the
//! group's flag at its first poll and ends cancelled without running. Cancelling a sibling
//! that already runs stops it at its next suspension point.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use crate::error::{Error, into_error};
use crate::info::TaskId;
use crate::promise::Canceller;
use crate::task::{Task, never_started, spawn_supervised};

const ALREADY_FAILED: &str = "the task group already failed";

#[derive(Default)]
struct GroupState {
    /// The tasks still running, by id: finished ones leave, so a long-lived group does not grow.
    members: HashMap<TaskId, Canceller>,
    errors: Vec<Error>,
    running: usize,
    waker: Option<Waker>,
}

#[derive(Default)]
struct Shared {
    /// Set (under the state lock) at the first failure, read by members at their first poll
    /// without the lock.
    failed: AtomicBool,
    state: Mutex<GroupState>,
}

/// A scope of tasks that succeed together or fail together.
///
/// Tasks return `Result<T, E>`; an `Err` (or a panic) is a failure. Each spawn returns the task's
/// own handle for its value; the group holds its own watch, so handles may be dropped freely.
///
/// # The body of the group
///
/// The code that spawns into the group and then calls [`join`](Self::join) is the group's body.
/// A failing member cancels its siblings, never the body: the body's own awaits run on, and the
/// body learns of the failure from [`join`](Self::join) (or earlier from
/// [`failed`](Self::failed)). Work that should stop with the group belongs in a member task.
///
/// # Differences from Python
///
/// asyncio's `TaskGroup` cancels the task running the `async with` body when a member fails,
/// so the body's pending await raises `CancelledError`. A Rust future cannot be cancelled from
/// outside by whoever does not own it, and the body need not be a task, so here the body runs
/// on until `join`. A task spawned after the failure is returned already cancelled and never
/// runs (asyncio raises `RuntimeError` from `create_task` there).
///
/// # Examples
///
/// ```
/// # taskweave_core::run(async {
/// use taskweave_core::{Error, TaskGroup};
///
/// let group = TaskGroup::new();
/// let a = group.spawn(async { Ok::<_, Error>(1) });
/// let b = group.spawn(async { Ok::<_, Error>(2) });
/// group.join().await.unwrap();
/// assert_eq!(a.await.unwrap() + b.await.unwrap(), 3);
///
/// let group = TaskGroup::new();
/// group.spawn(async { Err::<(), _>(std::io::Error::other("disk full")) });
/// group.spawn(async { Err::<(), _>(std::io::Error::other("no network")) });
/// let err = group.join().await.unwrap_err();
/// assert!(matches!(&err, Error::Group { errors } if !errors.is_empty()));
/// # });
/// ```
pub struct TaskGroup {
    shared: Arc<Shared>,
}

impl Default for TaskGroup {
    fn default() -> TaskGroup {
        TaskGroup::new()
    }
}

impl std::fmt::Debug for TaskGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = lock(&self.shared.state);
        f.debug_struct("TaskGroup")
            .field("running", &st.running)
            .field("failed", &self.failed())
            .finish()
    }
}

fn lock(state: &Mutex<GroupState>) -> std::sync::MutexGuard<'_, GroupState> {
    match state.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl TaskGroup {
    /// An empty group.
    ///
    /// ```
    /// let group = taskweave_core::TaskGroup::new();
    /// # taskweave_core::run(async move { group.join().await.unwrap() }).unwrap();
    /// ```
    pub fn new() -> TaskGroup {
        TaskGroup {
            shared: Arc::new(Shared::default()),
        }
    }

    /// Spawns `future` into the group and returns its task handle.
    ///
    /// If the group already failed, the task never starts (as asyncio refuses new tasks in a
    /// failing group); its handle reports [`Error::Cancelled`].
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let group = taskweave_core::TaskGroup::new();
    /// let t = group.spawn(async { Ok::<_, taskweave_core::Error>(2) });
    /// group.join().await.unwrap();
    /// assert_eq!(t.await.unwrap(), 2);
    /// # }).unwrap();
    /// ```
    #[track_caller]
    pub fn spawn<F, T, E>(&self, future: F) -> Task<T>
    where
        F: std::future::Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        self.spawn_member(None, future)
    }

    /// Spawns a named task into the group.
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let group = taskweave_core::TaskGroup::new();
    /// let t = group.spawn_named("loader", async { Ok::<_, taskweave_core::Error>(()) });
    /// assert_eq!(t.name(), "loader");
    /// group.join().await.unwrap();
    /// # }).unwrap();
    /// ```
    #[track_caller]
    pub fn spawn_named<F, T, E>(&self, name: impl Into<Arc<str>>, future: F) -> Task<T>
    where
        F: std::future::Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        self.spawn_member(Some(name.into()), future)
    }

    #[track_caller]
    fn spawn_member<F, T, E>(&self, name: Option<Arc<str>>, future: F) -> Task<T>
    where
        F: std::future::Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        if self.failed() {
            let task = never_started(name, ALREADY_FAILED);
            task.mark_supervised();
            return task;
        }
        let gate = Arc::clone(&self.shared);
        let mut task = spawn_supervised(name, async move {
            // A member whose first poll comes after the group failed must not start its body.
            if gate.failed.load(Ordering::Acquire) {
                return Err(Error::cancelled(Some(ALREADY_FAILED.to_owned())));
            }
            future.await.map_err(into_error)
        });
        self.adopt(&mut task);
        task
    }

    fn adopt<T: Send + 'static>(&self, task: &mut Task<T>) {
        task.mark_supervised();
        let canceller = task.canceller();
        let id = task.id();
        {
            let mut st = lock(&self.shared.state);
            st.running += 1;
            st.members.insert(id, canceller);
        }
        let shared = Arc::clone(&self.shared);
        let name = task.name();
        task.add_done_callback(move |outcome| {
            let mut st = lock(&shared.state);
            st.running -= 1;
            st.members.remove(&id);
            let mut to_cancel = Vec::new();
            if let Err(e) = outcome {
                let failed = shared.failed.load(Ordering::Acquire);
                let cancelled_by_group = e.is_cancelled() && failed;
                if !cancelled_by_group {
                    st.errors.push(e.clone());
                    if !failed {
                        shared.failed.store(true, Ordering::Release);
                        to_cancel = st.members.values().cloned().collect();
                    }
                }
            }
            let waker = if st.running == 0 {
                st.waker.take()
            } else {
                None
            };
            drop(st);
            let message = format!("a sibling task failed: {name}");
            for member in to_cancel {
                member.cancel(Some(message.clone()));
            }
            if let Some(w) = waker {
                w.wake();
            }
        });
    }

    /// Waits for every task of the group.
    ///
    /// # Errors
    ///
    /// [`Error::Group`] listing every failure, in the order they happened, when any task failed.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let group = taskweave_core::TaskGroup::new();
    /// group.spawn(async { Err::<(), _>(taskweave_core::Error::broken("down")) });
    /// assert!(matches!(group.join().await, Err(taskweave_core::Error::Group { .. })));
    /// # }).unwrap();
    /// ```
    pub async fn join(self) -> Result<(), Error> {
        std::future::poll_fn(|cx| {
            let mut st = lock(&self.shared.state);
            if st.running == 0 {
                std::task::Poll::Ready(())
            } else {
                st.waker = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
        .await;
        let errors = std::mem::take(&mut lock(&self.shared.state).errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Group { errors })
        }
    }

    /// `true` once a task of the group has failed (its siblings are being cancelled).
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let group = taskweave_core::TaskGroup::new();
    /// assert!(!group.failed());
    /// group.join().await.unwrap();
    /// # }).unwrap();
    /// ```
    pub fn failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }

    /// Cancels every task still running in the group.
    ///
    /// ```
    /// # taskweave_core::run(async {
    /// let group = taskweave_core::TaskGroup::new();
    /// let t = group.spawn(async { std::future::pending::<Result<(), taskweave_core::Error>>().await });
    /// group.cancel_all("stop");
    /// assert!(t.await.unwrap_err().is_cancelled());
    /// let _ = group.join().await;
    /// # }).unwrap();
    /// ```
    pub fn cancel_all(&self, message: &str) {
        let members: Vec<Canceller> = lock(&self.shared.state).members.values().cloned().collect();
        for m in members {
            m.cancel(Some(message.to_owned()));
        }
    }
}

impl Drop for TaskGroup {
    fn drop(&mut self) {
        let members = {
            let st = lock(&self.shared.state);
            if st.running == 0 {
                return;
            }
            st.members.values().cloned().collect::<Vec<_>>()
        };
        for m in members {
            m.cancel(Some("the task group was dropped".to_owned()));
        }
        if crate::ending::collecting() {
            // A deadline dropped the group (or its `join`): it reports the timeout once every
            // member has finished, as asyncio's `TaskGroup` always waits for its children.
            let shared = Arc::clone(&self.shared);
            crate::ending::hand_over_future(std::future::poll_fn(move |cx| {
                let mut st = lock(&shared.state);
                if st.running == 0 {
                    std::task::Poll::Ready(())
                } else {
                    st.waker = Some(cx.waker().clone());
                    std::task::Poll::Pending
                }
            }));
        }
    }
}
