//! The goals: for each (case, baseline), the ratio (ours / theirs) that the project aims to stay
//! at or under. Printed beside the measured ratio; never asserted, since numbers depend on the
//! machine. They are the targets the project set for each case.

/// (case, baseline, highest acceptable ratio).
const GOALS: &[(&str, &str, f64)] = &[
    // tasks: task create + await and gather within 1.2x of raw tokio; 10x (create + await) and
    // 20x (gather) faster than asyncio.
    ("task_spawn_await", "tokio", 1.2),
    ("task_spawn_await", "python", 0.1),
    ("task_spawn_await_ct", "tokio", 1.2),
    ("task_spawn_await_ct", "python", 0.1),
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
    // (fork start, 2 workers). process_cpu_map is a speedup (higher is better, goal: at least
    // 0.95 of the bare-process ceiling), so it has no entry here.
    ("process_rtt", "pipe", 3.0),
    ("process_rtt", "python", 0.15),
    ("process_inflight_20k", "python", 0.1),
    ("process_map_c1", "python", 0.1),
    ("process_map_best", "python", 0.3),
    ("process_payload_64m", "python", 0.25),
    ("process_first_result", "python", 1.0),
    // debug: debug mode on at most 10% slower on the task benchmarks.
    ("debug_task_spawn_await", "debug_off", 1.10),
    ("debug_gather_100k", "debug_off", 1.10),
];

/// The goal for `case` against `baseline`, if the project set one.
pub(crate) fn goal(case: &str, baseline: &str) -> Option<f64> {
    GOALS
        .iter()
        .find(|(c, b, _)| *c == case && *b == baseline)
        .map(|(_, _, ratio)| *ratio)
}
