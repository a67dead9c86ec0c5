//! The benchmark cases, one module per area, and the types they share with the harness.
//!
//! An area is a module `cases/<area>.rs` with `pub(crate) fn cases() -> Vec<Case>`, registered by
//! one line in the `areas!` list below. A case measures ours beside one or more baselines and
//! returns one [`Row`] per (case, baseline); medians of several repetitions, baselines measured
//! in the same run and alternated with ours (see [`crate::measure`]). A case that cannot measure
//! panics with a message saying why: the harness reports it as failed and goes on with the rest.
//!
//! Goals (the ratio each row should stay under) live in [`crate::goals`].

use std::path::PathBuf;

/// One benchmark: a name (what FILTER matches) and the function that measures it.
pub(crate) struct Case {
    /// Unique name, lower snake case; rows usually carry it (or it plus a suffix).
    pub(crate) name: &'static str,
    /// Measures the case and returns its rows.
    pub(crate) run: fn(&Config) -> Vec<Row>,
}

/// What every case may read about this run.
pub(crate) struct Config {
    /// Fewer repetitions and smaller inputs: all cases in about a minute on 2 cores.
    pub(crate) quick: bool,
    /// The python3 to run the peers with, if there is one.
    pub(crate) python: Option<PathBuf>,
    /// Where the Python peers live (`crates/taskweave-bench/peers`).
    pub(crate) peers_dir: PathBuf,
}

/// One measured comparison: ours against one baseline, in one unit.
pub(crate) struct Row {
    /// Case name as it appears in the report (for example `task_spawn_await_ct`).
    pub(crate) case: String,
    /// Our median.
    pub(crate) ours: f64,
    /// The baseline's median.
    pub(crate) theirs: f64,
    /// Who `theirs` is: `tokio`, `python`, `rayon`, `pipe`, ...
    pub(crate) baseline: String,
    /// A time per operation (`ns/task`, `us/call`, `ms`), or `KiB` for memory.
    pub(crate) unit: String,
}

impl Row {
    /// A row of `case`: `ours` against `theirs` from `baseline`, both in `unit`.
    pub(crate) fn new(case: &str, ours: f64, theirs: f64, baseline: &str, unit: &str) -> Row {
        Row {
            case: case.to_owned(),
            ours,
            theirs,
            baseline: baseline.to_owned(),
            unit: unit.to_owned(),
        }
    }
}

/// Declares the area modules and [`all`], the cases of every area in order.
macro_rules! areas {
    ($($area:ident,)*) => {
        $(mod $area;)*

        /// Every registered case, area by area.
        pub(crate) fn all() -> Vec<Case> {
            let mut cases = Vec::new();
            $(cases.extend($area::cases());)*
            cases
        }
    };
}

// One line per area; the blank lines between them keep areas added in parallel from
// conflicting.
areas! {
    tasks,

    threads,

    process,

    debug,

    curves,

    nats,
}

/// A measurement that runs in a fresh process: from its arguments to one line of `key=value`
/// pairs, or an error.
pub(crate) type ChildMeasure = fn(&[String]) -> Result<String, String>;

/// The measurement run by `taskweave-bench --child NAME ARGS...` (see
/// [`crate::measure::fresh_process`]); one line per child.
pub(crate) fn child(name: &str) -> Option<ChildMeasure> {
    match name {
        "sleep_gather" => Some(tasks::sleep_gather_child),
        "tasks_in_flight" => Some(curves::tasks_in_flight_child),
        "thread_map" => Some(curves::thread_map_child),
        "nats_responder" => Some(nats::nats_responder_child),
        _ => None,
    }
}
