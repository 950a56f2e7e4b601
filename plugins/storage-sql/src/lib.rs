//! storage-sql: coffer's storage contract on one SQL table, through the
//! host's `sql` capability (SQLite, the embedded default, and PostgreSQL).
//!
//! Table (name from config `table`, default `coffer_kv`):
//! `k` text primary key (bytewise collation), `v` blob, `rev` integer.
//! Every conditional write is one statement whose `WHERE` clause carries
//! the expected revision, so the database checks it atomically.

mod query;

use coffer_sdk::Error;
use coffer_sdk::sql::{self, Value};
use coffer_sdk::storage::{Entry, Expected, Page, Storage};

use query::{Statements, prefix_upper_bound};

struct SqlStorage {
    statements: Statements,
}

impl Storage for SqlStorage {
    fn open() -> Result<Self, Error> {
        let table = coffer_sdk::config::get("table").unwrap_or_else(|| "coffer_kv".to_owned());
        let statements = Statements::new(&table, sql::database())?;
        sql::execute(&statements.create_table, &[])?;
        Ok(SqlStorage { statements })
    }

    fn get(&self, key: &str) -> Result<Option<Entry>, Error> {
        let rows = sql::query(&self.statements.get, &[Value::Text(key.to_owned())])?;
        match rows.into_iter().next() {
            None => Ok(None),
            Some(row) => {
                let mut columns = row.into_iter();
                match (columns.next(), columns.next()) {
                    (Some(Value::Blob(value)), Some(Value::Integer(rev))) => Ok(Some(Entry {
                        value,
                        revision: revision(rev)?,
                    })),
                    _ => Err(Error::Internal(format!(
                        "unexpected row shape for key {key}"
                    ))),
                }
            }
        }
    }

    fn put(&self, key: &str, value: Vec<u8>, expected: Expected) -> Result<u64, Error> {
        let key = Value::Text(key.to_owned());
        let value = Value::Blob(value);
        let rows = match expected {
            Expected::Any => sql::query(&self.statements.upsert, &[key, value])?,
            Expected::Absent => sql::query(&self.statements.insert, &[key, value])?,
            Expected::Revision(rev) => sql::query(
                &self.statements.update,
                &[key, value, Value::Integer(signed(rev)?)],
            )?,
        };
        match rows.first().and_then(|row| row.first()) {
            Some(Value::Integer(rev)) => revision(*rev),
            Some(_) => Err(Error::Internal(
                "the revision column is not an integer".to_owned(),
            )),
            None => Err(Error::Conflict(match expected {
                Expected::Absent => "the key already exists".to_owned(),
                _ => "the key is not at the expected revision".to_owned(),
            })),
        }
    }

    fn delete(&self, key: &str, expected: Expected) -> Result<(), Error> {
        let key_value = Value::Text(key.to_owned());
        let deleted = match expected {
            Expected::Any => sql::execute(&self.statements.delete, &[key_value])?,
            Expected::Absent => {
                // Deleting a key that must not exist is a no-op when it does not.
                return match self.get(key)? {
                    None => Ok(()),
                    Some(_) => Err(Error::Conflict("the key exists".to_owned())),
                };
            }
            Expected::Revision(rev) => sql::execute(
                &self.statements.delete_at,
                &[key_value, Value::Integer(signed(rev)?)],
            )?,
        };
        if deleted > 0 {
            return Ok(());
        }
        match self.get(key)? {
            None => Err(Error::NotFound),
            Some(entry) => Err(Error::Conflict(format!(
                "the key is at revision {}",
                entry.revision
            ))),
        }
    }

    fn list(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<Page, Error> {
        let limit = limit.clamp(1, 1000);
        let lower = match after {
            Some(after) if after > prefix => after.to_owned(),
            _ => prefix.to_owned(),
        };
        let inclusive = after.is_none_or(|a| a < prefix);
        let mut params = vec![Value::Text(lower)];
        let statement = match prefix_upper_bound(prefix) {
            Some(upper) => {
                params.push(Value::Text(upper));
                if inclusive {
                    &self.statements.list_from_bounded
                } else {
                    &self.statements.list_after_bounded
                }
            }
            None => {
                if inclusive {
                    &self.statements.list_from
                } else {
                    &self.statements.list_after
                }
            }
        };
        // One row more than asked tells whether another page exists.
        params.push(Value::Integer(i64::from(limit) + 1));
        let rows = sql::query(statement, &params)?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            match row.into_iter().next() {
                Some(Value::Text(key)) => keys.push(key),
                _ => return Err(Error::Internal("the key column is not text".to_owned())),
            }
        }
        let more = keys.len() > limit as usize;
        keys.truncate(limit as usize);
        let next = if more { keys.last().cloned() } else { None };
        Ok(Page { keys, next })
    }
}

fn revision(rev: i64) -> Result<u64, Error> {
    u64::try_from(rev).map_err(|_| Error::Internal(format!("negative revision {rev}")))
}

fn signed(rev: u64) -> Result<i64, Error> {
    i64::try_from(rev).map_err(|_| Error::Invalid(format!("revision {rev} is out of range")))
}

coffer_sdk::export_storage!(SqlStorage);
