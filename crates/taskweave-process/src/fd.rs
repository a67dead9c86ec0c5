//! Descriptors shared with a worker: close-on-exec pipes, and descriptors moved above the
//! standard three so the child's stdio set-up cannot clobber them.

use std::fs::File;
use std::io;

/// A pipe whose two ends are close-on-exec.
#[cfg(unix)]
pub(crate) fn pipe() -> io::Result<(File, File)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    // SAFETY: as above, and fcntl on the two descriptors pipe just returned. (Close-on-exec is
    // set right after; a spawn by another thread in between could inherit them, a leak of two
    // descriptors, not a memory-safety matter.)
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

#[cfg(not(unix))]
pub(crate) fn above_stdio(file: File) -> io::Result<File> {
    Ok(file)
}
