//! taskweave's benchmark harness: runs each case beside its baselines (raw tokio, the Python
//! peers in `peers/`) in one run on one machine, prints a table of medians and ratios, and writes
//! `target/taskweave-bench/report.json`.
//!
//! Run it as `cargo xtask bench [--quick] [FILTER]`. `--quick` uses fewer repetitions and smaller
//! inputs where a case allows it; FILTER keeps the cases whose name contains it.
//!
//! Cases live in [`cases`], one module per area; [`measure`] holds the timing helpers they share
//! and [`peer`] runs the Python peers. A ratio is ours / theirs: below 1 is faster.
//!
//! What it is not: a test. Numbers depend on the machine and its load; goals are printed beside
//! the ratios, never asserted.

mod cases;
mod goals;
mod measure;
mod peer;
mod report;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::time::Instant;

use cases::{Config, Row};

const USAGE: &str = "\
usage: taskweave-bench [--quick] [FILTER]
       taskweave-bench --list

  --quick   fewer repetitions and smaller inputs (about a minute in all)
  FILTER    run only the cases whose name contains FILTER
  --list    print the case names";

fn main() -> ExitCode {
    // The process-pool cases start this binary again as their workers; a worker must take over
    // before anything else runs (on Linux this already happened before main).
    taskweave_process::become_worker_if_spawned();
    // The NATS cases start this binary again as their workers (on Linux they become workers
    // before main; elsewhere here).
    taskweave_nats::main_if_worker();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(measure::CHILD_FLAG) {
        return measure::child_main(&args[1..]);
    }
    let options = match Options::parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("taskweave-bench: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if options.help {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let all = cases::all();
    if options.list {
        for case in &all {
            println!("{}", case.name);
        }
        return ExitCode::SUCCESS;
    }
    let selected: Vec<_> = all
        .iter()
        .filter(|case| {
            options
                .filter
                .as_deref()
                .is_none_or(|f| case.name.contains(f))
        })
        .collect();
    if selected.is_empty() {
        let names: Vec<_> = all.iter().map(|c| c.name).collect();
        eprintln!(
            "taskweave-bench: no case matches `{}`; cases: {}",
            options.filter.as_deref().unwrap_or(""),
            names.join(", ")
        );
        return ExitCode::from(2);
    }

    let config = Config {
        quick: options.quick,
        python: peer::find_python(),
        peers_dir: peer::peers_dir(),
    };
    print_setting(&config);

    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let mut failed = Vec::new();
    for case in selected {
        println!("\n== {}", case.name);
        let case_started = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| (case.run)(&config))) {
            Ok(case_rows) => {
                for row in &case_rows {
                    println!("   {}", report::one_line(row));
                }
                rows.extend(case_rows);
            }
            Err(payload) => {
                let message = panic_message(&*payload);
                println!("   FAILED: {message}");
                failed.push((case.name, message));
            }
        }
        println!("   ({:.1}s)", case_started.elapsed().as_secs_f64());
    }

    println!();
    report::print_table(&rows);
    if config.python.is_none() {
        println!("\nnote: python3 was not found, so the python baselines were skipped");
    }
    match report::write_json(&rows) {
        Ok(path) => println!("\nreport: {}", path.display()),
        Err(message) => {
            eprintln!("taskweave-bench: {message}");
            return ExitCode::FAILURE;
        }
    }
    println!("total: {:.1}s", started.elapsed().as_secs_f64());
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        for (name, message) in &failed {
            eprintln!("taskweave-bench: case `{name}` failed: {message}");
        }
        ExitCode::FAILURE
    }
}

/// The command line, parsed.
#[derive(Debug, Default, PartialEq)]
struct Options {
    quick: bool,
    list: bool,
    help: bool,
    filter: Option<String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options::default();
        for arg in args {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--list" => options.list = true,
                "-h" | "--help" => options.help = true,
                flag if flag.starts_with('-') => return Err(format!("unknown option `{flag}`")),
                filter => {
                    if let Some(first) = &options.filter {
                        return Err(format!("one FILTER at most, got `{first}` and `{filter}`"));
                    }
                    options.filter = Some(filter.to_owned());
                }
            }
        }
        Ok(options)
    }
}

fn print_setting(config: &Config) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let python = match &config.python {
        Some(path) => peer::describe(path),
        None => "not found (python baselines skipped)".to_owned(),
    };
    println!(
        "taskweave-bench: {} mode, {cores} cores, python: {python}",
        if config.quick { "quick" } else { "full" }
    );
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panicked".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::Options;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn options_take_quick_and_one_filter() {
        assert_eq!(
            parse(&["--quick", "gather"]).unwrap(),
            Options {
                quick: true,
                filter: Some("gather".to_owned()),
                ..Options::default()
            }
        );
        assert_eq!(parse(&[]).unwrap(), Options::default());
        assert!(
            parse(&["--fast"])
                .unwrap_err()
                .contains("unknown option `--fast`")
        );
        assert!(
            parse(&["a", "b"])
                .unwrap_err()
                .contains("one FILTER at most")
        );
    }
}
