//! Group commit for SQLite writes. One writer takes every write statement
//! waiting and runs them on one connection in one transaction, then
//! commits once: many writers share one fsync. It runs the group on the
//! connection's handle directly ([`super::raw`]), on a thread of its own,
//! so a statement costs no round trip between threads; the connection is
//! its own, out of the pool, so the statements it keeps prepared stay
//! valid from one group to the next. A statement that
//! fails is undone alone (SQLite makes every statement atomic) and
//! answered its own error (a check-and-set miss stays a miss for that
//! statement only), and every answer leaves after the commit, so no caller
//! hears of a write that is not durable. The outcome is that of running the
//! statements one by one in the order they arrived.
//!
//! When SQLite abandons the transaction itself (an interrupted statement,
//! or `OR ROLLBACK`, rolls all of it back), the statements that had
//! succeeded run again one by one, each in its own transaction; nothing of
//! the abandoned transaction was committed. Statements about the
//! connection or the whole database (`PRAGMA`, `VACUUM`, …) run alone,
//! between groups; statements that would open or close a transaction are
//! refused, wherever they stand in a string of statements.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::cache::StatementCache;
use super::raw::RawConnection;
use super::{Value, classify};
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
    /// The rows it returns (`… RETURNING`), within the result limits
    /// divided among the `sharing` statements of one call (one for a lone
    /// statement, more for a batch's, which together get no more).
    Query { sharing: usize },
}

impl Work {
    /// The rows of a lone statement.
    pub(super) const QUERY: Work = Work::Query { sharing: 1 };
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

/// What the writer's queue carries.
enum Message {
    /// A statement for the next group.
    Write(Job),
    /// Close the writer's connection, as its pool closes; answered once
    /// it is closed. A later write opens another.
    Release(oneshot::Sender<()>),
}

/// The queue of a SQLite database's writes.
pub(super) struct GroupCommit {
    jobs: mpsc::Sender<Message>,
}

impl GroupCommit {
    /// Starts the writer on `pool`; it holds `turn` while it writes,
    /// so the host's own maintenance (a WAL checkpoint) can take turns
    /// with it. The writer ends once this queue is dropped.
    pub(super) fn start(pool: sqlx::SqlitePool, turn: Arc<Mutex<()>>) -> GroupCommit {
        let (jobs, queue) = mpsc::channel(QUEUE);
        spawn_writer(pool, turn, queue);
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
        let answer = self.enqueue(statement.to_owned(), params, work).await?;
        answer.await.map_err(|_| stopped())?
    }

    /// Queues `statement` for the next group; its answer comes on the
    /// returned channel once it is committed.
    async fn enqueue(
        &self,
        statement: String,
        params: Vec<Value>,
        work: Work,
    ) -> Result<oneshot::Receiver<Result<Done, GuestError>>, GuestError> {
        refuse_transaction_control(&statement)?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            statement,
            params,
            work,
            reply,
        };
        self.jobs
            .send(Message::Write(job))
            .await
            .map_err(|_| stopped())?;
        Ok(answer)
    }

    /// Closes the writer's own connection (statements first), so that
    /// closing the pool closes every connection to the database.
    pub(super) async fn release(&self) {
        let (ack, closed) = oneshot::channel();
        if self.jobs.send(Message::Release(ack)).await.is_ok() {
            let _ = closed.await;
        }
    }

    /// Runs `statements` in order in the next groups, which they share
    /// with whatever else is waiting; answers each once it is committed.
    pub(super) async fn submit_many(
        &self,
        statements: Vec<(String, Vec<Value>)>,
    ) -> Vec<Result<Done, GuestError>> {
        let work = Work::Query {
            sharing: statements.len(),
        };
        let mut answers = Vec::with_capacity(statements.len());
        for (statement, params) in statements {
            answers.push(self.enqueue(statement, params, work).await);
        }
        let mut done = Vec::with_capacity(answers.len());
        for answer in answers {
            done.push(match answer {
                Ok(answer) => answer.await.unwrap_or_else(|_| Err(stopped())),
                Err(error) => Err(error),
            });
        }
        done
    }
}

fn stopped() -> GuestError {
    GuestError::Unavailable("the database writer has stopped".to_owned())
}

