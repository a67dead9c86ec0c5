//! Durable mode (JetStream work queue, at least once) with real workers.

use std::time::Duration;

use taskweave_nats::Mode;

use crate::{funcs, setup};

const LIMIT: Option<Duration> = Some(Duration::from_secs(20));

#[test]
fn durable_submit_returns_the_result() {
    let s = setup("dbasic", Mode::Durable, 1, 2);
    assert_eq!(s.nats.submit(funcs::square, 7).result(LIMIT).unwrap(), 49);
}
