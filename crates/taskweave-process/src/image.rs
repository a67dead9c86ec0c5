//! The executable image: its build id, where its code lies, and functions named by their offset
//! from an anchor inside it.
//!
//! A worker is the same executable as its pool, loaded at another address (ASLR), so a function
//! is carried as `address - anchor`, which is the same number in both processes. That is only
//! true of the same build, so the build id is compared at the handshake; and a worker runs an
//! offset only if its keyed tag matches and it lands inside the image's executable segments.

use std::hash::{BuildHasher, Hasher};
use std::ops::Range;
use std::sync::OnceLock;

use crate::wire::FnRef;

/// What this process knows about its own executable image.
pub(crate) struct Image {
    /// The GNU build id of the executable (or a hash of its bytes when it has none), followed
    /// by the anchor's offset from the load base.
    pub(crate) build_id: Vec<u8>,
    /// The addresses of the executable segments of the image that holds the anchor; empty
    /// where they cannot be found, and then no address is in the code.
    pub(crate) text: Vec<Range<usize>>,
}

/// `true` where this process can find its executable segments (64-bit Linux, through
/// `dl_iterate_phdr`), which is what makes an offset safe to call. Elsewhere every function
/// reference is refused: the pool sends no offset it cannot check, and a worker runs none.
pub(crate) const OFFSETS_CHECKED: bool =
    cfg!(all(target_os = "linux", target_pointer_width = "64"));

/// Why a function cannot be sent to a worker.
pub(crate) fn not_in_code() -> &'static str {
    if OFFSETS_CHECKED {
        "the function is not part of the main executable's code (for example it comes from a \
         dynamically loaded library), so a worker process cannot find it"
    } else {
        "functions travel to workers as offsets in the executable, and on this platform the \
         pool cannot check that an offset lands in the executable's code (only 64-bit Linux \
         can), so it sends none"
    }
}

/// Why no offset goes to a pool whose workers run another build's program.
pub(crate) fn other_build() -> &'static str {
    "this pool's workers run another build's program (named_worker_program), where a \
     function's code offset means nothing: call registered functions by name with \
     submit_remote, submit_named, map_remote or map_named"
}

/// Why a pool of another build's workers cannot have an initializer.
pub(crate) fn no_initializer_in_other_build() -> &'static str {
    "an initializer travels as a code offset, which means nothing in the other build a \
     named_worker_program runs: let the worker program initialise itself before it serves"
}

/// The fixed point offsets are taken from. Never called; only its address matters.
#[inline(never)]
fn anchor() -> usize {
    std::hint::black_box(0x5457_5057)
}

fn anchor_addr() -> usize {
    anchor as fn() -> usize as usize
}

static IMAGE: OnceLock<Image> = OnceLock::new();

/// The image of this process, read once.
pub(crate) fn image() -> &'static Image {
    IMAGE.get_or_init(load)
}

impl Image {
    /// `true` if `addr` lies in the image's code; always `false` where the code cannot be
    /// found ([`OFFSETS_CHECKED`] is `false`, or the loader did not list the anchor's image).
    pub(crate) fn contains(&self, addr: usize) -> bool {
        self.text.iter().any(|r| r.contains(&addr))
    }

    /// The build id as lowercase hex, for error messages.
    pub(crate) fn build_id_hex(id: &[u8]) -> String {
        id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Makes a function reference for `func` run through `trampoline`, keyed by `secret`.
///
/// Returns `None` if either address lies outside the main executable's code (for example a
/// function of a dynamically loaded library), which a worker could not find at the same offset.
pub(crate) fn fn_ref(func: usize, trampoline: usize, secret: u64) -> Option<FnRef> {
    let img = image();
    if !img.contains(func) || !img.contains(trampoline) {
        return None;
    }
    let base = anchor_addr();
    let func = func.wrapping_sub(base) as i64;
    let trampoline = trampoline.wrapping_sub(base) as i64;
    Some(FnRef {
        func,
        trampoline,
        tag: tag(secret, func, trampoline),
    })
}

/// Resolves a reference received from the pool to `(function, trampoline)` addresses.
///
/// # Errors
///
/// A description of the failed check: a tag that does not match, or an address outside the code.
pub(crate) fn resolve(f: FnRef, secret: u64) -> Result<(usize, usize), String> {
    if tag(secret, f.func, f.trampoline) != f.tag {
        return Err("function reference fails its integrity check".into());
    }
    let base = anchor_addr();
    let func = base.wrapping_add(f.func as usize);
    let trampoline = base.wrapping_add(f.trampoline as usize);
    let img = image();
    if !img.contains(func) || !img.contains(trampoline) {
        return Err("function reference points outside the executable's code".into());
    }
    Ok((func, trampoline))
}

fn tag(secret: u64, func: i64, trampoline: i64) -> u64 {
    let mut h = secret ^ 0x9e37_79b9_7f4a_7c15;
    for v in [func as u64, trampoline as u64] {
        h = mix(h ^ v);
    }
    h
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A random key for function tags, different in every pool.
pub(crate) fn random_secret() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}

fn hash_bytes(bytes: &[u8]) -> [u8; 16] {
    let (mut a, mut b) = (0x243f_6a88_85a3_08d3u64, 0x1319_8a2e_0370_7344u64);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let v = u64::from_le_bytes(w);
        a = mix(a ^ v);
        b = b.rotate_left(23).wrapping_add(v) ^ a;
    }
    for &byte in chunks.remainder() {
        a = mix(a ^ byte as u64);
    }
    a = mix(a ^ bytes.len() as u64);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_le_bytes());
    out[8..].copy_from_slice(&mix(b).to_le_bytes());
    out
}