/// The writer: takes what is waiting, up to [`MAX_GROUP`] statements, and
/// runs it on one connection. It has a thread of its own, since it runs a
/// group on the connection's handle directly (an fsync included) and must
/// not hold up the tasks of the server's runtime meanwhile.
fn spawn_writer(pool: sqlx::SqlitePool, turn: Arc<Mutex<()>>, queue: mpsc::Receiver<Message>) {
    let spawned = std::thread::Builder::new()
        .name("sqlite-writer".to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(write_loop(pool, turn, queue)),
                Err(error) => tracing::error!(%error, "cannot start the SQLite writer"),
            }
        });
    // Without a writer the queue is closed: every write answers
    // `unavailable` rather than waiting.
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start the SQLite writer");
    }
}

/// The writer's own connection, taken out of the pool so that the
/// statements it keeps prepared stay valid, and those statements. The
/// cache comes first: its statements are finalized before the connection
/// closes.
struct WriterConnection {
    cache: StatementCache,
    connection: sqlx::SqliteConnection,
}

impl WriterConnection {
    /// Takes a connection out of `pool`; a replacement opens in the pool,
    /// which keeps its size.
    async fn open(pool: &sqlx::SqlitePool) -> Result<WriterConnection, sqlx::Error> {
        Ok(WriterConnection {
            cache: StatementCache::default(),
            connection: pool.acquire().await?.detach(),
        })
    }

    async fn close(self) {
        let WriterConnection { cache, connection } = self;
        drop(cache);
        if let Err(error) = sqlx::Connection::close(connection).await {
            tracing::warn!(%error, "could not close the SQLite writer's connection");
        }
    }
}

async fn write_loop(
    pool: sqlx::SqlitePool,
    turn: Arc<Mutex<()>>,
    mut queue: mpsc::Receiver<Message>,
) {
    let mut writer: Option<WriterConnection> = None;
    while let Some(first) = queue.recv().await {
        let mut waiting = Waiting::after(first, &mut queue);
        if !waiting.jobs.is_empty() {
            let _turn = turn.lock().await;
            writer = write_groups(&pool, writer.take(), &mut waiting, &mut queue).await;
        }
        if let Some(ack) = waiting.release {
            if let Some(own) = writer.take() {
                own.close().await;
            }
            let _ = ack.send(());
        }
    }
}

/// Groups one turn runs back to back at most, while more keep coming,
/// before the writer lets the host's maintenance take its turn.
const GROUPS_PER_TURN: usize = 16;

/// What the writer took from its queue: statements, up to [`MAX_GROUP`],
/// and a request to release its connection, which ends the taking.
struct Waiting {
    jobs: Vec<Job>,
    release: Option<oneshot::Sender<()>>,
}

impl Waiting {
    /// `first` and whatever is waiting behind it.
    fn after(first: Message, queue: &mut mpsc::Receiver<Message>) -> Waiting {
        let mut waiting = Waiting {
            jobs: Vec::new(),
            release: None,
        };
        waiting.take(Some(first), queue);
        waiting
    }

    /// Takes `next` and whatever waits behind it, up to [`MAX_GROUP`]
    /// statements, stopping at a request to release the connection.
    fn take(&mut self, mut next: Option<Message>, queue: &mut mpsc::Receiver<Message>) {
        while let Some(message) = next.take() {
            match message {
                Message::Write(job) => self.jobs.push(job),
                Message::Release(ack) => {
                    self.release = Some(ack);
                    return;
                }
            }
            if self.jobs.len() < MAX_GROUP {
                next = queue.try_recv().ok();
            }
        }
    }
}

/// Runs the jobs of `waiting` on the writer's connection, opening one when
/// there is none, then the groups that came meanwhile, back to back on the
/// one hold of the connection (up to [`GROUPS_PER_TURN`], and not past a
/// request to release it); returns the connection to keep (none when it
/// failed: the next group opens another).
async fn write_groups(
    pool: &sqlx::SqlitePool,
    writer: Option<WriterConnection>,
    waiting: &mut Waiting,
    queue: &mut mpsc::Receiver<Message>,
) -> Option<WriterConnection> {
    let opened = match writer {
        Some(own) => Ok(own),
        None => WriterConnection::open(pool).await,
    };
    let mut own = match opened {
        Ok(own) => own,
        Err(error) => {
            refuse_all(std::mem::take(&mut waiting.jobs), error);
            return None;
        }
    };
    match own.connection.lock_handle().await {
        Ok(mut handle) => {
            let mut connection = RawConnection::new(&mut handle, &mut own.cache);
            for group in 1..=GROUPS_PER_TURN {
                write_all(&mut connection, std::mem::take(&mut waiting.jobs));
                if waiting.release.is_some() || group == GROUPS_PER_TURN {
                    break;
                }
                waiting.take(queue.try_recv().ok(), queue);
                if waiting.jobs.is_empty() {
                    break;
                }
            }
        }
        Err(error) => {
            refuse_all(std::mem::take(&mut waiting.jobs), error);
            return None;
        }
    }
    Some(own)
}

