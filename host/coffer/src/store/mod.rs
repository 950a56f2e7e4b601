//! What coffer keeps in storage, in one place: every record kind
//! ([`records`]), the key it is filed under ([`layout`]), how it is encoded
//! and authenticated; and the two loops every caller shares — paging
//! through a prefix ([`Store::scan`]) and editing one record with
//! compare-and-set ([`Store::edit`]).
//!
//! Storage can at worst deny service. A DBA, a restored backup or a hostile
//! storage plugin can write anything, so:
//! - every record but the KEK-wrapped system keys is sealed
//!   ([`coffer_crypto::sealed`]) under the record key, bound to its storage
//!   key: a forged, edited or moved record does not open;
//! - a sealed record carries a generation, and this node refuses a tracked
//!   record older than one it has seen ([`watermark`]): rolling a secret, a
//!   key set or a token back to an earlier copy shows;
//! - listings are checked page by page ([`paging`]);
//! - an edit that starts from what this node last wrote ([`recent`])
//!   instead of a read still expects that version: storage's
//!   compare-and-set decides, and a refusal sends the edit to a read.
//!
//! Whatever fails these checks is [`Error::Integrity`], described with the
//! secret name replaced by its pseudonym.

mod bounded;
pub mod format;
pub mod layout;
mod paging;
mod recent;
mod records;
mod watermark;

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use coffer_crypto::CryptoError;
use coffer_crypto::sealed::{self, RecordKey};
use coffer_runtime::{Entry, Expected, GuestError, Page, PluginError, Storage, Write};

pub use paging::{Scan, check_page};
use recent::{Recent, RecentWrites};
pub use records::{FormatMarker, Record};
use watermark::{Mark, Watermarks};

use crate::error::{Error, Result};
use crate::pseudonyms::Pseudonyms;

/// How often an edit re-reads and retries after losing a race to another
/// node (writers on this node queue on a lock instead of racing).
const EDIT_ATTEMPTS: usize = 8;
/// Locks that serialize this node's writers of the same queued record.
const WRITE_LOCK_STRIPES: usize = 256;

/// The revision and generation a record was read or written at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    pub revision: u64,
    pub generation: u64,
}

/// A record as read, with the version a later write must expect.
#[derive(Clone, Debug)]
pub struct Stored<R> {
    pub record: R,
    pub version: Version,
}

/// How an edit of a record starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// By reading the record.
    Read,
    /// From a guess, without a read: the record as this node last wrote
    /// it ([`recent`]), or, when this node has never seen the record (no
    /// [`watermark`]), a fresh one written as new. The write expects what
    /// was guessed, so storage refuses it if the guess was wrong, and the
    /// edit then reads and goes on as from `Read`. It saves the read for
    /// records written over and over, and for new ones (a secret's first
    /// write), at the price of one refused write when another node wrote
    /// in between, or after this node forgot.
    Guess,
}

/// What an edit of a stored record decided.
pub enum Change<T> {
    /// Nothing changed; do not write.
    Keep(T),
    /// Write the edited record back.
    Write(T),
}

/// The records of one storage plugin, sealed under the record key.
pub struct Store {
    storage: Arc<dyn Storage>,
    key: RecordKey,
    seen: Watermarks,
    recent: RecentWrites,
    locks: Box<[tokio::sync::Mutex<()>]>,
    names: Arc<Pseudonyms>,
}

