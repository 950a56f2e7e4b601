//! Which secret versions each data key of a namespace protects, counted by
//! reading the namespace's secret records. Counting from the records
//! themselves (rather than keeping counters beside them) keeps the figure
//! right after any crash: there is nothing to drift.

use std::collections::BTreeMap;

use coffer_crypto::record::SecretRecord;

use super::KeyAdmin;
use crate::error::{Error, Result};
use crate::store::layout;

/// Secret names per data key listed in full; beyond it only counts.
pub const SAMPLE_LIMIT: usize = 100;

/// What one data key protects.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KeyUsage {
    /// Secret versions whose secret key is wrapped under this data key.
    pub versions: u64,
    /// Up to [`SAMPLE_LIMIT`] of them, as `name@version`.
    pub secrets: Vec<String>,
    /// Whether `secrets` was cut short.
    pub truncated: bool,
}

/// The usage of every data key of a namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespaceUsage {
    /// Secrets in the namespace with at least one kept version.
    pub secrets: u64,
    /// Retained versions, live or soft-deleted (destroyed ones need no key).
    pub versions: u64,
    pub by_key: BTreeMap<u32, KeyUsage>,
    /// Records that could not be decoded (damaged storage): which keys
    /// they use is unknown, so the counts above are lower bounds.
    pub unreadable_records: u64,
}

impl NamespaceUsage {
    /// Versions under data key `id`.
    pub fn of(&self, id: u32) -> u64 {
        self.by_key.get(&id).map_or(0, |u| u.versions)
    }

    fn add(&mut self, name: &str, record: &SecretRecord) {
        if record.versions.is_empty() {
            return;
        }
        self.secrets += 1;
        // A destroyed version needs no key any more.
        for version in record.versions.iter().filter(|v| !v.is_destroyed()) {
            self.versions += 1;
            let usage = self.by_key.entry(version.data_key_id).or_default();
            usage.versions += 1;
            if usage.secrets.len() < SAMPLE_LIMIT {
                usage.secrets.push(format!("{name}@{}", version.version));
            } else {
                usage.truncated = true;
            }
        }
    }
}

impl KeyAdmin {
    /// Counts, for every data key of `namespace`, the secret versions it
    /// protects. A record that cannot be read (damaged, or refused as
    /// tampered) is counted apart and logged under its pseudonym.
    pub async fn usage(&self, namespace: &str) -> Result<NamespaceUsage> {
        let prefix = layout::secrets_of(namespace);
        let mut usage = NamespaceUsage::default();
        let mut scan = self.store.scan(&prefix);
        while let Some(keys) = scan.next_page().await? {
            for key in keys {
                let name = key.strip_prefix(&prefix).unwrap_or(&key);
                match self.store.read::<SecretRecord>(&key).await {
                    Ok(Some(stored)) => usage.add(name, &stored.record),
                    Ok(None) => {}
                    Err(error @ (Error::Integrity(_) | Error::Internal(_))) => {
                        tracing::warn!(
                            namespace,
                            secret = %self.names.of(name),
                            %error,
                            "a secret record could not be read"
                        );
                        usage.unreadable_records += 1;
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(usage)
    }
}
