//! The results: one line per row while the cases run, the table at the end, and
//! `target/taskweave-bench/report.json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cases::Row;
use crate::goals::goal;

/// ours / theirs: below 1 means ours is faster (or smaller).
pub(crate) fn ratio(row: &Row) -> f64 {
    row.ours / row.theirs
}

/// A row in one line, printed as soon as its case finishes.
pub(crate) fn one_line(row: &Row) -> String {
    format!(
        "{} vs {}: ours {} {unit}, theirs {} {unit}, ratio {}{}",
        row.case,
        row.baseline,
        number(row.ours),
        number(row.theirs),
        number_ratio(ratio(row)),
        goal_note(row),
        unit = row.unit,
    )
}

/// Prints every row as an aligned table.
pub(crate) fn print_table(rows: &[Row]) {
    let header = [
        "case", "baseline", "ours", "theirs", "unit", "ratio", "goal",
    ];
    let mut lines: Vec<[String; 7]> = vec![header.map(str::to_owned)];
    for row in rows {
        lines.push([
            row.case.clone(),
            row.baseline.clone(),
            number(row.ours),
            number(row.theirs),
            row.unit.clone(),
            number_ratio(ratio(row)),
            goal_note(row).trim().to_owned(),
        ]);
    }
    let mut widths = [0; 7];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for line in &lines {
        let mut out = String::new();
        for (i, (cell, w)) in line.iter().zip(widths).enumerate() {
            // Names left, numbers right.
            let _ = match i {
                2 | 3 | 5 => write!(out, "{cell:>w$}  "),
                _ => write!(out, "{cell:<w$}  "),
            };
        }
        println!("{}", out.trim_end());
    }
}

fn goal_note(row: &Row) -> String {
    match goal(&row.case, &row.baseline) {
        Some(g) if g.met(ratio(row)) => format!(" {g} ok"),
        Some(g) => format!(" {g} MISSED"),
        None => String::new(),
    }
}

fn number(x: f64) -> String {
    match x.abs() {
        a if a >= 1000.0 => format!("{x:.0}"),
        a if a >= 100.0 => format!("{x:.1}"),
        _ => format!("{x:.2}"),
    }
}

fn number_ratio(x: f64) -> String {
    if x.abs() < 0.1 {
        format!("{x:.3}")
    } else {
        format!("{x:.2}")
    }
}

/// Writes the rows to `<target>/taskweave-bench/report.json` and returns its path.
///
/// Errors when the directory or file cannot be written.
pub(crate) fn write_json(rows: &[Row]) -> Result<PathBuf, String> {
    let dir = target_dir().join("taskweave-bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("report.json");
    // Written beside and renamed, so a reader never sees half a report.
    let partial = dir.join("report.json.tmp");
    let json = to_json(rows).map_err(|e| format!("cannot serialise the report: {e}"))?;
    std::fs::write(&partial, json)
        .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    std::fs::rename(&partial, &path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// The build's target directory: `CARGO_TARGET_DIR` when set, else the workspace's `target/`.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
            // crates/taskweave-bench -> the workspace root.
            let root = crate_dir.ancestors().nth(2).unwrap_or(crate_dir);
            root.join("target")
        }
    }
}

/// One object of the report, in the order its fields are written.
#[derive(Serialize)]
struct Entry<'a> {
    case: &'a str,
    ours: Option<f64>,
    theirs: Option<f64>,
    baseline: &'a str,
    unit: &'a str,
    ratio: Option<f64>,
}

/// The report: an array of `{"case", "ours", "theirs", "baseline", "unit", "ratio"}` objects.
fn to_json(rows: &[Row]) -> Result<String, serde_json::Error> {
    let entries: Vec<Entry<'_>> = rows
        .iter()
        .map(|row| Entry {
            case: &row.case,
            ours: rounded(row.ours, 3),
            theirs: rounded(row.theirs, 3),
            baseline: &row.baseline,
            unit: &row.unit,
            ratio: rounded(ratio(row), 4),
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&entries)?;
    out.push('\n');
    Ok(out)
}

/// `x` rounded to `decimals`, or `None` (JSON's `null`) for NaN and infinities, which JSON lacks.
fn rounded(x: f64, decimals: i32) -> Option<f64> {
    if !x.is_finite() {
        return None;
    }
    let scale = 10f64.powi(decimals);
    Some((x * scale).round() / scale)
}

#[cfg(test)]
mod tests {
    use super::to_json;
    use crate::cases::Row;

    #[test]
    fn json_has_the_report_fields_escaped_and_rounded() {
        let rows = vec![
            Row {
                case: "a\"b".to_owned(),
                ours: 1.23456,
                theirs: 2.0,
                baseline: "tokio".to_owned(),
                unit: "ns/task".to_owned(),
            },
            Row {
                case: "c".to_owned(),
                ours: 1.0,
                theirs: 0.0,
                baseline: "python".to_owned(),
                unit: "ms".to_owned(),
            },
        ];
        let json = to_json(&rows).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!([
                {"case": "a\"b", "ours": 1.235, "theirs": 2.0, "baseline": "tokio", "unit": "ns/task", "ratio": 0.6173},
                {"case": "c", "ours": 1.0, "theirs": 0.0, "baseline": "python", "unit": "ms", "ratio": null},
            ])
        );
        // Readers of the file see the fields in this order.
        let first = &json[..json.find('}').unwrap()];
        let at: Vec<usize> = ["case", "ours", "theirs", "baseline", "unit", "ratio"]
            .iter()
            .map(|key| first.find(&format!("\"{key}\":")).unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{json}");
    }
}
