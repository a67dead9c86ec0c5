//! Entry points for fuzz targets (the `fuzzing` feature): every decoder of bytes that come from
//! another process, fed arbitrary input. Not API: no semver promise, hidden from the docs.
//!
//! Each function must return (never panic, abort or hang) whatever it is given; that is what
//! the targets in the repository's `fuzz/` directory check.

use std::io::Read;

use crate::arena::{self, Arena};
use crate::image::{image, resolve};
use crate::wire::{self, FromWorker, ToWorker, outcome};

/// A reader that hands out its input in pieces of a few bytes, so a frame arrives over many
/// reads as it does from a pipe.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// The frame reader and both message decoders, on a stream of frames: the pool's reader of a
/// worker's replies and the worker's reader of calls.
///
/// The first byte picks how many bytes each read returns and the frame limit; the rest is the
/// stream.
pub fn frames(data: &[u8]) {
    let Some((&mode, stream)) = data.split_first() else {
        return;
    };
    let step = 1 + (mode & 0x0f) as usize * 97;
    let max = if mode & 0x10 == 0 {
        4096
    } else {
        wire::DEFAULT_MAX_FRAME
    };
    let mut reader = Trickle { data: stream, step };
    let mut body = Vec::new();
    // Every successful read consumes at least five bytes, so this ends.
    while let Ok(true) = wire::read_frame_into(&mut reader, max, &mut body) {
        assert!(!body.is_empty() && body.len() <= max);
        if let Ok(FromWorker::Result { payload, .. }) = wire::decode_from_worker(&body) {
            assert!(payload.len() < body.len());
        }
        match wire::decode_to_worker(&body) {
            Ok(ToWorker::Call { func, .. }) => {
                // A forged reference is refused by its tag; nothing is ever called here.
                let _ = resolve(func, 0);
            }
            Ok(ToWorker::NamedCall { count, payload, .. }) => {
                // The worker's split of a named call into its arguments (the name itself is
                // only ever looked up in the registry, never run from here).
                let mut rest = payload;
                for _ in 0..count.min(1 << 16) {
                    let before = rest.len();
                    match wire::next_named_item(&mut rest) {
                        Ok(item) => assert!(item.len() + 4 <= before && rest.len() < before),
                        Err(_) => break,
                    }
                }
            }
            _ => {}
        }
    }
    let _ = wire::decode_from_worker(stream);
    let _ = wire::decode_to_worker(stream);
}

/// The outcome decoder of a result frame, as the pool runs it for a few result types: it reads
/// outcomes until the payload is used up, each a value or an error.
///
/// The first byte picks the result type and how many outcomes are expected.
pub fn outcomes(data: &[u8]) {
    let Some((&mode, payload)) = data.split_first() else {
        return;
    };
    let count = (mode >> 3) as usize + 1;
    match mode & 7 {
        0 => drain::<u64>(payload, count),
        1 => drain::<String>(payload, count),
        2 => drain::<crate::Bytes>(payload, count),
        3 => drain::<Vec<String>>(payload, count),
        4 => drain::<(u32, Option<String>, f64)>(payload, count),
        5 => drain::<()>(payload, count),
        6 => drain::<std::collections::BTreeMap<String, Vec<u8>>>(payload, count),
        _ => drain::<Result<i32, String>>(payload, count),
    }
}

fn drain<R: serde::de::DeserializeOwned>(payload: &[u8], count: usize) {
    let mut rest = payload;
    for _ in 0..count {
        let before = rest.len();
        let _ = outcome::next::<R>(&mut rest, "a fuzzed call", 1);
        assert!(rest.len() <= before);
    }
}

/// The handshake, both ways: the pool's check of a worker's hello and the worker's check of the
/// pool's setup frame (build id, secret, initializer reference; or the named setup of a pool of
/// another build, with its registry version), which runs nothing.
///
/// The input is one frame body, taken as a hello and as a setup.
pub fn handshake(data: &[u8]) {
    let img = image();
    if let Ok(FromWorker::Hello {
        magic,
        version,
        build_id,
        ..
    }) = wire::decode_from_worker(data)
    {
        let _ = (magic == wire::MAGIC, version == wire::PROTOCOL_VERSION);
        let _ = build_id == img.build_id.as_slice();
    }
    if let Ok(setup) = crate::worker::accept_setup(data, img) {
        // Only a reference with the right tag for the secret it came with passes, and then it
        // lies in this image's code.
        if let Some((func, tramp, _)) = setup.initializer {
            assert!(img.contains(func) && img.contains(tramp));
        }
        // A named setup never brings an offset to run.
        assert!(!setup.named_only || setup.initializer.is_none());
    }
}

/// Frames whose body is in shared memory, as both sides resolve them: a region that holds a
/// body made from the input (or nothing), then a stream of frames, each resolved against the
/// region (an envelope's post number and length checked, its body taken from the region) and
/// decoded both ways.
///
/// The first byte picks the frame limit, whether a body is posted and how many bytes each read
/// returns; the next two the posted body's length in units of 61 bytes (up to about 4 MiB),
/// its bytes the stream's, repeated; the rest is the stream. Does nothing where there are no
/// shared regions.
pub fn shared(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some((len, stream)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let (Ok(mut sender), max) = (
        Arena::create(),
        if mode & 1 == 0 {
            4096
        } else {
            wire::DEFAULT_MAX_FRAME
        },
    ) else {
        return;
    };
    let Some(mut receiver) = sender
        .file()
        .try_clone()
        .ok()
        .and_then(|f| Arena::open(f).ok())
    else {
        return;
    };
    if mode & 2 != 0 {
        let n = u16::from_le_bytes(*len) as usize * 61;
        let body: Vec<u8> = stream.iter().copied().cycle().take(n).collect();
        let _ = sender.post(&body);
    }
    let step = 1 + (mode >> 2) as usize * 13;
    let mut reader = Trickle { data: stream, step };
    let mut body = Vec::new();
    while let Ok(true) = wire::read_frame_into(&mut reader, max, &mut body) {
        match arena::resolve(&body, Some(&mut receiver), max) {
            Ok((view, posted)) => {
                assert!(view.len() <= max);
                let _ = wire::decode_from_worker(view);
                let _ = wire::decode_to_worker(view);
                if let Some(number) = posted {
                    receiver.release(number);
                    assert!(sender.is_free());
                }
            }
            Err(e) => assert!(e.is_wire(), "{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        #[test]
        fn the_shared_target_returns_on_any_input(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            super::shared(&data);
        }
    }

    #[test]
    fn the_shared_target_resolves_a_real_envelope() {
        // Posts an empty body (length 0) and sends the envelope of post 1, then one of a post
        // never made.
        let mut data = vec![0b11, 0, 0];
        data.extend_from_slice(&crate::wire::encode_shared(1, 0));
        data.extend_from_slice(&crate::wire::encode_shared(9, 5));
        super::shared(&data);
    }
}
