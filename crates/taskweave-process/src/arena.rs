//! Shared memory for large frame bodies: one region per direction between a pool and one of
//! its workers, so a big argument or result crosses with plain memory copies instead of going
//! through a pipe a megabyte at a time.
//!
//! A region is a `memfd` the pool creates before it starts the worker, which inherits it like
//! the claims ring; nothing is passed at run time. Passing a fresh descriptor per transfer (over
//! a unix socket, or by the receiver opening `/proc/<pid>/fd/N`) would need a socket the pool
//! does not have, or ptrace-level access to the sender (refused for non-dumpable processes and
//! racy against the sender closing the descriptor), and every transfer would touch fresh
//! shared pages, which cost a page fault each: a region that lives as long as its worker keeps
//! its pages, so the second transfer of a size costs only the copies.
//!
//! Layout: a header page with two words, `POSTED` (written by the sender) and `RELEASED`
//! (written by the receiver), then the data. To send a frame body the sender checks that the
//! receiver has released the previous one, copies the body to the data area, bumps `POSTED`
//! (release ordering) and writes a small envelope frame (`wire::encode_shared`: the post's
//! number and the body's length) to the pipe. The receiver checks the envelope against the
//! limit and the region (the post's number must be the one in `POSTED`, the body must lie
//! inside the file), decodes the body in place and stores the post's number in `RELEASED` once
//! it is done with it. While a body is not released the sender uses the pipe, so nothing ever
//! waits on the other side.
//!
//! Soundness: the file is sealed against shrinking before the worker exists, so a mapped range
//! that lay inside the file when it was checked stays backed (no `SIGBUS`); the sender
//! allocates new pages with `fallocate` before it writes them, so running out of memory is an
//! error, never a fault; every length and number in an envelope is checked before it is used.
//! A region belongs to one worker and is dropped (unmapped, closed) with it, so a worker that
//! dies mid-transfer leaves nothing behind: its call fails, the region goes with the slot.

use std::fs::File;
use std::io;

use taskweave_core::Error;

/// Frame bodies from this size on go through the region (where there is one); smaller ones
/// through the pipe, where a write costs less than the copy and the wake-up it saves.
pub(crate) const SHARED_MIN: usize = 256 * 1024;

/// The header: a page, so the data is page-aligned.
const HEADER: usize = 4096;

/// The file grows in steps of this much (sparse until written).
const GROW: usize = 1 << 20;

/// A region whose data is this large and four times larger than the body it carries now gives
/// the rest of its pages back (as `wire::trim` does for buffers).
const TRIM: usize = 16 << 20;

const POSTED: usize = 0;
const RELEASED: usize = 1;

/// One direction's shared region, mapped in this process.
pub(crate) struct Arena {
    file: File,
    ptr: *mut u8,
    mapped: usize,
    /// Sender side: data bytes allocated with `fallocate` and not punched out since.
    allocated: usize,
}

// SAFETY: the mapping is owned by the `Arena` and unmapped only in `drop`; the header is read
// and written only through atomics, and the data only by the one thread that owns the `Arena`
// (`&mut self`) while the protocol gives that side the data.
unsafe impl Send for Arena {}

fn wire_err(detail: impl Into<String>) -> Error {
    Error::wire("frame in shared memory", detail)
}

impl Arena {
    /// A new, empty region, sealed against shrinking, for a worker about to be started.
    ///
    /// # Errors
    ///
    /// The system's error if the file cannot be created, sized, sealed or mapped; always on
    /// platforms without `memfd` (which keep the pipe for every frame).
    pub(crate) fn create() -> io::Result<Arena> {
        let file = crate::fd::above_stdio(sealable_file()?)?;
        file.set_len(HEADER as u64)?;
        seal(&file)?;
        Arena::map(file)
    }

