//! Error chains: each cause is printed once by a printer that walks `source()`.

use std::error::Error as _;
use std::fmt;

use taskweave_core::Error;

#[derive(Debug)]
struct ConfigError(std::io::Error);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot read the configuration")
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn chain(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut levels = Vec::new();
    let mut level = Some(err);
    while let Some(e) = level {
        levels.push(e.to_string());
        level = e.source();
    }
    levels
}

#[test]
fn a_failed_error_shows_each_cause_once_in_a_chain_walk() {
    let inner = ConfigError(std::io::Error::other("disk full"));
    let err = Error::failed(inner);
    assert_eq!(
        chain(&err),
        vec![
            "cannot read the configuration".to_owned(),
            "disk full".to_owned()
        ]
    );

    let plain = Error::failed(std::io::Error::other("no network"));
    assert_eq!(chain(&plain), vec!["no network".to_owned()]);
    // The inner error stays reachable by matching.
    let Error::Failed(e) = &plain else {
        panic!("expected Failed")
    };
    assert!(e.downcast_ref::<std::io::Error>().is_some());
    assert!(plain.source().is_none());
}
