//! Deadlines (`wait_for`, `timeout`, `timeout_at`) at their edges: a deadline already past,
//! nested scopes with one deadline, tasks that must have finished before a timeout is reported,
//! and durations too large for the clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use taskweave_core::{
    Error, Promise, ReturnWhen, TaskGroup, create_task, create_task_try, sleep, timeout,
    timeout_at, wait, wait_for,
};

use crate::rt;

/// Sets its flag when dropped, after a pause long enough that a caller who does not wait for
/// the drop sees the flag still unset.
struct SlowDrop(Arc<AtomicBool>);

impl Drop for SlowDrop {
    fn drop(&mut self) {
        std::thread::sleep(Duration::from_millis(50));
        self.0.store(true, Ordering::SeqCst);
    }
}

async fn sleeps_with_slow_drop(flag: Arc<AtomicBool>) -> Result<(), Error> {
    let _guard = SlowDrop(flag);
    sleep(Duration::from_secs(30)).await;
    Ok(())
}

#[test]
fn wait_for_a_task_returns_only_after_the_cancelled_task_finished() {
    rt(async {
        let dropped = Arc::new(AtomicBool::new(false));
        let task = create_task_try(sleeps_with_slow_drop(dropped.clone()));
        sleep(Duration::from_millis(5)).await;
        let err = wait_for(task, Duration::from_millis(10)).await.unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(
            dropped.load(Ordering::SeqCst),
            "the task's destructors had not run yet"
        );
    });
}

#[test]
fn wait_for_a_promise_backed_task_returns_only_after_it_finished() {
    rt(async {
        let dropped = Arc::new(AtomicBool::new(false));
        let promise: Promise<()> =
            create_task_try(sleeps_with_slow_drop(dropped.clone())).into_promise();
        sleep(Duration::from_millis(5)).await;
        let err = wait_for(promise, Duration::from_millis(10))
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(
            dropped.load(Ordering::SeqCst),
            "the task's destructors had not run yet"
        );
    });
}

#[test]
fn timeout_around_an_await_of_a_task_waits_for_that_task_too() {
    rt(async {
        let dropped = Arc::new(AtomicBool::new(false));
        let task = create_task_try(sleeps_with_slow_drop(dropped.clone()));
        let out = timeout(Duration::from_millis(10), async move { task.await }).await;
        assert!(out.unwrap_err().is_timeout());
        assert!(
            dropped.load(Ordering::SeqCst),
            "the task's destructors had not run yet"
        );
    });
}

#[test]
fn wait_for_running_thread_work_does_not_wait_for_what_cannot_be_stopped() {
    rt(async {
        let (promise, resolver) = Promise::<u8>::pending();
        assert!(resolver.set_running());
        let started = Instant::now();
        let err = wait_for(promise, Duration::from_millis(10))
            .await
            .unwrap_err();
        assert!(err.is_timeout());
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(resolver);
    });
}

