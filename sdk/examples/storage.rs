//! A coffer storage backend: every key one row of a SQL table, through the
//! host's `sql` capability (SQLite or PostgreSQL, granted as
//! `[storage.sql]`; the plugin never sees the URL).
//!
//! What the contract asks (`coffer plugin check` tests each rule):
//! - `put` and `delete` check `expected` in the same statement as the
//!   write, so racing writers never lose an update;
//! - a revision is one the key never had: a key created anew starts at a
//!   random revision, so after a delete and a re-create an old revision
//!   does not match (no ABA);
//! - `list` answers keys in byte order, after the cursor, within the prefix.
//!
//! Adapt `open` and the statements to your store; keep those three rules.

use coffer_sdk::Error;
use coffer_sdk::sql::{self, Dialect, Value};
use coffer_sdk::storage::{Entry, Expected, Page, Storage};

/// The table all keys live in.
struct SqlTable {
    table: String,
}

/// A revision for a key created anew: random, below 2^52.
fn first_revision() -> Value {
    Value::Integer((coffer_sdk::random::u64() % (1 << 52) + 1) as i64)
}

impl Storage for SqlTable {
    fn open() -> Result<Self, Error> {
        let table = sql::identifier("table", "kv")?;
        // Keys must sort bytewise: PostgreSQL needs the "C" collation.
        let (key, blob) = match sql::database() {
            Dialect::Sqlite => ("TEXT", "BLOB"),
            Dialect::Postgres => ("TEXT COLLATE \"C\"", "BYTEA"),
        };
        sql::execute(
            &format!(
                "CREATE TABLE IF NOT EXISTS {table} (k {key} PRIMARY KEY, v {blob} NOT NULL, rev BIGINT NOT NULL)"
            ),
            &[],
        )?;
        Ok(SqlTable { table })
    }

    fn get(&self, key: &str) -> Result<Option<Entry>, Error> {
        let t = &self.table;
        let rows = sql::rows(
            &format!("SELECT v, rev FROM {t} WHERE k = $1"),
            &[key.into()],
        )?;
        rows.first()
            .map(|row| {
                Ok(Entry {
                    value: row.blob(0)?.to_vec(),
                    revision: row.revision(1)?,
                })
            })
            .transpose()
    }

    fn put(&self, key: &str, value: Vec<u8>, expected: Expected) -> Result<u64, Error> {
        let t = &self.table;
        let (key, value): (Value, Value) = (key.into(), value.into());
        let rows = match expected {
            Expected::Any => sql::rows(
                &format!(
                    "INSERT INTO {t} (k, v, rev) VALUES ($1, $2, $3) \
                     ON CONFLICT (k) DO UPDATE SET v = excluded.v, rev = {t}.rev + 1 RETURNING rev"
                ),
                &[key, value, first_revision()],
            )?,
            Expected::Absent => sql::rows(
                &format!(
                    "INSERT INTO {t} (k, v, rev) VALUES ($1, $2, $3) ON CONFLICT (k) DO NOTHING RETURNING rev"
                ),
                &[key, value, first_revision()],
            )?,
            Expected::Revision(rev) => sql::rows(
                &format!(
                    "UPDATE {t} SET v = $2, rev = rev + 1 WHERE k = $1 AND rev = $3 RETURNING rev"
                ),
                &[key, value, sql::revision(rev)?],
            )?,
        };
        match rows.first() {
            Some(row) => row.revision(0),
            None => Err(Error::Conflict("the key is not as expected".to_owned())),
        }
    }

    fn delete(&self, key: &str, expected: Expected) -> Result<(), Error> {
        let t = &self.table;
        let deleted = match expected {
            Expected::Any => sql::execute(&format!("DELETE FROM {t} WHERE k = $1"), &[key.into()])?,
            Expected::Revision(rev) => sql::execute(
                &format!("DELETE FROM {t} WHERE k = $1 AND rev = $2"),
                &[key.into(), sql::revision(rev)?],
            )?,
            Expected::Absent => 0,
        };
        if deleted > 0 {
            return Ok(());
        }
        match (self.get(key)?.map(|entry| entry.revision), expected) {
            (None, Expected::Absent) => Ok(()),
            (None, _) => Err(Error::NotFound),
            (Some(rev), _) => Err(Error::Conflict(format!("the key is at revision {rev}"))),
        }
    }

    fn list(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<Page, Error> {
        let t = &self.table;
        let limit = limit.clamp(1, 1000) as usize;
        // Start at the prefix, or just after the cursor when it is past it.
        let (bound, from) = match after {
            Some(after) if after >= prefix => (">", after),
            _ => (">=", prefix),
        };
        let rows = sql::rows(
            &format!("SELECT k FROM {t} WHERE k {bound} $1 ORDER BY k LIMIT $2"),
            &[from.into(), Value::Integer(limit as i64 + 1)],
        )?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            let key = row.text(0)?;
            if !key.starts_with(prefix) {
                break;
            }
            keys.push(key.to_owned());
        }
        // One key more than asked says another page exists.
        let next = if keys.len() > limit {
            keys.truncate(limit);
            keys.last().cloned()
        } else {
            None
        };
        Ok(Page { keys, next })
    }
}

coffer_sdk::export_storage!(SqlTable);
