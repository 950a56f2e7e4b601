//! Group commit for SQLite writes. One writer task takes every write
//! statement waiting and runs them on one connection in one transaction,
//! each inside a savepoint of its own, then commits once: many writers
//! share one fsync. A statement that fails is undone alone and answered
//! its own error (a check-and-set miss stays a miss for that statement
//! only), and every answer leaves after the commit, so no caller hears of
//! a write that is not durable. The outcome is that of running the
//! statements one by one in the order they arrived.
//!
//! When SQLite abandons the transaction itself (an interrupted or failed
//! statement can roll all of it back), the statements that had succeeded
//! run again one by one, each in its own transaction; nothing of the
//! abandoned transaction was committed. Statements about the connection or
//! the whole database (`PRAGMA`, `VACUUM`, …) run alone, between groups;
//! statements that would open or close a transaction are refused.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sqlx::SqliteConnection;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{Value, bind_all, classify, collect_rows, sqlite_row};
use crate::error::GuestError;

/// Most statements one transaction takes.
const MAX_GROUP: usize = 256;
/// Statements waiting for the writer; beyond, writers wait to queue.
const QUEUE: usize = 1024;

/// What a statement is run for.
#[derive(Clone, Copy, Debug)]
pub(super) enum Work {
    /// Its count of changed rows.
    Execute,
    /// The rows it returns (`… RETURNING`).
    Query,
}

/// A statement's answer.
pub(super) enum Done {
    Executed(u64),
    Rows(Vec<Vec<Value>>),
}

struct Job {
    statement: String,
    params: Vec<Value>,
    work: Work,
    reply: oneshot::Sender<Result<Done, GuestError>>,
}

/// The queue of a SQLite database's writes.
pub(super) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the writer task on `pool`; it holds `turn` while it writes,
    /// so the host's own maintenance (a WAL checkpoint) can take turns
    /// with it. The task ends once this queue is dropped.
    pub(super) fn start(pool: sqlx::SqlitePool, turn: Arc<Mutex<()>>) -> GroupCommit {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(pool, turn, queue));
        GroupCommit { jobs }
    }

    /// Runs `statement` in the next group; answers once it is committed.
    /// A statement that would open or close a transaction is refused: each
    /// statement commits on its own, and the writer's connection must not
    /// be left inside a transaction a plugin opened.
    pub(super) async fn submit(
        &self,
        statement: &str,
        params: Vec<Value>,
        work: Work,
    ) -> Result<Done, GuestError> {
        if first_word_is(statement, TRANSACTION_CONTROL) {
            return Err(GuestError::Invalid(
                "each statement commits on its own: BEGIN, COMMIT, ROLLBACK, SAVEPOINT and \
                 RELEASE are not available"
                    .to_owned(),
            ));
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            statement: statement.to_owned(),
            params,
            work,
            reply,
        };
        let stopped = || GuestError::Unavailable("the database writer has stopped".to_owned());
        self.jobs.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn write_loop(pool: sqlx::SqlitePool, turn: Arc<Mutex<()>>, mut queue: mpsc::Receiver<Job>) {
    while let Some(first) = queue.recv().await {
        let mut waiting = vec![first];
        while waiting.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => waiting.push(job),
                Err(_) => break,
            }
        }
        let _turn = turn.lock().await;
        let mut connection = match pool.acquire().await {
            Ok(connection) => connection,
            Err(error) => {
                let error = classify(error);
                for job in waiting {
                    let _ = job.reply.send(Err(error.clone()));
                }
                continue;
            }
        };
        // Consecutive groupable statements share a transaction; one that
        // manages transactions runs alone between them.
        let mut group: Vec<Job> = Vec::new();
        for job in waiting {
            if stands_alone(&job.statement) {
                answer(run_group(&mut connection, std::mem::take(&mut group)).await);
                answer(run_group(&mut connection, vec![job]).await);
            } else {
                group.push(job);
            }
        }
        answer(run_group(&mut connection, group).await);
    }
}

fn answer(answered: Vec<(Job, Result<Done, GuestError>)>) {
    for (job, result) in answered {
        // A caller whose call timed out no longer listens.
        let _ = job.reply.send(result);
    }
}