    /// Maps a region a pool handed to this worker.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the file is not sealed against shrinking (a mapping of it could fault)
    /// or smaller than a header; the system's error if it cannot be mapped.
    pub(crate) fn open(file: File) -> io::Result<Arena> {
        if !sealed(&file)? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the shared region is not sealed against shrinking",
            ));
        }
        if file.metadata()?.len() < HEADER as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the shared region is smaller than its header",
            ));
        }
        Arena::map(file)
    }

    /// The file, to hand to the worker.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn map(file: File) -> io::Result<Arena> {
        use std::os::fd::AsRawFd;
        // SAFETY: mapping the header page of a file of at least that size (checked or just
        // set, and sealed against shrinking), shared; unmapped only in `drop`.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                HEADER,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Arena {
            file,
            ptr: ptr.cast(),
            mapped: HEADER,
            allocated: 0,
        })
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn map(_file: File) -> io::Result<Arena> {
        Err(unsupported())
    }

    fn word(&self, i: usize) -> &std::sync::atomic::AtomicU64 {
        debug_assert!(i < 2);
        // SAFETY: the header page is always mapped (`mapped >= HEADER`), page-aligned, and its
        // first words are only ever accessed as atomics, by both processes.
        unsafe { &*self.ptr.cast::<std::sync::atomic::AtomicU64>().add(i) }
    }

    /// Whether the receiver is done with the last body posted.
    pub(crate) fn is_free(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.word(RELEASED).load(Ordering::Acquire) == self.word(POSTED).load(Ordering::Relaxed)
    }

    /// Maps at least `len` bytes of the file (which must be at least that long).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn ensure_mapped(&mut self, len: usize) -> io::Result<()> {
        if len <= self.mapped {
            return Ok(());
        }
        let len = len.next_multiple_of(HEADER);
        // SAFETY: resizing our own mapping; it may move, and no reference into it is alive
        // (every slice handed out borrows `self`, which is borrowed mutably here).
        let ptr = unsafe { libc::mremap(self.ptr.cast(), self.mapped, len, libc::MREMAP_MAYMOVE) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        self.ptr = ptr.cast();
        self.mapped = len;
        Ok(())
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn ensure_mapped(&mut self, _len: usize) -> io::Result<()> {
        Err(unsupported())
    }

    /// Sender side: copies `body` into the region and returns the post's number for the
    /// envelope; `None` while the receiver still uses the previous body (send it by pipe).
    ///
    /// # Errors
    ///
    /// The system's error if the region cannot grow (out of memory, a file another process
    /// grew past what can be mapped); the caller sends the body by pipe instead.
    pub(crate) fn post(&mut self, body: &[u8]) -> io::Result<Option<u64>> {
        use std::sync::atomic::Ordering;
        if !self.is_free() {
            return Ok(None);
        }
        let need = HEADER + body.len();
        let size = self.file.metadata()?.len() as usize;
        if need > size {
            self.file.set_len(need.next_multiple_of(GROW) as u64)?;
        }
        if body.len() > self.allocated {
            // Allocating first turns a lack of memory into an error here rather than a fault
            // in the copy below.
            allocate(
                &self.file,
                HEADER + self.allocated,
                body.len() - self.allocated,
            )?;
            self.allocated = body.len();
        }
        self.ensure_mapped(need)?;
        // SAFETY: the data area [HEADER, HEADER + len) lies inside the mapping (just ensured)
        // and inside the file (grown above, and sealed against shrinking), and its pages are
        // allocated; the receiver released the previous body, so it reads none of it until the
        // post below.
        unsafe {
            std::ptr::copy_nonoverlapping(body.as_ptr(), self.ptr.add(HEADER), body.len());
        }
        if self.allocated > TRIM && self.allocated > 4 * body.len() {
            let from = body.len().next_multiple_of(HEADER);
            if punch(
                &self.file,
                HEADER + from,
                self.allocated - from.min(self.allocated),
            )
            .is_ok()
            {
                self.allocated = from;
            }
        }
        let number = self.word(POSTED).load(Ordering::Relaxed).wrapping_add(1);
        self.word(POSTED).store(number, Ordering::Release);
        Ok(Some(number))
    }

    /// Receiver side: the body of post `number`, `len` bytes, checked against the frame limit
    /// `max` and the region before anything is mapped.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Wire`](taskweave_core::ErrorKind::Wire) for a length above `max`, a post
    /// that is not the region's latest, or a body that does not lie inside the region.
    pub(crate) fn take(&mut self, number: u64, len: u64, max: usize) -> Result<&[u8], Error> {
        use std::sync::atomic::Ordering;
        if len > max as u64 {
            return Err(wire_err(format!(
                "frame of {len} bytes exceeds the limit of {max} bytes"
            )));
        }
        let len = len as usize;
        let posted = self.word(POSTED).load(Ordering::Acquire);
        if posted != number {
            return Err(wire_err(format!(
                "the envelope names post {number}, the shared region holds post {posted}"
            )));
        }
        let need = HEADER + len;
        if need > self.mapped {
            let size = self
                .file
                .metadata()
                .map_err(|e| wire_err(format!("cannot inspect the shared region: {e}")))?
                .len();
            if need as u64 > size {
                return Err(wire_err(format!(
                    "the envelope claims {len} bytes, the shared region holds {}",
                    size.saturating_sub(HEADER as u64)
                )));
            }
            self.ensure_mapped(need)
                .map_err(|e| wire_err(format!("cannot map the shared region: {e}")))?;
        }
        // SAFETY: [HEADER, HEADER + len) lies inside the mapping and inside the file, which
        // cannot shrink (sealed), so every page is backed; the sender wrote it before its
        // release-store of `POSTED`, which the acquire-load above read, and writes it again only
        // after `release`, which needs `&self` after this borrow ends.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr.add(HEADER), len) })
    }

    /// Receiver side: done with post `number`; the sender may reuse the region.
    pub(crate) fn release(&self, number: u64) {
        self.word(RELEASED)
            .store(number, std::sync::atomic::Ordering::Release);
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: unmapping the mapping this `Arena` owns; no slice into it outlives `self`.
        unsafe {
            libc::munmap(self.ptr.cast(), self.mapped);
        }
    }
}

