//! Which observer is in charge of the calling code: the table of runtimes with an attached
//! observer, the observer entered on this thread, and the one-time look at `TASKWEAVE_DEBUG`.
//!
//! One atomic word says whether any of it can matter, so that with debug mode off everywhere
//! [`current`] is a relaxed load and a compare.

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{Observer, ObserverRef};

/// Bit 0: the environment was looked at. Bit 1: it asks for debug mode. The rest counts the live
/// guards that put an observer in charge, in steps of [`GUARD`].
static STATE: AtomicUsize = AtomicUsize::new(0);
const ENV_CHECKED: usize = 1;
const ENV_DEBUG: usize = 2;
const GUARD: usize = 4;
/// No observer in charge anywhere, and the environment does not ask for one.
const IDLE: usize = ENV_CHECKED;

thread_local! {
    /// The observer in charge of the code running on this thread: the observed task being
    /// polled, or the one [`enter`]ed.
    static SCOPE: Cell<Option<Arc<dyn Observer>>> = const { Cell::new(None) };
}

struct Attached {
    runtime: tokio::runtime::Id,
    key: u64,
    /// `None`: the runtime was built with debug mode off, which `TASKWEAVE_DEBUG` must not undo.
    observer: Option<Arc<dyn Observer>>,
}

/// Runtimes with an observer attached; the newest attachment of a runtime is the one in charge.
/// Short (one entry per live runtime in debug mode), so a scan is cheaper than a map.
static TABLE: RwLock<Vec<Attached>> = RwLock::new(Vec::new());
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

fn read_table() -> RwLockReadGuard<'static, Vec<Attached>> {
    match TABLE.read() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn write_table() -> RwLockWriteGuard<'static, Vec<Attached>> {
    match TABLE.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

#[inline]
fn state() -> usize {
    let state = STATE.load(Ordering::Relaxed);
    if state & ENV_CHECKED != 0 {
        state
    } else {
        check_env()
    }
}

#[cold]
fn check_env() -> usize {
    let bits = ENV_CHECKED
        | if crate::debug_requested_by_env() {
            ENV_DEBUG
        } else {
            0
        };
    STATE.fetch_or(bits, Ordering::Relaxed) | bits
}

#[inline]
pub(super) fn anything_attached() -> bool {
    state() != IDLE
}

#[inline]
pub(super) fn current() -> ObserverRef {
    let state = STATE.load(Ordering::Relaxed);
    if state == IDLE {
        return ObserverRef(None);
    }
    current_slow(state)
}

#[inline(never)]
fn current_slow(state: usize) -> ObserverRef {
    let state = if state & ENV_CHECKED == 0 {
        check_env()
    } else {
        state
    };
    if state == IDLE {
        return ObserverRef(None);
    }
    if let Some(observer) = scoped() {
        return ObserverRef(Some(observer));
    }
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return ObserverRef(None);
    };
    let runtime = handle.id();
    if let Some(attached) = lookup(&read_table(), runtime) {
        return ObserverRef(attached);
    }
    if state & ENV_DEBUG != 0 {
        return attach_from_env(&handle);
    }
    ObserverRef(None)
}

/// `None` when nothing was attached to `runtime`; `Some(None)` when it was built with debug off.
fn lookup(table: &[Attached], runtime: tokio::runtime::Id) -> Option<Option<Arc<dyn Observer>>> {
    table
        .iter()
        .rev()
        .find(|a| a.runtime == runtime)
        .map(|a| a.observer.clone())
}

fn scoped() -> Option<Arc<dyn Observer>> {
    SCOPE
        .try_with(|s| {
            let observer = s.take();
            let copy = observer.clone();
            s.set(observer);
            copy
        })
        .ok()
        .flatten()
}

fn swap_scope(observer: Option<Arc<dyn Observer>>) -> Option<Arc<dyn Observer>> {
    SCOPE.try_with(|s| s.replace(observer)).ok().flatten()
}

/// `TASKWEAVE_DEBUG` asks for debug mode and nothing was attached to this runtime: attach a
/// fresh debug observer for the runtime's life. A task that never finishes marks that life: the
/// runtime drops it when it shuts down, which detaches the observer and tells it about the
/// shutdown.
#[cold]
fn attach_from_env(handle: &tokio::runtime::Handle) -> ObserverRef {
    let Some(factory) = crate::runtime::DEBUG_FACTORY.get() else {
        crate::runtime::warn_env_without_layer();
        // Asked once; spawning must not pay for the lookup again.
        STATE.fetch_and(!ENV_DEBUG, Ordering::Relaxed);
        return ObserverRef(None);
    };
    // Built outside the lock: making an observer may start threads and emit events.
    let observer = factory();
    let runtime = handle.id();
    let key = {
        let mut table = write_table();
        if let Some(attached) = lookup(&table, runtime) {
            // Another thread attached one first; that one is in charge.
            return ObserverRef(attached);
        }
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        table.push(Attached {
            runtime,
            key,
            observer: Some(observer.clone()),
        });
        STATE.fetch_add(GUARD, Ordering::Relaxed);
        key
    };
    let life = RuntimeLife {
        _guard: ObserverGuard { key, counted: true },
        observer: observer.clone(),
    };
    drop(handle.spawn(async move {
        let _life = life;
        std::future::pending::<()>().await;
    }));
    ObserverRef(Some(observer))
}

/// Held by the never-ending task of a runtime attached through `TASKWEAVE_DEBUG`.
struct RuntimeLife {
    _guard: ObserverGuard,
    observer: Arc<dyn Observer>,
}

