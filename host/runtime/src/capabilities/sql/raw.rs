//! Statements run straight on a SQLite connection's handle, on the calling
//! thread. The group-commit writer runs a whole group this way — its
//! transaction control and every statement — in one turn of the connection,
//! instead of one round trip to sqlx's connection thread per statement
//! (each a pair of thread switches, which cost more than the statement).
//!
//! Parameters bind, rows convert and errors classify as they do through
//! sqlx: `$N` and `?N` name argument N, a bare `?` takes the next one, and
//! a string of several statements runs them in order, its rows and changed
//! rows added up. A plugin's single statement, and the writer's own
//! transaction control, stay prepared in the connection's
//! [`StatementCache`] for the next time they run. The
//! connection keeps its limits, busy timeout and statement deadline, which
//! SQLite applies whoever steps the statement.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int};
use std::marker::PhantomData;
use std::ptr::NonNull;

use libsqlite3_sys as ffi;
use sqlx::sqlite::LockedSqliteHandle;

use super::cache::{self, Source, StatementCache};
use super::group_commit::{Done, Work, refuse_transaction_control};
use super::{RowBudget, Value, sqlite_error};
use crate::error::GuestError;

/// A SQLite connection the caller holds locked for as long as this lives,
/// with the statements kept prepared on it.
pub(super) struct RawConnection<'a> {
    db: NonNull<ffi::sqlite3>,
    cache: &'a mut StatementCache,
    _locked: PhantomData<&'a mut ()>,
}

