//! TaskGroup: all succeed together, or the first failure cancels the rest and all failures
//! are reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use taskweave_core::{Error, TaskGroup, sleep, timeout};

use crate::rt;

#[test]
fn group_joins_all_successes() {
    rt(async {
        let group = TaskGroup::new();
        let handles: Vec<_> = (0..10u32)
            .map(|i| {
                group.spawn(async move {
                    sleep(Duration::from_millis(u64::from(i))).await;
                    Ok::<_, Error>(i * 2)
                })
            })
            .collect();
        group.join().await.unwrap();
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        assert_eq!(sum, 90);
    });
}

#[test]
fn first_failure_cancels_siblings_and_all_failures_are_reported() {
    rt(async {
        let group = TaskGroup::new();
        let sleeper = group.spawn(async {
            sleep(Duration::from_secs(60)).await;
            Ok::<_, Error>(())
        });
        group.spawn(async {
            sleep(Duration::from_millis(5)).await;
            Err::<(), _>(std::io::Error::other("first"))
        });
        // Fails in the same instant as the first, so it cannot be cancelled in time.
        group.spawn_named("second", async {
            sleep(Duration::from_millis(5)).await;
            std::thread::sleep(Duration::from_millis(20));
            Err::<(), _>(std::io::Error::other("second"))
        });
        let err = group.join().await.unwrap_err();
        let Error::Group { errors } = &err else {
            panic!("expected a group error, got {err:?}")
        };
        assert!(!errors.is_empty());
        assert!(errors.iter().all(|e| !e.is_cancelled()));
        assert!(err.to_string().contains("first"));
        assert!(sleeper.await.unwrap_err().is_cancelled());
    });
}

#[test]
fn panics_in_group_tasks_are_failures() {
    rt(async {
        let group = TaskGroup::new();
        group.spawn(async {
            if true {
                panic!("in group");
            }
            Ok::<(), Error>(())
        });
        let err = group.join().await.unwrap_err();
        assert!(err.to_string().contains("in group"));
    });
}

#[test]
fn dropping_the_group_cancels_its_tasks() {
    rt(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let group = TaskGroup::new();
        group.spawn(async move {
            let _keep = tx;
            sleep(Duration::from_secs(60)).await;
            Ok::<_, Error>(())
        });
        drop(group);
        assert!(rx.await.is_err());
    });
}

#[test]
fn spawning_into_a_failed_group_cancels_at_once() {
    rt(async {
        let group = TaskGroup::new();
        group.spawn(async { Err::<(), _>(Error::broken("down")) });
        sleep(Duration::from_millis(10)).await;
        let late = group.spawn(async {
            sleep(Duration::from_secs(60)).await;
            Ok::<_, Error>(())
        });
        assert!(late.await.unwrap_err().is_cancelled());
        assert!(group.join().await.is_err());
    });
}

#[test]
fn tasks_spawned_after_the_group_failed_never_run_their_body() {
    rt(async {
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..200 {
            let group = TaskGroup::new();
            let failing = group.spawn(async { Err::<(), _>(Error::broken("down")) });
            // The group's own watch runs before the failure becomes visible here.
            assert!(failing.await.is_err());
            let late: Vec<_> = (0..5)
                .map(|_| {
                    let ran = ran.clone();
                    group.spawn(async move {
                        ran.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, Error>(())
                    })
                })
                .collect();
            for t in late {
                assert!(t.await.unwrap_err().is_cancelled());
            }
            assert!(group.join().await.is_err());
        }
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn siblings_not_yet_started_when_the_group_fails_never_run_their_body() {
    // One worker: the failing task runs first and the siblings queued behind it are cancelled
    // before their first poll.
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    taskweave_core::Runtime::builder()
        .worker_threads(1)
        .build()
        .unwrap()
        .run(async move {
            let group = TaskGroup::new();
            group.spawn(async { Err::<(), _>(Error::broken("down")) });
            for _ in 0..20 {
                let ran = counter.clone();
                group.spawn(async move {
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Error>(())
                });
            }
            assert!(group.join().await.is_err());
        })
        .unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn a_child_failure_leaves_the_group_body_running_until_join() {
    rt(async {
        let group = TaskGroup::new();
        group.spawn(async { Err::<(), _>(Error::broken("down")) });
        // The body's own await is not interrupted by the failure...
        sleep(Duration::from_millis(20)).await;
        assert!(group.failed());
        let own = timeout(Duration::from_secs(5), async { "body went on" }).await;
        assert_eq!(own.unwrap(), "body went on");
        // ...join is where the body learns of it.
        let err = group.join().await.unwrap_err();
        assert!(err.to_string().contains("down"), "{err}");
    });
}
