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
        if !self.is_free() {
            return Ok(None);
        }
        self.reserve(body.len())?;
        self.write_at(0, body);
        Ok(Some(self.publish(body.len())))
    }

    /// Sender side, while the region is free: makes the first `len` data bytes writable (the
    /// file grown, its pages allocated, mapped). What was written before stays.
    ///
    /// # Errors
    ///
    /// The system's error if the region cannot grow; what was written stays, and the region
    /// is as large as it was.
    fn reserve(&mut self, len: usize) -> io::Result<()> {
        let need = HEADER
            .checked_add(len)
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let size = self.file.metadata()?.len() as usize;
        if need > size {
            self.file.set_len(need.next_multiple_of(GROW) as u64)?;
        }
        if len > self.allocated {
            // Allocating first turns a lack of memory into an error here rather than a fault
            // in a copy into the region.
            allocate(&self.file, HEADER + self.allocated, len - self.allocated)?;
            self.allocated = len;
        }
        self.ensure_mapped(need)
    }

    /// Sender side: copies `bytes` to data offset `at`, inside what [`reserve`](Self::reserve)
    /// made writable.
    fn write_at(&mut self, at: usize, bytes: &[u8]) {
        assert!(
            at.checked_add(bytes.len())
                .is_some_and(|end| end <= self.allocated && HEADER + end <= self.mapped),
            "a write past the reserved part of a shared region"
        );
        // SAFETY: [HEADER + at, HEADER + at + len) lies inside the mapping and inside the file
        // (checked above against what `reserve` grew, mapped and allocated; the file is sealed
        // against shrinking), and the sender writes only while the receiver has released the
        // previous body, so nobody reads it until the next post.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(HEADER + at), bytes.len());
        }
    }

    /// Sender side: the first `len` data bytes, as written so far.
    fn written(&self, len: usize) -> &[u8] {
        assert!(len <= self.allocated && HEADER + len <= self.mapped);
        // SAFETY: inside the mapping and the file, as in `write_at`; only this side writes it.
        unsafe { std::slice::from_raw_parts(self.ptr.add(HEADER), len) }
    }

    /// Sender side: posts the `len` data bytes written, and returns the post's number for the
    /// envelope.
    fn publish(&mut self, len: usize) -> u64 {
        use std::sync::atomic::Ordering;
        if self.allocated > TRIM && self.allocated > 4 * len {
            let from = len.next_multiple_of(HEADER);
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
        number
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

/// A worker's result frame as it is built: in a `Vec` while it is small, and from the moment
/// its body would go through the results region, in the region itself, so a large result is
/// serialised where the pool reads it instead of being copied there afterwards.
///
/// The frame moves into the region only while the region is free (the pool released the
/// previous result) and can grow; if it cannot grow further mid-way, the frame moves back into
/// the `Vec`, which then goes by pipe (or is copied into the region later, as any frame).
/// Nothing is posted before [`send`](Self::send), so a worker that dies while it writes leaves
/// the pool nothing to read.
pub(crate) struct ResultBuf<'r> {
    /// The frame; once it is in the region, only its length prefix.
    vec: Vec<u8>,
    region: Option<&'r mut Arena>,
    /// The body bytes in the region (after the length prefix), once it is there.
    in_region: Option<usize>,
}

impl<'r> ResultBuf<'r> {
    /// A frame built in `vec` (cleared), which may move into `region`.
    pub(crate) fn new(mut vec: Vec<u8>, region: Option<&'r mut Arena>) -> ResultBuf<'r> {
        vec.clear();
        ResultBuf {
            vec,
            region,
            in_region: None,
        }
    }

    /// The frame as a `Vec`, for writers that need one (named calls, failure frames); a frame
    /// in the region is moved back first.
    pub(crate) fn vec_mut(&mut self) -> &mut Vec<u8> {
        self.back_to_vec();
        &mut self.vec
    }

    fn back_to_vec(&mut self) {
        if let (Some(n), Some(region)) = (self.in_region.take(), self.region.as_deref()) {
            self.vec.extend_from_slice(region.written(n));
        }
    }

    /// Starts over, empty, in the `Vec`.
    pub(crate) fn clear(&mut self) {
        self.in_region = None;
        self.vec.clear();
    }

    /// Overwrites the bytes at frame offset `at` (the length prefix, the run time).
    pub(crate) fn patch(&mut self, at: usize, bytes: &[u8]) {
        let end = at + bytes.len();
        match (self.in_region, self.region.as_deref_mut()) {
            (Some(_), Some(region)) if at >= 4 => region.write_at(at - 4, bytes),
            (Some(_), _) if end <= 4 => self.vec[at..end].copy_from_slice(bytes),
            (Some(_), _) => {
                // Straddles the prefix: never done, but kept total.
                self.back_to_vec();
                self.vec[at..end].copy_from_slice(bytes);
            }
            (None, _) => self.vec[at..end].copy_from_slice(bytes),
        }
    }

    /// Writes the length prefix of the frame, which starts at offset 0.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Wire`](taskweave_core::ErrorKind::Wire) if the body exceeds `max`.
    pub(crate) fn finish(&mut self, max: usize) -> Result<(), Error> {
        let len = crate::wire::outcome::Out::len(self).saturating_sub(4);
        if len > max || len > u32::MAX as usize {
            return Err(crate::wire::frame_too_large(len, max));
        }
        self.patch(0, &(len as u32).to_le_bytes());
        Ok(())
    }

    /// Moves the frame into the region if it is free and takes `body` more bytes.
    fn try_region(&mut self, more: usize) -> bool {
        let Some(region) = self.region.as_deref_mut() else {
            return false;
        };
        let body = self.vec.len().saturating_sub(4);
        if self.vec.len() < 4 || !region.is_free() || region.reserve(body + more).is_err() {
            return false;
        }
        region.write_at(0, &self.vec[4..]);
        self.vec.truncate(4);
        self.in_region = Some(body);
        true
    }

    /// Sends the finished frame to `out` (as an envelope when it is in the region, or by
    /// [`send_frame`]), and gives back its `Vec`.
    ///
    /// # Errors
    ///
    /// The pipe's write error.
    pub(crate) fn send(mut self, out: &mut File) -> (io::Result<()>, Vec<u8>) {
        let sent = match (self.in_region, self.region.take()) {
            (Some(n), Some(region)) => {
                let number = region.publish(n);
                io::Write::write_all(out, &crate::wire::encode_shared(number, n as u64))
            }
            (_, region) => send_frame(out, &self.vec, region),
        };
        (sent, self.vec)
    }
}

impl crate::wire::outcome::Out for ResultBuf<'_> {
    fn len(&self) -> usize {
        match self.in_region {
            Some(n) => 4 + n,
            None => self.vec.len(),
        }
    }

    fn truncate(&mut self, len: usize) {
        match &mut self.in_region {
            Some(n) => *n = (*n).min(len.saturating_sub(4)),
            None => self.vec.truncate(len),
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.in_region.is_none() && self.vec.len() + bytes.len() >= 4 + SHARED_MIN {
            self.try_region(bytes.len());
        }
        if let (Some(n), Some(region)) = (self.in_region, self.region.as_deref_mut()) {
            // Doubling the reserve keeps many small writes from growing the region each time.
            let grown = if n + bytes.len() > region.allocated {
                region.reserve((n + bytes.len()).max(2 * region.allocated))
            } else {
                Ok(())
            };
            if grown.is_ok() || region.reserve(n + bytes.len()).is_ok() {
                region.write_at(n, bytes);
                self.in_region = Some(n + bytes.len());
                return;
            }
            self.back_to_vec();
        }
        crate::wire::outcome::Out::append(&mut self.vec, bytes);
    }
}

/// Writes one complete frame, its body through `region` when it is large and free, else
/// through the pipe.
///
/// # Errors
///
/// The pipe's write error.
pub(crate) fn send_frame(
    out: &mut File,
    frame: &[u8],
    region: Option<&mut Arena>,
) -> io::Result<()> {
    match envelope_for(frame, region) {
        Some(envelope) => io::Write::write_all(out, &envelope),
        None => io::Write::write_all(out, frame),
    }
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

    /// Sends `reply` through a pipe, reads the frame back and resolves it as the pool does.
    fn round_trip(reply: ResultBuf<'_>, rx: &mut Arena) -> (Vec<u8>, Option<u64>) {
        let (mut read, mut write) = crate::fd::pipe().unwrap();
        let (sent, _) = reply.send(&mut write);
        sent.unwrap();
        drop(write);
        let body = crate::wire::read_frame(&mut read, 1 << 30)
            .unwrap()
            .unwrap();
        let (view, n) = resolve(&body, Some(rx), 1 << 30).unwrap();
        (view.to_vec(), n)
    }

    /// The frame `[len][kind][payload]` a reply of `payload` is.
    fn expected(payload: &[u8]) -> Vec<u8> {
        let mut body = vec![9u8];
        body.extend_from_slice(payload);
        body
    }

    #[test]
    fn a_large_result_is_written_in_the_region_and_arrives_whole() {
        use crate::wire::outcome::Out;
        let (mut tx, mut rx) = pair();
        let payload: Vec<u8> = (0..SHARED_MIN * 3).map(|i| (i % 251) as u8).collect();
        let mut reply = ResultBuf::new(vec![1, 2, 3], Some(&mut tx));
        reply.vec_mut().extend_from_slice(&[0, 0, 0, 0, 9]);
        // Small writes first, then one that moves the frame into the region, then many more.
        reply.append(&payload[..10]);
        reply.append(&payload[10..SHARED_MIN]);
        for chunk in payload[SHARED_MIN..].chunks(1000) {
            reply.append(chunk);
        }
        assert!(reply.in_region.is_some(), "the frame moved into the region");
        assert_eq!(reply.len(), 5 + payload.len());
        reply.finish(1 << 30).unwrap();
        let (body, posted) = round_trip(reply, &mut rx);
        assert_eq!(body, expected(&payload));
        assert_eq!(posted, Some(1));
    }

    #[test]
    fn a_result_cut_back_in_the_region_or_built_while_it_is_busy_still_arrives() {
        use crate::wire::outcome::Out;
        let (mut tx, mut rx) = pair();
        // Cut back after it moved into the region (a panic in a large result's `Serialize`).
        let mut reply = ResultBuf::new(Vec::new(), Some(&mut tx));
        reply.vec_mut().extend_from_slice(&[0, 0, 0, 0, 9]);
        reply.append(&vec![4u8; SHARED_MIN]);
        let mark = reply.len();
        reply.append(&[5u8; 100]);
        reply.truncate(mark);
        reply.append(&[6u8; 3]);
        reply.finish(1 << 30).unwrap();
        let mut want = vec![4u8; SHARED_MIN];
        want.extend_from_slice(&[6, 6, 6]);
        let (body, posted) = round_trip(reply, &mut rx);
        assert_eq!(body, expected(&want));
        // Not released yet: the next large result stays in the `Vec` and goes by pipe.
        let mut reply = ResultBuf::new(Vec::new(), Some(&mut tx));
        reply.vec_mut().extend_from_slice(&[0, 0, 0, 0, 9]);
        reply.append(&vec![8u8; SHARED_MIN + 1]);
        assert!(reply.in_region.is_none());
        reply.finish(1 << 30).unwrap();
        let (body, again) = round_trip(reply, &mut rx);
        assert_eq!(body, expected(&vec![8u8; SHARED_MIN + 1]));
        assert_eq!(again, None);
        rx.release(posted.unwrap());
        // Too large for the limit: refused before anything is posted.
        let mut reply = ResultBuf::new(Vec::new(), Some(&mut tx));
        reply.vec_mut().extend_from_slice(&[0, 0, 0, 0, 9]);
        reply.append(&vec![1u8; SHARED_MIN]);
        assert!(reply.finish(1000).unwrap_err().is_wire());
        assert!(tx.is_free(), "nothing was posted");
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
