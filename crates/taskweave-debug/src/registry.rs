//! The table of live tasks and executor work: what the watchdog, the dumps and the shutdown
//! report read.
//!
//! It is sharded by task id (64 shards, each a `Mutex<HashMap>`) so that runtime threads
//! spawning and completing tasks at the same time rarely meet on one lock; ids are handed out
//! to threads in blocks, so threads spawning at once mostly use different shards. A task touches its
//! shard at spawn, after each poll that did not finish it, and at completion: at most one lock
//! per poll, none allocating except when a shard's table grows.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::Location;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use taskweave_core::{TaskInfo, WorkKind};

use crate::clock;
use crate::threads;

const SHARDS: usize = 64;

/// One live task or piece of executor work.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) info: TaskInfo,
    pub(crate) created_ns: u64,
    /// Polls that returned `Pending` (the finishing poll is counted at completion).
    pub(crate) polls: u64,
    /// When the task last made progress (was polled), or its creation.
    pub(crate) last_progress_ns: u64,
    /// The watchdog reported the current stall already.
    pub(crate) hang_reported: bool,
    /// Set for executor work (boxed: tasks, the common case, stay small).
    pub(crate) executor: Option<Box<ExecutorWork>>,
}

/// Where a piece of executor work is.
#[derive(Debug, Clone)]
pub(crate) struct ExecutorWork {
    pub(crate) executor: String,
    /// The thread name or process id running it, once started.
    pub(crate) worker: Option<String>,
    pub(crate) started_ns: Option<u64>,
}

/// Hashes task ids, which are already unique, keeping their low bits: tasks created one after
/// another land in neighbouring buckets, so a burst of spawns (a gather of 100k tasks) touches
/// memory in order instead of missing the cache on every insert. The top seven bits, which the
/// table compares before keys, are mixed so that lookups still filter well.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, x: u64) {
        let mixed = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) & (0x7F << 57);
        self.0 = (x & !(0x7F << 57)) | mixed;
    }
}

type Table = HashMap<u64, Record, BuildHasherDefault<IdHasher>>;

#[repr(align(64))]
struct Shard(Mutex<Table>);

/// The sharded table.
pub(crate) struct Registry {
    shards: Box<[Shard]>,
}

impl Registry {
    pub(crate) fn new() -> Registry {
        Registry {
            shards: (0..SHARDS)
                .map(|_| Shard(Mutex::new(Table::default())))
                .collect(),
        }
    }

    fn shard(&self, id: u64) -> MutexGuard<'_, Table> {
        // Runs of 64 consecutive ids share a shard, for the same locality as the hash.
        let m = &self.shards[((id >> 6) as usize) % SHARDS].0;
        match m.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub(crate) fn insert(&self, info: &TaskInfo, executor: Option<&str>) {
        let now = clock::coarse_ns();
        let record = Record {
            info: info.clone(),
            created_ns: now,
            polls: 0,
            last_progress_ns: now,
            hang_reported: false,
            executor: executor.map(|e| {
                Box::new(ExecutorWork {
                    executor: e.to_owned(),
                    worker: None,
                    started_ns: None,
                })
            }),
        };
        self.shard(info.id().as_u64())
            .insert(info.id().as_u64(), record);
    }

    /// A poll ended at `end_ns` without finishing the task.
    pub(crate) fn progressed(&self, id: u64, end_ns: u64) {
        if let Some(r) = self.shard(id).get_mut(&id) {
            r.polls += 1;
            r.last_progress_ns = end_ns;
            r.hang_reported = false;
        }
    }

    pub(crate) fn started(&self, id: u64, worker: &str) {
        if let Some(r) = self.shard(id).get_mut(&id) {
            let now = clock::now_ns();
            r.last_progress_ns = now;
            if let Some(w) = &mut r.executor {
                w.worker = Some(worker.to_owned());
                w.started_ns = Some(now);
            }
        }
    }

    pub(crate) fn remove(&self, id: u64) -> Option<Record> {
        self.shard(id).remove(&id)
    }

    /// A copy of record `id`.
    pub(crate) fn get(&self, id: u64) -> Option<Record> {
        self.shard(id).get(&id).cloned()
    }

    /// Tasks (not executor work) that are not being polled and have made no progress since
    /// `before_ns`, not reported yet; they are marked reported.
    pub(crate) fn take_stalled(&self, before_ns: u64, polling: &[u64]) -> Vec<Record> {
        let mut found = Vec::new();
        for shard in self.shards.iter() {
            let mut table = match shard.0.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            for r in table.values_mut() {
                if r.executor.is_none()
                    && !r.hang_reported
                    && r.last_progress_ns <= before_ns
                    && !polling.contains(&r.info.id().as_u64())
                {
                    r.hang_reported = true;
                    found.push(r.clone());
                }
            }
        }
        found.sort_by_key(|r| r.info.id());
        found
    }

