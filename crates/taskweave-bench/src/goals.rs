//! The goals: for each (case, baseline), the ratio (ours / theirs) that the project aims to stay
//! at or under (or, for a speedup, at or over). Printed beside the measured ratio; never
//! asserted, since numbers depend on the machine. They are the targets the project set for each
//! case.

/// What a row's ratio should be.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Goal {
    /// At most this (a cost: lower is better).
    AtMost(f64),
    /// At least this (a speedup: higher is better).
    AtLeast(f64),
}

impl Goal {
    /// Whether `ratio` meets the goal.
    pub(crate) fn met(self, ratio: f64) -> bool {
        match self {
            Goal::AtMost(g) => ratio <= g,
            Goal::AtLeast(g) => ratio >= g,
        }
    }
}

impl std::fmt::Display for Goal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Goal::AtMost(g) => write!(f, "<= {g}"),
            Goal::AtLeast(g) => write!(f, ">= {g}"),
        }
    }
}

/// Rows whose ratio is a speedup over a ceiling: (case, baseline, lowest acceptable ratio).
const AT_LEAST: &[(&str, &str, f64)] = &[
    // The pool's speedup on CPU-bound work within 3% of bare processes doing the same split.
    ("process_cpu_map", "ceiling", 0.97),
];

/// (case, baseline, highest acceptable ratio).
const GOALS: &[(&str, &str, f64)] = &[
    // tasks: task create + await and gather within 1.2x of raw tokio; 10x (create + await) and
    // 20x (gather) faster than asyncio.
    ("task_spawn_await", "tokio", 1.2),
    ("task_spawn_await", "python", 0.1),
    ("task_spawn_await_ct", "tokio", 1.2),
    ("task_spawn_await_ct", "python", 0.1),
    // The main future as fast as a task: create + await from `run`'s future within 0.15 of
    // asyncio's loop in its main coroutine.
    ("task_spawn_await_main", "python", 0.15),
    ("gather_100k", "tokio", 1.2),
    ("gather_100k", "python", 0.05),
    ("gather_100k_ct", "tokio", 1.2),
    ("gather_100k_ct", "python", 0.05),
    // threads: a to_thread / run_in_executor round trip within 1.5x of spawn_blocking and 10x
    // faster than asyncio's run_in_executor; the thread map 10x faster than Python's.
    ("to_thread_rtt", "tokio", 1.5),
    ("to_thread_rtt", "python", 0.1),
    ("thread_inflight_64", "python", 0.1),
    ("thread_map_100k", "python", 0.1),
    // process: a round trip within 3x of a bare pipe ping-pong; against ProcessPoolExecutor
    // (fork start, 2 workers). process_cpu_map is a speedup: its goal is in AT_LEAST.
    ("process_rtt", "pipe", 3.0),
    ("process_rtt", "python", 0.15),
    ("process_inflight_20k", "python", 0.1),
    ("process_map_c1", "python", 0.1),
    ("process_map_best", "python", 0.3),
    // Payloads of 256 KiB and more cross through shared memory: memory copies, no pipe.
    ("process_payload_1m", "python", 0.15),
    ("process_payload_64m", "python", 0.10),
    ("process_first_result", "python", 1.0),
    // debug: debug mode on at most 10% slower on the task benchmarks.
    ("debug_task_spawn_await", "debug_off", 1.10),
    ("debug_gather_100k", "debug_off", 1.10),
    // cost curves: each size as close to its baseline as the fixed-size rows; per-item cost at
    // the largest size within 1.3x of the smallest; memory bounded by a map's window flat
    // (within the 10% a process's own RSS moves by).
    ("curve_gather_1k", "tokio", 1.2),
    ("curve_gather_10k", "tokio", 1.2),
    ("curve_gather_100k", "tokio", 1.2),
    ("curve_gather_1m", "tokio", 1.2),
    ("curve_gather_growth", "1k", 1.3),
    ("curve_in_flight_10k", "tokio", 1.2),
    ("curve_in_flight_100k", "tokio", 1.2),
    ("curve_in_flight_1m", "tokio", 1.2),
    ("curve_in_flight_growth", "10k", 1.3),
    ("curve_process_in_flight_1k", "python", 0.1),
    ("curve_process_in_flight_10k", "python", 0.1),
    ("curve_process_in_flight_growth", "1k", 1.3),
    ("curve_thread_map_1k", "python", 0.1),
    ("curve_thread_map_100k", "python", 0.1),
    ("curve_thread_map_growth", "1k", 1.3),
    ("curve_thread_map_rss_growth", "1k", 1.1),
    // nats: a fast-mode round trip within 1.5x of bare async-nats request/reply between two
    // processes and 50x faster than Dask's submit().result(); many calls in flight and a map
    // 100x faster than Dask's per task.
    ("nats_rtt", "nats_raw", 1.5),
    ("nats_rtt", "dask", 0.02),
    ("nats_inflight_10k", "dask", 0.01),
    ("nats_map_10k", "dask", 0.01),
];

/// The goal for `case` against `baseline`, if the project set one.
pub(crate) fn goal(case: &str, baseline: &str) -> Option<Goal> {
    let find = |table: &[(&str, &str, f64)]| {
        table
            .iter()
            .find(|(c, b, _)| *c == case && *b == baseline)
            .map(|(_, _, ratio)| *ratio)
    };
    find(GOALS)
        .map(Goal::AtMost)
        .or_else(|| find(AT_LEAST).map(Goal::AtLeast))
}

#[cfg(test)]
mod tests {
    use super::{Goal, goal};

    #[test]
    fn costs_have_ceilings_and_speedups_floors() {
        assert_eq!(goal("gather_100k", "tokio"), Some(Goal::AtMost(1.2)));
        assert_eq!(
            goal("process_cpu_map", "ceiling"),
            Some(Goal::AtLeast(0.97))
        );
        assert_eq!(goal("gather_100k", "nobody"), None);
        assert!(Goal::AtMost(1.2).met(1.2) && !Goal::AtMost(1.2).met(1.21));
        assert!(Goal::AtLeast(0.97).met(0.98) && !Goal::AtLeast(0.97).met(0.9));
        assert_eq!(Goal::AtLeast(0.97).to_string(), ">= 0.97");
    }
}
