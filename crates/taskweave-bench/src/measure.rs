//! Timing helpers shared by the cases: medians, contenders measured in rotation, per-operation
//! times, peak RSS, and measurements run in a fresh process of this binary.

use std::future::Future;
use std::pin::Pin;
use std::process::{Command, ExitCode};
use std::time::Duration;

use crate::peer::KeyValues;

/// The median of `samples` (the mean of the middle two for an even count); NaN when empty.
pub(crate) fn median(samples: &[f64]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// How far the rounds of one measurement spread: (largest - smallest) / median, so 0.05 means
/// the rounds lie within 5 % of their median. NaN when empty. Two medians closer than their
/// spreads are the same within noise.
pub(crate) fn spread(samples: &[f64]) -> f64 {
    let mid = median(samples);
    let (lo, hi) = samples
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    (hi - lo) / mid
}

/// Nanoseconds per operation for `ops` operations that took `elapsed`.
pub(crate) fn ns_per_op(elapsed: Duration, ops: usize) -> f64 {
    elapsed.as_nanos() as f64 / ops.max(1) as f64
}

/// Milliseconds in `elapsed`.
pub(crate) fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e3
}

/// How many times to run each contender: `warm_up` rounds whose samples are dropped, then
/// `measured` rounds that are kept.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rounds {
    pub(crate) warm_up: usize,
    pub(crate) measured: usize,
}

/// Runs every contender once per round, the first one to go moving along each round so that no
/// contender always runs on a machine warmed (or disturbed) by the same neighbour. Returns the
/// kept samples, one `Vec` per contender, in the contenders' order.
pub(crate) fn rotate<T>(rounds: Rounds, contenders: &mut [&mut dyn FnMut() -> T]) -> Vec<Vec<T>> {
    let count = contenders.len();
    let mut samples: Vec<Vec<T>> = (0..count).map(|_| Vec::new()).collect();
    for round in 0..rounds.warm_up + rounds.measured {
        for k in 0..count {
            let i = (round + k) % count;
            let sample = contenders[i]();
            if round >= rounds.warm_up {
                samples[i].push(sample);
            }
        }
    }
    samples
}

/// A contender for [`rotate_async`]: each call starts one measurement, whose future yields one
/// sample.
pub(crate) type AsyncContender<'a> =
    Box<dyn FnMut() -> Pin<Box<dyn Future<Output = f64> + Send + 'a>> + Send + 'a>;

/// [`rotate`] for measurements that run inside a runtime, as futures.
pub(crate) async fn rotate_async(
    rounds: Rounds,
    contenders: &mut [AsyncContender<'_>],
) -> Vec<Vec<f64>> {
    let count = contenders.len();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); count];
    for round in 0..rounds.warm_up + rounds.measured {
        for k in 0..count {
            let i = (round + k) % count;
            let sample = contenders[i]().await;
            if round >= rounds.warm_up {
                samples[i].push(sample);
            }
        }
    }
    samples
}

/// This process's peak resident set size in KiB (`VmHWM` in /proc/self/status), where the
/// system reports it (Linux).
pub(crate) fn peak_rss_kib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    // "VmHWM:	   12345 kB"
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The flag that makes this binary run one child measurement instead of the harness.
pub(crate) const CHILD_FLAG: &str = "--child";

/// Runs the child measurement `name` (registered in [`crate::cases::child`]) in a fresh process
/// of this binary, so that what it measures, peak RSS above all, is not polluted by other
/// cases, and returns the `key=value` pairs it printed.
///
/// # Panics
///
/// When the process cannot start, fails or prints no pairs: the case cannot measure.
pub(crate) fn fresh_process(name: &str, args: &[String]) -> KeyValues {
    let exe = std::env::current_exe()
        .unwrap_or_else(|e| panic!("cannot find this executable to start a child: {e}"));
    let output = Command::new(&exe)
        .arg(CHILD_FLAG)
        .arg(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start child `{name}`: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        panic!(
            "child `{name}` failed ({}): {}{}",
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    KeyValues::parse(&format!("child `{name}`"), &stdout).unwrap_or_else(|e| panic!("{e}"))
}

/// The child side of [`fresh_process`]: `args` is `NAME ARGS...`.
pub(crate) fn child_main(args: &[String]) -> ExitCode {
    let Some((name, rest)) = args.split_first() else {
        eprintln!("taskweave-bench {CHILD_FLAG}: missing the measurement's name");
        return ExitCode::from(2);
    };
    let Some(measure) = crate::cases::child(name) else {
        eprintln!("taskweave-bench {CHILD_FLAG}: no child measurement named `{name}`");
        return ExitCode::from(2);
    };
    match measure(rest) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("taskweave-bench {CHILD_FLAG} {name}: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Rounds, median, rotate, spread};

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn spread_is_the_range_over_the_median() {
        assert_eq!(spread(&[9.0, 10.0, 11.0]), 0.2);
        assert_eq!(spread(&[5.0]), 0.0);
        assert!(spread(&[]).is_nan());
    }

    #[test]
    fn rotate_moves_the_first_contender_and_drops_warm_up() {
        let order = std::cell::RefCell::new(Vec::new());
        let mut a = || {
            order.borrow_mut().push('a');
            1
        };
        let mut b = || {
            order.borrow_mut().push('b');
            2
        };
        let samples = rotate(
            Rounds {
                warm_up: 1,
                measured: 2,
            },
            &mut [&mut a, &mut b],
        );
        assert_eq!(samples, vec![vec![1, 1], vec![2, 2]]);
        assert_eq!(*order.borrow(), vec!['a', 'b', 'b', 'a', 'a', 'b']);
    }

    #[test]
    fn peak_rss_is_read_where_proc_exists() {
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(super::peak_rss_kib().is_some_and(|kib| kib > 0.0));
        }
    }
}
