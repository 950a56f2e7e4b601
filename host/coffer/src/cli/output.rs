//! How client commands print what they read (`--format`, or
//! `COFFER_FORMAT`): `table` for people, with columns that line up under
//! their headers; `json`, the server's answer as it came, for scripts; and
//! `raw`, the bare values one per line, for pipes.

use clap::ValueEnum;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Raw,
}

/// Rows under headers, every column as wide as its widest cell.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// Space between columns.
const GUTTER: &str = "  ";

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row of the answer's fields, shown with [`cell`].
    pub fn row<'a>(&mut self, cells: impl IntoIterator<Item = &'a Value>) {
        self.rows.push(cells.into_iter().map(cell).collect());
    }

    /// Adds a row of ready-made text.
    pub fn text_row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table, each line ending in a newline; the last column is not
    /// padded.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (column, text) in row.iter().enumerate().take(columns) {
                widths[column] = widths[column].max(width(text));
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            let mut text = String::new();
            for (column, cell) in line.iter().enumerate().take(columns) {
                if column > 0 {
                    text.push_str(GUTTER);
                }
                text.push_str(cell);
                if column + 1 < columns {
                    text.push_str(&" ".repeat(widths[column] - width(cell)));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// Columns a cell takes on a terminal (one per character; the names
/// coffer prints are not wide scripts).
fn width(text: &str) -> usize {
    text.chars().count()
}

/// A field as a table shows it: text without quotes, `-` for nothing,
/// `yes`/`no` for booleans, anything else as JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) if text.is_empty() => "-".to_owned(),
        Value::String(text) => text.clone(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        other => other.to_string(),
    }
}

/// Prints `value` as indented JSON.
pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_line_up_under_their_headers() {
        let mut table = Table::new(&["NAMESPACE", "ACTIVE", "KEYS"]);
        table.row([
            &json!("a-rather-long-namespace-name"),
            &json!(1234567890),
            &json!(3),
        ]);
        table.row([&json!("b"), &json!(null), &json!(12)]);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "NAMESPACE                     ACTIVE      KEYS");
        assert_eq!(lines[1], "a-rather-long-namespace-name  1234567890  3");
        assert_eq!(lines[2], "b                             -           12");
    }
}
