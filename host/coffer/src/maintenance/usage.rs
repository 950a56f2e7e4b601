//! Which secret versions each data key of a namespace protects, counted by
//! reading the namespace's secret records. Counting from the records
//! themselves (rather than keeping counters beside them) keeps the figure
//! right after any crash: there is nothing to drift.

use std::collections::BTreeMap;

use coffer_crypto::record::SecretRecord;
use coffer_runtime::Storage;

use crate::error::Result;

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
    /// Secrets (records) in the namespace.
    pub secrets: u64,
    /// Retained versions, live or soft-deleted.
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
        self.secrets += 1;
        for version in &record.versions {
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

/// Storage prefix of a namespace's secret records.
pub fn secrets_prefix(namespace: &str) -> String {
    format!("secrets/{namespace}/")
}

/// Counts, for every data key of `namespace`, the secret versions it
/// protects.
pub async fn namespace_usage(storage: &dyn Storage, namespace: &str) -> Result<NamespaceUsage> {
    let prefix = secrets_prefix(namespace);
    let mut usage = NamespaceUsage::default();
    let mut after: Option<String> = None;
    loop {
        let page = storage.list(&prefix, after.as_deref(), 1000).await?;
        for key in &page.keys {
            if let Some(entry) = storage.get(key).await? {
                let name = key.strip_prefix(&prefix).unwrap_or(key);
                match SecretRecord::decode(&entry.value) {
                    Ok(record) => usage.add(name, &record),
                    Err(error) => {
                        tracing::warn!(namespace, name, %error, "a secret record could not be decoded");
                        usage.unreadable_records += 1;
                    }
                }
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(usage),
        }
    }
}
