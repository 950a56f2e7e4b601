//! `sql.batch`: many writing statements in one call, sharing a commit.
//!
//! On SQLite the statements join the writer's queue together, so the group
//! commit ([`super::group_commit`]) takes them (and whatever else waits) in
//! one transaction. On PostgreSQL they run in order in one transaction on
//! one connection; if one fails, that transaction is rolled back and every
//! statement runs again on its own, so each gets the answer it would have
//! had alone. Either way a batch is bounded: at most [`MAX_STATEMENTS`]
//! statements and [`MAX_PARAM_BYTES`] of parameters, and its results share
//! one query's limits.

use super::group_commit::{Done, refuse_transaction_control};
use super::{SqlPool, Statement, Value, bind_all, classify, collect_rows, pg_row, value_size};
use crate::error::GuestError;

/// Most statements one batch may carry.
pub const MAX_STATEMENTS: usize = 1000;
/// Most bytes of parameters (texts, blobs, 8 per number) one batch may carry.
pub const MAX_PARAM_BYTES: usize = 64 << 20;

/// Each statement's rows, or its own error.
pub type Answers = Vec<Result<Vec<Vec<Value>>, GuestError>>;

impl SqlPool {
    /// Runs `statements` in order, committed together; answers each on its
    /// own. An error for the whole batch only when it is too large or its
    /// outcome is unknown (the database went away while committing).
    pub(super) async fn batch(&self, statements: Vec<Statement>) -> Result<Answers, GuestError> {
        check_size(&statements)?;
        match self {
            SqlPool::Sqlite(db) => {
                let statements = statements
                    .into_iter()
                    .map(|statement| (statement.text, statement.params))
                    .collect();
                Ok(db
                    .writes
                    .submit_many(statements)
                    .await
                    .into_iter()
                    .map(|done| done.map(rows_of))
                    .collect())
            }
            SqlPool::Postgres(pool) => postgres(pool, &statements).await,
        }
    }
}

fn check_size(statements: &[Statement]) -> Result<(), GuestError> {
    if statements.len() > MAX_STATEMENTS {
        return Err(GuestError::Invalid(format!(
            "{} statements in one batch; at most {MAX_STATEMENTS}",
            statements.len()
        )));
    }
    let bytes: usize = statements
        .iter()
        .map(|statement| {
            statement.text.len() + statement.params.iter().map(value_size).sum::<usize>()
        })
        .sum();
    if bytes > MAX_PARAM_BYTES {
        return Err(GuestError::Invalid(format!(
            "the batch carries {bytes} bytes; at most {MAX_PARAM_BYTES}"
        )));
    }
    Ok(())
}

fn rows_of(done: Done) -> Vec<Vec<Value>> {
    match done {
        Done::Rows(rows) => rows,
        Done::Executed(_) => Vec::new(),
    }
}

