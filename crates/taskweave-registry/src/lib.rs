//! Functions by name: a link-time table of the functions a program lets other builds and machines
//! call.
//!
//! A function cannot travel between different builds or machines as a code offset, so a program
//! marks the functions it serves with `#[taskweave::remote]` (or `#[taskweave_macros::remote]`).
//! The attribute keeps the function as it is and adds an entry to [`REMOTE_FUNCTIONS`], a
//! [`linkme`] distributed slice: a static table the linker assembles, with no code run before
//! `main`, that works the same under `cargo test`. Each entry holds the function's name, its
//! signature (the type names of its argument and result, and a hash of them) and a trampoline
//! that decodes the argument, runs the function and encodes the result with postcard.
//!
//! A registered function is never inlined (the attribute marks it `#[inline(never)]`): the
//! table finds a function pointer by its address, which an inlined copy would not share. So it
//! may not carry an `#[inline]` of its own:
//!
//! ```compile_fail
//! #[taskweave_macros::remote(crate = taskweave_registry)]
//! #[inline]
//! fn quick(x: u8) -> u8 {
//!     x
//! }
//! ```
//!
//! The table is checked the first time it is used: two entries with the same name make every
//! lookup fail with [`RegistryError::Duplicate`], naming both definitions.
//!
//! Platform limits: `linkme` works on ELF (Linux, the BSDs), Mach-O (macOS, iOS) and PE
//! (Windows) targets; not on wasm. On macOS without LTO, entries of a crate nothing else
//! references can be dropped by the linker; reference the crate (for example `use my_funcs as _;`).
//!
//! # Examples
//!
//! ```
//! use taskweave_registry::{RemoteFn, lookup};
//!
//! #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::square")]
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! let entry: &RemoteFn = lookup("doc::square").unwrap();
//! let arg = postcard::to_stdvec(&7u64).unwrap();
//! let out = entry.call(&arg).unwrap();
//! assert_eq!(postcard::from_bytes::<u64>(&out).unwrap(), 49);
//! assert_eq!(square(3), 9); // the function itself is untouched
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use linkme::distributed_slice;

/// The version of how registered functions are called: the encoding of arguments and results
/// (postcard 1) and the signature hash ([`signature_hash`]). Two programs can call each other's
/// functions only if they agree on it; executors compare it when they connect a caller to a
/// worker of another build.
///
/// ```
/// assert_eq!(taskweave_registry::ABI_VERSION, 1);
/// ```
pub const ABI_VERSION: u16 = 1;

/// Every function marked `#[remote]` in the program, in no particular order.
///
/// Prefer [`lookup`], [`all`] and [`by_fn`], which check the table for duplicate names first.
#[distributed_slice]
pub static REMOTE_FUNCTIONS: [RemoteFn];

/// One registered function: its name, its signature and how to call it on encoded bytes.
///
/// Built by the `#[remote]` attribute; its fields are private so that an entry always describes
/// the function its trampoline calls.
///
/// # Examples
///
/// ```
/// #[taskweave_macros::remote(crate = taskweave_registry)]
/// fn shout(s: String) -> String {
///     s.to_uppercase()
/// }
///
/// let entry = taskweave_registry::all()
///     .unwrap()
///     .find(|f| f.name().ends_with("::shout"))
///     .unwrap();
/// assert_eq!(entry.signature().argument, "alloc::string::String");
/// ```
pub struct RemoteFn {
    name: &'static str,
    file: &'static str,
    line: u32,
    signature: fn() -> Signature,
    address: fn() -> usize,
    trampoline: fn(&[u8], &mut Vec<u8>) -> Result<(), CallFailure>,
}

