//! A secret's life beyond writes and reads: soft-deleting and undeleting
//! versions, destroying them (their key and ciphertext are thrown away, so
//! nothing can bring them back), the secret's own metadata, and purging a
//! secret with all its versions.
//!
//! Destroying leaves the old bytes in storage's own files until the
//! storage reuses them; the caller shreds them where the host can
//! ([`crate::maintenance::KeyAdmin::shred`]).
//!
//! A purged secret stays in storage as an empty record — no versions, no
//! metadata — rather than vanishing: every node that has seen the secret
//! remembers its generation and would take a vanished record for storage
//! hiding it ([`crate::store`]). Reads, metadata and listings treat the
//! empty record as no secret, and the next write starts again at version 1.

use std::collections::BTreeMap;

use coffer_crypto::record::{SecretMeta, SecretRecord, VersionEntry};

use super::{Secrets, check_name, check_namespace, check_new_name};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::store::{Change, Start, layout};

/// Most custom metadata entries one secret carries.
pub const MAX_CUSTOM_ENTRIES: usize = 64;
/// Longest custom metadata key, in bytes.
pub const MAX_CUSTOM_KEY_BYTES: usize = 128;
/// Longest custom metadata value, in bytes.
pub const MAX_CUSTOM_VALUE_BYTES: usize = 512;
/// Most versions one lifecycle request names.
pub const MAX_VERSIONS_PER_REQUEST: usize = 1000;

/// A secret's versions and metadata, without any value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub versions: Vec<VersionState>,
    pub meta: SecretMeta,
    /// The versions the server keeps when the secret sets none.
    pub default_max_versions: u32,
}

impl Metadata {
    /// The highest version, whatever its state; 0 when there is none.
    pub fn current_version(&self) -> u32 {
        self.versions.last().map_or(0, |v| v.version)
    }

    /// The lowest version still kept; 0 when there is none.
    pub fn oldest_version(&self) -> u32 {
        self.versions.first().map_or(0, |v| v.version)
    }

    /// The versions kept on the next write.
    pub fn effective_max_versions(&self) -> u32 {
        effective_max_versions(&self.meta, self.default_max_versions)
    }

    /// When the secret last changed: its newest version or its metadata.
    pub fn updated_at_ms(&self) -> i64 {
        let newest = self.versions.last().map_or(0, |v| v.created_at_ms);
        newest.max(self.meta.updated_at_ms)
    }
}

/// One version's state, as metadata shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionState {
    pub version: u32,
    pub created_at_ms: i64,
    pub deleted_at_ms: Option<i64>,
    pub destroyed_at_ms: Option<i64>,
}

impl From<&VersionEntry> for VersionState {
    fn from(entry: &VersionEntry) -> Self {
        VersionState {
            version: entry.version,
            created_at_ms: entry.created_at_ms,
            deleted_at_ms: entry.deleted_at_ms,
            destroyed_at_ms: entry.destroyed_at_ms,
        }
    }
}

/// A change of a secret's metadata: what is `None` stays as it is.
#[derive(Clone, Debug, Default)]
pub struct MetadataChange {
    /// `0` goes back to the server's setting.
    pub max_versions: Option<u32>,
    pub cas_required: Option<bool>,
    /// Replaces the custom metadata as a whole.
    pub custom: Option<BTreeMap<String, String>>,
}

/// What a purge threw away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Purged {
    /// Versions whose key and ciphertext were still there.
    pub destroyed: usize,
}

/// The versions a write keeps, given the secret's and the server's setting.
pub(super) fn effective_max_versions(meta: &SecretMeta, server: u32) -> u32 {
    match meta.max_versions {
        0 => server,
        own => own.min(server),
    }
}

/// Whether a record stands for no secret: never written, or purged.
pub(super) fn is_empty(record: &SecretRecord) -> bool {
    record.versions.is_empty() && record.meta == SecretMeta::default()
}