/// One transaction for the whole batch; statement by statement when one of
/// them fails in it.
async fn postgres(pool: &sqlx::PgPool, statements: &[Statement]) -> Result<Answers, GuestError> {
    let sharing = statements.len();
    let mut transaction = pool.begin().await.map_err(classify)?;
    let mut answers = Vec::with_capacity(sharing);
    let mut intact = true;
    for statement in statements {
        let answer = match refuse_transaction_control(&statement.text) {
            Ok(()) => {
                let rows = bind_all(sqlx::query(&statement.text), statement.params.clone())
                    .fetch(&mut *transaction);
                let answer = collect_rows(rows, pg_row, sharing).await;
                if answer.is_err() {
                    intact = false;
                    break;
                }
                answer
            }
            Err(refused) => Err(refused),
        };
        answers.push(answer);
    }
    if intact {
        // A commit that fails leaves it unknown whether it happened: say so
        // for the whole batch rather than guess per statement.
        transaction.commit().await.map_err(|error| {
            GuestError::Unavailable(format!("the batch's commit failed: {}", classify(error)))
        })?;
        return Ok(answers);
    }
    transaction.rollback().await.map_err(classify)?;
    let mut answers = Vec::with_capacity(sharing);
    for statement in statements {
        answers.push(match refuse_transaction_control(&statement.text) {
            Ok(()) => {
                let rows =
                    bind_all(sqlx::query(&statement.text), statement.params.clone()).fetch(pool);
                collect_rows(rows, pg_row, sharing).await
            }
            Err(refused) => Err(refused),
        });
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::super::tests::scratch_sqlite;
    use super::{MAX_STATEMENTS, SqlPool, Statement, Value};
    use crate::error::GuestError;

    fn statement(text: &str, params: Vec<Value>) -> Statement {
        Statement {
            text: text.to_owned(),
            params,
        }
    }

    /// Every statement gets the answer it would get alone — a failing one
    /// (here a duplicate key, on PostgreSQL after the shared transaction
    /// was abandoned) undoes only itself — and transaction control is
    /// refused.
    async fn answers_each_statement_alone(pool: &SqlPool, table: &str) {
        pool.execute(
            &format!("CREATE TABLE {table} (k TEXT PRIMARY KEY, n BIGINT NOT NULL)"),
            vec![],
        )
        .await
        .unwrap();
        let insert = format!("INSERT INTO {table} (k, n) VALUES ($1, $2) RETURNING n");
        let bump = format!("UPDATE {table} SET n = n + 10 WHERE k = $1 RETURNING n");
        let answers = pool
            .batch(vec![
                statement(&insert, vec![Value::Text("a".into()), Value::Integer(1)]),
                statement(&insert, vec![Value::Text("a".into()), Value::Integer(2)]),
                statement("COMMIT", vec![]),
                statement(&bump, vec![Value::Text("a".into())]),
                statement(&bump, vec![Value::Text("missing".into())]),
            ])
            .await
            .unwrap();
        assert!(
            matches!(answers[0].as_deref(), Ok([row]) if matches!(row.as_slice(), [Value::Integer(1)])),
            "{answers:?}"
        );
        assert!(
            matches!(answers[1], Err(GuestError::Conflict(_))),
            "{answers:?}"
        );
        assert!(
            matches!(answers[2], Err(GuestError::Invalid(_))),
            "{answers:?}"
        );
        assert!(
            matches!(answers[3].as_deref(), Ok([row]) if matches!(row.as_slice(), [Value::Integer(11)])),
            "{answers:?}"
        );
        assert!(matches!(answers[4].as_deref(), Ok([])), "{answers:?}");
        assert_eq!(answers.len(), 5);
        let stored = pool
            .query(&format!("SELECT k, n FROM {table}"), vec![])
            .await
            .unwrap();
        assert!(
            matches!(stored.as_slice(), [row] if matches!(row.as_slice(), [Value::Text(k), Value::Integer(11)] if k == "a")),
            "{stored:?}"
        );
        let too_many = vec![statement("SELECT 1", vec![]); MAX_STATEMENTS + 1];
        assert!(matches!(
            pool.batch(too_many).await,
            Err(GuestError::Invalid(_))
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sqlite_batch_answers_each_statement_alone() {
        let (_dir, pool) = scratch_sqlite("batch.db").await;
        answers_each_statement_alone(&pool, "batch").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_postgres_batch_answers_each_statement_alone() {
        let url = std::env::var("COFFER_TEST_DATABASE_URL").expect(
            "COFFER_TEST_DATABASE_URL is not set: run `cargo xtask test`, which starts PostgreSQL",
        );
        let pool = SqlPool::connect(&url, 2, Duration::from_secs(10))
            .await
            .unwrap();
        let table = format!("batch_{}_{}", std::process::id(), rand::random::<u32>());
        answers_each_statement_alone(&pool, &table).await;
        pool.execute(&format!("DROP TABLE {table}"), vec![])
            .await
            .unwrap();
    }
}
