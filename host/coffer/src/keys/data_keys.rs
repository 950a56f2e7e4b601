//! Data keys: one Active key per namespace (created on first use) plus the
//! Deprecated, Inactive and Destroyed keys rotation leaves behind, stored
//! as one record per namespace wrapped by the KEK, and cached unwrapped in
//! memory.
//!
//! The stored set is sealed and bound to its namespace (see
//! [`crate::store`]); a set naming another namespace than the one it is
//! filed under is refused as well.
//!
//! Reads never touch the keyring once a namespace's keys are cached. A
//! namespace's cached set expires after `cache_ttl`, so a rotation made on
//! another node reaches this one within that time; changes made here drop
//! it at once. Reading the set again does not unwrap again: unwrapped
//! material is kept apart, for as long as the stored wrapped bytes it came
//! from are unchanged, so a KMS root is called only for keys that are new
//! or re-wrapped, and reads go on while the KMS is down. A destroyed key's
//! material is dropped as soon as the set says so. Unwrapped keys are
//! zeroized when evicted or dropped.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use coffer_crypto::aad::data_key_aad;
use coffer_crypto::lifecycle::new_entry;
use coffer_crypto::record::{DataKeyEntry, DataKeySet, DataKeyStatus};
use coffer_crypto::{Algorithm, KeyMaterial, OutputPrefix, WrappingKey, random_key_id};

use super::{Kek, RootKeys};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::metrics::CacheCounter;
use crate::store::{Change, Start, Store, layout};

/// Namespaces whose unwrapped keys stay in memory.
const CACHED_SCOPES: u64 = 10_000;
/// Unwrapped data keys kept beside their wrapped bytes.
const CACHED_MATERIAL: u64 = 100_000;
/// Times one re-wrap reads a scope again after writers raced it; what is
/// left is the janitor's.
const REWRAP_PASSES: usize = 3;

/// The unwrapped keys of one scope.
struct ScopeKeys {
    active: Arc<WrappingKey>,
    by_id: HashMap<u32, Arc<WrappingKey>>,
    /// Ids of destroyed keys: what they sealed is gone for good.
    destroyed: HashSet<u32>,
}

/// One unwrapped key and what it was unwrapped from.
struct Unwrapped {
    kek_id: u32,
    wrapped: Vec<u8>,
    key: Arc<WrappingKey>,
}

/// Settings of the data keys.
#[derive(Clone, Copy, Debug)]
pub struct DataKeySettings {
    /// Algorithm of new data keys.
    pub algorithm: Algorithm,
    /// How long unwrapped keys are trusted before the record is read again.
    pub cache_ttl: Duration,
}

/// Data keys of every scope.
pub struct DataKeys {
    store: Arc<Store>,
    root: Arc<RootKeys>,
    settings: DataKeySettings,
    cache: moka::future::Cache<String, Arc<ScopeKeys>>,
    /// Unwrapped keys by (scope, id), valid while the stored entry still
    /// holds the same wrapped bytes.
    material: moka::future::Cache<(String, u32), Arc<Unwrapped>>,
    cache_counter: CacheCounter,
}

/// One page of scope names.
pub struct ScopePage {
    pub scopes: Vec<String>,
    pub next: Option<String>,
}

impl DataKeys {
    pub fn new(store: Arc<Store>, root: Arc<RootKeys>, settings: DataKeySettings) -> DataKeys {
        DataKeys {
            store,
            root,
            settings,
            cache: moka::future::Cache::builder()
                .max_capacity(CACHED_SCOPES)
                .time_to_live(settings.cache_ttl)
                .build(),
            material: moka::future::Cache::new(CACHED_MATERIAL),
            cache_counter: CacheCounter::default(),
        }
    }

    /// The KEK holder the data keys are wrapped with.
    pub fn root(&self) -> &Arc<RootKeys> {
        &self.root
    }

    pub fn settings(&self) -> DataKeySettings {
        self.settings
    }

