//! The `sql` capability: statements run by the host on its own sqlx pool.
//!
//! The pool is opened from the operator's grant, so a plugin never learns the
//! database URL or its credentials. Errors the database reports become
//! guest-visible `error` values; only a host bug traps.
//!
//! Every statement is host work done for a plugin, so it is bounded:
//! - SQLite refuses values and rows over [`MAX_VALUE_BYTES`] (and long
//!   statements, deep expressions, attaching files) through its own limits,
//!   keeps temporary data in memory under a process-wide heap limit, and
//!   interrupts a statement that has run for longer than a plugin call may
//!   last (a progress handler on every connection), so a runaway query does
//!   not keep a connection or a core;
//! - PostgreSQL statements run under `statement_timeout`, and every
//!   connection is reset as it returns to the pool (transaction, settings,
//!   role, locks, temporary tables), so nothing a plugin sets — `SET
//!   statement_timeout = 0` included — outlives its statement;
//! - results are cut off at [`MAX_ROWS`] rows and [`MAX_RESULT_BYTES`].
//!
//! SQLite writes go through one writer that lets concurrent writes
//! share a commit (see `group_commit`); lone `SELECT`s run first on the
//! calling thread under a short budget, and on the pool when they need
//! longer (see `reader`).

mod batch;
mod cache;
mod group_commit;
mod raw;
mod reader;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow};
use sqlx::{Column, Row, TypeInfo, ValueRef};

use wasmtime::component::HasSelf;

use super::{Capability, Grant};
use crate::bindings;
use crate::bindings::sql::{Dialect, Host, Statement, Value};
use crate::bindings::types::Error as WitError;
use crate::error::GuestError;
use crate::plugin::PluginKind;
use crate::state::PluginState;
use group_commit::{Done, GroupCommit, Work};
use reader::Readers;

/// Storage plugins may use the database their section grants; one that
/// imports `sql` without a grant is refused when it loads.
pub(crate) const CAPABILITY: Capability = Capability {
    interface: "coffer:plugin/sql",
    kinds: &[PluginKind::Storage],
    grant: Some(Grant {
        table: "sql",
        given: |grants| grants.sql.is_some(),
    }),
    link: |linker| bindings::sql::add_to_linker::<_, HasSelf<_>>(linker, |s| s),
};

/// Rows one query may return; a plugin asking for more gets `invalid`.
const MAX_ROWS: usize = 10_000;
/// Bytes of column data one query may return.
const MAX_RESULT_BYTES: usize = 64 << 20;
/// Largest SQLite string, blob or row (records are at most 32 MiB).
pub const MAX_VALUE_BYTES: i32 = 48 << 20;
/// Memory all SQLite connections of the process may hold together.
const SQLITE_HEAP_LIMIT: i64 = 512 << 20;
/// SQLite virtual-machine steps between two looks at the running statement.
const PROGRESS_STEPS: i32 = 10_000;
/// What a PostgreSQL connection runs as it returns to the pool.
const RESET_SESSION: &str = "ROLLBACK; RESET ALL; RESET ROLE; RESET SESSION AUTHORIZATION; \
     CLOSE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP";

/// The database dialect behind a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlDialect {
    Sqlite,
    Postgres,
}

/// A connection pool owned by the host and lent to one plugin.
pub enum SqlPool {
    Sqlite(SqliteDatabase),
    Postgres(sqlx::PgPool),
}