/// The types a function takes and returns, as `std::any::type_name` spells them, and a hash of
/// both.
///
/// Limits: type names are not guaranteed stable across compiler versions, and they name types,
/// not their serialised layout: two builds with the same type names but different field lists
/// (an edited struct) hash the same, and the mismatch surfaces as a decoding error instead.
/// Builds with different compilers may spell a type differently and refuse each other.
///
/// # Examples
///
/// ```
/// let s = taskweave_registry::Signature::of::<u64, String>();
/// assert_eq!(s.argument, "u64");
/// assert_eq!(s.to_string(), "fn(u64) -> alloc::string::String");
/// assert_eq!(s.hash, taskweave_registry::Signature::of::<u64, String>().hash);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The argument type's name.
    pub argument: &'static str,
    /// The result type's name.
    pub result: &'static str,
    /// A 64-bit FNV-1a hash of both names (stable across runs and machines).
    pub hash: u64,
}

impl Signature {
    /// The signature of a `fn(A) -> R`.
    ///
    /// ```
    /// let s = taskweave_registry::Signature::of::<(), ()>();
    /// assert_eq!(s.result, "()");
    /// ```
    pub fn of<A: ?Sized, R: ?Sized>() -> Signature {
        let argument = std::any::type_name::<A>();
        let result = std::any::type_name::<R>();
        Signature {
            argument,
            result,
            hash: signature_hash(argument, result),
        }
    }
}

/// The FNV-1a hash of `fn(<argument>) -> <result>`: what [`Signature::hash`] holds, for a peer
/// that received the two names as text.
///
/// ```
/// let s = taskweave_registry::Signature::of::<u8, u8>();
/// assert_eq!(taskweave_registry::signature_hash("u8", "u8"), s.hash);
/// ```
pub fn signature_hash(argument: &str, result: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in argument.bytes().chain([0]).chain(result.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fn({}) -> {}", self.argument, self.result)
    }
}

/// Why a trampoline could not produce a result.
///
/// # Examples
///
/// ```
/// let f = taskweave_registry::CallFailure::Panicked("boom".into());
/// assert_eq!(f.to_string(), "the function panicked: boom");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// The argument bytes did not decode as the function's argument type.
    Decode(String),
    /// The function panicked; the panic message.
    Panicked(String),
    /// The result could not be encoded.
    Encode(String),
}

impl fmt::Display for CallFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallFailure::Decode(e) => write!(f, "cannot decode the argument: {e}"),
            CallFailure::Panicked(m) => write!(f, "the function panicked: {m}"),
            CallFailure::Encode(e) => write!(f, "cannot encode the result: {e}"),
        }
    }
}

impl std::error::Error for CallFailure {}

/// Why a registered function could not be found or used.
///
/// # Examples
///
/// ```
/// let err = taskweave_registry::lookup("no::such::function").unwrap_err();
/// assert!(err.to_string().contains("no::such::function"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryError {
    /// No function of that name is registered in this program.
    Unknown {
        /// The name asked for.
        name: String,
        /// The program that was asked (its executable name).
        program: String,
        /// How many functions the program registers.
        registered: usize,
    },
    /// The caller and this program disagree on the function's types.
    SignatureMismatch {
        /// The function's name.
        name: String,
        /// The signature the caller expects.
        caller: String,
        /// The signature registered here.
        registered: String,
    },
    /// Two functions were registered under one name.
    Duplicate {
        /// The shared name.
        name: String,
        /// Where the first is defined (`file:line`).
        first: String,
        /// Where the second is defined (`file:line`).
        second: String,
    },
    /// A plain function pointer that is not marked `#[remote]`.
    NotRegistered {
        /// The function's signature.
        signature: String,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Unknown {
                name,
                program,
                registered,
            } => write!(
                f,
                "unknown remote function `{name}`: `{program}` registers {registered} function(s), none by that name (mark it #[taskweave::remote] in the worker's build)"
            ),
            RegistryError::SignatureMismatch {
                name,
                caller,
                registered,
            } => write!(
                f,
                "signature mismatch for remote function `{name}`: the caller expects `{caller}`, the worker registers `{registered}`"
            ),
            RegistryError::Duplicate {
                name,
                first,
                second,
            } => write!(
                f,
                "remote function name `{name}` is registered twice, at {first} and at {second}; give one a different name (#[remote(name = \"...\")])"
            ),
            RegistryError::NotRegistered { signature } => write!(
                f,
                "this `{signature}` is not a remote function: mark it #[taskweave::remote] so other builds can find it by name"
            ),
        }
    }
}

