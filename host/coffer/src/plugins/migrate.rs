//! `coffer migrate --to SECTION`: moves every stored record — secrets,
//! data keys, tokens, system records, as stored, never decrypted — from
//! the running storage to another configured one (`[storage_next]`), then
//! switches the running server to it.
//!
//! 1. **Copy**, while the server serves: every key, in key order; every
//!    100 keys the last one copied is noted in the target, so a run killed
//!    midway resumes there. From here on the keys written are noted.
//! 2. **Verify**, still serving: both stores are read whole; what differs
//!    (a key written meanwhile, or before a crash) is copied again, keys
//!    the source no longer has are deleted, and the count and a SHA-256
//!    over every key and value are taken.
//! 3. **Switch**, holding the key lease and with writes frozen (reads go
//!    on): only the keys written since step 1 began are copied again and
//!    read back, the source is marked as moved (a server refuses to start
//!    on it; the last step that can fail), and the server swaps to the
//!    target. The hold grows with what was written during the migration,
//!    not with the store.
//!
//! One node should serve while a migration runs: other nodes on the
//! source would not see the switch (the marker stops them at their next
//! start).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use coffer_runtime::{Expected, GuestError, Storage};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::reload::LivePlugins;
use super::{PluginInfo, load_storage_section};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys::system;
use crate::maintenance::KeyAdmin;
use crate::store::{Scan, layout};

/// Keys copied between two notes of the cursor.
const CURSOR_EVERY: usize = 100;

/// Where a migration stands, for `GET /v1/sys/migrate`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MigrationStatus {
    /// The target section.
    pub to: String,
    /// `counting`, `copying`, `verifying`, `switching`, `done` or `failed`.
    pub phase: &'static str,
    /// Keys in the source when the copy started.
    pub total: u64,
    /// Keys copied so far.
    pub copied: u64,
    /// Whether the copy resumed one a crash interrupted.
    pub resumed: bool,
    /// Records both stores were read whole for and found equal.
    pub records: u64,
    /// SHA-256 over those records' keys and values, in key order.
    pub digest: Option<String>,
    /// Keys written during the migration, copied again at the switch.
    pub rewritten: u64,
    /// How long writes were held at the switch.
    pub freeze_ms: Option<u64>,
    pub elapsed_ms: u64,
    pub error: Option<String>,
}

/// Whether a migration moves `key`: not its own bookkeeping, nor probes.
fn is_moved(key: &str) -> bool {
    ![
        layout::MIGRATE_CURSOR,
        layout::MIGRATED,
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
        keys: Arc<KeyAdmin>,
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
            let outcome = live.migrate(&config, &to, &keys, began).await;
            live.storage.stop_tracking();
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

    /// Copies, verifies and switches (see the module's docs).
    async fn migrate(
        &self,
        config: &Config,
        to: &str,
        keys: &KeyAdmin,
        began: Instant,
    ) -> Result<()> {
        let _no_reload = self.reloading.try_lock().map_err(|_| {
            Error::Conflict("a plugin reload is running: migrate after it".to_owned())
        })?;
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

        // 1. Copy.
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
            s.resumed = resumed.is_some();
        });
        self.storage.track_writes();
        let mut scan = Scan::new(source.as_ref(), String::new()).after(resumed);
        while let Some(page) = scan.next_page().await? {
            let page: Vec<&String> = page.iter().filter(|key| is_moved(key)).collect();
            for batch in page.chunks(CURSOR_EVERY) {
                for key in batch {
                    copy(source.as_ref(), target.as_ref(), key).await?;
                }
                self.update(|s| s.copied += batch.len() as u64);
                if let Some(last) = batch.last() {
                    target
                        .put(layout::MIGRATE_CURSOR, last.as_bytes(), Expected::Any)
                        .await?;
                }
            }
        }

        // 2. Verify, serving.
        self.update(|s| s.phase = "verifying");
        let (records, digest) = verify(source.as_ref(), target.as_ref()).await?;

        // 3. Switch: no key work across it (the lease record is written
        // before the freeze), and writes held.
        self.update(|s| s.phase = "switching");
        let (rewritten, freeze_ms) = keys
            .exclusively(async || {
                let held = Instant::now();
                let frozen = self.storage.freeze().await;
                let written = self.storage.take_written();
                for key in written.iter().filter(|key| is_moved(key)) {
                    copy(source.as_ref(), target.as_ref(), key).await?;
                }
                let marker = format!(
                    "coffer migrated this store to [{to}] ({}) after {} ms",
                    target_info.name,
                    began.elapsed().as_millis()
                );
                if let Err(error) = source
                    .put(layout::MIGRATED, marker.as_bytes(), Expected::Any)
                    .await
                {
                    // It may have landed: the source must stay usable.
                    let _ = source.delete(layout::MIGRATED, Expected::Any).await;
                    return Err(error.into());
                }
                self.storage.replace(target.clone());
                self.set_storage_info(target_info.clone());
                drop(frozen);
                Ok((written.len() as u64, held.elapsed().as_millis() as u64))
            })
            .await?;
        // Bookkeeping only: a leftover cursor is never moved nor read again.
        let _ = target.delete(layout::MIGRATE_CURSOR, Expected::Any).await;
        tracing::info!(
            records,
            %digest,
            rewritten,
            freeze_ms,
            "migrated the store and switched to it"
        );
        self.update(|s| {
            s.records = records;
            s.digest = Some(digest);
            s.rewritten = rewritten;
            s.freeze_ms = Some(freeze_ms);
        });
        Ok(())
    }
}