impl Secrets {
    /// Soft-deletes `versions` (those kept and not yet deleted or
    /// destroyed); returns the versions this changed.
    pub async fn delete_versions(
        &self,
        namespace: &str,
        name: &str,
        versions: &[u32],
    ) -> Result<Vec<u32>> {
        self.change_versions(namespace, name, versions, |entry, at| {
            if entry.deleted_at_ms.is_some() || entry.is_destroyed() {
                return false;
            }
            entry.deleted_at_ms = Some(at);
            true
        })
        .await
    }

    /// Brings soft-deleted `versions` back; destroyed ones stay gone.
    /// Returns the versions this changed.
    pub async fn undelete(
        &self,
        namespace: &str,
        name: &str,
        versions: &[u32],
    ) -> Result<Vec<u32>> {
        self.change_versions(namespace, name, versions, |entry, _| {
            if entry.deleted_at_ms.is_none() || entry.is_destroyed() {
                return false;
            }
            entry.deleted_at_ms = None;
            true
        })
        .await
    }

    /// Throws away the key and ciphertext of `versions`: nothing, not even
    /// the data key, can read them again. Returns the versions this changed.
    pub async fn destroy(&self, namespace: &str, name: &str, versions: &[u32]) -> Result<Vec<u32>> {
        self.change_versions(namespace, name, versions, |entry, at| {
            if entry.is_destroyed() {
                return false;
            }
            entry.destroy(at);
            true
        })
        .await
    }

    /// The secret's versions and metadata.
    pub async fn metadata(&self, namespace: &str, name: &str) -> Result<Metadata> {
        check_namespace(namespace)?;
        check_name(name)?;
        let record = self
            .store
            .read::<SecretRecord>(&layout::secret(namespace, name))
            .await?
            .map(|stored| stored.record)
            .filter(|record| !is_empty(record))
            .ok_or_else(|| not_found(namespace, name))?;
        Ok(Metadata {
            versions: record.versions.iter().map(VersionState::from).collect(),
            meta: record.meta,
            default_max_versions: self.settings.max_versions,
        })
    }

    /// Changes the secret's metadata, creating the secret (without
    /// versions) when there is none. A lower `max_versions` drops older
    /// versions on the next write: unless `may_shorten` (the caller holds
    /// `destroy`), it may not go below the versions kept now.
    pub async fn set_metadata(
        &self,
        namespace: &str,
        name: &str,
        change: MetadataChange,
        may_shorten: bool,
    ) -> Result<Metadata> {
        check_namespace(namespace)?;
        check_new_name(name)?;
        let server = self.settings.max_versions;
        if let Some(max) = change.max_versions
            && max > server
        {
            return Err(Error::Invalid(format!(
                "max_versions can be at most {server}, the server's max_versions"
            )));
        }
        if let Some(custom) = &change.custom {
            check_custom(custom)?;
        }
        let (_, record) = self
            .store
            .edit(
                &layout::secret(namespace, name),
                Start::Read,
                || std::future::ready(Ok(SecretRecord::default())),
                |mut record: SecretRecord, _| {
                    let change = change.clone();
                    async move {
                        let kept = record.versions.len();
                        let meta = &mut record.meta;
                        if let Some(max) = change.max_versions {
                            let after = effective_max_versions(
                                &SecretMeta {
                                    max_versions: max,
                                    ..SecretMeta::default()
                                },
                                server,
                            );
                            if !may_shorten && (after as usize) < kept {
                                return Err(Error::Forbidden);
                            }
                            meta.max_versions = max;
                        }
                        if let Some(required) = change.cas_required {
                            meta.cas_required = required;
                        }
                        if let Some(custom) = change.custom {
                            meta.custom = custom;
                        }
                        meta.updated_at_ms = now_ms();
                        Ok((record, Change::Write(())))
                    }
                },
            )
            .await?;
        Ok(Metadata {
            versions: record.versions.iter().map(VersionState::from).collect(),
            meta: record.meta,
            default_max_versions: server,
        })
    }

