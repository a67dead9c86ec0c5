//! Starting a worker process: two close-on-exec pipes, the very executable image of this process
//! (`/proc/self/exe` on Linux, so a rebuilt file on disk does not matter), a death signal tied
//! to the supervising thread, and the constructor that turns the new process into a worker
//! before `main`.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::worker::WORKER_ENV;

/// A started worker process and the parent's ends of its pipes.
pub(crate) struct Spawned {
    pub(crate) child: Child,
    pub(crate) to_worker: File,
    pub(crate) from_worker: File,
}

/// Registers worker start-up with the loader, so a worker is recognised before `main`, under
/// `cargo test` (whose `main` is generated) as in any other program. Every ELF loader runs the
/// functions of `.init_array` before `main`.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
#[used]
#[unsafe(link_section = ".init_array")]
pub(crate) static WORKER_CTOR: extern "C" fn() = worker_ctor;

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
extern "C" fn worker_ctor() {
    crate::worker::run_if_worker();
}

/// `true` where [`WORKER_CTOR`] exists and [`init`](crate::init) is optional.
pub(crate) const HAS_CTOR: bool = cfg!(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd"
));

#[cfg(unix)]
fn pipe() -> io::Result<(File, File)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    // SAFETY: as above; close-on-exec is set right after, before any spawn by this thread.
    let rc = unsafe {
        let rc = libc::pipe(fds.as_mut_ptr());
        if rc == 0 {
            libc::fcntl(fds[0], libc::F_SETFD, libc::FD_CLOEXEC);
            libc::fcntl(fds[1], libc::F_SETFD, libc::FD_CLOEXEC);
        }
        rc
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    let pair = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // A larger pipe moves big payloads in fewer, larger copies; failing (limits) is harmless.
        // SAFETY: fcntl on a descriptor this function owns.
        unsafe { libc::fcntl(pair.1.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    }
    Ok(pair)
}

/// Moves a descriptor above the standard three, so the child's stdio set-up cannot clobber it.
#[cfg(unix)]
pub(crate) fn above_stdio(file: File) -> io::Result<File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    if file.as_raw_fd() > 2 {
        return Ok(file);
    }
    // SAFETY: duplicating a descriptor we own into a fresh one we then own.
    let fd = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is the fresh duplicate.
    Ok(unsafe { File::from_raw_fd(fd) })
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
    max_frame: usize,
    claims: &File,
) -> io::Result<Spawned> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;

    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    std::hint::black_box(&WORKER_CTOR);

    let (child_in, to_worker) = pipe()?;
    let (from_worker, child_out) = pipe()?;
    let (child_in, child_out) = (above_stdio(child_in)?, above_stdio(child_out)?);
    let (in_fd, out_fd) = (child_in.as_raw_fd(), child_out.as_raw_fd());
    let claims_fd = claims.as_raw_fd();

    let mut args = std::env::args_os();
    let mut cmd = Command::new(program);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    cmd.args(args)
        .env(
            WORKER_ENV,
            format!(
                "1:{in_fd}:{out_fd}:{}:{max_frame}:{claims_fd}",
                std::process::id()
            ),
        )
        .stdin(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // system calls (fcntl, prctl) on its own descriptors and process.
    unsafe {
        cmd.pre_exec(move || {
            for fd in [in_fd, out_fd, claims_fd] {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
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
pub(crate) fn above_stdio(file: File) -> io::Result<File> {
    Ok(file)
}

#[cfg(not(unix))]
pub(crate) fn spawn_worker(
    _program: &std::path::Path,
    _max_frame: usize,
    _claims: &File,
) -> io::Result<Spawned> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "taskweave-process starts workers on unix only",
    ))
}