/// Answers every job of `waiting` with `error`.
fn refuse_all(waiting: Vec<Job>, error: sqlx::Error) {
    let error = classify(error);
    for job in waiting {
        let _ = job.reply.send(Err(error.clone()));
    }
}

/// Runs `waiting` in arrival order: consecutive groupable statements share
/// a transaction; one about the whole connection runs alone between them.
fn write_all(connection: &mut RawConnection<'_>, waiting: Vec<Job>) {
    let mut group: Vec<Job> = Vec::new();
    for job in waiting {
        if stands_alone(&job.statement) {
            answer(run_group(connection, std::mem::take(&mut group)));
            answer(run_group(connection, vec![job]));
        } else {
            group.push(job);
        }
    }
    answer(run_group(connection, group));
}

fn answer(answered: Vec<(Job, Result<Done, GuestError>)>) {
    for (job, result) in answered {
        // A caller whose call timed out no longer listens.
        let _ = job.reply.send(result);
    }
}

/// Runs `jobs` in one transaction (a single one on its own), returning
/// each with its answer. A statement that fails is undone by SQLite alone
/// (every statement is atomic) and the transaction goes on, unless SQLite
/// rolled the whole transaction back: then nothing of it is stored, and
/// the statements that had succeeded run again, each on its own.
fn run_group(
    connection: &mut RawConnection<'_>,
    jobs: Vec<Job>,
) -> Vec<(Job, Result<Done, GuestError>)> {
    if jobs.len() <= 1 {
        return jobs
            .into_iter()
            .map(|job| {
                let result = run(connection, &job);
                (job, result)
            })
            .collect();
    }
    if let Err(error) = connection.control("BEGIN IMMEDIATE") {
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
        let result = run(connection, job);
        if result.is_err() {
            intact = connection.in_transaction();
        }
        results.push(Some(result));
    }
    if intact && connection.control("COMMIT").is_ok() {
        return jobs
            .into_iter()
            .zip(results)
            .map(|(job, result)| {
                let result = result.unwrap_or_else(|| Err(abandoned()));
                (job, result)
            })
            .collect();
    }
    if connection.in_transaction() {
        let _ = connection.control("ROLLBACK");
    }
    let mut answered = Vec::with_capacity(jobs.len());
    for (job, result) in jobs.into_iter().zip(results) {
        let result = match result {
            Some(Err(error)) => Err(error),
            _ => run(connection, &job),
        };
        answered.push((job, result));
    }
    answered
}

fn abandoned() -> GuestError {
    GuestError::Unavailable("the write was not run; retry".to_owned())
}

/// Runs one job's statement.
fn run(connection: &mut RawConnection<'_>, job: &Job) -> Result<Done, GuestError> {
    connection.run(&job.statement, &job.params, job.work)
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

/// Refuses a statement that would open or close a transaction: each
/// statement commits on its own, and the writer's connection must not be
/// left inside a transaction a plugin opened, nor the writer's own
/// transaction be ended by one.
pub(super) fn refuse_transaction_control(statement: &str) -> Result<(), GuestError> {
    if first_word_is(statement, TRANSACTION_CONTROL) {
        return Err(GuestError::Invalid(
            "each statement commits on its own: BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT and \
             RELEASE are not available"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Whether `statement` begins with one of `words` (in any case), after
/// any whitespace and comments.
fn first_word_is(statement: &str, words: &[&str]) -> bool {
    let first = skip_comments(statement)
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default();
    words.iter().any(|word| first.eq_ignore_ascii_case(word))
}

/// `statement` from its first token on: past whitespace, `-- …` line
/// comments and `/* … */` block comments.
fn skip_comments(mut statement: &str) -> &str {
    loop {
        statement = statement.trim_start();
        if let Some(rest) = statement.strip_prefix("--") {
            statement = rest.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(rest) = statement.strip_prefix("/*") {
            statement = rest.split_once("*/").map_or("", |(_, after)| after);
        } else {
            return statement;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{TRANSACTION_CONTROL, first_word_is, stands_alone};

    #[test]
    fn connection_wide_statements_run_alone_and_transactions_are_refused() {
        for statement in ["PRAGMA journal_mode", "vacuum", "  Attach 'x' AS y"] {
            assert!(stands_alone(statement), "{statement}");
        }
        for statement in [
            "BEGIN",
            "  commit;",
            "Savepoint x",
            "end transaction",
            "/* a */ -- b\n  /**/ROLLBACK",
        ] {
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