#[test]
fn a_zero_or_past_deadline_never_polls_the_future() {
    rt(async {
        let polled = Arc::new(AtomicUsize::new(0));
        let probe = |polled: &Arc<AtomicUsize>| {
            let polled = polled.clone();
            async move {
                polled.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Error>(1)
            }
        };
        let err = wait_for(probe(&polled), Duration::ZERO).await.unwrap_err();
        assert!(err.is_timeout(), "{err}");
        let err = timeout(Duration::ZERO, probe(&polled)).await.unwrap_err();
        assert!(err.is_timeout(), "{err}");
        let past = Instant::now();
        sleep(Duration::from_millis(2)).await;
        let err = timeout_at(past, probe(&polled)).await.unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert_eq!(polled.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn nested_scopes_with_one_deadline_time_out_only_the_outermost() {
    rt(async {
        let deadline = Instant::now() + Duration::from_millis(20);
        let inner_cancelled = Arc::new(AtomicBool::new(false));
        let ran_on = Arc::new(AtomicBool::new(false));
        let (cancelled, after) = (inner_cancelled.clone(), ran_on.clone());
        let out = timeout_at(deadline, async move {
            let inner = timeout_at(deadline, async move {
                struct OnDrop(Arc<AtomicBool>);
                impl Drop for OnDrop {
                    fn drop(&mut self) {
                        self.0.store(true, Ordering::SeqCst);
                    }
                }
                let _cancelled = OnDrop(cancelled);
                sleep(Duration::from_secs(10)).await;
            })
            .await;
            // Past the outer deadline: this must never run.
            after.store(true, Ordering::SeqCst);
            inner
        })
        .await;
        assert!(
            matches!(out, Err(Error::TimedOut { .. })),
            "the outer scope must report the timeout, got {out:?}"
        );
        assert!(inner_cancelled.load(Ordering::SeqCst));
        assert!(!ran_on.load(Ordering::SeqCst));
    });
}

#[test]
fn an_inner_scope_with_an_earlier_deadline_still_reports_its_own_timeout() {
    rt(async {
        let out = timeout(Duration::from_secs(10), async {
            let inner = timeout(Duration::from_millis(5), sleep(Duration::from_secs(10))).await;
            (inner.is_err(), "went on")
        })
        .await;
        assert_eq!(out.unwrap(), (true, "went on"));
    });
}

#[test]
fn durations_too_large_for_the_clock_mean_no_deadline() {
    let (mut promise, resolver) = Promise::<u8>::pending();
    resolver.set_result(4);
    assert_eq!(promise.result(Some(Duration::MAX)).unwrap(), 4);

    let runtime = taskweave_core::Runtime::builder()
        .worker_threads(2)
        .build()
        .unwrap();
    let mut task = {
        let _enter = runtime.handle().enter();
        create_task(async { 5 })
    };
    assert_eq!(task.result(Some(Duration::MAX)).unwrap(), 5);
    drop(runtime);

    rt(async {
        assert_eq!(wait_for(async { Ok(6) }, Duration::MAX).await.unwrap(), 6);
        assert_eq!(timeout(Duration::MAX, async { 7 }).await.unwrap(), 7);
        let (done, pending) = wait(
            [create_task(async { 8 })],
            ReturnWhen::AllCompleted,
            Some(Duration::MAX),
        )
        .await;
        assert_eq!((done.len(), pending.len()), (1, 0));
        let group = TaskGroup::new();
        let member = group.spawn(async { Ok::<_, Error>(9) });
        group.join().await.unwrap();
        assert_eq!(wait_for(member, Duration::MAX).await.unwrap(), 9);
    });
}

#[test]
fn a_deadline_around_join_waits_for_the_cancelled_members() {
    rt(async {
        let dropped = Arc::new(AtomicBool::new(false));
        let group = TaskGroup::new();
        group.spawn(sleeps_with_slow_drop(dropped.clone()));
        sleep(Duration::from_millis(5)).await;
        let out = timeout(Duration::from_millis(10), group.join()).await;
        assert!(out.unwrap_err().is_timeout());
        assert!(
            dropped.load(Ordering::SeqCst),
            "the member's destructors had not run yet"
        );
    });
}

#[test]
fn an_outer_deadline_takes_over_waiting_for_what_an_inner_one_cancelled() {
    rt(async {
        struct SlowerDrop(Arc<AtomicBool>);
        impl Drop for SlowerDrop {
            fn drop(&mut self) {
                std::thread::sleep(Duration::from_millis(150));
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = dropped.clone();
        let task = create_task(async move {
            let _guard = SlowerDrop(flag);
            sleep(Duration::from_secs(30)).await;
        });
        sleep(Duration::from_millis(5)).await;
        // The inner deadline expires first and waits for the task; the outer one expires while
        // it waits and must not return before the task has finished either.
        let out = timeout(Duration::from_millis(40), async move {
            wait_for(task, Duration::from_millis(5)).await
        })
        .await;
        assert!(out.is_err(), "{out:?}");
        assert!(
            dropped.load(Ordering::SeqCst),
            "the task's destructors had not run yet"
        );
    });
}