/// The body a received frame stands for: the frame itself, or for an envelope the body in the
/// region, with the post to [`Arena::release`] once the body has been used.
///
/// # Errors
///
/// [`ErrorKind::Wire`](taskweave_core::ErrorKind::Wire) for a malformed envelope, an envelope
/// where there is no region, one that [`Arena::take`] refuses, or a body in the region that is
/// itself an envelope.
pub(crate) fn resolve<'a>(
    body: &'a [u8],
    arena: Option<&'a mut Arena>,
    max: usize,
) -> Result<(&'a [u8], Option<u64>), Error> {
    let Some(envelope) = crate::wire::shared_envelope(body) else {
        return Ok((body, None));
    };
    let (number, len) = envelope?;
    let Some(arena) = arena else {
        return Err(wire_err("a frame in shared memory, but no shared region"));
    };
    let inner = arena.take(number, len, max)?;
    if crate::wire::shared_envelope(inner).is_some() {
        return Err(wire_err("a frame in shared memory holds another envelope"));
    }
    Ok((inner, Some(number)))
}

/// A worker's input: its pipe and the region for large calls, behind one lock, so that calls
/// reach the worker in the order they were taken whichever path they take.
pub(crate) struct Pipe {
    pub(crate) file: File,
    pub(crate) calls: Option<Arena>,
}

