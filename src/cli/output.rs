//! The one output layer of every command: `--format table` (comfy-table, for people), `json`
//! (pretty, for scripts) and `csv` (the csv crate, for spreadsheets), all written to stdout.
//!
//! JSON conventions: every u64 and u128 (ids, amounts, balances, nanosecond timestamps, counts)
//! is a decimal string, as in the lake's own JSON files, because most JSON parsers read numbers
//! as doubles and round above 2^53; the report types say so with `serde_with::DisplayFromStr`.
//!
//! Output is written whole through the locked stdout; a reader that has gone away (`| head`)
//! closes the pipe, and that is success, not an error: nothing is printed and the exit code is 0.

use std::io::{ErrorKind, Write};

use clap::ValueEnum;
use comfy_table::{CellAlignment, Table};
use serde::Serialize;

/// A header underlined with dashes, columns separated by spaces, no borders: easy to read, to
/// grep and to paste.
const TABLE_STYLE: &str = "     -             ";

/// `--format` of the commands whose output is one list of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns, for people.
    Table,
    /// Pretty-printed JSON, every u64 and u128 as a decimal string.
    Json,
    /// Comma-separated values with a header line.
    Csv,
}

/// `--format` of the commands whose output is a report with sections (no CSV).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Aligned text, for people.
    Table,
    /// Pretty-printed JSON, every u64 and u128 as a decimal string.
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write to standard output")]
    Write(#[source] std::io::Error),
    #[error("cannot encode the output as JSON")]
    Json(#[source] serde_json::Error),
    #[error("cannot encode the output as CSV")]
    Csv(#[source] csv::Error),
}

/// Writes `bytes` to stdout at once. A closed pipe is success: the reader took what it wanted.
pub fn write_stdout(bytes: &[u8]) -> Result<(), OutputError> {
    write_to(&mut std::io::stdout().lock(), bytes)
}

fn write_to(out: &mut impl Write, bytes: &[u8]) -> Result<(), OutputError> {
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        result => result.map_err(OutputError::Write),
    }
}

/// A line on stderr (notes beside the output, never the output itself); best effort.
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Every integer of `value` as a decimal string, for reports whose integers are all u64 counts
/// or timestamps (the export report); floats stay numbers.
pub fn integers_as_strings(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_u64() || n.is_i64() => Value::String(n.to_string()),
        Value::Array(items) => Value::Array(items.into_iter().map(integers_as_strings).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, integers_as_strings(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Pretty JSON and a final newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, OutputError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(OutputError::Json)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// CSV with a header line; every field is already text.
pub fn csv(
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<Vec<u8>, OutputError> {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    writer.write_record(header).map_err(OutputError::Csv)?;
    for row in rows {
        writer.write_record(&row).map_err(OutputError::Csv)?;
    }
    writer
        .into_inner()
        .map_err(|e| OutputError::Write(e.into_error()))
}

/// A column of a table: its header, and whether its values are numbers (right-aligned).
pub struct Column {
    pub header: &'static str,
    pub numeric: bool,
}

pub const fn text(header: &'static str) -> Column {
    Column {
        header,
        numeric: false,
    }
}

pub const fn number(header: &'static str) -> Column {
    Column {
        header,
        numeric: true,
    }
}

/// A table of `rows` under `columns`, as text ending in a newline (empty rows: the header only).
pub fn table(columns: &[Column], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut table = Table::new();
    table
        .load_preset(TABLE_STYLE)
        .set_header(columns.iter().map(|c| c.header).collect::<Vec<_>>());
    for row in rows {
        table.add_row(row);
    }
    for (column, spec) in table.column_iter_mut().zip(columns) {
        if spec.numeric {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = table.trim_fmt();
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    struct Full;

    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(ErrorKind::StorageFull))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_is_success_and_other_write_errors_are_not() {
        assert!(write_to(&mut ClosedPipe, b"{}").is_ok());
        assert!(matches!(
            write_to(&mut Full, b"{}"),
            Err(OutputError::Write(_))
        ));
        let mut buffer = Vec::new();
        write_to(&mut buffer, b"abc").unwrap();
        assert_eq!(buffer, b"abc");
    }

    #[test]
    fn tables_align_numbers_right_and_text_left() {
        let out = table(
            &[text("name"), number("count")],
            [
                vec!["a".to_string(), "1".to_string()],
                vec!["long name".to_string(), "12345".to_string()],
            ],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(
            lines[0].contains("name") && lines[0].contains("count"),
            "{out}"
        );
        assert!(lines[1].trim_start().starts_with('-'), "{out}");
        assert!(lines[2].ends_with("    1"), "{out}");
        assert!(lines[3].ends_with("12345"), "{out}");
        assert!(lines[2].trim_start().starts_with("a "), "{out}");
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let out = csv(&["a", "b"], [vec!["1".to_string(), "x,y".to_string()]]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a,b\n1,\"x,y\"\n");
    }

    #[test]
    fn integers_become_strings_and_floats_stay_numbers() {
        let value = serde_json::json!({"a": 18446744073709551615u64, "b": [1, 2.5], "c": null});
        assert_eq!(
            integers_as_strings(value),
            serde_json::json!({"a": "18446744073709551615", "b": ["1", 2.5], "c": null})
        );
    }

    #[test]
    fn json_ends_with_a_newline() {
        let out = json(&serde_json::json!({"a": "1"})).unwrap();
        assert!(out.ends_with(b"}\n"));
    }
}