/// A SQLite pool and its writer. SQLite lets one writer in at a time and
/// makes the others sleep in its busy handler (for up to 100 ms per try);
/// one writer taking every write in turn ([`GroupCommit`]) keeps
/// their latency flat and lets them share a commit, while readers still
/// run side by side under WAL.
pub struct SqliteDatabase {
    pool: sqlx::SqlitePool,
    /// Where lone `SELECT`s run first (none for an in-memory database).
    readers: Option<Readers>,
    writes: GroupCommit,
    /// Held by the writer while it writes, and by the host's own
    /// maintenance of the database file.
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl SqliteDatabase {
    /// Runs a lone `SELECT` on this thread when it is quick; none when it
    /// must go to the pool ([`reader`]).
    fn read_inline(&self, statement: &str, params: &[Value], work: Work) -> Option<Done> {
        self.readers.as_ref()?.try_run(statement, params, work)
    }
}

/// Whether a statement can only read: a lone `SELECT`. Anything else, even
/// a `WITH` that might write, counts as a writer.
fn is_read_only(statement: &str) -> bool {
    let statement = statement.trim_start();
    statement.len() >= 6
        && statement[..6].eq_ignore_ascii_case("select")
        && !statement.trim_end().trim_end_matches(';').contains(';')
}

impl std::fmt::Debug for SqlPool {
    // The URL may hold a password: name the dialect only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqlPool({:?})", self.dialect())
    }
}

impl SqlPool {
    /// Opens a pool for `url` (`sqlite://path` or `postgres://…`). SQLite
    /// files are created if missing and run in WAL mode, and no connection
    /// may attach another database file. PostgreSQL statements are cancelled
    /// after `statement_timeout`, so a plugin call that timed out does not
    /// leave its query running.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        statement_timeout: Duration,
    ) -> Result<SqlPool, String> {
        let acquire = Duration::from_secs(5);
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| format!("invalid sqlite url: {e}"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5))
                // Freed content is overwritten, so a destroyed key's old
                // bytes do not linger in free pages.
                .pragma("secure_delete", "ON")
                // Sorts and temporary tables stay in memory, under the heap
                // limit, rather than growing files on the host's disk.
                .pragma("temp_store", "MEMORY");
            let readers = Readers::of(options.get_filename());
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire)
                .after_connect(move |connection, _| {
                    Box::pin(async move {
                        let mut handle = connection.lock_handle().await?;
                        bound_sqlite(handle.as_raw_handle());
                        watch_statements(&mut handle, statement_timeout);
                        Ok(())
                    })
                })
                .connect_with(options)
                .await
                .map_err(|e| format!("cannot open sqlite database: {e}"))?;
            let writer = Arc::new(tokio::sync::Mutex::new(()));
            Ok(SqlPool::Sqlite(SqliteDatabase {
                writes: GroupCommit::start(pool.clone(), writer.clone()),
                readers,
                pool,
                writer,
            }))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| format!("invalid postgres url: {}", redact(&e.to_string())))?
                .options([(
                    "statement_timeout",
                    format!("{}ms", statement_timeout.as_millis().max(1)),
                )]);
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire)
                .after_release(|connection, _| reset_session(connection))
                .connect_with(options)
                .await
                .map_err(|e| format!("cannot connect to postgres: {}", redact(&e.to_string())))?;
            Ok(SqlPool::Postgres(pool))
        } else {
            Err("the url must start with sqlite: or postgres:".to_owned())
        }
    }

    /// Which database this pool talks to.
    pub fn dialect(&self) -> SqlDialect {
        match self {
            SqlPool::Sqlite(_) => SqlDialect::Sqlite,
            SqlPool::Postgres(_) => SqlDialect::Postgres,
        }
    }

    /// Makes what was deleted unrecoverable from the database's own files,
    /// as far as the host can: SQLite zeroes freed content as it goes
    /// (`secure_delete`), and this checkpoints the WAL — where the old
    /// pages still sit — into the database and truncates it. Fails (to be
    /// retried) while readers hold old snapshots. PostgreSQL keeps dead
    /// rows until VACUUM, and its WAL and backups beyond that: nothing the
    /// host can do from a connection.
    pub async fn shred(&self) -> Result<(), String> {
        match self {
            SqlPool::Sqlite(db) => {
                let _turn = db.writer.lock().await;
                let (busy, _, _): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                        .fetch_one(&db.pool)
                        .await
                        .map_err(|e| e.to_string())?;
                if busy != 0 {
                    return Err("readers still hold older pages".to_owned());
                }
                Ok(())
            }
            SqlPool::Postgres(_) => Ok(()),
        }
    }

    /// Closes every connection, waiting for those in use: the pool's, the
    /// SQLite writer's own and the readers'.
    pub async fn close(&self) {
        match self {
            SqlPool::Sqlite(db) => {
                if let Some(readers) = &db.readers {
                    readers.close();
                }
                db.writes.release().await;
                db.pool.close().await;
            }
            SqlPool::Postgres(pool) => pool.close().await,
        }
    }

    async fn execute(&self, statement: &str, params: Vec<Value>) -> Result<u64, GuestError> {
        let done = match self {
            SqlPool::Sqlite(db) if is_read_only(statement) => {
                if let Some(done) = db.read_inline(statement, &params, Work::Execute) {
                    return match done {
                        Done::Executed(count) => Ok(count),
                        Done::Rows(rows) => Ok(rows.len() as u64),
                    };
                }
                bind_all(sqlx::query(statement), params)
                    .execute(&db.pool)
                    .await
                    .map(|r| r.rows_affected())
            }
            SqlPool::Sqlite(db) => {
                return match db.writes.submit(statement, params, Work::Execute).await? {
                    Done::Executed(count) => Ok(count),
                    Done::Rows(rows) => Ok(rows.len() as u64),
                };
            }
            SqlPool::Postgres(pool) => bind_all(sqlx::query(statement), params)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        };
        done.map_err(classify)
    }

    async fn query(
        &self,
        statement: &str,
        params: Vec<Value>,
    ) -> Result<Vec<Vec<Value>>, GuestError> {
        match self {
            SqlPool::Sqlite(db) if is_read_only(statement) => {
                if let Some(done) = db.read_inline(statement, &params, Work::QUERY) {
                    return match done {
                        Done::Rows(rows) => Ok(rows),
                        Done::Executed(_) => Ok(Vec::new()),
                    };
                }
                let rows = bind_all(sqlx::query(statement), params).fetch(&db.pool);
                collect_rows(rows, sqlite_row, 1).await
            }
            SqlPool::Sqlite(db) => match db.writes.submit(statement, params, Work::QUERY).await? {
                Done::Rows(rows) => Ok(rows),
                Done::Executed(_) => Ok(Vec::new()),
            },
            SqlPool::Postgres(pool) => {
                let rows = bind_all(sqlx::query(statement), params).fetch(pool);
                collect_rows(rows, pg_row, 1).await
            }
        }
    }
}

