//! Debug logs: spawn, completion, failure and cancellation at DEBUG level.

use std::time::Duration;

use taskweave_core::{create_task_named, create_task_try};
use taskweave_debug::{Debug, TARGET};
use tracing::Level;

use crate::capture::{self, of_kind};

#[test]
fn task_lifecycle_is_logged_at_debug() {
    let _serial = capture::serial();
    let debug = Debug::new().build();
    crate::runtime(&debug)
        .run(async {
            create_task_named("worker", async {
                tokio::time::sleep(Duration::from_millis(5)).await;
            })
            .await
            .unwrap();
            let failing = create_task_try(async { Err::<(), _>(std::io::Error::other("nope")) });
            assert!(failing.await.is_err());
            let long = create_task_named("long", tokio::time::sleep(Duration::from_secs(60)));
            tokio::time::sleep(Duration::from_millis(5)).await;
            long.cancel_with("enough");
            assert!(long.await.unwrap_err().is_cancelled());
        })
        .unwrap();
    let spawned = of_kind("spawn");
    assert_eq!(spawned.len(), 3, "{spawned:?}");
    assert!(
        spawned
            .iter()
            .all(|e| e.level == Level::DEBUG && e.target == TARGET)
    );
    assert!(spawned[0].message.starts_with("<Task name='worker' id="));
    assert!(spawned[0].message.ends_with(" created"));

    let finished = of_kind("finished");
    assert_eq!(finished.len(), 1);
    assert!(
        finished[0].message.contains("finished after"),
        "{}",
        finished[0].message
    );
    assert_eq!(finished[0].field("polls"), Some("2"));

    let failed = of_kind("failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].field("error"), Some("nope"));

    let cancelled = of_kind("cancelled");
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].field("task.name"), Some("long"));
}
