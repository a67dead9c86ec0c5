//! Ctrl-C for [`run`](crate::run): asyncio's rule that the first SIGINT cancels the main task and
//! a second one ends the program at once.
//!
//! # How it works (unix)
//!
//! While at least one `run` is active, SIGINT has a handler of taskweave's. The handler does only
//! what is async-signal-safe: it counts the signal and, for the first one, writes a byte into a
//! pipe; for the second it calls `_exit(130)`. A watcher thread (started by the first `run`, then
//! idle in `read`) turns the byte into a wake-up of every active run, which then drops its main
//! future. The pipe keeps everything that locks or allocates out of the handler, and the
//! watcher keeps it out of the runtime: a runtime whose threads are all stuck in clean-up code
//! still gets the second signal, because the handler itself ends the process.
//!
//! The handler is installed only when SIGINT has its default disposition, as asyncio does: an
//! inherited "ignore" (a program started with `nohup` or in the background) or a handler of the
//! program's own is left alone. The previous disposition comes back when the last run ends, so a
//! program that goes on after `run` gets the usual Ctrl-C again. The pipe and the watcher stay
//! for the life of the process: closing the pipe while a handler on another thread might still be
//! writing to it could hit a reused descriptor.
//!
//! Elsewhere than unix no handler is installed and [`OnInterrupt`] has no effect.

/// The exit status of a program ended by Ctrl-C: 128 + SIGINT, what shells report.
pub(crate) const EXIT_STATUS: i32 = 130;

/// What [`Runtime::run`](crate::Runtime::run) (and so [`run`](crate::run) and
/// `#[taskweave::main]`) does on Ctrl-C (SIGINT). Set with
/// [`Builder::on_interrupt`](crate::Builder::on_interrupt).
///
/// In every mode but [`Off`](OnInterrupt::Off), the first SIGINT cancels the main future: it is
/// dropped, so its destructors (clean-up guards, pools it owns, which then shut down and end
/// their workers) run, then the tasks still running are cancelled and the runtime shuts down, as
/// after a normal end. A second SIGINT, while that clean-up is still running, ends the process at
/// once with status 130.
///
/// # Differences from Python
///
/// asyncio raises `KeyboardInterrupt` out of `asyncio.run` after the clean-up, and an uncaught
/// one ends the interpreter by SIGINT. Rust has no exception that unwinds through `main`: a
/// returned error would end a `main() -> Result<..>` with status 1, and every caller between
/// `main` and `run` would have to pass it on. So the default, [`Exit`](OnInterrupt::Exit), ends
/// the process with status 130 right after the clean-up; [`ReturnError`](OnInterrupt::ReturnError)
/// is the `except KeyboardInterrupt:` form for programs that want to go on. The clean-up is
/// the main future's destructors, not code that can still `.await` (Rust futures have no
/// cancellation point to resume from).
///
/// # Examples
///
/// ```
/// use taskweave_core::{OnInterrupt, Runtime};
/// // A program that reads SIGINT itself (for example with `tokio::signal::ctrl_c`).
/// let rt = Runtime::builder().on_interrupt(OnInterrupt::Off).build().unwrap();
/// assert_eq!(rt.run(async { 7 }).unwrap(), 7);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnInterrupt {
    /// Cancel the main future, clean up, then end the process with status 130 (the default).
    #[default]
    Exit,
    /// Cancel the main future, clean up, then return [`Error::Interrupted`](crate::Error::Interrupted)
    /// from `run`.
    ReturnError,
    /// Install no handler: SIGINT keeps whatever disposition the program gave it. For programs
    /// that handle signals themselves (`tokio::signal::ctrl_c`, the `ctrlc` crate).
    Off,
}

pub(crate) use imp::Watch;

#[cfg(unix)]
mod imp {
    use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

    use tokio::sync::Notify;

    use super::{EXIT_STATUS, OnInterrupt};

    /// The pipe's write end, or -1 before the first run that watches.
    static WRITE_FD: AtomicI32 = AtomicI32::new(-1);
    /// SIGINTs seen since the handler was installed.
    static HITS: AtomicUsize = AtomicUsize::new(0);
    /// `true` while some run watches; the handler does nothing otherwise (it may still be called
    /// when another library installed its own handler on top and chains to ours).
    static ACTIVE: AtomicBool = AtomicBool::new(false);
    /// The process that installed the handler: a forked child (before it execs) is not it.
    static OWNER: AtomicI32 = AtomicI32::new(0);