/// Converts rows as they stream in, stopping at the row and byte limits so a
/// query without a `LIMIT` cannot make the host buffer a whole table.
async fn collect_rows<R>(
    mut rows: futures_util::stream::BoxStream<'_, Result<R, sqlx::Error>>,
    convert: fn(&R) -> Result<Vec<Value>, GuestError>,
    sharing: usize,
) -> Result<Vec<Vec<Value>>, GuestError> {
    use futures_util::StreamExt;
    let mut budget = RowBudget::shared_by(sharing);
    while let Some(row) = rows.next().await {
        budget.admit(convert(&row.map_err(classify)?)?)?;
    }
    Ok(budget.into_rows())
}

/// The rows of one query so far, within its share of [`MAX_ROWS`] and
/// [`MAX_RESULT_BYTES`].
struct RowBudget {
    rows: Vec<Vec<Value>>,
    bytes: usize,
    max_rows: usize,
    max_bytes: usize,
}

impl RowBudget {
    /// The budget of one of `sharing` statements answered together.
    fn shared_by(sharing: usize) -> RowBudget {
        let sharing = sharing.max(1);
        RowBudget {
            rows: Vec::new(),
            bytes: 0,
            max_rows: (MAX_ROWS / sharing).max(1),
            max_bytes: MAX_RESULT_BYTES / sharing,
        }
    }

