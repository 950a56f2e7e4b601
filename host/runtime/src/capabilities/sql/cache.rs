//! Prepared statements kept per connection, so a plugin's statement run
//! again (the same text: parameters are bound anew) is not parsed and
//! planned again. Only single statements up to [`MAX_TEXT`] bytes are
//! kept, at most [`MAX_KEPT`] per connection; when more arrive, all are
//! dropped and the cache fills again. The writer's own transaction
//! control (`BEGIN IMMEDIATE`, `COMMIT`, at every group) is kept apart:
//! a kept statement skips the checks a plugin's text gets, and a plugin
//! may not run those. A kept statement is reset and its
//! parameters cleared before it goes back, so nothing of one call's values
//! stays bound for the next.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ptr::NonNull;

use libsqlite3_sys as ffi;

/// Statements one connection keeps prepared.
const MAX_KEPT: usize = 64;
/// Longest statement text kept.
pub(super) const MAX_TEXT: usize = 4096;

/// Whose statements are run.
#[derive(Clone, Copy)]
pub(super) enum Source {
    /// The writer's own transaction control.
    Writer,
    /// A plugin's, which may not control transactions.
    Plugin,
}

/// The prepared statements of one connection. Its owner must drop (or
/// [`StatementCache::clear`]) it before closing that connection.
#[derive(Default)]
pub(super) struct StatementCache {
    kept: HashMap<String, NonNull<ffi::sqlite3_stmt>>,
    /// The writer's own, a handful of fixed texts.
    own: HashMap<String, NonNull<ffi::sqlite3_stmt>>,
}

// SAFETY: the statements belong to one connection, which only the cache's
// owner uses, one thread at a time.
unsafe impl Send for StatementCache {}

impl StatementCache {
    /// Takes the statement `source` prepared for `text`, if kept; it is
    /// the caller's until given back with [`StatementCache::keep`].
    pub(super) fn take(
        &mut self,
        source: Source,
        text: &str,
    ) -> Option<NonNull<ffi::sqlite3_stmt>> {
        self.of(source).remove(text)
    }

    /// Resets `statement`, prepared by `source` for `text`, and keeps it —
    /// or finalizes it when its text is too long to keep.
    pub(super) fn keep(
        &mut self,
        source: Source,
        text: &str,
        statement: NonNull<ffi::sqlite3_stmt>,
    ) {
        // SAFETY: the statement is live and no longer stepped by anyone.
        unsafe {
            ffi::sqlite3_reset(statement.as_ptr());
            ffi::sqlite3_clear_bindings(statement.as_ptr());
        }
        if text.len() > MAX_TEXT {
            finalize(statement);
            return;
        }
        if self.of(source).len() >= MAX_KEPT {
            self.clear();
        }
        if let Some(replaced) = self.of(source).insert(text.to_owned(), statement) {
            finalize(replaced);
        }
    }

    fn of(&mut self, source: Source) -> &mut HashMap<String, NonNull<ffi::sqlite3_stmt>> {
        match source {
            Source::Writer => &mut self.own,
            Source::Plugin => &mut self.kept,
        }
    }

    /// Finalizes every kept statement.
    pub(super) fn clear(&mut self) {
        for (_, statement) in self.kept.drain().chain(self.own.drain()) {
            finalize(statement);
        }
    }
}

impl Drop for StatementCache {
    fn drop(&mut self) {
        self.clear();
    }
}

fn finalize(statement: NonNull<ffi::sqlite3_stmt>) {
    // SAFETY: the statement is live, and finalized exactly once: it left
    // the cache (or never entered it).
    unsafe {
        ffi::sqlite3_finalize(statement.as_ptr());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::Value;
    use super::super::tests::scratch_sqlite;

    /// A kept statement binds each call's values afresh (one given fewer
    /// values sees NULL, not the last call's), follows the schema as it
    /// changes, and more statements than are kept still run right.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kept_statements_bind_afresh_and_follow_the_schema() {
        let (_dir, pool) = scratch_sqlite("kept.db").await;
        pool.execute("CREATE TABLE t (a INTEGER, b INTEGER)", vec![])
            .await
            .unwrap();
        let insert = "INSERT INTO t VALUES ($1, $2)";
        pool.execute(insert, vec![Value::Integer(1), Value::Integer(2)])
            .await
            .unwrap();
        pool.execute(insert, vec![Value::Integer(3)]).await.unwrap();
        let read = "SELECT b FROM t WHERE a = $1";
        for (a, b) in [(1, Some(2)), (3, None), (1, Some(2))] {
            let rows = pool.query(read, vec![Value::Integer(a)]).await.unwrap();
            let got = match rows.as_slice() {
                [row] => match row.as_slice() {
                    [Value::Integer(b)] => Some(*b),
                    [Value::Null] => None,
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            };
            assert_eq!(got, b, "a = {a}");
        }
        pool.execute("DROP TABLE t", vec![]).await.unwrap();
        pool.execute("CREATE TABLE t (b INTEGER, a INTEGER)", vec![])
            .await
            .unwrap();
        pool.execute(insert, vec![Value::Integer(5), Value::Integer(6)])
            .await
            .unwrap();
        let rows = pool.query(read, vec![Value::Integer(6)]).await.unwrap();
        assert!(
            matches!(rows.as_slice(), [row] if matches!(row.as_slice(), [Value::Integer(5)])),
            "{rows:?}"
        );
        for n in 0..150 {
            let rows = pool
                .query(&format!("SELECT {n} + $1"), vec![Value::Integer(1)])
                .await
                .unwrap();
            assert!(
                matches!(rows.as_slice(), [row] if matches!(row.as_slice(), [Value::Integer(m)] if *m == n + 1)),
                "{rows:?}"
            );
        }
    }
}