    /// Checks that every stored data key is wrapped by a key `kek` holds,
    /// so a missing root key stops the server at start (or a reload) rather
    /// than failing requests later. Names the first missing KEK key.
    pub async fn check_wrapping_keys(&self, kek: &Kek) -> Result<usize> {
        let mut checked = 0;
        self.for_each_set(|set| {
            for data_key in set.live() {
                if !kek.holds(data_key.kek_id) {
                    return Err(kek.missing(
                        &format!("data key {} of namespace {}", data_key.id, set.scope),
                        data_key.kek_id,
                    ));
                }
                checked += 1;
            }
            Ok(())
        })
        .await?;
        Ok(checked)
    }

    /// Calls `visit` with every scope's data key set, in name order.
    pub async fn for_each_set(
        &self,
        mut visit: impl FnMut(&DataKeySet) -> Result<()>,
    ) -> Result<()> {
        let mut scopes = self.scan_scopes();
        while let Some(page) = scopes.next_page().await? {
            for scope in page {
                if let Some((set, _)) = self.load(&scope).await? {
                    visit(&set)?;
                }
            }
        }
        Ok(())
    }

    /// Every scope that has data keys, a page at a time.
    pub fn scan_scopes(&self) -> ScopeScan<'_> {
        ScopeScan(self.store.scan(layout::DATA_KEYS))
    }

    /// Names of scopes that have data keys, after `after`.
    pub async fn scopes(&self, after: Option<&str>, limit: u32) -> Result<ScopePage> {
        let after_key = after.map(layout::data_keys);
        let page = self
            .store
            .page(layout::DATA_KEYS, after_key.as_deref(), limit)
            .await?;
        Ok(ScopePage {
            scopes: page.keys.into_iter().filter_map(scope_of).collect(),
            next: page.next.and_then(scope_of),
        })
    }

    /// The stored set of `scope` and the generation it was read at.
    pub async fn load(&self, scope: &str) -> Result<Option<(DataKeySet, u64)>> {
        let Some(stored) = self
            .store
            .read::<DataKeySet>(&layout::data_keys(scope))
            .await?
        else {
            return Ok(None);
        };
        check_scope(&stored.record, scope)?;
        Ok(Some((stored.record, stored.version.generation)))
    }

    /// The Active key of `scope`, created if the scope has none yet.
    pub async fn active(&self, scope: &str) -> Result<Arc<WrappingKey>> {
        Ok(self.scope(scope).await?.active.clone())
    }

    /// The key `id` of `scope`; reloads the scope once on a miss, in case
    /// another node added (or destroyed) the key.
    pub async fn by_id(&self, scope: &str, id: u32) -> Result<Arc<WrappingKey>> {
        let keys = self.scope(scope).await?;
        if let Some(key) = keys.by_id.get(&id) {
            return Ok(key.clone());
        }
        if !keys.destroyed.contains(&id) {
            self.cache.invalidate(scope).await;
        }
        let keys = self.scope(scope).await?;
        if let Some(key) = keys.by_id.get(&id) {
            return Ok(key.clone());
        }
        if keys.destroyed.contains(&id) {
            return Err(Error::KeyDestroyed(format!(
                "data key {id} of namespace {scope} was destroyed: what it sealed is gone for good"
            )));
        }
        Err(Error::KeyUnavailable(format!(
            "data key {id} of namespace {scope} is unknown"
        )))
    }

    /// Drops the cached keys of `scope`.
    pub async fn forget(&self, scope: &str) {
        self.cache.invalidate(scope).await;
    }

    /// (hits, misses) of the cache of namespaces' unwrapped keys.
    pub fn cache_counts(&self) -> (u64, u64) {
        self.cache_counter.counts()
    }

    async fn scope(&self, scope: &str) -> Result<Arc<ScopeKeys>> {
        self.cache_counter.lookup();
        self.cache
            .try_get_with(scope.to_owned(), async {
                self.cache_counter.missed();
                self.load_or_create(scope).await.map(Arc::new)
            })
            .await
            .map_err(|shared| (*shared).clone())
    }

    async fn load_or_create(&self, scope: &str) -> Result<ScopeKeys> {
        let ((), set) = self.change(scope, true, |_| Ok(Change::Keep(()))).await?;
        let kek = self.root.current();
        if let Some(missing) = set.live().find(|k| !kek.holds(k.kek_id)) {
            // Another node may have rotated the KEK: follow it.
            self.root.follow(missing.kek_id).await?;
        }
        self.unwrap_set(&set).await
    }

    /// Reads `scope`'s set (creating it with a fresh Active key when
    /// `create` and it has none), lets `edit` change it, and writes it back
    /// with compare-and-set, retrying from a fresh read when another writer
    /// got there first. Returns `edit`'s answer and the set as stored.
    pub async fn change<T>(
        &self,
        scope: &str,
        create: bool,
        mut edit: impl FnMut(&mut DataKeySet) -> Result<Change<T>>,
    ) -> Result<(T, DataKeySet)> {
        let (answer, set) = self
            .store
            .edit(
                &layout::data_keys(scope),
                Start::Read,
                || async move {
                    if !create {
                        return Err(Error::NotFound(format!(
                            "namespace {scope} has no data keys"
                        )));
                    }
                    self.new_set(scope).await
                },
                |mut set: DataKeySet, created| {
                    let edited = check_scope(&set, scope).and_then(|()| edit(&mut set));
                    std::future::ready(edited.map(|change| {
                        let change = match change {
                            // A set made here is written even if unchanged.
                            Change::Keep(answer) if created => Change::Write((answer, true, true)),
                            Change::Keep(answer) => Change::Keep((answer, false, false)),
                            Change::Write(answer) => Change::Write((answer, true, created)),
                        };
                        (set, change)
                    }))
                },
            )
            .await?;
        let (answer, written, created) = answer;
        if written {
            self.cache.invalidate(scope).await;
            self.drop_destroyed(&set).await;
        }
        if created {
            tracing::info!(namespace = scope, "created data key");
        }
        Ok((answer, set))
    }

    /// A set holding one fresh Active key.
    async fn new_set(&self, scope: &str) -> Result<DataKeySet> {
        let mut set = DataKeySet {
            scope: scope.to_owned(),
            keys: Vec::new(),
        };
        let key = self.new_key(scope, self.settings.algorithm, &set).await?;
        set.rotate(key, now_ms())
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(set)
    }

    /// A fresh key for `scope` wrapped under the primary KEK, with an id
    /// no key of `set` has.
    pub async fn new_key(
        &self,
        scope: &str,
        algorithm: Algorithm,
        set: &DataKeySet,
    ) -> Result<DataKeyEntry> {
        let id = std::iter::repeat_with(random_key_id)
            .find(|id| set.by_id(*id).is_none())
            .unwrap_or_else(random_key_id);
        let material = KeyMaterial::generate(algorithm);
        self.wrap_entry(scope, id, &material).await
    }

    /// A new entry holding `material` as key `id` of `scope`, wrapped under
    /// the primary KEK (checked afresh first, in case another node rotated
    /// it).
    pub async fn wrap_entry(
        &self,
        scope: &str,
        id: u32,
        material: &KeyMaterial,
    ) -> Result<DataKeyEntry> {
        let kek = self.root.refresh().await;
        let algorithm = material.algorithm();
        let (kek_id, wrapped) = kek
            .wrap(material.as_bytes(), &data_key_aad(scope, id, algorithm))
            .await?;
        Ok(new_entry(id, algorithm, kek_id, wrapped))
    }

    /// The unwrapped material of one entry.
    pub async fn unwrap_entry(
        &self,
        kek: &Kek,
        scope: &str,
        entry: &DataKeyEntry,
    ) -> Result<KeyMaterial> {
        let aad = data_key_aad(scope, entry.id, entry.algorithm);
        let what = format!("data key {} of namespace {scope}", entry.id);
        let raw = kek
            .unwrap(&what, entry.kek_id, &entry.wrapped, &aad)
            .await?;
        Ok(KeyMaterial::from_zeroizing(entry.algorithm, raw)?)
    }

    /// Drops the kept material of `set`'s destroyed keys; returns their ids.
    async fn drop_destroyed(&self, set: &DataKeySet) -> HashSet<u32> {
        let destroyed: HashSet<u32> = set
            .keys
            .iter()
            .filter(|k| k.status == DataKeyStatus::Destroyed)
            .map(|k| k.id)
            .collect();
        for id in &destroyed {
            self.material.invalidate(&(set.scope.clone(), *id)).await;
        }
        destroyed
    }

    /// The unwrapped key of `entry`: the one kept from an earlier unwrap of
    /// the same bytes, or unwrapped now.
    async fn unwrapped(
        &self,
        kek: &Kek,
        scope: &str,
        entry: &DataKeyEntry,
    ) -> Result<Arc<WrappingKey>> {
        let slot = (scope.to_owned(), entry.id);
        if let Some(kept) = self.material.get(&slot).await
            && kept.kek_id == entry.kek_id
            && kept.wrapped == entry.wrapped
            && kept.key.material().algorithm() == entry.algorithm
        {
            return Ok(kept.key.clone());
        }
        let material = self.unwrap_entry(kek, scope, entry).await?;
        let key = Arc::new(WrappingKey::new(entry.id, OutputPrefix::Tink, material));
        let kept = Unwrapped {
            kek_id: entry.kek_id,
            wrapped: entry.wrapped.clone(),
            key: key.clone(),
        };
        self.material.insert(slot, Arc::new(kept)).await;
        Ok(key)
    }

    /// Re-wraps every key of `scope` not yet under `kek`'s primary.
    /// Returns how many keys moved.
    ///
    /// The KEK may be remote, so keys are unwrapped and wrapped again
    /// outside the compare-and-set, then written back only where the set
    /// still holds what was unwrapped; a key another writer changed
    /// meanwhile is read and tried again on the next pass.
    pub async fn rewrap_scope(&self, kek: &Kek, scope: &str) -> Result<usize> {
        let primary = kek.primary_id();
        let mut moved = 0;
        for _ in 0..REWRAP_PASSES {
            let Some((set, _)) = self.load(scope).await? else {
                break;
            };
            let mut rewrapped = Vec::new();
            for entry in set.live().filter(|k| k.kek_id != primary) {
                let material = self.unwrap_entry(kek, scope, entry).await?;
                let aad = data_key_aad(scope, entry.id, entry.algorithm);
                let (kek_id, wrapped) = kek.wrap(material.as_bytes(), &aad).await?;
                rewrapped.push((entry.id, entry.wrapped.clone(), kek_id, wrapped));
            }
            if rewrapped.is_empty() {
                break;
            }
            let (written, _) = self
                .change(scope, false, |set| {
                    let mut written = 0;
                    for (id, unwrapped_from, kek_id, wrapped) in &rewrapped {
                        if set.by_id(*id).is_some_and(|k| k.wrapped == *unwrapped_from) {
                            set.rewrap(*id, *kek_id, wrapped.clone(), now_ms())
                                .map_err(|e| Error::Internal(e.to_string()))?;
                            written += 1;
                        }
                    }
                    Ok(if written == 0 {
                        Change::Keep(0)
                    } else {
                        Change::Write(written)
                    })
                })
                .await?;
            moved += written;
        }
        Ok(moved)
    }

    async fn unwrap_set(&self, set: &DataKeySet) -> Result<ScopeKeys> {
        let kek = self.root.current();
        let mut by_id = HashMap::new();
        for entry in set.live() {
            by_id.insert(entry.id, self.unwrapped(&kek, &set.scope, entry).await?);
        }
        let active = set
            .active()
            .and_then(|entry| by_id.get(&entry.id).cloned())
            .ok_or_else(|| {
                Error::Internal(format!("namespace {} has no active data key", set.scope))
            })?;
        let destroyed = self.drop_destroyed(set).await;
        Ok(ScopeKeys {
            active,
            by_id,
            destroyed,
        })
    }
}

/// Every scope that has data keys, a checked page at a time.
pub struct ScopeScan<'a>(crate::store::Scan<'a>);

impl ScopeScan<'_> {
    /// The next page of scope names; none once every scope was listed.
    pub async fn next_page(&mut self) -> Result<Option<Vec<String>>> {
        Ok(self
            .0
            .next_page()
            .await?
            .map(|keys| keys.into_iter().filter_map(scope_of).collect()))
    }
}

fn scope_of(key: String) -> Option<String> {
    key.strip_prefix(layout::DATA_KEYS).map(str::to_owned)
}

/// Refuses a set that names another scope than the one it was read for.
fn check_scope(set: &DataKeySet, scope: &str) -> Result<()> {
    if set.scope == scope {
        Ok(())
    } else {
        Err(Error::Integrity(format!(
            "the data key set of namespace {scope} names namespace {}",
            set.scope
        )))
    }
}