    /// A copy of every live record, in id (creation) order.
    pub(crate) fn records(&self) -> Vec<Record> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let table = match shard.0.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            all.extend(table.values().cloned());
        }
        all.sort_by_key(|r| r.info.id());
        all
    }

    /// A snapshot of every live task and piece of executor work.
    pub(crate) fn dump(&self) -> Dump {
        let now = clock::now_ns();
        let busy = threads::busy();
        let tasks = self
            .records()
            .into_iter()
            .map(|r| {
                let id = r.info.id().as_u64();
                let polling = busy.iter().find(|b| b.task == id);
                let state = match (&r.executor, polling) {
                    (Some(w), _) => match (&w.worker, w.started_ns) {
                        (Some(worker), Some(started)) => TaskState::Running {
                            worker: format!("{} {worker}", w.executor),
                            for_: Duration::from_nanos(now.saturating_sub(started)),
                        },
                        _ => TaskState::Queued {
                            executor: w.executor.clone(),
                        },
                    },
                    (None, Some(b)) => TaskState::Polling {
                        thread: b.thread.clone(),
                        for_: Duration::from_nanos(now.saturating_sub(b.since_ns)),
                    },
                    (None, None) if r.polls == 0 => TaskState::Scheduled,
                    (None, None) => TaskState::Waiting {
                        for_: Duration::from_nanos(now.saturating_sub(r.last_progress_ns)),
                    },
                };
                TaskSnapshot {
                    id,
                    name: r.info.name(),
                    executor_work: r.info.kind() == WorkKind::Executor,
                    state,
                    age: Duration::from_nanos(now.saturating_sub(r.created_ns)),
                    polls: r.polls,
                    site: r.info.site(),
                }
            })
            .collect();
        Dump { tasks }
    }
}

/// What a live task is doing, as seen by [`Dump`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskState {
    /// Created, not polled yet.
    Scheduled,
    /// Being polled right now on `thread`, for `for_`.
    Polling {
        /// The thread's name.
        thread: String,
        /// How long this poll has run.
        for_: Duration,
    },
    /// Suspended at an `.await`, not polled for `for_`.
    Waiting {
        /// Time since its last poll ended.
        for_: Duration,
    },
    /// Executor work waiting for a worker.
    Queued {
        /// The executor's name.
        executor: String,
    },
    /// Executor work running on `worker` for `for_`.
    Running {
        /// The executor and its worker (thread name or process id).
        worker: String,
        /// How long it has run.
        for_: Duration,
    },
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskState::Scheduled => f.write_str("scheduled, never polled"),
            TaskState::Polling { thread, for_ } => {
                write!(
                    f,
                    "polling on thread '{thread}' for {:.3} s",
                    for_.as_secs_f64()
                )
            }
            TaskState::Waiting { for_ } => {
                write!(f, "waiting, last polled {:.3} s ago", for_.as_secs_f64())
            }
            TaskState::Queued { executor } => write!(f, "queued in {executor}"),
            TaskState::Running { worker, for_ } => {
                write!(f, "running on {worker} for {:.3} s", for_.as_secs_f64())
            }
        }
    }
}

/// One live task or piece of executor work in a [`Dump`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskSnapshot {
    /// The task id.
    pub id: u64,
    /// The task's name (`Task-<id>` when unnamed).
    pub name: String,
    /// `true` for thread-pool, process-pool or rayon work rather than a task.
    pub executor_work: bool,
    /// What it is doing.
    pub state: TaskState,
    /// Time since it was created or submitted.
    pub age: Duration,
    /// Polls so far (not counting one in progress).
    pub polls: u64,
    /// Where it was created or submitted.
    pub site: &'static Location<'static>,
}

/// Every live task and piece of executor work at one moment: what the watchdog prints and
/// [`DebugObserver::dump`](crate::DebugObserver::dump) returns.
///
/// Its `Display` is a table for people, one task per line.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Dump {
    /// The tasks, in creation order.
    pub tasks: Vec<TaskSnapshot>,
}

impl std::fmt::Display for Dump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} live task(s):", self.tasks.len())?;
        for t in &self.tasks {
            let (what, origin) = if t.executor_work {
                ("Work", "submitted")
            } else {
                ("Task", "created")
            };
            write!(
                f,
                "\n  <{what} name='{}' id={}> {}; age {:.3} s, {} poll(s), {origin} at {}",
                t.name,
                t.id,
                t.state,
                t.age.as_secs_f64(),
                t.polls,
                t.site
            )?;
        }
        Ok(())
    }
}