impl Drop for RuntimeLife {
    fn drop(&mut self) {
        // The guard field drops after this, detaching the observer.
        self.observer.on_shutdown();
    }
}

/// Keeps an observer attached to a runtime ([`attach`]); dropping it detaches that observer
/// and brings back what was attached before, in whatever order guards are dropped.
#[derive(Debug)]
#[must_use = "the observer is detached when the guard is dropped"]
pub struct ObserverGuard {
    key: u64,
    counted: bool,
}

impl Drop for ObserverGuard {
    fn drop(&mut self) {
        write_table().retain(|a| a.key != self.key);
        if self.counted {
            STATE.fetch_sub(GUARD, Ordering::Relaxed);
        }
    }
}

fn push(runtime: tokio::runtime::Id, observer: Option<Arc<dyn Observer>>) -> ObserverGuard {
    let counted = observer.is_some();
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    write_table().push(Attached {
        runtime,
        key,
        observer,
    });
    if counted {
        STATE.fetch_add(GUARD, Ordering::Relaxed);
    }
    ObserverGuard { key, counted }
}

/// Attaches `observer` to the runtime of `handle` until the guard is dropped: every task spawned
/// on that runtime, and every promise created or work submitted from code running on it,
/// reports to `observer` (unless the code runs inside observed work, which reports to its own
/// observer). Attaching to a runtime that already has an observer replaces it while the guard
/// lives.
///
/// This is how an existing tokio application switches debug mode on
/// (`taskweave_debug::attach` builds the debug observer and calls this); `Runtime::run` does it
/// for its own runtime.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use taskweave_core::instrument::{self, Observer};
/// use taskweave_core::TaskInfo;
///
/// #[derive(Default)]
/// struct Count(AtomicUsize);
/// impl Observer for Count {
///     fn on_spawn(&self, _task: &TaskInfo) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let count = Arc::new(Count::default());
/// let guard = instrument::attach(rt.handle(), count.clone());
/// rt.block_on(async { taskweave_core::create_task(async {}).await.unwrap() });
/// drop(guard);
/// assert_eq!(count.0.load(Ordering::Relaxed), 1);
/// ```
pub fn attach(handle: &tokio::runtime::Handle, observer: Arc<dyn Observer>) -> ObserverGuard {
    push(handle.id(), Some(observer))
}

/// Puts `observer` in charge of the code that runs on this thread until the guard is dropped,
/// and of the tasks and work that code starts. Guards on one thread are dropped in the reverse
/// order of their creation (the guard is not `Send`); each brings back what was in charge
/// before it.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use taskweave_core::instrument::{self, Observer};
///
/// struct Quiet;
/// impl Observer for Quiet {}
///
/// let outer = instrument::enter(Arc::new(Quiet));
/// let inner = instrument::enter(Arc::new(Quiet));
/// drop(inner);
/// assert!(instrument::current().is_active()); // the outer observer is back
/// drop(outer);
/// assert!(!instrument::current().is_active());
/// ```
pub fn enter(observer: Arc<dyn Observer>) -> EnterGuard {
    STATE.fetch_add(GUARD, Ordering::Relaxed);
    EnterGuard {
        previous: swap_scope(Some(observer)),
        _not_send: PhantomData,
    }
}

/// Keeps an observer in charge of this thread's code ([`enter`]); dropping it brings back what
/// was in charge before.
#[must_use = "the observer stops being in charge when the guard is dropped"]
pub struct EnterGuard {
    previous: Option<Arc<dyn Observer>>,
    _not_send: PhantomData<*const ()>,
}

impl std::fmt::Debug for EnterGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnterGuard").finish_non_exhaustive()
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        drop(swap_scope(self.previous.take()));
        STATE.fetch_sub(GUARD, Ordering::Relaxed);
    }
}

/// Makes a task's observer the one in charge while the task is polled, so what it spawns or
/// submits reports there too. Unlike [`EnterGuard`] it does not count as a guard: a task's
/// observer is in charge of new work only while a guard of it lives.
pub(crate) struct PollScope {
    previous: Option<Arc<dyn Observer>>,
}

impl PollScope {
    pub(crate) fn enter(observer: &Arc<dyn Observer>) -> PollScope {
        PollScope {
            previous: swap_scope(Some(observer.clone())),
        }
    }
}

impl Drop for PollScope {
    fn drop(&mut self) {
        drop(swap_scope(self.previous.take()));
    }
}

/// What `Runtime::run` holds for the runtime's life: its observer attached to it and in charge
/// of the calling thread, or, when debug mode is off while `TASKWEAVE_DEBUG` asks for it, a note
/// that this runtime stays unobserved.
pub(crate) struct RunScope {
    observer: Option<Arc<dyn Observer>>,
    _entered: Option<EnterGuard>,
    _attached: Option<ObserverGuard>,
}

impl RunScope {
    pub(crate) fn new(
        handle: &tokio::runtime::Handle,
        observer: Option<Arc<dyn Observer>>,
    ) -> RunScope {
        let attached = match &observer {
            Some(obs) => Some(attach(handle, obs.clone())),
            None if state() & ENV_DEBUG != 0 => Some(push(handle.id(), None)),
            None => None,
        };
        RunScope {
            _entered: observer.clone().map(enter),
            observer,
            _attached: attached,
        }
    }

    /// The main future returned: tells the observer, which reports the tasks still pending.
    pub(crate) fn shutdown_started(&self) {
        if let Some(obs) = &self.observer {
            obs.on_shutdown();
        }
    }
}
