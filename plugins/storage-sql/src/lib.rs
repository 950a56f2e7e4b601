//! storage-sql: coffer's storage contract on one SQL table, through the
//! host's `sql` capability (SQLite, the embedded default, and PostgreSQL).
//!
//! Table (name from config `table`, default `coffer_kv`):
//! `k` text primary key (bytewise collation), `v` blob, `rev` integer.
//! Every conditional write is one statement whose `WHERE` clause carries
//! the expected revision, so the database checks it atomically. A lone
//! write is answered by its count of changed rows, since the revision it
//! leaves is known beforehand (the plugin draws a new key's first one):
//! `RETURNING` costs SQLite a temporary table per statement. A batch reads
//! its keys with one `SELECT … IN (…)` and runs its writes as one
//! `sql.batch`, so they share a commit; its writes return their revisions.

mod query;

use coffer_sdk::Error;
use coffer_sdk::sql::{self, Statement, Value};
use coffer_sdk::storage::{Entry, Expected, Page, Storage, Write};

use query::{FIRST_REVISIONS, Statements, prefix_upper_bound};

struct SqlStorage {
    statements: Statements,
}

impl Storage for SqlStorage {
    fn open() -> Result<Self, Error> {
        let table = sql::identifier("table", "coffer_kv")?;
        let statements = Statements::new(&table, sql::database());
        sql::execute(&statements.create_table, &[])?;
        Ok(SqlStorage { statements })
    }

    fn get(&self, key: &str) -> Result<Option<Entry>, Error> {
        let rows = sql::rows(&self.statements.get, &[key.into()])?;
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
        let (key, value): (Value, Value) = (key.into(), value.into());
        let (text, params, revision) = match expected {
            Expected::Any => {
                let rows = sql::rows(&self.statements.upsert, &[key, value])?;
                return written(rows.first(), expected);
            }
            Expected::Absent => {
                let first = coffer_sdk::random::u64() % FIRST_REVISIONS + 1;
                let params = vec![key, value, sql::revision(first)?];
                (&self.statements.insert, params, first)
            }
            Expected::Revision(rev) => {
                let next = rev
                    .checked_add(1)
                    .filter(|next| sql::revision(*next).is_ok())
                    .ok_or_else(|| Error::Invalid(format!("revision {rev} is the last")))?;
                let params = vec![key, value, sql::revision(rev)?];
                (&self.statements.update, params, next)
            }
        };
        match sql::execute(text, &params)? {
            0 => Err(conflict(expected)),
            _ => Ok(revision),
        }
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let params: Vec<Value> = keys.iter().map(|key| key.as_str().into()).collect();
        let rows = match sql::rows(&self.statements.get_many(keys.len()), &params) {
            Ok(rows) => rows,
            // More than one query may return (large values): key by key.
            Err(Error::Invalid(_)) => return keys.iter().map(|key| self.get(key)).collect(),
            Err(error) => return Err(error),
        };
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let entry = Entry {
                value: row.blob(1)?.to_vec(),
                revision: row.revision(2)?,
            };
            found.insert(row.text(0)?, entry);
        }
        Ok(keys
            .iter()
            .map(|key| found.get(key.as_str()).cloned())
            .collect())
    }

    fn put_many(&self, writes: Vec<Write>) -> Result<Vec<Result<u64, Error>>, Error> {
        let expected: Vec<Expected> = writes.iter().map(|write| write.expected).collect();
        let statements = writes
            .into_iter()
            .map(|write| self.write(&write.key, write.value, write.expected))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(sql::batch_rows(&statements)?
            .into_iter()
            .zip(expected)
            .map(|(answer, expected)| written(answer?.first(), expected))
            .collect())
    }

    fn delete(&self, key: &str, expected: Expected) -> Result<(), Error> {
        let deleted = match expected {
            Expected::Any => sql::execute(&self.statements.delete, &[key.into()])?,
            Expected::Absent => {
                // Deleting a key that must not exist is a no-op when it does not.
                return match self.get(key)? {
                    None => Ok(()),
                    Some(_) => Err(Error::Conflict("the key exists".to_owned())),
                };
            }
            Expected::Revision(rev) => sql::execute(
                &self.statements.delete_at,
                &[key.into(), sql::revision(rev)?],
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
        let mut params = vec![Value::from(lower)];
        let statement = match prefix_upper_bound(prefix) {
            Some(upper) => {
                params.push(upper.into());
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
        params.push(Value::from(i64::from(limit) + 1));
        let mut keys = sql::rows(statement, &params)?
            .iter()
            .map(|row| row.text(0).map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()?;
        let more = keys.len() > limit as usize;
        keys.truncate(limit as usize);
        let next = if more { keys.last().cloned() } else { None };
        Ok(Page { keys, next })
    }
}

impl SqlStorage {
    /// The statement of a batch that writes `key` if `expected` holds,
    /// returning the new revision (no row when `expected` did not hold).
    fn write(&self, key: &str, value: Vec<u8>, expected: Expected) -> Result<Statement, Error> {
        let (key, value): (Value, Value) = (key.into(), value.into());
        let (text, params) = match expected {
            Expected::Any => (&self.statements.upsert, vec![key, value]),
            Expected::Absent => (&self.statements.insert_returning, vec![key, value]),
            Expected::Revision(rev) => (
                &self.statements.update_returning,
                vec![key, value, sql::revision(rev)?],
            ),
        };
        Ok(Statement {
            text: text.clone(),
            params,
        })
    }
}

/// The answer to a write from the row it returned: the new revision, or a
/// conflict when none came back.
fn written(row: Option<&sql::Columns>, expected: Expected) -> Result<u64, Error> {
    match row {
        Some(row) => row.revision(0),
        None => Err(conflict(expected)),
    }
}

/// The answer to a write `expected` did not hold for.
fn conflict(expected: Expected) -> Error {
    Error::Conflict(match expected {
        Expected::Absent => "the key already exists".to_owned(),
        _ => "the key is not at the expected revision".to_owned(),
    })
}

coffer_sdk::export_storage!(SqlStorage);
