//! `coffer migrate --to SECTION`: moves every stored record — secrets,
//! data keys, tokens, system records, as stored, never decrypted — from
//! the running storage to another configured one (`[storage_next]`), then
//! switches the running server to it.
//!
//! 1. **Copy**, while the server serves: every key, page by page, in key
//!    order; after each page the last key copied is noted in the target,
//!    so a run killed midway resumes there.
//! 2. **Switch**, with writes frozen (reads go on): the source is walked
//!    again and whatever changed since it was copied is copied again,
//!    keys the source no longer has are deleted, and both stores are read
//!    whole — counts and a SHA-256 digest over every key and value must
//!    agree. The source is then marked as moved (a server refuses to start
//!    on it), and the server swaps to the target. The freeze's length is
//!    reported.
//!
//! One node should serve while a migration runs: other nodes on the
//! source would not see the switch (the marker stops them at their next
//! start).

use std::sync::Arc;
use std::time::Instant;

use coffer_runtime::{Expected, Storage};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::reload::LivePlugins;
use super::{PluginInfo, load_storage_section};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys::system;
use crate::store::{Scan, layout};

/// Keys copied between two notes of the cursor.
const CURSOR_EVERY: usize = 100;

/// Where a migration stands, for `GET /v1/sys/migrate`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MigrationStatus {
    /// The target section.
    pub to: String,
    /// `counting`, `copying`, `switching`, `done` or `failed`.
    pub phase: &'static str,
    /// Keys in the source when the copy started.
    pub total: u64,
    /// Keys copied so far.
    pub copied: u64,
    /// The key a resumed copy started after.
    pub resumed_after: Option<String>,
    /// Records in both stores at the switch, and their digest.
    pub records: u64,
    pub digest: Option<String>,
    /// How long writes waited at the switch.
    pub freeze_ms: Option<u64>,
    pub elapsed_ms: u64,
    pub error: Option<String>,
}

/// Keys a migration does not move: its own bookkeeping and probes.
fn moved(key: &str) -> bool {
    ![
        layout::MIGRATE_CURSOR,
        layout::RELOAD_PROBE,
        layout::HEALTH_PROBE,
    ]
    .contains(&key)
}

impl LivePlugins {
    /// Starts moving the records to section `to` of `config` in the
    /// background; refuses while another migration or a reload runs.
    pub fn start_migration(
        self: &Arc<Self>,
        config: Config,
        to: String,
    ) -> Result<MigrationStatus> {
        let mut status = self.lock_migration();
        if status
            .as_ref()
            .is_some_and(|s| !matches!(s.phase, "done" | "failed"))
        {
            return Err(Error::Conflict("a migration is already running".to_owned()));
        }
        if to != "storage_next" || config.storage_next.is_none() {
            return Err(Error::Invalid(format!(
                "--to {to}: the configuration has no [{to}] storage section (expected [storage_next])"
            )));
        }
        let started = MigrationStatus {
            to: to.clone(),
            phase: "counting",
            ..MigrationStatus::default()
        };
        *status = Some(started.clone());
        drop(status);
        let live = self.clone();
        tokio::spawn(async move {
            let began = Instant::now();
            let outcome = live.migrate(&config, &to, began).await;
            live.update(|s| {
                s.elapsed_ms = began.elapsed().as_millis() as u64;
                match outcome {
                    Ok(()) => s.phase = "done",
                    Err(error) => {
                        tracing::error!(%error, "migration failed; the server keeps its storage");
                        s.phase = "failed";
                        s.error = Some(error.to_string());
                    }
                }
            });
        });
        Ok(started)
    }

    /// The last migration's status, if one ran.
    pub fn migration(&self) -> Option<MigrationStatus> {
        self.lock_migration().clone()
    }

    fn lock_migration(&self) -> std::sync::MutexGuard<'_, Option<MigrationStatus>> {
        match self.migration.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn update(&self, change: impl FnOnce(&mut MigrationStatus)) {
        if let Some(status) = self.lock_migration().as_mut() {
            change(status);
        }
    }