impl Pipe {
    /// Writes one complete frame, its body through the calls region when it is large and the
    /// worker is done with the previous one there. `guarded`: the writing thread's `SIGPIPE`
    /// disposition is the program's (a submitting thread), so the write keeps the signal away.
    ///
    /// # Errors
    ///
    /// The pipe's write error (the worker closed its input or is dying).
    pub(crate) fn write_frame(&mut self, frame: &[u8], guarded: bool) -> io::Result<()> {
        let envelope = envelope_for(frame, self.calls.as_mut());
        let bytes: &[u8] = match &envelope {
            Some(e) => e,
            None => frame,
        };
        if guarded {
            crate::sigpipe::write_all(&mut self.file, bytes)
        } else {
            io::Write::write_all(&mut self.file, bytes)
        }
    }

    /// Whether a frame of `len` bytes would go through the calls region now.
    pub(crate) fn takes_shared(&self, len: usize) -> bool {
        len >= 4 + SHARED_MIN && self.calls.as_ref().is_some_and(Arena::is_free)
    }
}

/// Posts `frame`'s body (after its length prefix) to `arena` when it is large enough and the
/// region is free, and returns the envelope to write instead; `None`: write `frame` itself.
pub(crate) fn envelope_for(
    frame: &[u8],
    arena: Option<&mut Arena>,
) -> Option<[u8; crate::wire::SHARED_FRAME]> {
    let body = frame.get(4..)?;
    if body.len() < SHARED_MIN {
        return None;
    }
    let number = arena?.post(body).ok()??;
    Some(crate::wire::encode_shared(number, body.len() as u64))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn unsupported() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "no memfd on this platform")
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn sealable_file() -> io::Result<File> {
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create with a static, NUL-terminated name.
    let fd = unsafe {
        libc::memfd_create(
            c"taskweave-payload".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn sealable_file() -> io::Result<File> {
    Err(unsupported())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn seal(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a descriptor we own; sealing only restricts later size changes.
    let rc = unsafe {
        libc::fcntl(
            file.as_raw_fd(),
            libc::F_ADD_SEALS,
            libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn seal(_file: &File) -> io::Result<()> {
    Err(unsupported())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn sealed(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl reading the seals of a descriptor we own.
    let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
    if seals < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(seals & libc::F_SEAL_SHRINK != 0)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn sealed(_file: &File) -> io::Result<bool> {
    Err(unsupported())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn allocate(file: &File, offset: usize, len: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: fallocate on a descriptor we own; mode 0 allocates pages inside the file's size.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset as i64, len as i64) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn allocate(_file: &File, _offset: usize, _len: usize) -> io::Result<()> {
    Err(unsupported())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn punch(file: &File, offset: usize, len: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    if len == 0 {
        return Ok(());
    }
    // SAFETY: fallocate on a descriptor we own; punching a hole frees pages without changing
    // the size, so mappings stay backed (holes read as zeros).
    let rc = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset as i64,
            len as i64,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn punch(_file: &File, _offset: usize, _len: usize) -> io::Result<()> {
    Err(unsupported())
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

    /// A sender and a receiver of one region, as pool and worker hold them.
    fn pair() -> (Arena, Arena) {
        let sender = Arena::create().unwrap();
        let receiver = Arena::open(sender.file().try_clone().unwrap()).unwrap();
        (sender, receiver)
    }

    #[test]
    fn a_posted_body_arrives_and_the_region_is_reused_after_release() {
        let (mut tx, mut rx) = pair();
        let body: Vec<u8> = (0..SHARED_MIN + 17).map(|i| i as u8).collect();
        let n = tx.post(&body).unwrap().unwrap();
        assert_eq!(tx.post(&body).unwrap(), None, "busy until released");
        assert_eq!(rx.take(n, body.len() as u64, 1 << 30).unwrap(), &body[..]);
        rx.release(n);
        let bigger = vec![7u8; 3 << 20];
        let m = tx.post(&bigger).unwrap().unwrap();
        assert_eq!(m, n + 1);
        assert_eq!(
            rx.take(m, bigger.len() as u64, 1 << 30).unwrap(),
            &bigger[..]
        );
    }

    #[test]
    fn lying_envelopes_are_refused() {
        let (mut tx, mut rx) = pair();
        let n = tx.post(&[1, 2, 3]).unwrap().unwrap();
        let e = rx.take(n, 1 << 31, 1 << 30).unwrap_err();
        assert!(e.to_string().contains("exceeds the limit"), "{e}");
        let e = rx.take(n + 1, 3, 1 << 30).unwrap_err();
        assert!(e.to_string().contains("holds post"), "{e}");
        let e = rx.take(n, 1 << 29, 1 << 30).unwrap_err();
        assert!(e.to_string().contains("claims"), "{e}");
        assert_eq!(rx.take(n, 3, 1 << 30).unwrap(), [1, 2, 3]);
    }

    #[test]
    fn the_region_cannot_shrink_under_a_mapping() {
        let (mut tx, rx) = pair();
        tx.post(&vec![0u8; 2 << 20]).unwrap().unwrap();
        assert!(rx.file().set_len(0).is_err());
        let plain = tempfile_like();
        assert!(Arena::open(plain).is_err(), "an unsealed file is refused");
    }

    fn tempfile_like() -> File {
        use std::os::fd::FromRawFd;
        // SAFETY: memfd_create with a static name; the fresh descriptor is owned here.
        unsafe {
            let fd = libc::memfd_create(c"plain".as_ptr(), libc::MFD_CLOEXEC);
            assert!(fd >= 0);
            let f = File::from_raw_fd(fd);
            f.set_len(1 << 16).unwrap();
            f
        }
    }

    #[test]
    fn envelopes_resolve_and_nested_ones_are_refused() {
        let (mut tx, mut rx) = pair();
        let mut frame = vec![0u8; 4];
        frame.extend(std::iter::repeat_n(9u8, SHARED_MIN));
        let env = envelope_for(&frame, Some(&mut tx)).unwrap();
        let (body, n) = resolve(&env[4..], Some(&mut rx), 1 << 30).unwrap();
        assert_eq!((body.len(), n), (SHARED_MIN, Some(1)));
        rx.release(1);
        let e = resolve(&env[4..], None, 1 << 30).unwrap_err();
        assert!(e.to_string().contains("no shared region"), "{e}");
        // A region whose body is itself an envelope.
        let inner = crate::wire::encode_shared(2, 5);
        let n = tx.post(&inner[4..]).unwrap().unwrap();
        let outer = crate::wire::encode_shared(n, (inner.len() - 4) as u64);
        let e = resolve(&outer[4..], Some(&mut rx), 1 << 30).unwrap_err();
        assert!(e.to_string().contains("another envelope"), "{e}");
        // Small frames stay in the pipe.
        assert!(envelope_for(&[0, 0, 0, 0, 1], Some(&mut tx)).is_none());
    }

    proptest::proptest! {
        #[test]
        fn any_envelope_resolves_or_is_a_wire_error(
            number in proptest::prop_oneof![0u64..4, proptest::num::u64::ANY],
            len in proptest::prop_oneof![0u64..70_000, proptest::num::u64::ANY],
            posted in proptest::option::of(0usize..70_000),
            max in proptest::prop_oneof![proptest::strategy::Just(4096usize), proptest::strategy::Just(1usize << 30)],
        ) {
            let (mut tx, mut rx) = pair();
            if let Some(n) = posted {
                tx.post(&vec![3u8; n]).unwrap();
            }
            let env = crate::wire::encode_shared(number, len);
            match resolve(&env[4..], Some(&mut rx), max) {
                Ok((body, Some(n))) => {
                    proptest::prop_assert_eq!(body.len() as u64, len);
                    proptest::prop_assert_eq!(n, number);
                    proptest::prop_assert!(body.len() <= max);
                }
                Ok((_, None)) => proptest::prop_assert!(false, "an envelope resolved to itself"),
                Err(e) => proptest::prop_assert!(e.is_wire()),
            }
        }
    }
}
