//! Which calls a worker has started: a small ring of words in memory shared by the pool and one
//! worker, the single source of truth for "did this call run?".
//!
//! Before the pool writes a call's frame it stores `id | SENT` in the call's ring word; before a
//! worker runs a call it swaps `SENT` for `STARTED` in one compare-and-swap. To take a call back
//! (its worker is stuck, died or talks nonsense) the pool swaps `SENT` for `REVOKED`: whichever
//! swap wins decides, so a call is either run by that worker or sent elsewhere, never both, and
//! the pool needs no answer from the worker (which may be stopped, dead or corrupt) to know.
//!
//! After a worker has written a call's reply it marks the word `REPLIED`: a reply the pool
//! has not parsed long after it was written means the reply stream lost its framing.
//!
//! Word 0 counts the call frames the worker has read, so the pool never reuses a ring word the
//! worker has yet to reach. A call's word is its position among the calls sent to this worker
//! (both sides count call frames), modulo the ring size.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

/// Ring words; more than any worker ever holds unread.
pub(crate) const RING: u64 = 1024;

const SENT: u64 = 1;
const STARTED: u64 = 2;
const REVOKED: u64 = 3;
/// The worker has written the call's whole reply to its pipe.
const REPLIED: u64 = 0;

/// What the worker found in a call's word.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The call is the worker's to run.
    Run,
    /// The pool took the call back: skip it without a reply.
    Skip,
    /// The word holds something else: the two sides disagree.
    Mismatch,
}

/// One worker's ring, mapped in this process.
pub(crate) struct Claims {
    words: *const AtomicU64,
    file: File,
}

// SAFETY: the mapping is shared memory accessed only through atomics, valid until drop.
unsafe impl Send for Claims {}
// SAFETY: as above.
unsafe impl Sync for Claims {}

const BYTES: usize = ((RING + 1) * 8) as usize;

impl Claims {
    /// A fresh, zeroed ring in an anonymous shared file, for a new worker.
    pub(crate) fn create() -> io::Result<Claims> {
        let file = crate::spawn::above_stdio(anonymous_file()?)?;
        file.set_len(BYTES as u64)?;
        Claims::map(file)
    }

    /// Maps the ring a pool handed to this worker.
    pub(crate) fn open(file: File) -> io::Result<Claims> {
        Claims::map(file)
    }

    #[cfg(unix)]
    fn map(file: File) -> io::Result<Claims> {
        use std::os::fd::AsRawFd;
        // SAFETY: mapping `BYTES` of a file of at least that size, shared, readable and
        // writable; the mapping is unmapped only in `drop`.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Claims {
            words: ptr.cast(),
            file,
        })
    }

    #[cfg(not(unix))]
    fn map(_file: File) -> io::Result<Claims> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "unix only"))
    }

    /// The file to hand to the worker.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    fn word(&self, i: u64) -> &AtomicU64 {
        debug_assert!(i <= RING);
        // SAFETY: `i` is at most RING, inside the mapping of RING + 1 words, which lives as long
        // as `self`; page alignment makes every word aligned.
        unsafe { &*self.words.add(i as usize) }
    }

    fn slot(&self, position: u64) -> &AtomicU64 {
        self.word(1 + position % RING)
    }

    /// Call frames the worker has read so far.
    pub(crate) fn consumed(&self) -> u64 {
        self.word(0).load(Ordering::SeqCst)
    }

    /// Whether a call may be sent at `position` without reusing a word the worker has not
    /// reached yet.
    pub(crate) fn has_room(&self, position: u64) -> bool {
        // A count above what was sent is nonsense from the worker; it fails on its own later.
        position.saturating_sub(self.consumed()) < RING
    }

    /// Marks call `id` at `position` as sent; before its frame is written.
    pub(crate) fn sent(&self, position: u64, id: u64) {
        self.slot(position).store(id << 2 | SENT, Ordering::SeqCst);
    }

    /// Takes call `id` back; `true` if the worker had not started it and now never will (also
    /// when it was taken back before: that is final).
    pub(crate) fn revoke(&self, position: u64, id: u64) -> bool {
        match self.slot(position).compare_exchange(
            id << 2 | SENT,
            id << 2 | REVOKED,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => true,
            Err(now) => now == id << 2 | REVOKED,
        }
    }

    /// Whether the worker has written the whole reply of call `id`.
    pub(crate) fn replied(&self, position: u64, id: u64) -> bool {
        self.slot(position).load(Ordering::SeqCst) == id << 2 | REPLIED
    }

    /// Worker side: the reply of call `id` is written.
    pub(crate) fn mark_replied(&self, position: u64, id: u64) {
        self.slot(position)
            .store(id << 2 | REPLIED, Ordering::SeqCst);
    }

    /// Worker side: claims call `id`, the `position`-th call frame read.
    pub(crate) fn claim(&self, position: u64, id: u64) -> Claim {
        let claimed = self.slot(position).compare_exchange(
            id << 2 | SENT,
            id << 2 | STARTED,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.word(0).store(position + 1, Ordering::SeqCst);
        match claimed {
            Ok(_) => Claim::Run,
            Err(now) if now == id << 2 | REVOKED => Claim::Skip,
            Err(_) => Claim::Mismatch,
        }
    }
}

impl Drop for Claims {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: unmapping the mapping made in `map`; no reference into it outlives `self`.
        unsafe {
            libc::munmap(self.words as *mut libc::c_void, BYTES);
        }
    }
}

/// A close-on-exec file with no name, for memory shared with one child.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn anonymous_file() -> io::Result<File> {
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create with a static, NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"taskweave-claims".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// A close-on-exec file with no name, for memory shared with one child.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn anonymous_file() -> io::Result<File> {
    // Rust opens files close-on-exec; the name is removed at once, so only the descriptor
    // keeps it alive.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "taskweave-claims-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}
