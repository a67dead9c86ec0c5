//! gather, wait, as_completed, timeouts.

use std::time::Duration;

use taskweave_core::{
    Error, Promise, ReturnWhen, as_completed, create_task, create_task_try, gather, gather_settled,
    sleep, timeout, wait,
};

use crate::rt;

fn delayed(ms: u64, v: u32) -> taskweave_core::Task<u32> {
    create_task(async move {
        sleep(Duration::from_millis(ms)).await;
        v
    })
}

#[test]
fn gather_keeps_input_order() {
    rt(async {
        let tasks = [30, 5, 20, 1]
            .into_iter()
            .zip(0..)
            .map(|(ms, v)| delayed(ms, v));
        assert_eq!(gather(tasks).await.unwrap(), vec![0, 1, 2, 3]);
    });
}

#[test]
fn gather_of_nothing_is_empty() {
    rt(async {
        let none: Vec<taskweave_core::Task<u8>> = Vec::new();
        assert!(gather(none).await.unwrap().is_empty());
    });
}

#[test]
fn gather_fails_fast_and_cancels_the_rest() {
    rt(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let slow = create_task_try(async move {
            let _keep = tx;
            sleep(Duration::from_secs(60)).await;
            Ok::<u32, Error>(1)
        });
        let bad = create_task_try(async {
            sleep(Duration::from_millis(5)).await;
            Err::<u32, _>(std::io::Error::other("broken pipe"))
        });
        let started = std::time::Instant::now();
        let err = gather([slow, bad]).await.unwrap_err();
        assert!(err.to_string().contains("broken pipe"));
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(rx.await.is_err(), "the slow task was cancelled");
    });
}

#[test]
fn gather_settled_keeps_every_outcome() {
    rt(async {
        let a = create_task_try(async { Ok::<u32, Error>(1) });
        let b = create_task_try(async { Err::<u32, _>(Error::broken("x")) });
        let c = create_task_try(async { Ok::<u32, Error>(3) });
        let all = gather_settled([a, b, c]).await;
        assert_eq!(all.len(), 3);
        assert_eq!(*all[0].as_ref().unwrap(), 1);
        assert!(all[1].is_err());
        assert_eq!(*all[2].as_ref().unwrap(), 3);
    });
}

#[test]
fn gather_macro_mixes_types() {
    rt(async {
        let a = create_task(async { "text" });
        let b = create_task(async { 5u8 });
        let (x, y) = taskweave_core::gather!(a, b).unwrap();
        assert_eq!((x, y), ("text", 5));
    });
}

#[test]
fn wait_first_completed() {
    rt(async {
        let tasks = vec![delayed(200, 0), delayed(1, 1), delayed(300, 2)];
        let (done, pending) = wait(tasks, ReturnWhen::FirstCompleted, None).await;
        assert_eq!(done.len(), 1);
        assert_eq!(pending.len(), 2);
        assert!(done[0].done());
        for p in &pending {
            assert!(!p.done());
            p.cancel();
        }
        let mut d = done;
        assert_eq!(d.pop().unwrap().await.unwrap(), 1);
    });
}

#[test]
fn wait_first_exception_stops_at_the_error() {
    rt(async {
        let ok = create_task_try(async { Ok::<u32, Error>(1) });
        let bad = create_task_try(async {
            sleep(Duration::from_millis(5)).await;
            Err::<u32, _>(Error::broken("boom"))
        });
        let slow = create_task_try(async {
            sleep(Duration::from_secs(60)).await;
            Ok::<u32, Error>(3)
        });
        let (done, pending) = wait([ok, bad, slow], ReturnWhen::FirstException, None).await;
        assert_eq!(done.len(), 2);
        assert_eq!(pending.len(), 1);
        assert!(done.iter().any(|p| p.exception().is_some()));
        pending[0].cancel();
    });
}

#[test]
fn wait_all_with_timeout_returns_what_is_done() {
    rt(async {
        let tasks = vec![delayed(1, 0), delayed(10_000, 1)];
        let (done, pending) = wait(
            tasks,
            ReturnWhen::AllCompleted,
            Some(Duration::from_millis(50)),
        )
        .await;
        assert_eq!((done.len(), pending.len()), (1, 1));
        pending[0].cancel();
    });
}

#[test]
fn wait_takes_plain_promises_from_threads() {
    rt(async {
        let (p, r) = Promise::<u8>::pending();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            r.set_result(2);
        });
        let (done, pending) = wait([p], ReturnWhen::AllCompleted, None).await;
        assert!(pending.is_empty());
        let mut done = done;
        assert_eq!(done.pop().unwrap().await.unwrap(), 2);
    });
}

#[test]
fn as_completed_yields_in_completion_order() {
    rt(async {
        let tasks = [40u64, 1, 20].map(|ms| delayed(ms, ms as u32));
        let mut stream = as_completed(tasks);
        let mut got = Vec::new();
        while let Some(v) = stream.next().await {
            got.push(v.unwrap());
        }
        assert_eq!(got, vec![1, 20, 40]);
        assert!(stream.is_empty());
    });
}

#[test]
fn timeout_scope_errors_and_passes() {
    rt(async {
        let err = timeout(Duration::from_millis(5), sleep(Duration::from_secs(60))).await;
        assert!(matches!(err, Err(Error::TimedOut { .. })));
        let ok = timeout(Duration::from_secs(5), async { 3 }).await;
        assert_eq!(ok.unwrap(), 3);
    });
}

#[test]
fn first_exception_counts_a_cancelled_member_as_completed() {
    rt(async {
        let (cancelled, _resolver) = Promise::<u32>::pending();
        assert!(cancelled.cancel());
        let slow = delayed(30, 1).into_promise();
        let (done, pending) = wait(
            [cancelled, slow],
            ReturnWhen::FirstException,
            Some(Duration::from_secs(5)),
        )
        .await;
        assert_eq!((done.len(), pending.len()), (2, 0));

        // A real error still returns at once.
        let failing = create_task_try(async { Err::<u32, _>(std::io::Error::other("bad")) });
        let sleeper = delayed(60_000, 2);
        let (done, pending) = wait(
            [failing, sleeper],
            ReturnWhen::FirstException,
            Some(Duration::from_secs(5)),
        )
        .await;
        assert_eq!((done.len(), pending.len()), (1, 1));
        pending[0].cancel();
    });
}
