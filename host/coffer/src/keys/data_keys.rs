//! Data keys: one Active AES-256-GCM key per namespace, created on first
//! use, stored wrapped by the KEK and cached unwrapped in memory.
//!
//! Reads never touch the keyring once a namespace's keys are cached; the
//! cached keys are zeroized when evicted or dropped.

use std::collections::HashMap;
use std::sync::Arc;

use coffer_crypto::aad::data_key_aad;
use coffer_crypto::record::{DataKeyEntry, DataKeySet, DataKeyStatus};
use coffer_crypto::{Algorithm, KeyMaterial, OutputPrefix, WrappingKey, random_key_id};
use coffer_runtime::{Expected, GuestError, Storage};

use super::Kek;
use crate::clock::now_ms;
use crate::error::{Error, Result};

/// Namespaces whose unwrapped keys stay in memory.
const CACHED_SCOPES: u64 = 10_000;

/// The unwrapped keys of one scope.
struct ScopeKeys {
    active: Arc<WrappingKey>,
    by_id: HashMap<u32, Arc<WrappingKey>>,
}

/// Data keys of every scope.
pub struct DataKeys {
    storage: Arc<dyn Storage>,
    kek: Kek,
    cache: moka::future::Cache<String, Arc<ScopeKeys>>,
}

fn record_key(scope: &str) -> String {
    format!("datakeys/{scope}")
}

impl DataKeys {
    pub fn new(storage: Arc<dyn Storage>, kek: Kek) -> DataKeys {
        DataKeys {
            storage,
            kek,
            cache: moka::future::Cache::new(CACHED_SCOPES),
        }
    }

    /// The KEK the data keys are wrapped with.
    pub fn kek(&self) -> &Kek {
        &self.kek
    }

    /// Checks that every stored data key is wrapped by a KEK the keyset
    /// holds, so a missing root key stops the server at start rather than
    /// failing requests later. Names the first missing KEK id.
    pub async fn check_wrapping_keys(&self) -> Result<usize> {
        let mut checked = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self
                .storage
                .list("datakeys/", after.as_deref(), 1000)
                .await?;
            for key in &page.keys {
                let Some(entry) = self.storage.get(key).await? else {
                    continue;
                };
                let set = DataKeySet::decode(&entry.value)?;
                for data_key in set
                    .keys
                    .iter()
                    .filter(|k| k.status != DataKeyStatus::Destroyed)
                {
                    if self.kek.get(data_key.kek_id).is_none() {
                        return Err(Error::KeyUnavailable(format!(
                            "data key {} of namespace {} is wrapped by KEK {}, which the keyset does not hold \
                             (or holds disabled): restore that key to the keyset",
                            data_key.id, set.scope, data_key.kek_id
                        )));
                    }
                    checked += 1;
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(checked),
            }
        }
    }

    /// The Active key of `scope`, created if the scope has none yet.
    pub async fn active(&self, scope: &str) -> Result<Arc<WrappingKey>> {
        Ok(self.scope(scope).await?.active.clone())
    }

    /// The key `id` of `scope`; reloads the scope once on a miss, in case
    /// another node added the key.
    pub async fn by_id(&self, scope: &str, id: u32) -> Result<Arc<WrappingKey>> {
        if let Some(key) = self.scope(scope).await?.by_id.get(&id) {
            return Ok(key.clone());
        }
        self.cache.invalidate(scope).await;
        self.scope(scope)
            .await?
            .by_id
            .get(&id)
            .cloned()
            .ok_or_else(|| {
                Error::KeyUnavailable(format!(
                    "data key {id} of namespace {scope} is not available"
                ))
            })
    }

    async fn scope(&self, scope: &str) -> Result<Arc<ScopeKeys>> {
        self.cache
            .try_get_with(scope.to_owned(), async {
                self.load_or_create(scope).await.map(Arc::new)
            })
            .await
            .map_err(|shared| (*shared).clone())
    }

    async fn load_or_create(&self, scope: &str) -> Result<ScopeKeys> {
        let key = record_key(scope);
        // Two attempts: if another writer creates the scope between our read
        // and our insert, the second read sees its key.
        for _ in 0..2 {
            if let Some(entry) = self.storage.get(&key).await? {
                let set = DataKeySet::decode(&entry.value)?;
                return self.unwrap_set(&set);
            }
            let (set, keys) = self.new_scope(scope);
            match self
                .storage
                .put(&key, &set.encode(), Expected::Absent)
                .await
            {
                Ok(_) => {
                    tracing::info!(
                        namespace = scope,
                        key_id = keys.active.id,
                        "created data key"
                    );
                    return Ok(keys);
                }
                Err(error) if matches!(error.guest(), Some(GuestError::Conflict(_))) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(Error::Conflict(format!(
            "data keys of namespace {scope} keep changing; retry"
        )))
    }

    fn new_scope(&self, scope: &str) -> (DataKeySet, ScopeKeys) {
        let kek = &self.kek;
        let algorithm = Algorithm::Aes256Gcm;
        let id = random_key_id();
        let material = KeyMaterial::generate(algorithm);
        let wrapped = kek
            .primary()
            .wrap(material.as_bytes(), &data_key_aad(scope, id, algorithm));
        let now = now_ms();
        let set = DataKeySet {
            scope: scope.to_owned(),
            keys: vec![DataKeyEntry {
                id,
                algorithm,
                status: DataKeyStatus::Active,
                created_at_ms: now,
                updated_at_ms: now,
                version: 1,
                kek_id: kek.primary().id,
                wrapped,
            }],
        };
        let active = Arc::new(WrappingKey::new(id, OutputPrefix::Tink, material));
        let keys = ScopeKeys {
            by_id: HashMap::from([(id, active.clone())]),
            active,
        };
        (set, keys)
    }

    fn unwrap_set(&self, set: &DataKeySet) -> Result<ScopeKeys> {
        let kek = &self.kek;
        let mut by_id = HashMap::new();
        for entry in set
            .keys
            .iter()
            .filter(|e| e.status != DataKeyStatus::Destroyed)
        {
            let wrapping = kek.get(entry.kek_id).ok_or_else(|| {
                Error::KeyUnavailable(format!(
                    "data key {} of namespace {} is wrapped by KEK {}, which the keyset does not hold",
                    entry.id, set.scope, entry.kek_id
                ))
            })?;
            let aad = data_key_aad(&set.scope, entry.id, entry.algorithm);
            let material = KeyMaterial::from_zeroizing(
                entry.algorithm,
                wrapping.unwrap(&entry.wrapped, &aad)?,
            )?;
            by_id.insert(
                entry.id,
                Arc::new(WrappingKey::new(entry.id, OutputPrefix::Tink, material)),
            );
        }
        let active = set
            .active()
            .and_then(|entry| by_id.get(&entry.id).cloned())
            .ok_or_else(|| {
                Error::Internal(format!("namespace {} has no active data key", set.scope))
            })?;
        Ok(ScopeKeys { active, by_id })
    }
}