impl<'a> RawConnection<'a> {
    /// Borrows the handle `locked` guards: sqlx's thread for that
    /// connection waits until the lock is dropped, so nothing else runs a
    /// statement on it meanwhile. `cache` must be this connection's.
    pub(super) fn new(
        locked: &'a mut LockedSqliteHandle<'_>,
        cache: &'a mut StatementCache,
    ) -> RawConnection<'a> {
        RawConnection {
            db: locked.as_raw_handle(),
            cache,
            _locked: PhantomData,
        }
    }

    /// Uses the open connection `db`, whose statements `cache` keeps.
    ///
    /// # Safety
    /// Nothing else may use `db` while the result lives, and `db` must stay
    /// open that long.
    pub(super) unsafe fn from_handle(
        db: NonNull<ffi::sqlite3>,
        cache: &'a mut StatementCache,
    ) -> RawConnection<'a> {
        RawConnection {
            db,
            cache,
            _locked: PhantomData,
        }
    }

    /// Whether a transaction is open: false once SQLite has rolled back
    /// one a failed statement was part of.
    pub(super) fn in_transaction(&self) -> bool {
        // SAFETY: the handle is live and locked for us (see `new`).
        unsafe { ffi::sqlite3_get_autocommit(self.db.as_ptr()) == 0 }
    }

    /// Runs a statement of the writer's own (`BEGIN`, `COMMIT`, …).
    pub(super) fn control(&mut self, statement: &str) -> Result<(), GuestError> {
        self.run_all(statement, &[], Work::Execute, Source::Writer)
            .map(drop)
    }

    /// Runs every statement of a plugin's `sql` with `params`, as `work`
    /// asks. A statement that would open or close a transaction is refused
    /// wherever it stands in `sql`.
    pub(super) fn run(
        &mut self,
        sql: &str,
        params: &[Value],
        work: Work,
    ) -> Result<Done, GuestError> {
        self.run_all(sql, params, work, Source::Plugin)
    }

    fn run_all(
        &mut self,
        sql: &str,
        params: &[Value],
        work: Work,
        source: Source,
    ) -> Result<Done, GuestError> {
        let mut results = Results::new(work);
        let cacheable = sql.len() <= cache::MAX_TEXT;
        // A statement kept from an earlier run passed every check then.
        if let Some(handle) = cacheable.then(|| self.cache.take(source, sql)).flatten() {
            let run = Statement::kept(handle, self).run(params, &mut 0, &mut results);
            self.cache.keep(source, sql, handle);
            return run.map(|()| results.done());
        }
        let mut rest = sql.as_bytes();
        let mut next_unnamed = 0;
        let mut keep = None;
        while !rest.iter().all(u8::is_ascii_whitespace) {
            if let Source::Plugin = source {
                refuse_transaction_control(&String::from_utf8_lossy(rest))?;
            }
            let whole = rest.len() == sql.len();
            let (statement, tail) = self.prepare(rest)?;
            rest = tail;
            // Whitespace or a comment prepares to no statement.
            let Some(mut statement) = statement else {
                continue;
            };
            statement.run(params, &mut next_unnamed, &mut results)?;
            if cacheable && whole && rest.iter().all(u8::is_ascii_whitespace) {
                keep = Some(statement.into_kept());
            }
        }
        if let Some(handle) = keep {
            self.cache.keep(source, sql, handle);
        }
        Ok(results.done())
    }

    /// Prepares the first statement of `sql`; returns it (none for
    /// whitespace or a comment) and what follows it.
    fn prepare<'s>(&self, sql: &'s [u8]) -> Result<(Option<Statement<'_>>, &'s [u8]), GuestError> {
        let length = c_int::try_from(sql.len())
            .map_err(|_| GuestError::Invalid("the statement is too long".to_owned()))?;
        let mut statement = std::ptr::null_mut();
        let mut tail: *const c_char = std::ptr::null();
        // SAFETY: `sql` is valid for `length` bytes (SQLite reads no
        // further and needs no NUL), and the out-pointers are valid.
        let code = unsafe {
            ffi::sqlite3_prepare_v2(
                self.db.as_ptr(),
                sql.as_ptr().cast(),
                length,
                &mut statement,
                &mut tail,
            )
        };
        if code != ffi::SQLITE_OK {
            return Err(self.error());
        }
        // SAFETY: SQLite sets `tail` to a point inside `sql` (or its end).
        let consumed = if tail.is_null() {
            sql.len()
        } else {
            usize::try_from(unsafe { tail.cast::<u8>().offset_from(sql.as_ptr()) })
                .unwrap_or(sql.len())
                .min(sql.len())
        };
        let statement = NonNull::new(statement).map(|handle| Statement {
            handle,
            connection: self,
            owned: true,
        });
        Ok((statement, &sql[consumed..]))
    }

    /// The connection's last error, classified for the plugin.
    fn error(&self) -> GuestError {
        // SAFETY: the handle is live and locked for us; the message is a
        // NUL-terminated string SQLite owns, copied before the next call.
        let (code, message) = unsafe {
            let code = ffi::sqlite3_extended_errcode(self.db.as_ptr());
            let message = ffi::sqlite3_errmsg(self.db.as_ptr());
            let message = if message.is_null() {
                String::new()
            } else {
                CStr::from_ptr(message).to_string_lossy().into_owned()
            };
            (code, message)
        };
        sqlite_error(code, message)
    }
}

/// What the statements of one string gave: their changed rows, or their
/// rows within the budget `work` sets.
struct Results {
    work: Work,
    changed: u64,
    rows: RowBudget,
}

impl Results {
    fn new(work: Work) -> Results {
        Results {
            work,
            changed: 0,
            rows: RowBudget::shared_by(match work {
                Work::Query { sharing } => sharing,
                Work::Execute => 1,
            }),
        }
    }

    fn done(self) -> Done {
        match self.work {
            Work::Execute => Done::Executed(self.changed),
            Work::Query { .. } => Done::Rows(self.rows.into_rows()),
        }
    }
}

/// One prepared statement: finalized when dropped, unless the connection's
/// cache keeps it.
struct Statement<'c> {
    handle: NonNull<ffi::sqlite3_stmt>,
    connection: &'c RawConnection<'c>,
    /// Whether dropping this finalizes the statement (it is not kept).
    owned: bool,
}

