//! One benchmark loop, run N times and nothing else, for counting instructions with callgrind:
//!
//! ```sh
//! cargo build --release -p taskweave-bench --example icount
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/icount ours_spawn_ct 10000
//! ```
//!
//! Run it at two sizes: (count at 2N - count at N) / N is the cost of one operation, with
//! start-up and shutdown cancelled out. Instruction counts do not depend on the machine's load,
//! so they prove a saving the noisy wall-clock ratios can only suggest.
//!
//! Loops: `ours_spawn_ct` / `tokio_spawn_ct` (create + await on a current-thread runtime),
//! `ours_spawn_mt` / `tokio_spawn_mt` (the same on 2 workers), `debug_spawn_ct` and
//! `debug_gather_ct` with `off` variants (debug mode on against off), `ours_to_thread` /
//! `tokio_spawn_blocking`, `ours_rayon` / `raw_rayon`, `main_spawn` (create + await in `run`'s
//! main future).

use std::sync::Arc;

use taskweave_core::instrument::{self, Observer};
use taskweave_core::{Runtime, create_task, gather};

fn runtime(current_thread: bool) -> Runtime {
    let builder = Runtime::builder().debug(false);
    let builder = if current_thread {
        builder.current_thread()
    } else {
        builder.worker_threads(2)
    };
    builder.build().expect("cannot build the runtime")
}

fn trivial() -> u64 {
    std::hint::black_box(1)
}

async fn ours_spawn(n: usize, observer: Option<Arc<dyn Observer>>) {
    create_task(async move {
        let _debug = observer.map(|o| instrument::attach(&tokio::runtime::Handle::current(), o));
        for _ in 0..n {
            create_task(async {}).await.expect("a trivial task failed");
        }
    })
    .await
    .expect("the measuring task failed");
}

async fn ours_gather(n: usize, observer: Option<Arc<dyn Observer>>) {
    create_task(async move {
        let _debug = observer.map(|o| instrument::attach(&tokio::runtime::Handle::current(), o));
        let tasks: Vec<_> = (0..n).map(|i| create_task(async move { i })).collect();
        let out = gather(tasks).await.expect("gather failed");
        assert_eq!(out.len(), n);
    })
    .await
    .expect("the measuring task failed");
}

async fn tokio_spawn(n: usize) {
    tokio::spawn(async move {
        for _ in 0..n {
            tokio::spawn(async {}).await.expect("a trivial task failed");
        }
    })
    .await
    .expect("the measuring task failed");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().expect("usage: icount CASE N");
    let n: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .expect("usage: icount CASE N");
    let debug = || taskweave_debug::Debug::new().build();
    match case.as_str() {
        "ours_spawn_ct" => runtime(true).run(ours_spawn(n, None)).unwrap(),
        "tokio_spawn_ct" => runtime(true).run(tokio_spawn(n)).unwrap(),
        "ours_spawn_mt" => runtime(false).run(ours_spawn(n, None)).unwrap(),
        "tokio_spawn_mt" => runtime(false).run(tokio_spawn(n)).unwrap(),
        "debug_spawn_ct" => runtime(true).run(ours_spawn(n, Some(debug()))).unwrap(),
        "debug_spawn_mt" => runtime(false).run(ours_spawn(n, Some(debug()))).unwrap(),
        "debug_gather_ct" => runtime(true).run(ours_gather(n, Some(debug()))).unwrap(),
        "off_gather_ct" => runtime(true).run(ours_gather(n, None)).unwrap(),
        "main_spawn" => runtime(false)
            .run(async move {
                for _ in 0..n {
                    create_task(async {}).await.expect("a trivial task failed");
                }
            })
            .unwrap(),
        "ours_to_thread" => runtime(false)
            .run(async move {
                create_task(async move {
                    for _ in 0..n {
                        taskweave_bridge::to_thread(trivial).await.unwrap();
                    }
                })
                .await
                .unwrap();
            })
            .unwrap(),
        "tokio_spawn_blocking" => runtime(false)
            .run(async move {
                create_task(async move {
                    for _ in 0..n {
                        tokio::task::spawn_blocking(trivial).await.unwrap();
                    }
                })
                .await
                .unwrap();
            })
            .unwrap(),
        "ours_rayon" => runtime(false)
            .run(async move {
                create_task(async move {
                    for _ in 0..n {
                        taskweave_bridge::spawn_rayon(trivial).await.unwrap();
                    }
                })
                .await
                .unwrap();
            })
            .unwrap(),
        "raw_rayon" => runtime(false)
            .run(async move {
                create_task(async move {
                    for _ in 0..n {
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        rayon::spawn(move || {
                            let _ = tx.send(trivial());
                        });
                        rx.await.unwrap();
                    }
                })
                .await
                .unwrap();
            })
            .unwrap(),
        other => panic!("unknown case {other}"),
    }
}

/// With `ICOUNT_LAYOUTS` set, prints the size and alignment of every over-aligned allocation
/// (tokio's task cells), to see which size class a task lands in.
struct Layouts;

// SAFETY: forwards to the system allocator; printing only reads the layout.
unsafe impl std::alloc::GlobalAlloc for Layouts {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.align() >= 64 && print_layouts() {
            eprintln!("alloc size {} align {}", layout.size(), layout.align());
        }
        // SAFETY: the caller's layout is passed on unchanged.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

/// Whether `ICOUNT_LAYOUTS` is set, looked up once (the lookup allocates, but not over-aligned,
/// so it does not come back here).
fn print_layouts() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static SET: AtomicU8 = AtomicU8::new(0);
    match SET.load(Ordering::Relaxed) {
        0 => {
            let set = std::env::var_os("ICOUNT_LAYOUTS").is_some();
            SET.store(if set { 2 } else { 1 }, Ordering::Relaxed);
            set
        }
        state => state == 2,
    }
}

#[global_allocator]
static LAYOUTS: Layouts = Layouts;