    /// Takes one more row, or refuses the query once it returns too much.
    fn admit(&mut self, row: Vec<Value>) -> Result<(), GuestError> {
        self.bytes += row.iter().map(value_size).sum::<usize>();
        self.rows.push(row);
        if self.rows.len() > self.max_rows {
            return Err(GuestError::Invalid(format!(
                "the query returned more than the {} rows allowed",
                self.max_rows
            )));
        }
        if self.bytes > self.max_bytes {
            return Err(GuestError::Invalid(format!(
                "the query returned more than the {} bytes allowed",
                self.max_bytes
            )));
        }
        Ok(())
    }

    fn into_rows(self) -> Vec<Vec<Value>> {
        self.rows
    }
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Integer(_) | Value::Real(_) => 8,
        Value::Text(text) => text.len(),
        Value::Blob(blob) => blob.len(),
    }
}

fn bind_all<'q, DB>(
    mut query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    params: Vec<Value>,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for param in params {
        query = match param {
            Value::Null => query.bind(None::<i64>),
            Value::Integer(v) => query.bind(v),
            Value::Real(v) => query.bind(v),
            Value::Text(v) => query.bind(v),
            Value::Blob(v) => query.bind(v),
        };
    }
    query
}

fn sqlite_row(row: &SqliteRow) -> Result<Vec<Value>, GuestError> {
    (0..row.columns().len())
        .map(|i| {
            let raw = row.try_get_raw(i).map_err(classify)?;
            if raw.is_null() {
                return Ok(Value::Null);
            }
            let type_name = raw.type_info().name().to_owned();
            let value = match type_name.as_str() {
                "INTEGER" | "BOOLEAN" => Value::Integer(row.try_get(i).map_err(classify)?),
                "REAL" => Value::Real(row.try_get(i).map_err(classify)?),
                "TEXT" => Value::Text(row.try_get(i).map_err(classify)?),
                "BLOB" => Value::Blob(row.try_get(i).map_err(classify)?),
                other => return Err(unsupported_column(row.column(i).name(), other)),
            };
            Ok(value)
        })
        .collect()
}

fn pg_row(row: &PgRow) -> Result<Vec<Value>, GuestError> {
    (0..row.columns().len())
        .map(|i| {
            let raw = row.try_get_raw(i).map_err(classify)?;
            if raw.is_null() {
                return Ok(Value::Null);
            }
            let type_name = raw.type_info().name().to_owned();
            let value = match type_name.as_str() {
                "INT8" => Value::Integer(row.try_get(i).map_err(classify)?),
                "INT4" => Value::Integer(row.try_get::<i32, _>(i).map_err(classify)?.into()),
                "INT2" => Value::Integer(row.try_get::<i16, _>(i).map_err(classify)?.into()),
                "BOOL" => Value::Integer(row.try_get::<bool, _>(i).map_err(classify)?.into()),
                "FLOAT8" => Value::Real(row.try_get(i).map_err(classify)?),
                "FLOAT4" => Value::Real(row.try_get::<f32, _>(i).map_err(classify)?.into()),
                "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
                    Value::Text(row.try_get(i).map_err(classify)?)
                }
                "BYTEA" => Value::Blob(row.try_get(i).map_err(classify)?),
                other => return Err(unsupported_column(row.column(i).name(), other)),
            };
            Ok(value)
        })
        .collect()
}

fn unsupported_column(column: &str, type_name: &str) -> GuestError {
    GuestError::Invalid(format!(
        "column {column} has type {type_name}; cast it to an integer, real, text or blob"
    ))
}

/// Turns a database error into what the plugin may see and act on.
fn classify(error: sqlx::Error) -> GuestError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            GuestError::Conflict(db.message().to_owned())
        }
        sqlx::Error::Database(db) if is_interrupted(db.code().as_deref()) => {
            GuestError::Unavailable(STOPPED_AT_DEADLINE.to_owned())
        }
        sqlx::Error::Database(db) if is_transient(db.code().as_deref()) => {
            GuestError::Unavailable(db.message().to_owned())
        }
        sqlx::Error::Database(db) => GuestError::Invalid(db.message().to_owned()),
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            GuestError::Unavailable(error.to_string())
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::TypeNotFound { .. } => GuestError::Invalid(error.to_string()),
        _ => GuestError::Internal(error.to_string()),
    }
}

