//! What each thread is polling right now, readable by the watchdog thread.
//!
//! Every thread that polls an observed task owns a [`ThreadSlot`] (created on its first poll and
//! listed process-wide). A poll start writes the task id and start time into the slot with two
//! atomic stores and no lock; the watchdog reads all slots to find polls that have run far too
//! long (a blocked worker) and to tell a task that is being polled from one that waits.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::clock;

/// One thread's current poll.
pub(crate) struct ThreadSlot {
    /// A small number naming the thread in the timeline.
    pub(crate) tid: u64,
    /// The thread's name, or its `ThreadId` when unnamed.
    pub(crate) name: String,
    /// The task being polled, 0 when none.
    task: AtomicU64,
    /// When the current poll started (epoch nanoseconds).
    since_ns: AtomicU64,
    /// Counts polls, so the watchdog reports one blocked poll once.
    seq: AtomicU64,
    /// The `seq` of the last poll the watchdog reported as blocked.
    pub(crate) reported_seq: AtomicU64,
}

/// A copy of a busy slot, taken by the watchdog.
#[derive(Debug)]
pub(crate) struct Busy {
    pub(crate) task: u64,
    pub(crate) since_ns: u64,
    pub(crate) seq: u64,
    pub(crate) thread: String,
    pub(crate) slot: ThreadSlotRef,
}

/// Shared handle to a slot (kept opaque to the rest of the crate).
pub(crate) struct ThreadSlotRef(Arc<ThreadSlot>);

impl std::fmt::Debug for ThreadSlotRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadSlot")
            .field("tid", &self.0.tid)
            .finish()
    }
}

impl ThreadSlotRef {
    /// Marks poll number `seq` of this thread as reported; `false` if it already was.
    pub(crate) fn mark_reported(&self, seq: u64) -> bool {
        self.0.reported_seq.swap(seq, Ordering::Relaxed) != seq
    }
}

static SLOTS: Mutex<Vec<Weak<ThreadSlot>>> = Mutex::new(Vec::new());
static NEXT_TID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static SLOT: Arc<ThreadSlot> = register_thread();
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}

fn register_thread() -> Arc<ThreadSlot> {
    let thread = std::thread::current();
    let name = match thread.name() {
        Some(n) => n.to_owned(),
        None => format!("{:?}", thread.id()),
    };
    let slot = Arc::new(ThreadSlot {
        tid: NEXT_TID.fetch_add(1, Ordering::Relaxed),
        name,
        task: AtomicU64::new(0),
        since_ns: AtomicU64::new(0),
        seq: AtomicU64::new(0),
        reported_seq: AtomicU64::new(0),
    });
    let mut slots = lock(&SLOTS);
    slots.retain(|w| w.strong_count() > 0);
    slots.push(Arc::downgrade(&slot));
    slot
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Records that this thread starts polling `task` now, with the precise clock when `precise`
/// (for the timeline), the coarse one otherwise.
pub(crate) fn poll_start(task: u64, precise: bool) {
    let now = if precise {
        clock::now_ns()
    } else {
        clock::coarse_ns()
    };
    CURRENT.with(|c| c.set(task));
    SLOT.with(|s| {
        // Only this thread writes its slot: a plain store, no locked instruction.
        s.seq
            .store(s.seq.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        s.since_ns.store(now, Ordering::Relaxed);
        // Release: a watchdog that sees the task id also sees its start time.
        s.task.store(task, Ordering::Release);
    });
}

/// Records that this thread finished polling `task`; returns the poll's start time and the
/// thread's timeline id, or `None` for the start when another poll overwrote the slot.
pub(crate) fn poll_end(task: u64) -> (Option<u64>, u64) {
    CURRENT.with(|c| c.set(0));
    SLOT.with(|s| {
        if s.task.load(Ordering::Relaxed) == task {
            s.task.store(0, Ordering::Release);
            (Some(s.since_ns.load(Ordering::Relaxed)), s.tid)
        } else {
            (None, s.tid)
        }
    })
}

/// The task this thread is polling, if any (0 = none).
pub(crate) fn current_task() -> u64 {
    CURRENT.with(Cell::get)
}

/// This thread's timeline id and name.
pub(crate) fn current_thread() -> (u64, String) {
    SLOT.with(|s| (s.tid, s.name.clone()))
}

/// Every thread that is polling a task right now.
pub(crate) fn busy() -> Vec<Busy> {
    let slots: Vec<Arc<ThreadSlot>> = lock(&SLOTS).iter().filter_map(Weak::upgrade).collect();
    slots
        .into_iter()
        .filter_map(|s| {
            let task = s.task.load(Ordering::Acquire);
            if task == 0 {
                return None;
            }
            let since_ns = s.since_ns.load(Ordering::Relaxed);
            let seq = s.seq.load(Ordering::Relaxed);
            // A poll that ended and began again between the loads would mix two polls: skip it,
            // the next watchdog tick sees a consistent one.
            if s.task.load(Ordering::Acquire) != task {
                return None;
            }
            Some(Busy {
                task,
                since_ns,
                seq,
                thread: s.name.clone(),
                slot: ThreadSlotRef(s),
            })
        })
        .collect()
}
