//! SQL on the pool the host grants this plugin. Parameters are written
//! `$1`, `$2`, … in both dialects; the host never shows the plugin the
//! database URL.
//!
//! Rows come back as [`Columns`], read by position with typed getters that
//! say which column was not what the plugin expected:
//!
//! ```ignore
//! use coffer_sdk::sql;
//!
//! let rows = sql::rows("SELECT v, rev FROM kv WHERE k = $1", &["a".into()])?;
//! if let Some(row) = rows.first() {
//!     let (value, revision) = (row.blob(0)?, row.revision(1)?);
//! }
//! sql::execute("UPDATE kv SET rev = rev + 1 WHERE rev = $1", &[sql::revision(7)?])?;
//! ```
//!
//! Each statement commits on its own, and its answer means it is durable:
//! make a change one statement (`UPDATE … WHERE rev = $n` for
//! check-and-set). On SQLite the host runs concurrent writes in one shared
//! transaction, so they share a commit yet each gets the answer it would
//! get alone; statements that open or close a transaction (`BEGIN`,
//! `COMMIT`, `SAVEPOINT`, …) are refused there. [`batch`] runs many
//! writing statements in one call that way, on either database.

use crate::Error;

pub use crate::bindings::storage_world::coffer::plugin::sql::{
    Dialect, Row, Statement, Value, batch, database, execute, query,
};

/// One result row, read by column position.
#[derive(Clone, Debug)]
pub struct Columns(Row);

/// Runs a query and returns its rows as [`Columns`].
pub fn rows(statement: &str, params: &[Value]) -> Result<Vec<Columns>, Error> {
    Ok(query(statement, params)?.into_iter().map(Columns).collect())
}

/// Runs writing statements with [`batch`] (one commit for all) and returns
/// each statement's own answer, its rows as [`Columns`].
pub fn batch_rows(statements: &[Statement]) -> Result<Vec<Result<Vec<Columns>, Error>>, Error> {
    let answers = batch(statements)?;
    if answers.len() != statements.len() {
        return Err(Error::Internal(format!(
            "the host answered {} of {} statements",
            answers.len(),
            statements.len()
        )));
    }
    Ok(answers
        .into_iter()
        .map(|answer| answer.map(|rows| rows.into_iter().map(Columns).collect()))
        .collect())
}

/// The value of config `key` (or `default`) as a plain SQL identifier —
/// letters, digits and `_`, not starting with a digit, at most 63 bytes —
/// safe to put in a statement, such as a table name.
pub fn identifier(key: &str, default: &str) -> Result<String, Error> {
    let name = crate::config::get(key).unwrap_or_else(|| default.to_owned());
    if is_identifier(&name) {
        Ok(name)
    } else {
        Err(Error::Invalid(format!(
            "config key `{key}`: `{name}` is not a plain SQL identifier (letters, digits, _)"
        )))
    }
}

fn is_identifier(name: &str) -> bool {
    name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A revision as a parameter (SQL integers are signed).
pub fn revision(revision: u64) -> Result<Value, Error> {
    i64::try_from(revision)
        .map(Value::Integer)
        .map_err(|_| Error::Invalid(format!("revision {revision} is out of range")))
}

impl Columns {
    fn column(&self, index: usize) -> Result<&Value, Error> {
        self.0
            .get(index)
            .ok_or_else(|| Error::Internal(format!("the row has no column {index}")))
    }

    fn wrong(&self, index: usize, wanted: &str) -> Error {
        Error::Internal(format!("column {index} is not {wanted}"))
    }

    /// Column `index` as text.
    pub fn text(&self, index: usize) -> Result<&str, Error> {
        match self.column(index)? {
            Value::Text(text) => Ok(text),
            _ => Err(self.wrong(index, "text")),
        }
    }

    /// Column `index` as bytes.
    pub fn blob(&self, index: usize) -> Result<&[u8], Error> {
        match self.column(index)? {
            Value::Blob(bytes) => Ok(bytes),
            _ => Err(self.wrong(index, "a blob")),
        }
    }

    /// Column `index` as an integer.
    pub fn integer(&self, index: usize) -> Result<i64, Error> {
        match self.column(index)? {
            Value::Integer(n) => Ok(*n),
            _ => Err(self.wrong(index, "an integer")),
        }
    }

    /// Column `index` as a revision: a positive integer.
    pub fn revision(&self, index: usize) -> Result<u64, Error> {
        u64::try_from(self.integer(index)?)
            .ok()
            .filter(|revision| *revision > 0)
            .ok_or_else(|| self.wrong(index, "a positive revision"))
    }

    /// The row's values, to take them apart by hand.
    pub fn into_values(self) -> Row {
        self.0
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::Text(text)
    }
}

impl From<Vec<u8>> for Value {
    fn from(bytes: Vec<u8>) -> Value {
        Value::Blob(bytes)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Integer(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_plain_names() {
        assert!(is_identifier("coffer_kv"));
        assert!(is_identifier("_kv1"));
        assert!(!is_identifier("kv; DROP TABLE x"));
        assert!(!is_identifier("1kv"));
        assert!(!is_identifier(""));
        assert!(!is_identifier(&"k".repeat(64)));
    }
}
