//! Cancelled tasks whose end a deadline waits for.
//!
//! Dropping the future that awaits a task cancels the task, but the task only stops at its next
//! poll, on whichever worker runs it. When a deadline ([`wait_for`](crate::wait_for),
//! [`timeout`](crate::timeout)) expires, it drops its inner future inside [`collect`]: every
//! task await dropped in there hands over an [`Ending`], a future that completes once the task
//! has finished (its destructors ran), and the deadline awaits those before it reports the
//! timeout, as asyncio's `wait_for` waits for the task it cancelled (bpo-32751).
//!
//! The hand-over is a thread-local slot, set only for the length of that drop, because drop is
//! synchronous and the awaits sit anywhere in the dropped future.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

thread_local! {
    static COLLECTOR: RefCell<Option<Vec<Ending>>> = const { RefCell::new(None) };
}

/// The end of one cancelled task.
pub(crate) struct Ending(Pin<Box<dyn Future<Output = ()> + Send>>);

impl Ending {
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

/// Runs `drop_work` and returns the endings of the tasks cancelled by it.
pub(crate) fn collect(drop_work: impl FnOnce()) -> Vec<Ending> {
    struct Restore(Option<Option<Vec<Ending>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(previous) = self.0.take() {
                COLLECTOR.with(|c| *c.borrow_mut() = previous);
            }
        }
    }
    let previous = COLLECTOR.with(|c| c.borrow_mut().replace(Vec::new()));
    let mut restore = Restore(Some(previous));
    drop_work();
    let previous = restore.0.take().unwrap_or_default();
    COLLECTOR
        .with(|c| std::mem::replace(&mut *c.borrow_mut(), previous))
        .unwrap_or_default()
}

/// `true` while a deadline collects endings on this thread.
pub(crate) fn collecting() -> bool {
    COLLECTOR.with(|c| c.try_borrow().is_ok_and(|c| c.is_some()))
}

/// Hands `endings` to the deadline collecting on this thread, if any.
pub(crate) fn hand_over(endings: impl IntoIterator<Item = Ending>) {
    COLLECTOR.with(|c| {
        if let Ok(mut slot) = c.try_borrow_mut()
            && let Some(collected) = slot.as_mut()
        {
            collected.extend(endings);
        }
    });
}

/// Hands over a future that completes when a cancelled task has finished.
pub(crate) fn hand_over_future(end: impl Future<Output = ()> + Send + 'static) {
    hand_over([Ending(Box::pin(end))]);
}

/// A latch opened by a waker: registered as a completion watcher on a promise, it lets the
/// deadline wait for the promise without knowing its type.
pub(crate) struct Latch {
    state: Mutex<(bool, Option<Waker>)>,
}

impl Latch {
    /// A closed latch, and the waker that opens it.
    pub(crate) fn new() -> (Arc<Latch>, Waker) {
        let latch = Arc::new(Latch {
            state: Mutex::new((false, None)),
        });
        let waker = Waker::from(latch.clone());
        (latch, waker)
    }

    /// The future that completes once the latch is open.
    pub(crate) fn opened(self: Arc<Latch>) -> impl Future<Output = ()> + Send + 'static {
        std::future::poll_fn(move |cx| {
            let mut state = match self.state.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if state.0 {
                Poll::Ready(())
            } else {
                state.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}

impl Wake for Latch {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waiter = {
            let mut state = match self.state.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            state.0 = true;
            state.1.take()
        };
        if let Some(w) = waiter {
            w.wake();
        }
    }
}
