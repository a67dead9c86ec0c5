//! The results: one line per row while the cases run, the table at the end, and
//! `target/taskweave-bench/report.json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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
        Some(g) if ratio(row) <= g => format!(" <= {g} ok"),
        Some(g) => format!(" <= {g} MISSED"),
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
    std::fs::write(&partial, to_json(rows))
        .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    std::fs::rename(&partial, &path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// The build's target directory: `CARGO_TARGET_DIR` when set, else the workspace's `target/`.
fn target_dir() -> PathBuf {
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

/// The report: an array of `{"case", "ours", "theirs", "baseline", "unit", "ratio"}` objects,
/// one per line.
fn to_json(rows: &[Row]) -> String {
    let mut out = String::from("[\n");
    for (i, row) in rows.iter().enumerate() {
        let _ = write!(
            out,
            "  {{\"case\": {}, \"ours\": {}, \"theirs\": {}, \"baseline\": {}, \"unit\": {}, \"ratio\": {}}}",
            json_string(&row.case),
            json_number(row.ours, 3),
            json_number(row.theirs, 3),
            json_string(&row.baseline),
            json_string(&row.unit),
            json_number(ratio(row), 4),
        );
        out.push_str(if i + 1 < rows.len() { ",\n" } else { "\n" });
    }
    out.push_str("]\n");
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number rounded to `decimals`, or `null` for NaN and infinities (which JSON lacks).
fn json_number(x: f64, decimals: i32) -> String {
    if !x.is_finite() {
        return "null".to_owned();
    }
    let scale = 10f64.powi(decimals);
    format!("{}", (x * scale).round() / scale)
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
        assert_eq!(
            to_json(&rows),
            "[\n  {\"case\": \"a\\\"b\", \"ours\": 1.235, \"theirs\": 2, \"baseline\": \"tokio\", \"unit\": \"ns/task\", \"ratio\": 0.6173},\n  {\"case\": \"c\", \"ours\": 1, \"theirs\": 0, \"baseline\": \"python\", \"unit\": \"ms\", \"ratio\": null}\n]\n"
        );
    }
}
