//! Two functions registered under one name: every lookup fails with an error naming both places.
//! A test binary of its own, because the duplicate poisons the whole table of its program.

mod first {
    #[taskweave_macros::remote(crate = taskweave_registry, name = "dup::twice")]
    pub(crate) fn twice(x: u8) -> u8 {
        x
    }
}

mod second {
    #[taskweave_macros::remote(crate = taskweave_registry, name = "dup::twice")]
    pub(crate) fn twice(x: u8) -> u8 {
        x + 1
    }
}

#[test]
fn duplicate_names_are_refused_at_first_use_naming_both_definitions() {
    for name in ["dup::twice", "anything::else"] {
        let err = taskweave_registry::lookup(name).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, taskweave_registry::RegistryError::Duplicate { .. }),
            "{text}"
        );
        assert!(text.contains("dup::twice"), "{text}");
        assert_eq!(text.matches("duplicate.rs:").count(), 2, "{text}");
    }
    assert!(taskweave_registry::all().is_err());
    assert_eq!(first::twice(1) + second::twice(1), 3);
}