impl<'c> Statement<'c> {
    /// A statement taken from `connection`'s cache, which gets it back.
    fn kept(handle: NonNull<ffi::sqlite3_stmt>, connection: &'c RawConnection<'c>) -> Self {
        Statement {
            handle,
            connection,
            owned: false,
        }
    }

    /// Hands the statement over to be kept rather than finalized.
    fn into_kept(mut self) -> NonNull<ffi::sqlite3_stmt> {
        self.owned = false;
        self.handle
    }

    /// Binds `params` and steps the statement to its end, adding what it
    /// gives to `results`.
    fn run(
        &mut self,
        params: &[Value],
        next_unnamed: &mut usize,
        results: &mut Results,
    ) -> Result<(), GuestError> {
        self.bind(params, next_unnamed)?;
        while self.step()? {
            if let Work::Query { .. } = results.work {
                results.rows.admit(self.row()?)?;
            }
        }
        if !self.read_only() {
            // SAFETY: the handle is live and locked for us.
            let count = unsafe { ffi::sqlite3_changes64(self.connection.db.as_ptr()) };
            results.changed += u64::try_from(count).unwrap_or(0);
        }
        Ok(())
    }

    /// Binds `params` as sqlx does; `next_unnamed` counts the arguments
    /// bare `?` parameters took, across the statements of one string.
    fn bind(&mut self, params: &[Value], next_unnamed: &mut usize) -> Result<(), GuestError> {
        let stmt = self.handle.as_ptr();
        // SAFETY: `stmt` is a live prepared statement.
        let count = unsafe { ffi::sqlite3_bind_parameter_count(stmt) };
        for index in 1..=count {
            // SAFETY: as above; the name, if any, is a NUL-terminated
            // string SQLite owns while the statement lives.
            let name = unsafe {
                let name = ffi::sqlite3_bind_parameter_name(stmt, index);
                (!name.is_null()).then(|| CStr::from_ptr(name).to_bytes())
            };
            let argument = match name {
                Some(name) => parameter_number(name)?,
                None => {
                    *next_unnamed += 1;
                    *next_unnamed
                }
            };
            // Parameters beyond the arguments given stay NULL.
            let Some(value) = argument.checked_sub(1).and_then(|at| params.get(at)) else {
                break;
            };
            self.bind_one(index, value)?;
        }
        Ok(())
    }

    fn bind_one(&mut self, index: c_int, value: &Value) -> Result<(), GuestError> {
        let stmt = self.handle.as_ptr();
        // SAFETY: `stmt` is live; text and blobs are copied by SQLite
        // (SQLITE_TRANSIENT) before the call returns.
        let code = unsafe {
            match value {
                Value::Null => ffi::sqlite3_bind_null(stmt, index),
                Value::Integer(v) => ffi::sqlite3_bind_int64(stmt, index, *v),
                Value::Real(v) => ffi::sqlite3_bind_double(stmt, index, *v),
                Value::Text(v) => ffi::sqlite3_bind_text64(
                    stmt,
                    index,
                    v.as_ptr().cast(),
                    v.len() as u64,
                    ffi::SQLITE_TRANSIENT(),
                    ffi::SQLITE_UTF8 as u8,
                ),
                Value::Blob(v) => ffi::sqlite3_bind_blob64(
                    stmt,
                    index,
                    v.as_ptr().cast(),
                    v.len() as u64,
                    ffi::SQLITE_TRANSIENT(),
                ),
            }
        };
        if code != ffi::SQLITE_OK {
            return Err(self.connection.error());
        }
        Ok(())
    }

    /// Runs the statement to its next row: true when there is one.
    fn step(&mut self) -> Result<bool, GuestError> {
        // SAFETY: `stmt` is a live prepared statement.
        match unsafe { ffi::sqlite3_step(self.handle.as_ptr()) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            _ => Err(self.connection.error()),
        }
    }

    fn read_only(&self) -> bool {
        // SAFETY: `stmt` is a live prepared statement.
        unsafe { ffi::sqlite3_stmt_readonly(self.handle.as_ptr()) != 0 }
    }