/// A SQLite error by its extended result code, as [`classify`] sees it.
fn sqlite_error(code: i32, message: String) -> GuestError {
    let text = code.to_string();
    match code {
        libsqlite3_sys::SQLITE_CONSTRAINT_UNIQUE | libsqlite3_sys::SQLITE_CONSTRAINT_PRIMARYKEY => {
            GuestError::Conflict(message)
        }
        _ if is_interrupted(Some(&text)) => GuestError::Unavailable(STOPPED_AT_DEADLINE.to_owned()),
        _ if is_transient(Some(&text)) => GuestError::Unavailable(message),
        _ => GuestError::Invalid(message),
    }
}

/// What a plugin hears of a statement its deadline stopped.
const STOPPED_AT_DEADLINE: &str =
    "the statement ran past the plugin call's deadline and was stopped";

/// Installs on a SQLite connection a progress handler that interrupts any
/// statement execution running longer than `limit`. SQLite says when each
/// execution begins (a statement trace), so the clock restarts exactly
/// then: no round trip to the connection's thread per statement, and no
/// guessing from statement addresses, which SQLite reuses once a
/// statement is finalized.
#[allow(unsafe_code)]
fn watch_statements(connection: &mut sqlx::sqlite::LockedSqliteHandle<'_>, limit: Duration) {
    use libsqlite3_sys as ffi;
    let db = connection.as_raw_handle().as_ptr();
    // SAFETY: `db` is the live handle this lock guards, and no statement
    // runs on it meanwhile; the callback keeps no pointer (its context is
    // null), so nothing it uses can dangle once the connection closes.
    unsafe {
        ffi::sqlite3_trace_v2(
            db,
            ffi::SQLITE_TRACE_STMT as std::os::raw::c_uint,
            Some(statement_began),
            std::ptr::null_mut(),
        );
    }
    connection.set_progress_handler(PROGRESS_STEPS, move || {
        STATEMENT_STARTED.with(|started| match started.get() {
            Some(at) => at.elapsed() < limit,
            None => {
                started.set(Some(std::time::Instant::now()));
                true
            }
        })
    });
}

thread_local! {
    /// When the statement running on this thread began. SQLite runs each
    /// connection's statements on that connection's own worker thread, so
    /// this is the statement of the connection whose handler reads it.
    static STATEMENT_STARTED: std::cell::Cell<Option<std::time::Instant>> =
        const { std::cell::Cell::new(None) };
}

/// SQLite's statement trace (`SQLITE_TRACE_STMT`): a statement begins to
/// run. The trace may also mark a trigger program the statement starts
/// (its text is an SQL comment, `-- trigger`): that is part of the
/// statement already timed, so the clock is not restarted for it.
#[allow(unsafe_code)]
unsafe extern "C" fn statement_began(
    _mask: std::os::raw::c_uint,
    _context: *mut std::os::raw::c_void,
    _statement: *mut std::os::raw::c_void,
    text: *mut std::os::raw::c_void,
) -> std::os::raw::c_int {
    // SAFETY: for SQLITE_TRACE_STMT, SQLite passes the statement's text
    // (or a trigger's comment) as a NUL-terminated string valid during the
    // callback; only its first two bytes are read, and only if present.
    let trigger = !text.is_null()
        && unsafe {
            let text = text as *const u8;
            *text == b'-' && *text.add(1) == b'-'
        };
    if !trigger {
        STATEMENT_STARTED.with(|started| started.set(Some(std::time::Instant::now())));
    }
    0
}

