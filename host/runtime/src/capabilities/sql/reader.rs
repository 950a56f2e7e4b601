//! Lone `SELECT`s run on the calling thread. Through sqlx, every read is a
//! round trip to a connection's own thread, and those thread switches cost
//! more than a read by key. So a read first runs here, on a connection of
//! the reader's own, under a short budget ([`INLINE_BUDGET`]): what needs
//! longer, finds the database busy or fails in any way is stopped and
//! handed to sqlx's pool, which runs it on another thread under the plugin
//! call's deadline and gives the answer that stands. The calling thread is
//! never held for much longer than the budget.
//!
//! Reader connections are read-only, keep the pool's limits
//! ([`super::bound_sqlite`]) and temporary data in memory, and never wait
//! on a lock: a busy database is the pool's to wait for.
#![allow(unsafe_code)]

use std::ffi::{CString, c_int, c_void};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use libsqlite3_sys as ffi;

use super::cache::StatementCache;
use super::group_commit::{Done, Work};
use super::raw::RawConnection;
use super::{PROGRESS_STEPS, Value, bound_sqlite, statement_began};

/// How long a read may hold the calling thread before it is handed over.
const INLINE_BUDGET: Duration = Duration::from_millis(2);
/// Reader connections kept open; a read finding none idle goes to the pool.
const MAX_READERS: usize = 4;

/// The reader connections of one database file.
pub(super) struct Readers {
    path: CString,
    idle: Mutex<Vec<Reader>>,
    open: Mutex<usize>,
    /// Set once the pool closes: no reader opens or stays open after.
    closed: AtomicBool,
}

impl Readers {
    /// Readers of the database at `path`; none for an in-memory database,
    /// which another connection would not see.
    pub fn of(path: &Path) -> Option<Readers> {
        let text = path.to_str()?;
        if text.is_empty() || text == ":memory:" || text.contains("mode=memory") {
            return None;
        }
        Some(Readers {
            path: CString::new(text).ok()?,
            idle: Mutex::new(Vec::new()),
            open: Mutex::new(0),
            closed: AtomicBool::new(false),
        })
    }

    /// Runs a lone `SELECT` here; none when it must go to the pool instead
    /// (it failed — over budget, busy, or otherwise — or no reader was to
    /// be had).
    pub fn try_run(&self, statement: &str, params: &[Value], work: Work) -> Option<Done> {
        let mut reader = self.take()?;
        // SAFETY: `reader` is ours alone until it is given back.
        let mut connection = unsafe { RawConnection::from_handle(reader.db, &mut reader.cache) };
        let result = connection.run(statement, params, work);
        self.give_back(reader);
        // A read that failed here (over budget, busy, or anything else) is
        // run again by the pool, whose answer stands.
        result.ok()
    }

    /// Closes every reader connection (one in use, as it comes back);
    /// reads go to the pool from now on.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn take(&self) -> Option<Reader> {
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        if let Some(reader) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Some(reader);
        }
        {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            if *open >= MAX_READERS {
                return None;
            }
            *open += 1;
        }
        let opened = Reader::open(&self.path);
        if opened.is_none() {
            *self.open.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        }
        opened
    }

    fn give_back(&self, reader: Reader) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if !self.closed.load(Ordering::SeqCst) {
            idle.push(reader);
        }
    }
}

/// One read-only connection, closed when dropped.
struct Reader {
    db: NonNull<ffi::sqlite3>,
    cache: StatementCache,
}

// SAFETY: SQLite is built thread-safe; a reader is used by one thread at a
// time (it is taken out of the idle list for each read).
unsafe impl Send for Reader {}

impl Reader {
    fn open(path: &CString) -> Option<Reader> {
        let mut db = std::ptr::null_mut();
        // SAFETY: `path` is NUL-terminated; `db` receives the handle, which
        // is closed below on failure and by `Drop` otherwise.
        let code = unsafe {
            ffi::sqlite3_open_v2(
                path.as_ptr(),
                &mut db,
                ffi::SQLITE_OPEN_READONLY | ffi::SQLITE_OPEN_NOMUTEX,
                std::ptr::null(),
            )
        };
        let reader = Reader {
            db: NonNull::new(db)?,
            cache: StatementCache::default(),
        };
        if code != ffi::SQLITE_OK {
            return None;
        }
        bound_sqlite(reader.db);
        let db = reader.db.as_ptr();
        // SAFETY: `db` is open and ours; the callbacks keep no pointer
        // (their context is null).
        let configured = unsafe {
            ffi::sqlite3_trace_v2(
                db,
                ffi::SQLITE_TRACE_STMT as std::os::raw::c_uint,
                Some(statement_began),
                std::ptr::null_mut(),
            );
            ffi::sqlite3_progress_handler(
                db,
                PROGRESS_STEPS,
                Some(over_budget),
                std::ptr::null_mut(),
            );
            ffi::sqlite3_busy_timeout(db, 0);
            ffi::sqlite3_exec(
                db,
                c"PRAGMA temp_store = MEMORY".as_ptr(),
                None,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        (configured == ffi::SQLITE_OK).then_some(reader)
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // Statements go before their connection.
        self.cache.clear();
        // SAFETY: the handle is open and closed exactly once; the reader
        // has no statement left (its kept ones were just finalized).
        unsafe {
            ffi::sqlite3_close(self.db.as_ptr());
        }
    }
}

/// SQLite's progress handler on a reader: stops the statement once it has
/// run for longer than the inline budget.
extern "C" fn over_budget(_context: *mut c_void) -> c_int {
    let over = super::STATEMENT_STARTED
        .with(|started| started.get().is_some_and(|at| at.elapsed() > INLINE_BUDGET));
    c_int::from(over)
}
