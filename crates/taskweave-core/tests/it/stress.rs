//! Stress: many tasks, many cancellations, many cross-thread completions.

use std::time::Duration;

use taskweave_core::{Promise, create_task, gather, sleep};

use crate::rt;

#[test]
fn ten_thousand_tasks_gathered() {
    let out = rt(async {
        let tasks = (0..10_000u64).map(|i| {
            create_task(async move {
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
                i
            })
        });
        gather(tasks.collect::<Vec<_>>()).await.unwrap()
    });
    assert_eq!(out.len(), 10_000);
    assert!(out.iter().enumerate().all(|(i, v)| i as u64 == *v));
}

#[test]
fn cancel_races_completion_without_losing_outcomes() {
    rt(async {
        let tasks: Vec<_> = (0..2_000u32)
            .map(|i| {
                create_task(async move {
                    if i % 2 == 0 {
                        sleep(Duration::from_micros(u64::from(i % 50))).await;
                    }
                    i
                })
            })
            .collect();
        for t in tasks.iter().step_by(3) {
            t.cancel_with("race");
        }
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await {
                Ok(v) => assert_eq!(v as usize, i),
                Err(e) => assert!(e.is_cancelled(), "unexpected {e:?}"),
            }
        }
    });
}

#[test]
fn promises_completed_from_many_threads() {
    let (promises, resolvers): (Vec<_>, Vec<_>) =
        (0..1_000u32).map(|_| Promise::<u32>::pending()).unzip();
    let mut per_thread: Vec<Vec<(u32, taskweave_core::Resolver<u32>)>> =
        (0..4).map(|_| Vec::new()).collect();
    for (i, r) in resolvers.into_iter().enumerate() {
        per_thread[i % 4].push((i as u32, r));
    }
    let out = rt(async move {
        let producers: Vec<_> = per_thread
            .into_iter()
            .map(|batch| {
                std::thread::spawn(move || {
                    for (i, r) in batch {
                        r.set_result(i);
                    }
                })
            })
            .collect();
        let values = gather(promises).await.unwrap();
        for p in producers {
            p.join().unwrap();
        }
        values
    });
    assert_eq!(out, (0..1_000).collect::<Vec<u32>>());
}
