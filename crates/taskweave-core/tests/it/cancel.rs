//! Cancellation of pending, running and finished work, with messages, and cancellation
//! propagating through awaits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use taskweave_core::{Error, Promise, State, create_task, shield, sleep, wait_for};

use crate::rt;

#[test]
fn cancel_pending_promise_succeeds_and_executor_skips_it() {
    let (mut p, r) = Promise::<u8>::pending();
    assert!(p.cancel());
    assert!(p.cancelled());
    assert_eq!(p.state(), State::Cancelled);
    assert!(!r.set_running());
    r.set_result(1); // ignored: already cancelled
    assert!(p.result(None).unwrap_err().is_cancelled());
}

#[test]
fn cancel_running_executor_work_is_refused() {
    let (mut p, r) = Promise::<u8>::pending();
    assert!(r.set_running());
    assert!(!p.cancel());
    r.set_result(3);
    assert_eq!(p.result(None).unwrap(), 3);
}

#[test]
fn cancel_finished_returns_false() {
    let (p, r) = Promise::<u8>::pending();
    r.set_result(1);
    assert!(!p.cancel());
    assert_eq!(p.state(), State::Finished);
}

#[test]
fn cancel_running_task_with_message() {
    rt(async {
        let dropped = Arc::new(AtomicBool::new(false));
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let flag = Flag(dropped.clone());
        let task = create_task(async move {
            let _flag = flag;
            sleep(Duration::from_secs(60)).await;
        });
        sleep(Duration::from_millis(5)).await;
        assert!(task.cancel_with("enough"));
        match task.await {
            Err(e) if e.is_cancelled() => assert_eq!(e.cancel_message(), Some("enough")),
            other => panic!("expected cancellation, got {other:?}"),
        }
        assert!(
            dropped.load(Ordering::SeqCst),
            "the task's future was dropped"
        );
    });
}

#[test]
fn cancel_finished_task_returns_false_and_keeps_value() {
    rt(async {
        let task = create_task(async { 9 });
        while !task.done() {
            sleep(Duration::from_millis(1)).await;
        }
        assert!(!task.cancel_with("late"));
        assert!(!task.cancelled());
        assert_eq!(task.await.unwrap(), 9);
    });
}

#[test]
fn wait_for_cancels_the_inner_task() {
    rt(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = create_task(async move {
            let _keep = tx;
            sleep(Duration::from_secs(60)).await;
        });
        let err = wait_for(task, Duration::from_millis(10)).await.unwrap_err();
        assert!(err.is_timeout());
        // The task was cancelled: its sender is dropped, so the receiver errors out.
        assert!(rx.await.is_err());
    });
}

#[test]
fn shield_keeps_the_task_running_past_a_timeout() {
    rt(async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = create_task(async move {
            sleep(Duration::from_millis(30)).await;
            tx.send("done").unwrap();
        });
        assert!(
            wait_for(shield(task), Duration::from_millis(1))
                .await
                .unwrap_err()
                .is_timeout()
        );
        assert_eq!(rx.await.unwrap(), "done");
    });
}

#[test]
fn dropping_an_await_cancels_a_pending_promise() {
    let (p, r) = Promise::<u8>::pending();
    let fut = std::future::IntoFuture::into_future(p);
    drop(fut);
    assert!(!r.set_running(), "the executor sees the cancellation");
}

#[test]
fn tasks_and_promises_cancel_and_take_callbacks_the_same_way() {
    rt(async {
        // The same two calls, the same answers, on both kinds.
        let plain = taskweave_core::create_task(std::future::pending::<u32>());
        let with_message = taskweave_core::create_task(std::future::pending::<u32>());
        let (promise, _resolver) = taskweave_core::Promise::<u32>::pending();
        let (promise_with_message, _r2) = taskweave_core::Promise::<u32>::pending();
        assert!(plain.cancel());
        assert!(promise.cancel());
        assert!(with_message.cancel_with("enough"));
        assert!(promise_with_message.cancel_with("enough"));

        // Callbacks go through a shared reference on both, with the same argument.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let watch_task = |t: &taskweave_core::Task<u32>, tx: std::sync::mpsc::Sender<String>| {
            t.add_done_callback(move |r: &Result<u32, Error>| {
                let _ = tx.send(r.as_ref().unwrap_err().to_string());
            });
        };
        let watch_promise = |p: &taskweave_core::Promise<u32>,
                             tx: std::sync::mpsc::Sender<String>| {
            p.add_done_callback(move |r: &Result<u32, Error>| {
                let _ = tx.send(r.as_ref().unwrap_err().to_string());
            });
        };
        watch_task(&with_message, tx.clone());
        watch_promise(&promise_with_message, tx);

        fn timed<F: std::future::IntoFuture>(f: F) -> tokio::time::Timeout<F::IntoFuture> {
            tokio::time::timeout(Duration::from_secs(10), f.into_future())
        }
        assert!(timed(plain).await.unwrap().unwrap_err().is_cancelled());
        assert!(timed(promise).await.unwrap().unwrap_err().is_cancelled());
        let task_error = timed(with_message).await.unwrap().unwrap_err();
        assert_eq!(task_error.to_string(), "cancelled: enough");
        let promise_error = timed(promise_with_message).await.unwrap().unwrap_err();
        assert_eq!(promise_error.to_string(), "cancelled: enough");
        let mut seen: Vec<String> = (0..2)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        seen.sort();
        assert_eq!(seen, ["cancelled: enough", "cancelled: enough"]);
    });
}