impl Store {
    pub fn new(storage: Arc<dyn Storage>, key: RecordKey, names: Arc<Pseudonyms>) -> Store {
        Store {
            storage,
            key,
            seen: Watermarks::new(),
            recent: RecentWrites::new(),
            locks: (0..WRITE_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            names,
        }
    }

    /// The storage plugin itself, for what is not a sealed record (system
    /// keys, the health probe).
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Reads and opens the record at `key`; none when there is none.
    pub async fn read<R: Record>(&self, key: &str) -> Result<Option<Stored<R>>> {
        let floor = self.floor::<R>(key);
        let entry = self.storage.get(key).await?;
        self.open(key, floor, entry)
    }

    /// Reads and opens the records at `keys` (at most
    /// [`coffer_runtime::MAX_BATCH`]) in one storage call: each answer is
    /// what [`Store::read`] gives for its key. The outer error when storage
    /// answered none of them.
    pub async fn read_many<R: Record>(
        &self,
        keys: &[String],
    ) -> Result<Vec<Result<Option<Stored<R>>>>> {
        let mut floors = Vec::with_capacity(keys.len());
        for key in keys {
            floors.push(self.floor::<R>(key));
        }
        let entries = self.storage.get_many(keys).await?;
        let mut opened = Vec::with_capacity(keys.len());
        for ((key, floor), entry) in keys.iter().zip(floors).zip(entries) {
            opened.push(self.open(key, floor, entry));
        }
        Ok(opened)
    }

    /// What this node has seen of the record at `key`, taken before it is
    /// read ([`watermark`]).
    fn floor<R: Record>(&self, key: &str) -> Option<Mark> {
        if R::TRACKED { self.seen.get(key) } else { None }
    }

    /// Opens what storage answered for `key`, checking it against `floor`.
    fn open<R: Record>(
        &self,
        key: &str,
        floor: Option<Mark>,
        entry: Option<Entry>,
    ) -> Result<Option<Stored<R>>> {
        let Some(entry) = entry else {
            return match floor {
                Some(floor) => Err(self.violation(
                    key,
                    &format!("removed after generation {} was seen", floor.generation),
                )),
                None => Ok(None),
            };
        };
        let opened = sealed::open(&self.key, key, R::KIND, &entry.value)
            .map_err(|error| self.refused::<R>(key, error))?;
        let mark = Mark::of(&opened);
        if let Some(why) = floor.and_then(|floor| floor.refuses(&mark)) {
            return Err(self.violation(key, &why));
        }
        let record = R::decode(opened.body)?;
        // Reads of a record that has not changed leave the mark as it is.
        if R::TRACKED && floor != Some(mark) {
            self.seen.raise(key, mark);
        }
        Ok(Some(Stored {
            record,
            version: Version {
                revision: entry.revision,
                generation: opened.generation,
            },
        }))
    }

    /// Writes `record` at `key` if the stored record is still at `base`
    /// (or, for none, still absent). Returns the new version, or none when
    /// another writer changed the record first.
    pub async fn put<R: Record>(
        &self,
        key: &str,
        record: &R,
        base: Option<Version>,
    ) -> Result<Option<Version>> {
        Ok(self
            .write_record(key, record, base)
            .await?
            .map(|(version, _)| version))
    }

    /// [`Store::put`], answering the record's encoded body with its new
    /// version.
    async fn write_record<R: Record>(
        &self,
        key: &str,
        record: &R,
        base: Option<Version>,
    ) -> Result<Option<(Version, Vec<u8>)>> {
        let (write, generation, body) = self.seal(key, record, base)?;
        let written = self
            .storage
            .put(&write.key, &write.value, write.expected)
            .await;
        let settled = self.settle::<R>(&write, generation, written)?;
        Ok(settled.map(|version| (version, body)))
    }

    /// Writes many records (at most [`coffer_runtime::MAX_BATCH`]) in one
    /// storage call, each `(key, record, base)` as [`Store::put`] writes
    /// it, and answers each as `put` would. The outer error when storage
    /// answered none of them.
    pub async fn put_many<R: Record>(
        &self,
        edits: &[(String, R, Option<Version>)],
    ) -> Result<Vec<Result<Option<Version>>>> {
        let mut writes = Vec::with_capacity(edits.len());
        let mut generations = Vec::with_capacity(edits.len());
        for (key, record, base) in edits {
            let (write, generation, _) = self.seal(key, record, *base)?;
            writes.push(write);
            generations.push(generation);
        }
        let answers = self.storage.put_many(&writes).await?;
        let mut settled = Vec::with_capacity(writes.len());
        for ((write, generation), written) in writes.iter().zip(generations).zip(answers) {
            settled.push(self.settle::<R>(write, generation, written));
        }
        Ok(settled)
    }

    /// The sealed write of `record` at `key` over `base`, the generation
    /// it carries and the record's encoded body.
    fn seal<R: Record>(
        &self,
        key: &str,
        record: &R,
        base: Option<Version>,
    ) -> Result<(Write, u64, Vec<u8>)> {
        let (expected, generation) = match base {
            Some(base) => (
                Expected::Revision(base.revision),
                base.generation.saturating_add(1),
            ),
            None => (Expected::Absent, 1),
        };
        let body = record.encode()?;
        let value = sealed::seal(&self.key, key, R::KIND, generation, &body);
        let write = Write {
            key: key.to_owned(),
            value,
            expected,
        };
        Ok((write, generation, body))
    }

    /// What storage's answer to `write` means: the new version (remembered
    /// for a tracked record), none when another writer was first, or the
    /// error.
    fn settle<R: Record>(
        &self,
        write: &Write,
        generation: u64,
        written: std::result::Result<u64, PluginError>,
    ) -> Result<Option<Version>> {
        match written {
            Ok(revision) => {
                if R::TRACKED {
                    let tag = &write.value[write.value.len().saturating_sub(sealed::TAG_LEN)..];
                    self.seen.raise(&write.key, Mark::new(generation, tag));
                }
                Ok(Some(Version {
                    revision,
                    generation,
                }))
            }
            Err(error) if is_conflict(&error) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes the record at `key` if it is still at `version`. Only for
    /// kinds nobody tracks: a tracked record that vanishes is refused.
    pub async fn delete<R: Record>(&self, key: &str, version: Version) -> Result<bool> {
        debug_assert!(!R::TRACKED, "{} records are never deleted", R::NAME);
        match self
            .storage
            .delete(key, Expected::Revision(version.revision))
            .await
        {
            Ok(()) => Ok(true),
            Err(error) if is_conflict(&error) || is_not_found(&error) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Lets `change` edit the record at `key` — or, when there is none,
    /// the one `fresh` makes (its `bool` argument then says so) — and
    /// writes it back with compare-and-set, re-reading and retrying when
    /// another node wrote it first. It starts from a read, or from a guess
    /// ([`Start`]). This node's writers of one queued
    /// record ([`Record::QUEUED`]) wait on a lock instead of racing.
    /// Returns `change`'s answer and the record as it now stands.
    ///
    /// `change` takes the record and hands it back (rather than borrowing
    /// it) so its future owns what it works on and stays `Send`.
    pub async fn edit<R, T, Fresh, Made, F, Edited>(
        &self,
        key: &str,
        start: Start,
        mut fresh: Fresh,
        mut change: F,
    ) -> Result<(T, R)>
    where
        R: Record,
        Fresh: FnMut() -> Made,
        Made: Future<Output = Result<R>>,
        F: FnMut(R, bool) -> Edited,
        Edited: Future<Output = Result<(R, Change<T>)>>,
    {
        let _queued = if R::QUEUED {
            Some(self.lock(key).lock().await)
        } else {
            None
        };
        let remember = start == Start::Guess && R::TRACKED;
        if remember && let Some(guessed) = self.guess(key, &mut fresh, &mut change).await? {
            return Ok(guessed);
        }
        for attempt in 0..EDIT_ATTEMPTS {
            backoff(attempt).await;
            let (record, base) = match self.read::<R>(key).await? {
                Some(stored) => (stored.record, Some(stored.version)),
                None => (fresh().await?, None),
            };
            let (record, answer) = match change(record, base.is_none()).await? {
                (record, Change::Keep(answer)) => return Ok((answer, record)),
                (record, Change::Write(answer)) => (record, answer),
            };
            if let Some((version, body)) = self.write_record(key, &record, base).await? {
                if remember {
                    self.recent.remember(key, body, version);
                }
                return Ok((answer, record));
            }
        }
        Err(Error::Conflict(format!(
            "the {} keeps changing under concurrent writers; retry",
            R::NAME
        )))
    }

    /// Edits what this node guesses the record at `key` is, without
    /// reading it ([`Start::Guess`]), and writes the edit expecting what
    /// was guessed. None when storage refused it (the guess was wrong), or
    /// when `change` would not write the guess as it is: what it answered
    /// about a guess does not stand, and the edit goes on from a read.
    async fn guess<R, T, Fresh, Made, F, Edited>(
        &self,
        key: &str,
        fresh: &mut Fresh,
        change: &mut F,
    ) -> Result<Option<(T, R)>>
    where
        R: Record,
        Fresh: FnMut() -> Made,
        Made: Future<Output = Result<R>>,
        F: FnMut(R, bool) -> Edited,
        Edited: Future<Output = Result<(R, Change<T>)>>,
    {
        let (record, base) = match self.seen.get(key) {
            None => (fresh().await?, None),
            Some(mark) => match self.recent.get(key) {
                // What this node wrote last is still the newest it saw.
                Some(recent) if recent.version.generation == mark.generation => {
                    let Recent { body, version } = recent.as_ref();
                    (R::decode(body)?, Some(*version))
                }
                _ => return Ok(None),
            },
        };
        let Ok((record, Change::Write(answer))) = change(record, base.is_none()).await else {
            return Ok(None);
        };
        match self.write_record(key, &record, base).await? {
            Some((version, body)) => {
                self.recent.remember(key, body, version);
                Ok(Some((answer, record)))
            }
            None => {
                self.recent.forget(key);
                Ok(None)
            }
        }
    }

    /// Every key under `prefix`, page by checked page.
    pub fn scan(&self, prefix: &str) -> Scan<'_> {
        Scan::new(self.storage.as_ref(), prefix.to_owned())
    }

    /// One checked page of keys under `prefix` after the storage key
    /// `after`, for listings a client pages through.
    pub async fn page(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<Page> {
        let page = self.storage.list(prefix, after, limit).await?;
        check_page(prefix, after, limit, &page)?;
        Ok(page)
    }

    /// The lock writers of `key` queue on.
    fn lock(&self, key: &str) -> &tokio::sync::Mutex<()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        &self.locks[hasher.finish() as usize % self.locks.len()]
    }

    fn refused<R: Record>(&self, key: &str, error: CryptoError) -> Error {
        match error {
            CryptoError::UnsupportedFormat(sealed::LEGACY_FORMAT) => Error::Integrity(format!(
                "{} is in the unauthenticated format of older builds: run `coffer upgrade` \
                 once on data you trust",
                self.names.storage_key(key)
            )),
            CryptoError::Integrity => {
                self.violation(key, &format!("not a {} sealed by this engine", R::NAME))
            }
            other => self.violation(key, &other.to_string()),
        }
    }

    fn violation(&self, key: &str, why: &str) -> Error {
        let detail = format!("{}: {why}", self.names.storage_key(key));
        tracing::error!(record = %detail, "a stored record failed its integrity check; refused");
        Error::Integrity(detail)
    }
}

/// Waits a little, growing with each lost race, so writers on several
/// nodes stop colliding.
pub async fn backoff(attempt: usize) {
    if attempt > 0 {
        let jitter = rand::random::<u64>() % 5;
        let millis = (1u64 << attempt.min(6)) + jitter;
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    }
}

fn is_conflict(error: &PluginError) -> bool {
    matches!(error.guest(), Some(GuestError::Conflict(_)))
}

fn is_not_found(error: &PluginError) -> bool {
    matches!(error.guest(), Some(GuestError::NotFound))
}