    /// The current row's columns.
    fn row(&self) -> Result<Vec<Value>, GuestError> {
        let stmt = self.handle.as_ptr();
        // SAFETY: `stmt` has a current row (its last step returned one);
        // pointers SQLite returns for a column stay valid until the next
        // call on that column or statement, and are copied at once.
        unsafe {
            let columns = ffi::sqlite3_column_count(stmt);
            (0..columns)
                .map(|column| {
                    Ok(match ffi::sqlite3_column_type(stmt, column) {
                        ffi::SQLITE_INTEGER => {
                            Value::Integer(ffi::sqlite3_column_int64(stmt, column))
                        }
                        ffi::SQLITE_FLOAT => Value::Real(ffi::sqlite3_column_double(stmt, column)),
                        ffi::SQLITE_TEXT => {
                            let bytes = column_bytes(
                                stmt,
                                column,
                                ffi::sqlite3_column_text(stmt, column).cast(),
                            );
                            Value::Text(String::from_utf8(bytes).map_err(|_| {
                                GuestError::Invalid(format!(
                                    "column {column} holds text that is not UTF-8"
                                ))
                            })?)
                        }
                        ffi::SQLITE_BLOB => Value::Blob(column_bytes(
                            stmt,
                            column,
                            ffi::sqlite3_column_blob(stmt, column).cast(),
                        )),
                        _ => Value::Null,
                    })
                })
                .collect()
        }
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        // SAFETY: the statement is live and finalized exactly once.
        unsafe {
            ffi::sqlite3_finalize(self.handle.as_ptr());
        }
    }
}

/// Copies a text or blob column whose data starts at `data`.
///
/// # Safety
/// `data` must be what SQLite just returned for `column` of `stmt`.
unsafe fn column_bytes(stmt: *mut ffi::sqlite3_stmt, column: c_int, data: *const u8) -> Vec<u8> {
    // SAFETY: per the contract, `data` holds `sqlite3_column_bytes` bytes
    // (a zero-length value may come back as a null pointer).
    unsafe {
        let length = usize::try_from(ffi::sqlite3_column_bytes(stmt, column)).unwrap_or(0);
        if data.is_null() || length == 0 {
            return Vec::new();
        }
        std::slice::from_raw_parts(data, length).to_vec()
    }
}

/// The argument number of a named parameter: `$N` or `?N`.
fn parameter_number(name: &[u8]) -> Result<usize, GuestError> {
    let number = match name.split_first() {
        Some((b'$' | b'?', digits)) => std::str::from_utf8(digits)
            .ok()
            .and_then(|digits| digits.parse().ok()),
        _ => None,
    };
    number.ok_or_else(|| {
        GuestError::Invalid(format!(
            "parameter {} is not supported: write parameters $1, $2, …",
            String::from_utf8_lossy(name)
        ))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use sqlx::Connection;

    use super::super::cache::StatementCache;
    use super::super::group_commit::Work;
    use super::RawConnection;

    /// The writer's transaction control stays prepared from one group to
    /// the next, and a plugin's same text is still refused: the writer's
    /// kept statements are not the plugin's.
    #[tokio::test]
    async fn the_writers_kept_control_is_not_a_plugins() {
        let mut connection = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        let mut handle = connection.lock_handle().await.unwrap();
        let mut cache = StatementCache::default();
        let mut raw = RawConnection::new(&mut handle, &mut cache);
        raw.run("CREATE TABLE t (a INTEGER)", &[], Work::Execute)
            .unwrap();
        for _ in 0..3 {
            raw.control("BEGIN IMMEDIATE").unwrap();
            assert!(raw.in_transaction());
            raw.run("INSERT INTO t VALUES (1)", &[], Work::Execute)
                .unwrap();
            raw.control("COMMIT").unwrap();
            assert!(!raw.in_transaction());
        }
        for control in ["BEGIN IMMEDIATE", "COMMIT"] {
            assert!(raw.run(control, &[], Work::Execute).is_err(), "{control}");
        }
        assert!(!raw.in_transaction());
    }
}