    struct Shared {
        watching: usize,
        previous: Option<libc::sigaction>,
        runs: Vec<(u64, Arc<Flag>)>,
        next_id: u64,
    }

    static SHARED: Mutex<Shared> = Mutex::new(Shared {
        watching: 0,
        previous: None,
        runs: Vec::new(),
        next_id: 0,
    });

    fn shared() -> MutexGuard<'static, Shared> {
        SHARED.lock().unwrap_or_else(|p| p.into_inner())
    }

    struct Flag {
        hit: AtomicBool,
        notify: Notify,
    }

    /// One run's subscription to Ctrl-C; dropping it ends the subscription and, for the last
    /// run, restores the previous SIGINT disposition.
    pub(crate) struct Watch {
        id: Option<(u64, Arc<Flag>)>,
        /// `HITS` when this run began watching: a Ctrl-C from before is not this run's.
        hits_before: usize,
    }

    impl Watch {
        pub(crate) fn start(policy: OnInterrupt) -> Watch {
            let off = Watch {
                id: None,
                hits_before: 0,
            };
            if policy == OnInterrupt::Off {
                return off;
            }
            if let Err(e) = watcher() {
                warn_once(e);
                return off;
            }
            let mut sh = shared();
            if sh.watching == 0 {
                match install() {
                    Some(previous) => sh.previous = Some(previous),
                    // SIGINT is ignored or handled by the program: leave it alone.
                    None => return off,
                }
            }
            sh.watching += 1;
            let id = sh.next_id;
            sh.next_id += 1;
            let flag = Arc::new(Flag {
                hit: AtomicBool::new(false),
                notify: Notify::new(),
            });
            sh.runs.push((id, flag.clone()));
            Watch {
                id: Some((id, flag)),
                hits_before: HITS.load(Ordering::SeqCst),
            }
        }

        /// `true` once a SIGINT reached the process while this run watched. Set by the handler
        /// itself, so it is already true when the main future ends at the moment of the Ctrl-C,
        /// before the watcher's wake-up arrives (a main blocked inside its poll when the signal
        /// came, which then returns without awaiting again).
        pub(crate) fn received(&self) -> bool {
            self.id.is_some() && HITS.load(Ordering::SeqCst) > self.hits_before
        }

        /// Completes when this run got its Ctrl-C; never, when it does not watch.
        pub(crate) async fn interrupted(&self) {
            match &self.id {
                Some((_, flag)) => {
                    while !flag.hit.load(Ordering::Acquire) {
                        flag.notify.notified().await;
                    }
                }
                None => std::future::pending().await,
            }
        }
    }

    impl Drop for Watch {
        fn drop(&mut self) {
            let Some((id, _)) = self.id.take() else {
                return;
            };
            let mut sh = shared();
            sh.runs.retain(|(i, _)| *i != id);
            sh.watching -= 1;
            if sh.watching == 0 {
                ACTIVE.store(false, Ordering::SeqCst);
                if let Some(previous) = sh.previous.take() {
                    restore(&previous);
                }
            }
        }
    }

    /// Installs the handler when SIGINT has its default disposition; returns the disposition it
    /// replaced.
    fn install() -> Option<libc::sigaction> {
        // SAFETY: an all-zero `sigaction` is a valid value (SIG_DFL, no flags, empty mask).
        let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only queries; `current` is a valid out-pointer.
        if unsafe { libc::sigaction(libc::SIGINT, std::ptr::null(), &mut current) } != 0
            || current.sa_sigaction != libc::SIG_DFL
        {
            return None;
        }
        HITS.store(0, Ordering::SeqCst);
        // SAFETY: getpid has no preconditions.
        OWNER.store(unsafe { libc::getpid() }, Ordering::SeqCst);
        ACTIVE.store(true, Ordering::SeqCst);
        // SAFETY: as above, all-zero is valid; the fields are then set.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // Restarting interrupted system calls keeps blocking code elsewhere free of EINTR.
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: `action.sa_mask` is a valid signal set to initialise.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        let mut previous = current;
        // SAFETY: valid action and out-pointer; the handler only does async-signal-safe work.
        if unsafe { libc::sigaction(libc::SIGINT, &action, &mut previous) } != 0 {
            ACTIVE.store(false, Ordering::SeqCst);
            return None;
        }
        Some(previous)
    }

    /// Puts `previous` back, unless the program replaced taskweave's handler meanwhile.
    fn restore(previous: &libc::sigaction) {
        // SAFETY: all-zero is a valid `sigaction`.
        let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: query only, valid out-pointer.
        let ok = unsafe { libc::sigaction(libc::SIGINT, std::ptr::null(), &mut current) } == 0;
        let ours = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        if ok && current.sa_sigaction == ours {
            // SAFETY: `previous` is the action `sigaction` handed back at install.
            unsafe { libc::sigaction(libc::SIGINT, previous, std::ptr::null_mut()) };
        }
    }

    /// The SIGINT handler. Only async-signal-safe calls: atomics, `getpid`, `write`, `_exit`.
    extern "C" fn on_sigint(_: libc::c_int) {
        if !ACTIVE.load(Ordering::SeqCst) {
            return;
        }
        // SAFETY: getpid has no preconditions and is async-signal-safe.
        let me = unsafe { libc::getpid() };
        if me != OWNER.load(Ordering::SeqCst) || HITS.fetch_add(1, Ordering::SeqCst) > 0 {
            // The second Ctrl-C (or one reaching a forked child before it execs): end now.
            // SAFETY: _exit is async-signal-safe and does not return.
            unsafe { libc::_exit(EXIT_STATUS) }
        }
        let fd = WRITE_FD.load(Ordering::SeqCst);
        let saved = errno::get();
        let byte = 1u8;
        // SAFETY: `fd` is the non-blocking write end of a pipe that is never closed, and the
        // buffer is one valid byte.
        unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
        errno::set(saved);
    }

    /// Makes the pipe and starts the watcher thread, once per process.
    fn watcher() -> Result<(), &'static str> {
        static STARTED: OnceLock<Result<(), &'static str>> = OnceLock::new();
        *STARTED.get_or_init(|| {
            let mut fds = [0; 2];
            // SAFETY: `fds` has room for the two descriptors.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                return Err("cannot create the Ctrl-C pipe");
            }
            for fd in fds {
                // SAFETY: `fd` was just returned by pipe.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
            // The handler must never block on a full pipe.
            // SAFETY: as above.
            unsafe {
                let flags = libc::fcntl(fds[1], libc::F_GETFL);
                libc::fcntl(fds[1], libc::F_SETFL, flags | libc::O_NONBLOCK);
            }
            let read_fd = fds[0];
            let spawned = std::thread::Builder::new()
                .name("taskweave-ctrl-c".into())
                .spawn(move || watch_pipe(read_fd));
            if spawned.is_err() {
                return Err("cannot start the Ctrl-C watcher thread");
            }
            WRITE_FD.store(fds[1], Ordering::SeqCst);
            Ok(())
        })
    }

    fn watch_pipe(fd: libc::c_int) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: `fd` is the pipe's read end, owned by this thread for the process's life;
            // `buf` is valid for its length.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                return;
            }
            for (_, flag) in &shared().runs {
                flag.hit.store(true, Ordering::Release);
                flag.notify.notify_one();
            }
        }
    }

    fn warn_once(what: &str) {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| crate::runtime::warn(&format!("{what}; Ctrl-C is not handled")));
    }

    /// The handler must leave `errno` as it found it: the code it interrupted may be about to
    /// read it.
    mod errno {
        #[allow(unreachable_code)]
        fn location() -> Option<*mut libc::c_int> {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            // SAFETY: returns the calling thread's errno slot; no preconditions.
            return Some(unsafe { libc::__errno_location() });
            #[cfg(any(
                target_vendor = "apple",
                target_os = "freebsd",
                target_os = "dragonfly"
            ))]
            // SAFETY: returns the calling thread's errno slot; no preconditions.
            return Some(unsafe { libc::__error() });
            None
        }

        pub(super) fn get() -> libc::c_int {
            // SAFETY: the slot is valid for the calling thread.
            location().map_or(0, |p| unsafe { *p })
        }

        pub(super) fn set(value: libc::c_int) {
            if let Some(p) = location() {
                // SAFETY: the slot is valid for the calling thread.
                unsafe { *p = value }
            }
        }
    }
}

#[cfg(not(unix))]
mod imp {
    use super::OnInterrupt;

    /// Without unix signals there is nothing to watch.
    pub(crate) struct Watch;

    impl Watch {
        pub(crate) fn start(_: OnInterrupt) -> Watch {
            Watch
        }

        pub(crate) fn received(&self) -> bool {
            false
        }

        pub(crate) async fn interrupted(&self) {
            std::future::pending().await
        }
    }
}
