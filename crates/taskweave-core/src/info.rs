//! Who a piece of work is: [`TaskId`], [`TaskInfo`] and [`WorkKind`], shared by tasks, executor
//! work and the debug layer.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A process-wide unique task id, increasing in creation order on each thread.
///
/// ```
/// let a = taskweave_core::TaskId::next();
/// let b = taskweave_core::TaskId::next();
/// assert!(b.as_u64() > a.as_u64());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(u64);

impl TaskId {
    /// Allocates the next id.
    ///
    /// ```
    /// let id = taskweave_core::TaskId::next();
    /// assert!(id.as_u64() > 0);
    /// ```
    pub fn next() -> TaskId {
        // Ids are handed out to each thread in blocks, so spawning on several threads does not
        // contend on one counter. Ids stay unique; they are in creation order per thread.
        const BLOCK: u64 = 1024;
        static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
        thread_local! {
            static RANGE: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
        }
        RANGE.with(|range| {
            let (mut next, mut end) = range.get();
            if next == end {
                next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
                end = next + BLOCK;
            }
            range.set((next + 1, end));
            TaskId(next)
        })
    }

    /// The id as a number.
    ///
    /// ```
    /// let id = taskweave_core::TaskId::next();
    /// assert_eq!(id.to_string(), id.as_u64().to_string());
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What runs a piece of work: a coroutine, a thread-pool thread, a worker process, rayon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WorkKind {
    /// A coroutine run as a task.
    Task,
    /// A function run by an executor (thread pool, process pool, rayon).
    Executor,
}

/// Who a task or a piece of executor work is: id, name, kind and creation site.
///
/// Cheap to clone (the name is shared).
///
/// ```
/// let info = taskweave_core::TaskInfo::executor("resize images");
/// assert_eq!(info.name(), "resize images");
/// ```
#[derive(Clone)]
pub struct TaskInfo {
    /// The id, with [`EXECUTOR_BIT`] set for executor work: every task's handle and cell carry
    /// an info, and a separate kind field would add 8 bytes (with padding) to both.
    id_kind: u64,
    name: Option<Arc<str>>,
    site: &'static Location<'static>,
}

/// Ids count up from 1 in steps of one; they never come near this bit.
const EXECUTOR_BIT: u64 = 1 << 63;

impl TaskInfo {
    #[track_caller]
    pub(crate) fn task(name: Option<Arc<str>>) -> TaskInfo {
        TaskInfo {
            id_kind: TaskId::next().0,
            name,
            site: Location::caller(),
        }
    }

    /// The id with its kind bit, the one word of an info a plain task's cell keeps.
    pub(crate) fn id_kind(&self) -> u64 {
        self.id_kind
    }

    /// `true` when the info carries a name of its own.
    pub(crate) fn is_named(&self) -> bool {
        self.name.is_some()
    }

    /// An unnamed info from its parts ([`TaskInfo::id_kind`] and the site).
    pub(crate) fn unnamed(id_kind: u64, site: &'static Location<'static>) -> TaskInfo {
        TaskInfo {
            id_kind,
            name: None,
            site,
        }
    }

    /// Describes executor work named `name`, submitted from the caller's location.
    ///
    /// ```
    /// let info = taskweave_core::TaskInfo::executor("square");
    /// assert_eq!(info.kind(), taskweave_core::WorkKind::Executor);
    /// ```
    #[track_caller]
    pub fn executor(name: impl Into<Arc<str>>) -> TaskInfo {
        TaskInfo {
            id_kind: TaskId::next().0 | EXECUTOR_BIT,
            name: Some(name.into()),
            site: Location::caller(),
        }
    }

    /// The id.
    ///
    /// ```
    /// let info = taskweave_core::TaskInfo::executor("w");
    /// assert!(info.id().as_u64() > 0);
    /// ```
    pub fn id(&self) -> TaskId {
        TaskId(self.id_kind & !EXECUTOR_BIT)
    }

    /// The name given at creation, or `Task-<id>` as asyncio names unnamed tasks.
    ///
    /// ```
    /// assert_eq!(taskweave_core::TaskInfo::executor("w").name(), "w");
    /// ```
    pub fn name(&self) -> String {
        match &self.name {
            Some(n) => n.to_string(),
            None => format!("Task-{}", self.id()),
        }
    }

    /// What runs the work.
    ///
    /// ```
    /// use taskweave_core::{TaskInfo, WorkKind};
    /// assert_eq!(TaskInfo::executor("w").kind(), WorkKind::Executor);
    /// ```
    pub fn kind(&self) -> WorkKind {
        if self.id_kind & EXECUTOR_BIT == 0 {
            WorkKind::Task
        } else {
            WorkKind::Executor
        }
    }

    /// Where the task was created or the work submitted.
    ///
    /// ```
    /// let info = taskweave_core::TaskInfo::executor("w");
    /// assert_eq!(info.site().line(), line!() - 1);
    /// ```
    pub fn site(&self) -> &'static Location<'static> {
        self.site
    }
}

impl fmt::Debug for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskInfo")
            .field("id", &self.id().0)
            .field("name", &self.name())
            .field("site", &format_args!("{}", self.site))
            .finish()
    }
}

impl fmt::Display for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<Task name='{}' id={} created at {}>",
            self.name(),
            self.id(),
            self.site
        )
    }
}