impl std::error::Error for RegistryError {}

impl RemoteFn {
    /// The name other builds call it by: `module::path::function` unless the attribute gave one.
    ///
    /// ```
    /// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::named")]
    /// fn named(_: ()) {}
    /// assert_eq!(taskweave_registry::lookup("doc::named").unwrap().name(), "doc::named");
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its argument and result types.
    ///
    /// ```
    /// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::len")]
    /// fn len(s: String) -> usize { s.len() }
    /// let sig = taskweave_registry::lookup("doc::len").unwrap().signature();
    /// assert_eq!(sig.result, "usize");
    /// ```
    pub fn signature(&self) -> Signature {
        (self.signature)()
    }

    /// Where it is defined, `file:line`.
    ///
    /// ```
    /// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::here")]
    /// fn here(_: ()) {}
    /// assert!(taskweave_registry::lookup("doc::here").unwrap().location().contains(".rs:"));
    /// ```
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// Checks that a caller expecting `caller` can call this function.
    ///
    /// # Errors
    ///
    /// [`RegistryError::SignatureMismatch`] naming both signatures.
    ///
    /// ```
    /// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::check")]
    /// fn check(x: u8) -> u8 { x }
    /// let entry = taskweave_registry::lookup("doc::check").unwrap();
    /// assert!(entry.check(&taskweave_registry::Signature::of::<u8, u8>()).is_ok());
    /// let err = entry.check(&taskweave_registry::Signature::of::<u16, u8>()).unwrap_err();
    /// assert!(err.to_string().contains("fn(u16) -> u8"));
    /// ```
    pub fn check(&self, caller: &Signature) -> Result<(), RegistryError> {
        self.check_hash(caller.hash, &caller.to_string())
    }

    /// Like [`check`](Self::check), for a caller that sent a hash and its signature as text.
    ///
    /// # Errors
    ///
    /// [`RegistryError::SignatureMismatch`] naming both signatures.
    ///
    /// ```
    /// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::check_hash")]
    /// fn f(x: u8) -> u8 { x }
    /// let entry = taskweave_registry::lookup("doc::check_hash").unwrap();
    /// assert!(entry.check_hash(1, "fn(bool) -> bool").is_err());
    /// ```
    pub fn check_hash(&self, hash: u64, caller: &str) -> Result<(), RegistryError> {
        let own = self.signature();
        if own.hash == hash {
            Ok(())
        } else {
            Err(RegistryError::SignatureMismatch {
                name: self.name.to_owned(),
                caller: caller.to_owned(),
                registered: own.to_string(),
            })
        }
    }

    /// Runs the function on a postcard-encoded argument and returns its postcard-encoded result.
    /// A panic is caught and returned as [`CallFailure::Panicked`].
    ///
    /// # Errors
    ///
    /// [`CallFailure`] when the argument does not decode, the function panics or the result does
    /// not encode.
    ///
    /// ```
    /// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::boom")]
    /// fn boom(_: ()) -> u8 { panic!("boom") }
    /// let entry = taskweave_registry::lookup("doc::boom").unwrap();
    /// let arg = postcard::to_stdvec(&()).unwrap();
    /// assert!(matches!(entry.call(&arg), Err(taskweave_registry::CallFailure::Panicked(_))));
    /// ```
    pub fn call(&self, argument: &[u8]) -> Result<Vec<u8>, CallFailure> {
        let mut out = Vec::new();
        (self.trampoline)(argument, &mut out)?;
        Ok(out)
    }

