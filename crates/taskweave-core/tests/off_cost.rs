//! With debug mode off, the instrumentation seam allocates nothing: creating and awaiting a task
//! allocates exactly what a raw `tokio::spawn` of the same future does. Its own test binary,
//! because it counts every allocation of the process with a global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; counting has no effect on
// the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: usize = 1000;

#[test]
fn a_task_allocates_what_a_tokio_task_allocates_when_debug_mode_is_off() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("the runtime starts");
    // The fewest allocations of a few rounds, so that one-off growth of the runtime's own
    // tables (which may land in any round) is not counted as a per-task cost.
    let counted = |spawn_await: &dyn Fn()| {
        (0..3)
            .map(|_| {
                let before = ALLOCATIONS.load(Ordering::Relaxed);
                for _ in 0..N {
                    spawn_await();
                }
                ALLOCATIONS.load(Ordering::Relaxed) - before
            })
            .min()
            .unwrap_or(0)
    };
    let tokio_tasks = counted(&|| {
        rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
    });
    let taskweave_tasks = counted(&|| {
        rt.block_on(async { taskweave_core::create_task(async {}).await.unwrap() });
    });
    assert!(!taskweave_core::instrument::current().is_active());
    assert!(
        tokio_tasks >= N,
        "tokio allocates its task cell: {tokio_tasks}"
    );
    assert_eq!(taskweave_tasks, tokio_tasks);
}