/// Makes `target` hold what `source` holds under `key` (or nothing), and
/// reads it back.
async fn copy(source: &dyn Storage, target: &dyn Storage, key: &str) -> Result<()> {
    let value = source.get(key).await?.map(|entry| entry.value);
    match &value {
        Some(value) => target.put(key, value, Expected::Any).await.map(drop)?,
        None => match target.delete(key, Expected::Any).await {
            Err(error) if matches!(error.guest(), Some(GuestError::NotFound)) => {}
            outcome => outcome?,
        },
    }
    let copied = target.get(key).await?.map(|entry| entry.value);
    if copied != value {
        return Err(Error::Integrity(format!(
            "the target did not keep what was copied to it (a key of {} bytes)",
            key.len()
        )));
    }
    Ok(())
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
    let probe = coffer_crypto::KeyMaterial::generate(coffer_crypto::Algorithm::Aes256Gcm);
    source
        .put(layout::RELOAD_PROBE, probe.as_bytes(), Expected::Any)
        .await?;
    let seen = target.get(layout::RELOAD_PROBE).await;
    let _ = source.delete(layout::RELOAD_PROBE, Expected::Any).await;
    if seen?.is_some_and(|entry| entry.value == probe.as_bytes()) {
        return Err(Error::Conflict(format!(
            "[{to}] is the store the server already uses"
        )));
    }
    Ok(())
}

async fn count(storage: &dyn Storage) -> Result<u64> {
    let mut count = 0;
    let mut scan = Scan::new(storage, String::new());
    while let Some(page) = scan.next_page().await? {
        count += page.iter().filter(|key| is_moved(key)).count() as u64;
    }
    Ok(count)
}

/// Reads both stores whole: copies again what differs, deletes what the
/// source no longer has, and returns the records found equal and their
/// digest. Writes go on meanwhile; what they change is noted, and copied
/// again at the switch.
async fn verify(source: &dyn Storage, target: &dyn Storage) -> Result<(u64, String)> {
    let mut hash = Sha256::new();
    let mut records = 0u64;
    let mut ours = HashSet::new();
    let mut scan = Scan::new(source, String::new());
    while let Some(page) = scan.next_page().await? {
        for key in page.into_iter().filter(|key| is_moved(key)) {
            let value = source.get(&key).await?.map(|entry| entry.value);
            let copied = target.get(&key).await?.map(|entry| entry.value);
            if copied != value {
                copy(source, target, &key).await?;
            }
            if let Some(value) = &value {
                add(&mut hash, &key, value);
                records += 1;
            }
            ours.insert(key);
        }
    }
    let mut extra = Vec::new();
    let mut scan = Scan::new(target, String::new());
    while let Some(page) = scan.next_page().await? {
        extra.extend(
            page.into_iter()
                .filter(|key| is_moved(key) && !ours.contains(key)),
        );
    }
    for key in extra {
        // Gone from the source since (or before a crash); one that came
        // back meanwhile is copied again, as the switch would.
        copy(source, target, &key).await?;
    }
    Ok((records, hex::encode(hash.finalize())))
}

/// Adds one record to a digest: its key and value, each after its length.
fn add(hash: &mut Sha256, key: &str, value: &[u8]) {
    hash.update((key.len() as u64).to_be_bytes());
    hash.update(key.as_bytes());
    hash.update((value.len() as u64).to_be_bytes());
    hash.update(value);
}