    /// Like [`call`](Self::call), appending the postcard-encoded result to `out` (a caller that
    /// builds a reply frame saves a copy and an allocation per call). On failure `out` is as it
    /// was.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    ///
    /// ```
    /// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::call_into")]
    /// fn inc(x: u8) -> u8 { x + 1 }
    /// let entry = taskweave_registry::lookup("doc::call_into").unwrap();
    /// let mut out = vec![0xaa]; // a header the caller wrote
    /// entry.call_into(&postcard::to_stdvec(&1u8).unwrap(), &mut out).unwrap();
    /// assert_eq!(out, [0xaa, 2]);
    /// assert!(entry.call_into(&[], &mut out).is_err());
    /// assert_eq!(out, [0xaa, 2]);
    /// ```
    pub fn call_into(&self, argument: &[u8], out: &mut Vec<u8>) -> Result<(), CallFailure> {
        (self.trampoline)(argument, out)
    }
}

impl fmt::Debug for RemoteFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteFn")
            .field("name", &self.name)
            .field("signature", &self.signature().to_string())
            .field("location", &self.location())
            .finish()
    }
}

/// The table by name, built and checked for duplicates once.
fn table() -> Result<&'static HashMap<&'static str, &'static RemoteFn>, RegistryError> {
    static TABLE: OnceLock<Result<HashMap<&'static str, &'static RemoteFn>, RegistryError>> =
        OnceLock::new();
    TABLE
        .get_or_init(|| {
            let mut by_name: HashMap<&'static str, &'static RemoteFn> = HashMap::new();
            for entry in REMOTE_FUNCTIONS.iter() {
                if let Some(first) = by_name.insert(entry.name, entry) {
                    // Report in a fixed order so the message does not depend on link order.
                    let (a, b) = if first.location() <= entry.location() {
                        (first, entry)
                    } else {
                        (entry, first)
                    };
                    return Err(RegistryError::Duplicate {
                        name: entry.name.to_owned(),
                        first: a.location(),
                        second: b.location(),
                    });
                }
            }
            Ok(by_name)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The registered function called `name`.
///
/// # Errors
///
/// [`RegistryError::Unknown`] when no function has that name, [`RegistryError::Duplicate`] when
/// the program registers one name twice.
///
/// ```
/// assert!(taskweave_registry::lookup("missing").is_err());
/// ```
pub fn lookup(name: &str) -> Result<&'static RemoteFn, RegistryError> {
    let table = table()?;
    table
        .get(name)
        .copied()
        .ok_or_else(|| RegistryError::Unknown {
            name: name.to_owned(),
            program: program_name(),
            registered: table.len(),
        })
}

/// Every registered function.
///
/// # Errors
///
/// [`RegistryError::Duplicate`] when the program registers one name twice.
///
/// ```
/// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::listed")]
/// fn listed(_: ()) {}
/// assert!(taskweave_registry::all().unwrap().any(|f| f.name() == "doc::listed"));
/// ```
pub fn all() -> Result<impl Iterator<Item = &'static RemoteFn>, RegistryError> {
    Ok(table()?.values().copied())
}

/// The registered function behind the plain function pointer `f`, found by its address and
/// signature.
///
/// Identical functions may share one address (the compiler can merge functions with the same
/// code); among entries of the same signature at one address, any is returned, which is sound
/// because their code is the same.
///
/// # Errors
///
/// [`RegistryError::NotRegistered`] when `f` is not marked `#[remote]`, and
/// [`RegistryError::Duplicate`] as for [`lookup`].
///
/// ```
/// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::by_fn")]
/// fn double(x: i32) -> i32 { 2 * x }
/// fn plain(x: i32) -> i32 { x + 1 }
/// assert_eq!(taskweave_registry::by_fn(double as fn(i32) -> i32).unwrap().name(), "doc::by_fn");
/// assert!(taskweave_registry::by_fn(plain as fn(i32) -> i32).is_err());
/// ```
pub fn by_fn<A: 'static, R: 'static>(f: fn(A) -> R) -> Result<&'static RemoteFn, RegistryError> {
    let table = table()?;
    let address = f as usize;
    let signature = Signature::of::<A, R>();
    table
        .values()
        .copied()
        .find(|e| (e.address)() == address && e.signature().hash == signature.hash)
        .ok_or_else(|| RegistryError::NotRegistered {
            signature: signature.to_string(),
        })
}

