//! Starting a worker process: two close-on-exec pipes, the very executable image of this process
//! (`/proc/self/exe` on Linux, so a rebuilt file on disk does not matter), a death signal tied
//! to the supervising thread. The new process turns itself into a worker (`worker`).

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

#[cfg(unix)]
use crate::fd::{above_stdio, pipe};
use crate::worker::WORKER_ENV;

/// A started worker process and the parent's ends of its pipes.
pub(crate) struct Spawned {
    pub(crate) child: Child,
    pub(crate) to_worker: File,
    pub(crate) from_worker: File,
}

/// The arguments a worker starts with.
#[derive(Clone, Copy)]
pub(crate) enum WorkerArgs<'a> {
    /// The pool's own program: `argv[0]` as this process got it, then the given arguments or
    /// this process's own.
    Own(Option<&'a [std::ffi::OsString]>),
    /// Another program: the given arguments after its path.
    Other(&'a [std::ffi::OsString]),
}

/// The executable a worker runs: the image of this very process.
pub(crate) fn default_program() -> PathBuf {
    let proc_exe = PathBuf::from("/proc/self/exe");
    if cfg!(target_os = "linux") && proc_exe.exists() {
        proc_exe
    } else {
        std::env::current_exe().unwrap_or(proc_exe)
    }
}

/// Starts one worker running `program`.
///
/// Must be called on the thread that supervises the worker for its whole life: the death signal
/// fires when that thread ends.
#[cfg(unix)]
pub(crate) fn spawn_worker(
    program: &std::path::Path,
    args: WorkerArgs<'_>,
    max_frame: usize,
    claims: &File,
    regions: Option<(&File, &File)>,
) -> io::Result<Spawned> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;

    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    std::hint::black_box(&crate::worker::WORKER_CTOR);

    let (child_in, to_worker) = pipe()?;
    let (from_worker, child_out) = pipe()?;
    let (child_in, child_out) = (above_stdio(child_in)?, above_stdio(child_out)?);
    let (in_fd, out_fd) = (child_in.as_raw_fd(), child_out.as_raw_fd());
    let claims_fd = claims.as_raw_fd();
    // The shared regions for large calls and results, where there are any.
    let regions = regions.map(|(calls, results)| (calls.as_raw_fd(), results.as_raw_fd()));
    let region_fds = regions.map_or([-1, -1], |(c, r)| [c, r]);
    let regions_marker = regions.map_or_else(String::new, |(c, r)| format!(":{c}:{r}"));

    let mut cmd = Command::new(program);
    match args {
        WorkerArgs::Own(given) => {
            // The very image of this program: it sees the name it was started under.
            let mut own = std::env::args_os();
            if let Some(arg0) = own.next() {
                cmd.arg0(arg0);
            }
            match given {
                Some(given) => cmd.args(given),
                None => cmd.args(own),
            };
        }
        WorkerArgs::Other(given) => {
            cmd.args(given);
        }
    }
    cmd.env(
        WORKER_ENV,
        format!(
            "1:{in_fd}:{out_fd}:{}:{max_frame}:{claims_fd}{regions_marker}",
            std::process::id()
        ),
    )
    .stdin(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // system calls (fcntl, prctl) on its own descriptors and process.
    unsafe {
        cmd.pre_exec(move || {
            for fd in [in_fd, out_fd, claims_fd].into_iter().chain(region_fds) {
                if fd >= 0 && libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            #[cfg(any(target_os = "linux", target_os = "android"))]
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop((child_in, child_out));
    Ok(Spawned {
        child,
        to_worker,
        from_worker,
    })
}

#[cfg(not(unix))]
pub(crate) fn spawn_worker(
    _program: &std::path::Path,
    _args: WorkerArgs<'_>,
    _max_frame: usize,
    _claims: &File,
    _regions: Option<(&File, &File)>,
) -> io::Result<Spawned> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "taskweave-process starts workers on unix only",
    ))
}
