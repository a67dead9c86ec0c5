//! [`Bytes`]: a byte buffer that crosses the process boundary as one block.

use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A byte buffer that serialises as one block of bytes.
///
/// serde carries a `Vec<u8>` as a sequence of single bytes, one call per byte; `Bytes` carries
/// it as one length and one copy, which is what makes large payloads move at memory speed
/// between a pool and its workers. It dereferences to `Vec<u8>`.
///
/// ```
/// use taskweave_process::Bytes;
///
/// let b = Bytes::from(vec![1u8, 2, 3]);
/// let wire = postcard::to_stdvec(&b).unwrap();
/// assert_eq!(wire, [3, 1, 2, 3]);
/// assert_eq!(postcard::from_bytes::<Bytes>(&wire).unwrap(), b);
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The buffer.
    ///
    /// ```
    /// let b = taskweave_process::Bytes(vec![1, 2, 3]);
    /// assert_eq!(b.into_vec(), vec![1, 2, 3]);
    /// ```
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Bytes {
        Bytes(v)
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(b: Bytes) -> Vec<u8> {
        b.0
    }
}

impl Deref for Bytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Bytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte buffer")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                let mut out = Vec::with_capacity(v.len());
                advise_huge(&mut out);
                out.extend_from_slice(v);
                Ok(Bytes(out))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(b) = seq.next_element()? {
                    v.push(b);
                }
                Ok(Bytes(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// Buffers at least this large are asked to be backed by huge pages.
const HUGE: usize = 4 << 20;

/// Asks the kernel to back the spare capacity of a large buffer with transparent huge pages,
/// before it is first written: a 64 MiB payload then costs 32 page faults instead of 16384, which
/// is most of the time of touching fresh memory. A hint only; nothing changes where it is
/// refused or unsupported.
pub(crate) fn advise_huge(buf: &mut Vec<u8>) {
    #[cfg(target_os = "linux")]
    {
        let spare = buf.capacity() - buf.len();
        if spare < HUGE {
            return;
        }
        const PAGE: usize = 4096;
        let start = buf.as_mut_ptr() as usize + buf.len();
        let (from, to) = (
            (start + PAGE - 1) & !(PAGE - 1),
            (start + spare) & !(PAGE - 1),
        );
        if to > from {
            // SAFETY: the page-aligned range lies inside this Vec's own allocation, which stays
            // alive; MADV_HUGEPAGE only changes how its pages are backed, never their contents.
            unsafe {
                libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}

/// Writes from this size on may take over the spare frame buffer.
const SPARE_MIN: usize = crate::arena::SHARED_MIN;

/// The largest frame buffer kept as the spare.
const SPARE_MAX: usize = 128 << 20;

/// One large call frame's buffer, kept from a finished call for the next large argument: a
/// fresh buffer costs a page fault per 4 KiB as it is first written (about as much as the copies
/// of the payload), and the allocator hands large blocks back to the system as they are freed.
/// One buffer per process, at most [`SPARE_MAX`].
static SPARE: std::sync::Mutex<Option<Vec<u8>>> = std::sync::Mutex::new(None);

/// Keeps a finished call's frame buffer as the spare when it is large and nothing else holds
/// it (a larger spare is kept instead).
pub(crate) fn recycle(frame: std::sync::Arc<Vec<u8>>) {
    let Ok(mut buf) = std::sync::Arc::try_unwrap(frame) else {
        return;
    };
    if !(SPARE_MIN..=SPARE_MAX).contains(&buf.capacity()) {
        return;
    }
    buf.clear();
    let mut spare = SPARE.lock().unwrap_or_else(|p| p.into_inner());
    if spare.as_ref().is_none_or(|s| s.capacity() < buf.capacity()) {
        // The smaller buffer is freed after the lock is released.
        buf = std::mem::replace(spare.get_or_insert_with(Vec::new), buf);
    }
    drop(spare);
    drop(buf);
}

/// The spare frame buffer, if there is one with room for `need` bytes.
fn take_spare(need: usize) -> Option<Vec<u8>> {
    let mut spare = SPARE.lock().unwrap_or_else(|p| p.into_inner());
    if spare.as_ref()?.capacity() >= need {
        spare.take()
    } else {
        None
    }
}

/// A writer into a `Vec` that reserves large writes exactly and advises huge pages for them, so
/// a serialised payload touches fresh memory once, cheaply; a large write into a buffer without
/// room takes over the spare buffer of a finished call ([`recycle`]) when it is large enough.
pub(crate) struct FrameWriter<'a>(pub(crate) &'a mut Vec<u8>);

impl std::io::Write for FrameWriter<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let need = self.0.len() + data.len();
        if data.len() >= SPARE_MIN
            && self.0.capacity() < need
            && let Some(mut spare) = take_spare(need)
        {
            spare.extend_from_slice(self.0);
            *self.0 = spare;
        }
        if data.len() >= HUGE && self.0.capacity() - self.0.len() < data.len() {
            self.0.reserve_exact(data.len());
            advise_huge(self.0);
        }
        self.0.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