/// The registered entry of the function without argument `f`: [`by_fn`] for a `fn() -> R`
/// marked `#[remote]`, which travels with `()` as its argument (its signature is
/// `fn(()) -> R`).
///
/// # Errors
///
/// [`RegistryError::NotRegistered`] when `f` is not marked `#[remote]` (a closure, for one), and
/// [`RegistryError::Duplicate`] as for [`lookup`].
///
/// ```
/// #[taskweave_macros::remote(crate = taskweave_registry, name = "doc::answer")]
/// fn answer() -> u32 { 42 }
/// let entry = taskweave_registry::by_nullary_fn(answer).unwrap();
/// assert_eq!(entry.name(), "doc::answer");
/// assert_eq!(entry.signature().to_string(), "fn(()) -> u32");
/// let out = entry.call(&postcard::to_stdvec(&()).unwrap()).unwrap();
/// assert_eq!(postcard::from_bytes::<u32>(&out).unwrap(), 42);
/// assert!(taskweave_registry::by_nullary_fn(|| 7u32).is_err());
/// ```
pub fn by_nullary_fn<R: 'static>(f: fn() -> R) -> Result<&'static RemoteFn, RegistryError> {
    let table = table()?;
    let address = f as usize;
    let signature = Signature::of::<(), R>();
    table
        .values()
        .copied()
        .find(|e| (e.address)() == address && e.signature().hash == signature.hash)
        .ok_or_else(|| RegistryError::NotRegistered {
            signature: format!("fn() -> {}", signature.result),
        })
}

/// The current executable's file name, for error messages.
fn program_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "this program".to_owned())
}

#[doc(hidden)]
pub mod __private {
    //! What the `#[remote]` expansion uses.

    use super::{CallFailure, RemoteFn, Signature};
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    pub use linkme;

    /// Builds an entry; only the attribute calls this.
    pub const fn entry(
        name: &'static str,
        file: &'static str,
        line: u32,
        signature: fn() -> Signature,
        address: fn() -> usize,
        trampoline: fn(&[u8], &mut Vec<u8>) -> Result<(), CallFailure>,
    ) -> RemoteFn {
        RemoteFn {
            name,
            file,
            line,
            signature,
            address,
            trampoline,
        }
    }

    /// Decodes, calls `f`, appends the encoded result to `out`; a panic becomes
    /// [`CallFailure::Panicked`].
    pub fn invoke<A: DeserializeOwned, R: Serialize>(
        f: fn(A) -> R,
        argument: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CallFailure> {
        super::invoke(f, argument, out)
    }

    /// [`invoke`] for a function without argument: the argument must be an encoded `()`.
    pub fn invoke_nullary<R: Serialize>(
        f: fn() -> R,
        argument: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CallFailure> {
        postcard::from_bytes::<()>(argument).map_err(|e| CallFailure::Decode(e.to_string()))?;
        super::run_and_encode(f, out)
    }
}

fn invoke<A: DeserializeOwned, R: Serialize>(
    f: fn(A) -> R,
    argument: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CallFailure> {
    let arg: A = postcard::from_bytes(argument).map_err(|e| CallFailure::Decode(e.to_string()))?;
    run_and_encode(move || f(arg), out)
}

/// Runs `f`, a panic caught as [`CallFailure::Panicked`], and appends what it returns, encoded,
/// to `out` (left as it was on failure).
fn run_and_encode<R: Serialize>(
    f: impl FnOnce() -> R,
    out: &mut Vec<u8>,
) -> Result<(), CallFailure> {
    let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        CallFailure::Panicked(if let Some(s) = p.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = p.downcast_ref::<String>() {
            s.clone()
        } else {
            "<non-string panic payload>".to_owned()
        })
    })?;
    let mark = out.len();
    if let Err(e) = postcard::to_io(&value, &mut *out) {
        out.truncate(mark);
        return Err(CallFailure::Encode(e.to_string()));
    }
    Ok(())
}
