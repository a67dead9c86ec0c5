//! A correct program is silent under debug mode: no warning, no error.

use std::time::Duration;

use taskweave_core::{
    ReturnWhen, TaskGroup, as_completed, create_task, create_task_named, gather, gather_settled,
    shield, timeout, wait, wait_for,
};
use taskweave_debug::Debug;

use crate::capture::{self, warnings};

async fn compute(x: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(5)).await;
    x * x
}

#[test]
fn the_usual_combinators_produce_no_warning() {
    let _serial = capture::serial();
    let debug = Debug::new()
        .hang_after(Some(Duration::from_secs(2)))
        .build();
    crate::runtime(&debug)
        .run(async {
            let task = create_task(compute(6));
            assert_eq!(task.await.unwrap(), 36);

            let squares = gather((0..5).map(|x| create_task(compute(x))))
                .await
                .unwrap();
            assert_eq!(squares, vec![0, 1, 4, 9, 16]);

            let settled = gather_settled((0..3).map(|x| create_task(compute(x)))).await;
            assert!(settled.iter().all(Result::is_ok));

            let (done, pending) = wait(
                (0..3).map(|x| create_task(compute(x)).into_promise()),
                ReturnWhen::AllCompleted,
                None,
            )
            .await;
            assert_eq!((done.len(), pending.len()), (3, 0));
            for p in done {
                p.await.unwrap();
            }

            let mut stream = as_completed((0..3).map(|x| create_task(compute(x))));
            let mut n = 0;
            while let Some(r) = stream.next().await {
                r.unwrap();
                n += 1;
            }
            assert_eq!(n, 3);

            let slow = create_task_named("slow", tokio::time::sleep(Duration::from_secs(30)));
            assert!(
                wait_for(slow, Duration::from_millis(5))
                    .await
                    .unwrap_err()
                    .is_timeout()
            );
            assert!(
                timeout(
                    Duration::from_millis(5),
                    tokio::time::sleep(Duration::from_secs(30))
                )
                .await
                .is_err()
            );

            let shielded = shield(create_task(compute(2)));
            assert_eq!(shielded.await.unwrap(), 4);

            let group = TaskGroup::new();
            for x in 0..4 {
                let _ = group.spawn(async move { Ok::<_, std::io::Error>(compute(x).await) });
            }
            group.join().await.unwrap();

            let cancelled = create_task(tokio::time::sleep(Duration::from_secs(30)));
            cancelled.cancel_with("not needed");
            assert!(cancelled.await.unwrap_err().is_cancelled());

            create_task(compute(1)).detach();
            tokio::time::sleep(Duration::from_millis(20)).await;
        })
        .unwrap();
    assert!(warnings().is_empty(), "{:#?}", warnings());
}

#[test]
fn a_main_run_as_a_task_is_silent_too() {
    let _serial = capture::serial();
    let debug = Debug::new()
        .hang_after(Some(Duration::from_secs(2)))
        .build();
    crate::runtime(&debug)
        .run_task(async {
            let squares = gather((0..5).map(|x| create_task(compute(x))))
                .await
                .unwrap();
            assert_eq!(squares, vec![0, 1, 4, 9, 16]);
            let slow = create_task_named("slow", tokio::time::sleep(Duration::from_secs(30)));
            assert!(
                wait_for(slow, Duration::from_millis(5))
                    .await
                    .unwrap_err()
                    .is_timeout()
            );
            let group = TaskGroup::new();
            for x in 0..4 {
                let _ = group.spawn(async move { Ok::<_, std::io::Error>(compute(x).await) });
            }
            group.join().await.unwrap();
        })
        .unwrap();
    assert!(warnings().is_empty(), "{:#?}", warnings());
}