    /// Destroys every version and forgets the secret's metadata: the
    /// secret is gone from reads and listings, for good.
    pub async fn purge(&self, namespace: &str, name: &str) -> Result<Purged> {
        check_namespace(namespace)?;
        check_name(name)?;
        self.update(namespace, name, Start::Read, move |record| async move {
            if is_empty(&record) {
                return Err(not_found(namespace, name));
            }
            let destroyed = record.versions.iter().filter(|v| !v.is_destroyed()).count();
            Ok((SecretRecord::default(), Change::Write(Purged { destroyed })))
        })
        .await
    }

    /// Applies `change` to each kept version among `versions`, in one
    /// compare-and-set write; `change` says whether it changed the version.
    async fn change_versions(
        &self,
        namespace: &str,
        name: &str,
        versions: &[u32],
        change: fn(&mut VersionEntry, i64) -> bool,
    ) -> Result<Vec<u32>> {
        check_namespace(namespace)?;
        check_name(name)?;
        if versions.is_empty() || versions.len() > MAX_VERSIONS_PER_REQUEST {
            return Err(Error::Invalid(format!(
                "name between 1 and {MAX_VERSIONS_PER_REQUEST} versions"
            )));
        }
        self.update(namespace, name, Start::Read, move |mut record| async move {
            if record.versions.is_empty() {
                return Err(not_found(namespace, name));
            }
            let at = now_ms();
            let changed: Vec<u32> = record
                .versions
                .iter_mut()
                .filter(|entry| versions.contains(&entry.version))
                .filter_map(|entry| change(entry, at).then_some(entry.version))
                .collect();
            if changed.is_empty() {
                Ok((record, Change::Keep(changed)))
            } else {
                Ok((record, Change::Write(changed)))
            }
        })
        .await
    }
}

fn not_found(namespace: &str, name: &str) -> Error {
    Error::NotFound(format!("secret {namespace}/{name} not found"))
}

/// Refuses custom metadata beyond what one secret may carry.
fn check_custom(custom: &BTreeMap<String, String>) -> Result<()> {
    if custom.len() > MAX_CUSTOM_ENTRIES {
        return Err(Error::Invalid(format!(
            "custom_metadata holds {} entries; the limit is {MAX_CUSTOM_ENTRIES}",
            custom.len()
        )));
    }
    for (key, value) in custom {
        if key.is_empty() || key.len() > MAX_CUSTOM_KEY_BYTES {
            return Err(Error::Invalid(format!(
                "custom_metadata keys must be 1 to {MAX_CUSTOM_KEY_BYTES} bytes"
            )));
        }
        if value.len() > MAX_CUSTOM_VALUE_BYTES {
            return Err(Error::Invalid(format!(
                "custom_metadata values must be at most {MAX_CUSTOM_VALUE_BYTES} bytes"
            )));
        }
        if key.chars().chain(value.chars()).any(char::is_control) {
            return Err(Error::Invalid(
                "custom_metadata may not hold control characters".to_owned(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_may_keep_fewer_versions_than_the_server_never_more() {
        let meta = |max_versions| SecretMeta {
            max_versions,
            ..SecretMeta::default()
        };
        assert_eq!(effective_max_versions(&meta(0), 10), 10);
        assert_eq!(effective_max_versions(&meta(3), 10), 3);
        assert_eq!(effective_max_versions(&meta(30), 10), 10);
    }

    #[test]
    fn custom_metadata_is_bounded() {
        let one = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert!(check_custom(&one("owner", "payments")).is_ok());
        assert!(check_custom(&one("", "x")).is_err());
        assert!(check_custom(&one(&"k".repeat(129), "x")).is_err());
        assert!(check_custom(&one("k", &"v".repeat(513))).is_err());
        assert!(check_custom(&one("k", "line\nbreak")).is_err());
        let many: BTreeMap<String, String> =
            (0..65).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(check_custom(&many).is_err());
    }
}