/// Runs `jobs` in one transaction (a single one on its own), returning
/// each with its answer.
async fn run_group(
    connection: &mut SqliteConnection,
    jobs: Vec<Job>,
) -> Vec<(Job, Result<Done, GuestError>)> {
    if jobs.len() <= 1 {
        let mut answered = Vec::with_capacity(1);
        for job in jobs {
            let result = run(connection, &job).await;
            answered.push((job, result));
        }
        return answered;
    }
    if let Err(error) = control(connection, "BEGIN IMMEDIATE").await {
        return jobs
            .into_iter()
            .map(|job| (job, Err(error.clone())))
            .collect();
    }
    let mut results: Vec<Option<Result<Done, GuestError>>> = Vec::with_capacity(jobs.len());
    let mut intact = true;
    for job in &jobs {
        if !intact {
            results.push(None);
            continue;
        }
        if control(connection, "SAVEPOINT grouped").await.is_err() {
            intact = false;
            results.push(None);
            continue;
        }
        let result = run(connection, job).await;
        let closed = if result.is_ok() {
            control(connection, "RELEASE grouped").await
        } else {
            match control(connection, "ROLLBACK TO grouped").await {
                Ok(()) => control(connection, "RELEASE grouped").await,
                Err(error) => Err(error),
            }
        };
        intact = closed.is_ok();
        results.push(Some(result));
    }
    if intact && control(connection, "COMMIT").await.is_ok() {
        return jobs
            .into_iter()
            .zip(results)
            .map(|(job, result)| {
                let result = result.unwrap_or_else(|| Err(abandoned()));
                (job, result)
            })
            .collect();
    }
    // SQLite gave the transaction up: nothing of it is stored. Failures
    // keep their answers; the rest run again, each on its own.
    let _ = control(connection, "ROLLBACK").await;
    let mut answered = Vec::with_capacity(jobs.len());
    for (job, result) in jobs.into_iter().zip(results) {
        let result = match result {
            Some(Err(error)) => Err(error),
            _ => run(connection, &job).await,
        };
        answered.push((job, result));
    }
    answered
}

fn abandoned() -> GuestError {
    GuestError::Unavailable("the write was not run; retry".to_owned())
}

/// Runs one job's statement on `connection`. (Boxed as `Send` outright:
/// the writer task must be `Send`, which the compiler cannot prove
/// through sqlx's borrowed futures.)
fn run<'a>(
    connection: &'a mut SqliteConnection,
    job: &'a Job,
) -> BoxFuture<'a, Result<Done, GuestError>> {
    Box::pin(async move {
        let query = bind_all(sqlx::query(&job.statement), job.params.clone());
        match job.work {
            Work::Execute => query
                .execute(&mut *connection)
                .await
                .map(|done| Done::Executed(done.rows_affected()))
                .map_err(classify),
            Work::Query => {
                let rows = query.fetch(&mut *connection);
                collect_rows(rows, sqlite_row).await.map(Done::Rows)
            }
        }
    })
}

/// Runs a transaction-control statement of the group itself.
fn control<'a>(
    connection: &'a mut SqliteConnection,
    statement: &'static str,
) -> BoxFuture<'a, Result<(), GuestError>> {
    Box::pin(async move {
        sqlx::query(statement)
            .execute(&mut *connection)
            .await
            .map(|_| ())
            .map_err(classify)
    })
}

/// Statements that open or close transactions.
const TRANSACTION_CONTROL: &[&str] =
    &["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"];

/// Statements about the connection or the whole database, which cannot
/// run (or should not) inside a transaction.
const CONNECTION_WIDE: &[&str] = &["PRAGMA", "VACUUM", "ATTACH", "DETACH", "REINDEX", "ANALYZE"];

/// Whether a statement must run alone, outside a group's transaction.
fn stands_alone(statement: &str) -> bool {
    first_word_is(statement, CONNECTION_WIDE)
}

/// Whether `statement` begins with one of `words` (in any case).
fn first_word_is(statement: &str, words: &[&str]) -> bool {
    let first = statement
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default();
    words.iter().any(|word| first.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::{TRANSACTION_CONTROL, first_word_is, stands_alone};

    #[test]
    fn connection_wide_statements_run_alone_and_transactions_are_refused() {
        for statement in ["PRAGMA journal_mode", "vacuum", "  Attach 'x' AS y"] {
            assert!(stands_alone(statement), "{statement}");
        }
        for statement in ["BEGIN", "  commit;", "Savepoint x", "end transaction"] {
            assert!(first_word_is(statement, TRANSACTION_CONTROL), "{statement}");
        }
        for statement in [
            "INSERT INTO t VALUES (1)",
            "UPDATE t SET v = 1",
            "WITH x AS (SELECT 1) DELETE FROM t",
            "DELETE FROM t",
        ] {
            assert!(!stands_alone(statement), "{statement}");
        }
    }
}
