//! Property tests: ordering and completeness of gather, as_completed and wait for any mix of
//! delays, values and errors.

use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;
use taskweave_core::{
    Error, ReturnWhen, Task, as_completed, create_task_try, gather, gather_settled, sleep, wait,
};

use crate::rt;

/// One generated job: how long it sleeps, its value, and whether it fails.
#[derive(Debug, Clone)]
struct Job {
    delay_ms: u64,
    value: u32,
    fails: bool,
}

fn job() -> impl Strategy<Value = Job> {
    (0u64..6, any::<u32>(), prop::bool::weighted(0.2)).prop_map(|(delay_ms, value, fails)| Job {
        delay_ms,
        value,
        fails,
    })
}

fn spawn(job: &Job) -> Task<u32> {
    let job = job.clone();
    create_task_try(async move {
        sleep(Duration::from_millis(job.delay_ms)).await;
        if job.fails {
            Err(Error::broken(format!("job {} failed", job.value)))
        } else {
            Ok(job.value)
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn gather_settled_is_in_input_order(jobs in prop::collection::vec(job(), 0..40)) {
        let outcomes = rt(async { gather_settled(jobs.iter().map(spawn).collect::<Vec<_>>()).await });
        prop_assert_eq!(outcomes.len(), jobs.len());
        for (job, out) in jobs.iter().zip(&outcomes) {
            match out {
                Ok(v) => { prop_assert!(!job.fails); prop_assert_eq!(*v, job.value); }
                Err(e) => { prop_assert!(job.fails); prop_assert!(e.to_string().contains(&job.value.to_string())); }
            }
        }
    }

    #[test]
    fn gather_is_in_input_order_or_reports_a_real_error(jobs in prop::collection::vec(job(), 0..40)) {
        let out = rt(async { gather(jobs.iter().map(spawn).collect::<Vec<_>>()).await });
        match out {
            Ok(values) => {
                prop_assert!(jobs.iter().all(|j| !j.fails));
                let expected: Vec<u32> = jobs.iter().map(|j| j.value).collect();
                prop_assert_eq!(values, expected);
            }
            Err(e) => {
                let failing: Vec<String> = jobs.iter().filter(|j| j.fails).map(|j| format!("job {} failed", j.value)).collect();
                prop_assert!(failing.iter().any(|m| e.to_string().contains(m.as_str())));
            }
        }
    }

    #[test]
    fn as_completed_yields_each_exactly_once(jobs in prop::collection::vec(job(), 0..40)) {
        let got = rt(async {
            let mut stream = as_completed(jobs.iter().map(spawn).collect::<Vec<_>>());
            let mut got = Vec::new();
            while let Some(out) = stream.next().await {
                got.push(out.map_err(|e| e.to_string()));
            }
            got
        });
        prop_assert_eq!(got.len(), jobs.len());
        let mut expected: Vec<Result<u32, String>> = jobs.iter().map(|j| if j.fails { Err(format!("executor is broken: job {} failed", j.value)) } else { Ok(j.value) }).collect();
        let mut got_sorted = got.clone();
        expected.sort();
        got_sorted.sort();
        prop_assert_eq!(got_sorted, expected);
    }

    #[test]
    fn wait_partitions_done_and_pending(
        jobs in prop::collection::vec(job(), 1..30),
        mode in prop::sample::select(vec![ReturnWhen::FirstCompleted, ReturnWhen::FirstException, ReturnWhen::AllCompleted]),
    ) {
        let (done_ids, pending_ids, done_states, pending_states, any_failed) = rt(async {
            let tasks: Vec<Task<u32>> = jobs.iter().map(spawn).collect();
            let ids: Vec<u64> = tasks.iter().map(|t| t.id().as_u64()).collect();
            let (done, pending) = wait(tasks, mode, None).await;
            let id = |p: &taskweave_core::Promise<u32>| p.info().unwrap().id().as_u64();
            let done_ids: Vec<u64> = done.iter().map(id).collect();
            let pending_ids: Vec<u64> = pending.iter().map(id).collect();
            let done_states: Vec<bool> = done.iter().map(|p| p.done()).collect();
            let any_failed = done.iter().any(|p| p.exception().is_some());
            let pending_states: Vec<bool> = pending.iter().map(|p| p.done()).collect();
            for p in &pending { p.cancel(); }
            let _ = ids;
            (done_ids, pending_ids, done_states, pending_states, any_failed)
        });
        // Every input appears exactly once, in one of the two sets, each in input order.
        let all: BTreeSet<u64> = done_ids.iter().chain(&pending_ids).copied().collect();
        prop_assert_eq!(all.len(), jobs.len());
        prop_assert!(done_ids.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(pending_ids.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(done_states.iter().all(|d| *d));
        let _ = pending_states; // pending ones may finish right after wait returned
        match mode {
            ReturnWhen::AllCompleted => prop_assert!(pending_ids.is_empty()),
            ReturnWhen::FirstCompleted => prop_assert!(!done_ids.is_empty()),
            ReturnWhen::FirstException => {
                prop_assert!(any_failed || pending_ids.is_empty());
            }
        }
    }
}
