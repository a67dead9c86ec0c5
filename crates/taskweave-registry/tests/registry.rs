//! The registry through the `#[remote]` attribute: lookup by name and by pointer, calls through
//! the trampoline, and the refusals (unknown name, signature mismatch, not registered).

use taskweave_registry::{CallFailure, RegistryError, Signature, by_fn, by_nullary_fn, lookup};

#[taskweave_macros::remote(crate = taskweave_registry)]
fn square(x: u64) -> u64 {
    x * x
}

#[taskweave_macros::remote(crate = taskweave_registry, name = "tests::pair")]
fn pair((a, b): (u32, String)) -> Vec<String> {
    vec![a.to_string(), b]
}

#[taskweave_macros::remote(crate = taskweave_registry, name = "tests::nothing")]
fn nothing(_: ()) {}

#[taskweave_macros::remote(crate = taskweave_registry, name = "tests::generic_arg")]
fn generic_arg(map: std::collections::BTreeMap<u8, Vec<(u8, u8)>>) -> usize {
    map.len()
}

#[taskweave_macros::remote(crate = taskweave_registry, name = "tests::no_argument")]
fn no_argument() -> String {
    "none needed".to_owned()
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).unwrap()
}

#[test]
fn default_name_is_module_path_and_function() {
    let entry = lookup("registry::square").unwrap();
    assert_eq!(entry.name(), "registry::square");
    let out = entry.call(&encode(&12u64)).unwrap();
    assert_eq!(postcard::from_bytes::<u64>(&out).unwrap(), 144);
    assert_eq!(square(2), 4);
}

#[test]
fn tuple_unit_and_generic_types_are_carried() {
    let out = lookup("tests::pair")
        .unwrap()
        .call(&encode(&(7u32, "x".to_owned())))
        .unwrap();
    assert_eq!(
        postcard::from_bytes::<Vec<String>>(&out).unwrap(),
        ["7", "x"]
    );
    let out = lookup("tests::nothing")
        .unwrap()
        .call(&encode(&()))
        .unwrap();
    postcard::from_bytes::<()>(&out).unwrap();
    nothing(());
    let sig = lookup("tests::generic_arg").unwrap().signature();
    assert!(sig.argument.contains("BTreeMap"), "{sig}");
    assert_eq!(generic_arg(Default::default()), 0);
    assert_eq!(pair((1, "a".into())).len(), 2);
}

#[test]
fn lookup_by_pointer_finds_the_registered_entry_only() {
    assert_eq!(
        by_fn(square as fn(u64) -> u64).unwrap().name(),
        "registry::square"
    );
    fn not_remote(x: u64) -> u64 {
        x + 1
    }
    let err = by_fn(not_remote as fn(u64) -> u64).unwrap_err();
    assert!(matches!(err, RegistryError::NotRegistered { .. }));
    assert!(err.to_string().contains("fn(u64) -> u64"), "{err}");
    assert_eq!(not_remote(1), 2);
}

#[test]
fn unknown_name_names_the_name_and_the_program() {
    let err = lookup("nowhere::to_be_found").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("nowhere::to_be_found"), "{text}");
    assert!(text.contains("registry"), "names the program: {text}");
}

#[test]
fn signature_mismatch_names_both_sides() {
    let entry = lookup("registry::square").unwrap();
    let err = entry.check(&Signature::of::<String, u64>()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("fn(alloc::string::String) -> u64"), "{text}");
    assert!(text.contains("fn(u64) -> u64"), "{text}");
    assert!(text.contains("registry::square"), "{text}");
    entry.check(&Signature::of::<u64, u64>()).unwrap();
}

#[test]
fn bad_argument_bytes_and_panics_are_failures_not_crashes() {
    #[taskweave_macros::remote(crate = taskweave_registry, name = "tests::panics")]
    fn panics(x: u8) -> u8 {
        if x > 0 {
            panic!("asked to panic with {x}");
        }
        x
    }
    let entry = lookup("tests::panics").unwrap();
    assert_eq!(
        entry.call(&encode(&3u8)),
        Err(CallFailure::Panicked("asked to panic with 3".into()))
    );
    assert!(matches!(entry.call(&[]), Err(CallFailure::Decode(_))));
    assert_eq!(panics(0), 0);
}

#[test]
fn signature_hash_is_stable_and_distinguishes_types() {
    let a = Signature::of::<u64, u64>();
    // A fixed value: the hash crosses machines, so it must not change between builds.
    assert_eq!(a.hash, taskweave_registry::signature_hash("u64", "u64"));
    assert_ne!(a.hash, Signature::of::<u64, u32>().hash);
    assert_ne!(
        taskweave_registry::signature_hash("ab", "c"),
        taskweave_registry::signature_hash("a", "bc")
    );
}

#[test]
fn a_function_without_argument_travels_with_unit() {
    let entry = lookup("tests::no_argument").unwrap();
    assert_eq!(entry.signature(), Signature::of::<(), String>());
    let out = entry.call(&encode(&())).unwrap();
    assert_eq!(postcard::from_bytes::<String>(&out).unwrap(), "none needed");
    // Found by its pointer, and told apart from a `fn(()) -> R` of the same signature.
    assert_eq!(
        by_nullary_fn(no_argument as fn() -> String).unwrap().name(),
        "tests::no_argument"
    );
    assert!(matches!(
        by_nullary_fn(|| "a closure".to_owned()),
        Err(RegistryError::NotRegistered { signature }) if signature == "fn() -> alloc::string::String"
    ));
    assert_eq!(no_argument(), "none needed");
}