/// Resets a PostgreSQL connection returning to the pool; one that cannot
/// be reset is closed rather than reused.
fn reset_session(
    connection: &mut sqlx::PgConnection,
) -> futures_util::future::BoxFuture<'_, Result<bool, sqlx::Error>> {
    Box::pin(async move {
        Ok(sqlx::Executor::execute(connection, RESET_SESSION)
            .await
            .is_ok())
    })
}

/// SQLite's "interrupted" and PostgreSQL's "canceled by statement timeout".
fn is_interrupted(code: Option<&str>) -> bool {
    matches!(code, Some("9" | "57014"))
}

/// Database error codes that mean "try again later", not "your statement is
/// wrong": SQLite busy/locked (primary and extended codes) and PostgreSQL
/// serialization failures, deadlocks, cancellations, shutdowns and
/// connection limits.
fn is_transient(code: Option<&str>) -> bool {
    let Some(code) = code else { return false };
    if let Ok(sqlite) = code.parse::<i32>() {
        return matches!(sqlite & 0xff, 5 | 6);
    }
    matches!(
        code,
        "40001" | "40P01" | "57014" | "57P01" | "57P03" | "53300"
    )
}

/// Drops the password from a connection error that echoes the URL.
fn redact(message: &str) -> String {
    match (message.find("://"), message.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &message[..scheme], &message[at + 1..])
        }
        _ => message.to_owned(),
    }
}

/// Bounds what one statement on this connection can make SQLite do: no
/// other database files (`ATTACH`, and `VACUUM INTO`, which attaches its
/// target — they would reach files beyond the one granted), no value or
/// row over [`MAX_VALUE_BYTES`] (so `zeroblob(999999999)` fails before it
/// allocates), and small caps on statement size, expression depth, compound
/// selects, arguments and patterns; and caps the memory of every SQLite
/// connection in the process together.
#[allow(unsafe_code)]
fn bound_sqlite(db: std::ptr::NonNull<libsqlite3_sys::sqlite3>) {
    use libsqlite3_sys as ffi;
    const LIMITS: [(i32, i32); 10] = [
        (ffi::SQLITE_LIMIT_ATTACHED, 0),
        (ffi::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES),
        (ffi::SQLITE_LIMIT_SQL_LENGTH, 1 << 20),
        (ffi::SQLITE_LIMIT_COLUMN, 100),
        (ffi::SQLITE_LIMIT_EXPR_DEPTH, 100),
        (ffi::SQLITE_LIMIT_COMPOUND_SELECT, 50),
        (ffi::SQLITE_LIMIT_FUNCTION_ARG, 32),
        (ffi::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 1024),
        (ffi::SQLITE_LIMIT_TRIGGER_DEPTH, 10),
        (ffi::SQLITE_LIMIT_WORKER_THREADS, 0),
    ];
    // SAFETY: `db` is the live handle of a connection that is locked for us
    // for the duration of this call; sqlite3_limit only touches that
    // connection's limit table, and sqlite3_hard_heap_limit64 sets a
    // process-wide number under SQLite's own mutex.
    unsafe {
        for (limit, value) in LIMITS {
            ffi::sqlite3_limit(db.as_ptr(), limit, value);
        }
        ffi::sqlite3_hard_heap_limit64(SQLITE_HEAP_LIMIT);
    }
}

fn denied() -> WitError {
    WitError::Denied(
        "no database is granted to this plugin: add a [<section>.sql] url in coffer.toml"
            .to_owned(),
    )
}

impl Host for PluginState {
    async fn database(&mut self) -> wasmtime::Result<Dialect> {
        // Without a grant the plugin does not load; the answer is moot.
        Ok(match self.grants.sql.as_deref().map(SqlPool::dialect) {
            Some(SqlDialect::Postgres) => Dialect::Postgres,
            _ => Dialect::Sqlite,
        })
    }