    async fn migrate(&self, config: &Config, to: &str, began: Instant) -> Result<()> {
        let _no_reload = self.reloading.lock().await;
        let section = config
            .storage_next
            .as_ref()
            .ok_or_else(|| Error::Invalid(format!("no [{to}] section")))?;
        let target = load_storage_section(&self.runtime, config, to, section)
            .await
            .map_err(|e| Error::Backend(e.to_string()))?;
        let target_info = PluginInfo {
            kind: "storage",
            name: target.name().to_owned(),
            sha256: target.sha256().to_owned(),
        };
        let target: Arc<dyn Storage> = Arc::new(target);
        let source = self.storage.current();
        check_target(source.as_ref(), target.as_ref(), to).await?;

        let total = count(source.as_ref()).await?;
        let resumed = match target.get(layout::MIGRATE_CURSOR).await? {
            Some(entry) => Some(String::from_utf8(entry.value).map_err(|_| {
                Error::Integrity("the migration cursor in the target is not a key".to_owned())
            })?),
            None => None,
        };
        self.update(|s| {
            s.total = total;
            s.phase = "copying";
            s.resumed_after = resumed.clone();
        });
        let mut scan = Scan::new(source.as_ref(), String::new()).after(resumed);
        while let Some(keys) = scan.next_page().await? {
            let keys: Vec<&String> = keys.iter().filter(|key| moved(key)).collect();
            for batch in keys.chunks(CURSOR_EVERY) {
                for key in batch {
                    if let Some(entry) = source.get(key).await? {
                        target.put(key, &entry.value, Expected::Any).await?;
                    }
                }
                self.update(|s| s.copied += batch.len() as u64);
                if let Some(last) = batch.last() {
                    target
                        .put(layout::MIGRATE_CURSOR, last.as_bytes(), Expected::Any)
                        .await?;
                }
            }
        }

        self.update(|s| s.phase = "switching");
        let frozen = self.storage.freeze().await;
        let freeze_started = Instant::now();
        let (records, digest) = reconcile(source.as_ref(), target.as_ref()).await?;
        source
            .put(
                layout::MIGRATED,
                format!(
                    "coffer migrated this store to [{to}] ({}) after {} ms",
                    target_info.name,
                    began.elapsed().as_millis()
                )
                .as_bytes(),
                Expected::Any,
            )
            .await?;
        target.delete(layout::MIGRATE_CURSOR, Expected::Any).await?;
        self.storage.replace(target);
        self.set_storage_info(target_info);
        drop(frozen);
        let freeze_ms = freeze_started.elapsed().as_millis() as u64;
        tracing::info!(records, %digest, freeze_ms, "migrated the store and switched to it");
        self.update(|s| {
            s.records = records;
            s.digest = Some(digest);
            s.freeze_ms = Some(freeze_ms);
        });
        Ok(())
    }
}

/// Refuses a target that holds another server's records, or that is the
/// source itself.
async fn check_target(source: &dyn Storage, target: &dyn Storage, to: &str) -> Result<()> {
    target.get(layout::HEALTH_PROBE).await?;
    if target.get(layout::MIGRATED).await?.is_some() {
        return Err(Error::Conflict(format!(
            "[{to}] is a store coffer migrated away from"
        )));
    }
    let marker = layout::system_key(system::RECORDS);
    if let (Some(ours), Some(theirs)) = (source.get(&marker).await?, target.get(&marker).await?)
        && ours.value != theirs.value
    {
        return Err(Error::Conflict(format!(
            "[{to}] holds another server's records: migrate into an empty store"
        )));
    }
    // The same store under two sections would "copy" onto itself.
    source
        .put(layout::RELOAD_PROBE, b"migrate", Expected::Any)
        .await?;
    let same = target.get(layout::RELOAD_PROBE).await?.is_some();
    source.delete(layout::RELOAD_PROBE, Expected::Any).await?;
    if same {
        return Err(Error::Conflict(format!(
            "[{to}] is the store the server already uses"
        )));
    }
    Ok(())
}

/// The keys of `storage` a migration moves.
async fn keys_of(storage: &dyn Storage) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut scan = Scan::new(storage, String::new());
    while let Some(page) = scan.next_page().await? {
        keys.extend(page.into_iter().filter(|key| moved(key)));
    }
    Ok(keys)
}

async fn count(storage: &dyn Storage) -> Result<u64> {
    Ok(keys_of(storage).await?.len() as u64)
}

/// With writes frozen: makes `target` hold exactly what `source` holds,
/// then checks it: every record is read from both (a record written again
/// is read back from the target), the digests of both sides must agree,
/// and the target must list no other key. Returns the records and their
/// digest.
async fn reconcile(source: &dyn Storage, target: &dyn Storage) -> Result<(u64, String)> {
    let ours = keys_of(source).await?;
    let (mut our_hash, mut their_hash) = (Sha256::new(), Sha256::new());
    let mut records = 0u64;
    for key in &ours {
        let value = source.get(key).await?.map(|entry| entry.value);
        let mut copied = target.get(key).await?.map(|entry| entry.value);
        if copied != value {
            match &value {
                Some(value) => target.put(key, value, Expected::Any).await.map(drop)?,
                None => target.delete(key, Expected::Any).await?,
            }
            copied = target.get(key).await?.map(|entry| entry.value);
        }
        if let Some(value) = &value {
            add(&mut our_hash, key, value);
            records += 1;
        }
        if let Some(copied) = &copied {
            add(&mut their_hash, key, copied);
        }
    }
    let kept: std::collections::HashSet<&String> = ours.iter().collect();
    for key in keys_of(target).await? {
        if !kept.contains(&key) {
            target.delete(&key, Expected::Any).await?;
        }
    }
    let theirs = keys_of(target).await?;
    let (ours_digest, theirs_digest) = (
        hex::encode(our_hash.finalize()),
        hex::encode(their_hash.finalize()),
    );
    if ours_digest != theirs_digest || theirs.len() != ours.len() {
        return Err(Error::Integrity(format!(
            "after the copy, the source holds {} keys (digest {ours_digest}) and the target \
             {} (digest {theirs_digest}): nothing was switched",
            ours.len(),
            theirs.len()
        )));
    }
    Ok((records, ours_digest))
}

/// Adds one record to a digest: its key and value, each after its length.
fn add(hash: &mut Sha256, key: &str, value: &[u8]) {
    hash.update((key.len() as u64).to_be_bytes());
    hash.update(key.as_bytes());
    hash.update((value.len() as u64).to_be_bytes());
    hash.update(value);
}