fn file_hash_id() -> Vec<u8> {
    let path = if cfg!(target_os = "linux") {
        std::path::PathBuf::from("/proc/self/exe")
    } else {
        std::env::current_exe().unwrap_or_default()
    };
    match std::fs::read(path) {
        Ok(bytes) => hash_bytes(&bytes).to_vec(),
        Err(_) => Vec::new(),
    }
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn load() -> Image {
    use std::ffi::c_void;

    struct Found {
        anchor: usize,
        base: usize,
        text: Vec<Range<usize>>,
        build_id: Option<Vec<u8>>,
    }

    /// # Safety
    ///
    /// Only as `dl_iterate_phdr`'s callback with `data` pointing to a `Found`.
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> libc::c_int {
        // SAFETY: `data` is the `Found` passed to `dl_iterate_phdr` below, exclusively ours for
        // the duration of the call; `info` is valid for this callback, as the loader promises.
        let (found, info) = unsafe { (&mut *(data as *mut Found), &*info) };
        let base = info.dlpi_addr as usize;
        let phdrs: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
            &[]
        } else {
            // SAFETY: the loader gives `dlpi_phnum` program headers at `dlpi_phdr`.
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) }
        };
        let mut text = Vec::new();
        for ph in phdrs {
            if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_X != 0 {
                let start = base.wrapping_add(ph.p_vaddr as usize);
                text.push(start..start.wrapping_add(ph.p_memsz as usize));
            }
        }
        if !text.iter().any(|r| r.contains(&found.anchor)) {
            return 0;
        }
        for ph in phdrs {
            if ph.p_type == libc::PT_NOTE {
                let start = base.wrapping_add(ph.p_vaddr as usize) as *const u8;
                // SAFETY: a PT_NOTE segment of a loaded object is mapped readable for
                // `p_memsz` bytes at its load address.
                let notes = unsafe { std::slice::from_raw_parts(start, ph.p_memsz as usize) };
                if let Some(id) = gnu_build_id(notes) {
                    found.build_id = Some(id);
                }
            }
        }
        found.base = base;
        found.text = text;
        1
    }

    let mut found = Found {
        anchor: anchor_addr(),
        base: 0,
        text: Vec::new(),
        build_id: None,
    };
    // SAFETY: `visit` only reads what the loader hands it and writes to `found`, which outlives
    // the call.
    unsafe {
        libc::dl_iterate_phdr(Some(visit), &mut found as *mut Found as *mut c_void);
    }
    let mut build_id = found.build_id.unwrap_or_else(file_hash_id);
    build_id.extend_from_slice(&(found.anchor.wrapping_sub(found.base) as u64).to_le_bytes());
    Image {
        build_id,
        text: found.text,
    }
}

/// Without a way to list the executable segments, `text` stays empty, so `contains` refuses
/// every address and no offset is ever sent or run here.
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn load() -> Image {
    Image {
        build_id: file_hash_id(),
        text: Vec::new(),
    }
}

/// Finds the descriptor of an `NT_GNU_BUILD_ID` note in a note segment.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn gnu_build_id(mut notes: &[u8]) -> Option<Vec<u8>> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let word = |b: &[u8]| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let align = |n: usize| (n + 3) & !3;
    while notes.len() >= 12 {
        let (namesz, descsz, kind) = (word(notes), word(&notes[4..]), word(&notes[8..]));
        let name_end = 12usize.checked_add(align(namesz))?;
        let desc_end = name_end.checked_add(align(descsz))?;
        if desc_end > notes.len() {
            return None;
        }
        if kind as u32 == NT_GNU_BUILD_ID && namesz == 4 && &notes[12..16] == b"GNU\0" {
            return Some(notes[name_end..name_end + descsz].to_vec());
        }
        notes = &notes[desc_end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(x: u32) -> u32 {
        x + 1
    }

    #[test]
    fn offsets_round_trip() {
        if !OFFSETS_CHECKED {
            assert!(fn_ref(anchor_addr(), anchor_addr(), 1).is_none());
            return;
        }
        let secret = random_secret();
        let f = fn_ref(sample as fn(u32) -> u32 as usize, anchor_addr(), secret).unwrap();
        let (func, _) = resolve(f, secret).unwrap();
        assert_eq!(func, sample as fn(u32) -> u32 as usize);
        let forged = FnRef {
            tag: f.tag ^ 1,
            ..f
        };
        assert!(resolve(forged, secret).is_err());
    }

    #[test]
    fn only_addresses_in_the_code_pass() {
        let img = image();
        assert_eq!(OFFSETS_CHECKED, !img.text.is_empty());
        assert_eq!(img.contains(anchor_addr()), OFFSETS_CHECKED);
        let on_heap = Box::new(0u8);
        assert!(!img.contains(&*on_heap as *const u8 as usize));
        assert!(!img.contains(0));
        let refused = Image {
            build_id: Vec::new(),
            text: Vec::new(),
        };
        assert!(!refused.contains(anchor_addr()));
    }

    #[test]
    fn build_id_is_present() {
        assert!(image().build_id.len() > 8);
    }
}