    async fn execute(
        &mut self,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<u64, WitError>> {
        let Some(pool) = self.grants.sql.clone() else {
            return Ok(Err(denied()));
        };
        Ok(pool.execute(&statement, params).await.map_err(Into::into))
    }

    async fn query(
        &mut self,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<Vec<Vec<Value>>, WitError>> {
        let Some(pool) = self.grants.sql.clone() else {
            return Ok(Err(denied()));
        };
        Ok(pool.query(&statement, params).await.map_err(Into::into))
    }

    async fn batch(
        &mut self,
        statements: Vec<Statement>,
    ) -> wasmtime::Result<Result<Vec<Result<Vec<Vec<Value>>, WitError>>, WitError>> {
        let Some(pool) = self.grants.sql.clone() else {
            return Ok(Err(denied()));
        };
        Ok(match pool.batch(statements).await {
            Ok(answers) => Ok(answers
                .into_iter()
                .map(|answer| answer.map_err(Into::into))
                .collect()),
            Err(error) => Err(error.into()),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{GuestError, SqlPool, Value, is_read_only, redact};

    /// A SQLite pool on a fresh file `name` in a directory of its own, for
    /// the capability's tests.
    pub(super) async fn scratch_sqlite(name: &str) -> (tempfile::TempDir, SqlPool) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join(name).display());
        let pool = SqlPool::connect(&url, 2, std::time::Duration::from_secs(30))
            .await
            .unwrap();
        (dir, pool)
    }

    /// Reads run first on the calling thread; one that takes longer than
    /// its budget there, or fails, is answered by the pool.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_over_the_inline_budget_or_failing_are_answered_by_the_pool() {
        let (_dir, pool) = scratch_sqlite("reads.db").await;
        pool.execute("CREATE TABLE t (x INTEGER)", vec![])
            .await
            .unwrap();
        pool.execute("INSERT INTO t VALUES ($1)", vec![Value::Integer(7)])
            .await
            .unwrap();
        let quick = pool.query("SELECT x FROM t", vec![]).await.unwrap();
        assert!(matches!(quick.as_slice(), [row] if matches!(row.as_slice(), [Value::Integer(7)])));
        let slow = pool
            .query(
                "SELECT count(*) FROM (WITH RECURSIVE c(x) AS \
                 (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT x FROM c)",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            matches!(slow.as_slice(), [row] if matches!(row.as_slice(), [Value::Integer(3_000_000)])),
            "{slow:?}"
        );
        let failed = pool.query("SELECT missing FROM t", vec![]).await;
        assert!(matches!(failed, Err(GuestError::Invalid(_))), "{failed:?}");
    }

    /// Closing the pool closes every connection to the file, the writer's
    /// and the readers' included, so the last one out checkpoints the WAL
    /// and removes it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closing_the_pool_closes_every_connection_to_the_file() {
        let (dir, pool) = scratch_sqlite("closing.db").await;
        pool.execute("CREATE TABLE t (x INTEGER)", vec![])
            .await
            .unwrap();
        pool.execute("INSERT INTO t VALUES (1)", vec![])
            .await
            .unwrap();
        pool.query("SELECT x FROM t", vec![]).await.unwrap();
        let wal = dir.path().join("closing.db-wal");
        assert!(wal.exists());
        pool.close().await;
        assert!(!wal.exists(), "a connection outlived the pool");
    }

    #[test]
    fn only_lone_selects_skip_the_writer_queue() {
        assert!(is_read_only("  select k FROM t WHERE k = $1"));
        assert!(is_read_only("SELECT 1;"));
        assert!(!is_read_only("SELECT 1; DELETE FROM t"));
        assert!(!is_read_only("INSERT INTO t VALUES (1) RETURNING rev"));
        assert!(!is_read_only("WITH x AS (SELECT 1) DELETE FROM t"));
        assert!(!is_read_only("sel"));
    }

    #[test]
    fn redact_hides_credentials_in_urls() {
        assert_eq!(
            redact("error with postgres://u:sec@ret@127.0.0.1:5/db"),
            "error with postgres://…@127.0.0.1:5/db"
        );
        assert_eq!(redact("no url here"), "no url here");
    }
}
