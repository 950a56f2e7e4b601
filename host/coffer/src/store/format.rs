//! Which record format a store holds, and the one-time upgrade of a store
//! written by a build whose records were not sealed.
//!
//! A new store gets a sealed marker on its first start. A store with
//! records but no marker was written by an older build: the server refuses
//! to start on it until `coffer upgrade` seals its records. The upgrade
//! trusts what storage holds at that moment — it is the one step that
//! vouches for unauthenticated bytes — so it is an explicit command, run
//! once, with every node stopped.

use coffer_crypto::record::{DataKeySet, SecretRecord};
use coffer_crypto::sealed;

use super::{FormatMarker, Record, Store, Version, layout};
use crate::auth::TokenRecord;
use crate::error::{Error, Result};

/// The record format this build reads and writes.
pub const CURRENT: u8 = sealed::FORMAT;

/// Prefixes of the records an older build left that carry data.
const DATA_PREFIXES: [&str; 3] = [layout::SECRETS_PREFIX, layout::DATA_KEYS, layout::TOKENS];

/// Prefixes of an older build's bookkeeping, which is simply dropped.
const BOOKKEEPING_PREFIXES: [&str; 2] = [layout::LEASE, layout::REENCRYPT_PASSES];

/// Makes sure the store holds this build's format: marks a new store, and
/// refuses one an older build wrote.
pub async fn check(store: &Store) -> Result<()> {
    if let Some(marker) = store.read::<FormatMarker>(layout::FORMAT_MARKER).await? {
        return if marker.record.format == CURRENT {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "storage holds records of format {}; this build reads format {CURRENT}",
                marker.record.format
            )))
        };
    }
    for prefix in DATA_PREFIXES {
        if !store.page(prefix, None, 1).await?.keys.is_empty() {
            return Err(Error::Invalid(
                "storage holds records an older coffer wrote, which carry no authentication: \
                 stop every node and run `coffer upgrade --config <file>` once, on data you trust"
                    .to_owned(),
            ));
        }
    }
    mark(store).await
}

async fn mark(store: &Store) -> Result<()> {
    let marker = FormatMarker { format: CURRENT };
    store.put(layout::FORMAT_MARKER, &marker, None).await?;
    Ok(())
}

/// What an upgrade did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct UpgradeReport {
    pub secrets: u64,
    pub data_key_sets: u64,
    pub tokens: u64,
    /// Leases and saved re-encryption passes, dropped.
    pub dropped: u64,
    /// Records already sealed.
    pub already_sealed: u64,
}

/// Seals every record of an older build's store, then marks it.
pub async fn upgrade(store: &Store) -> Result<UpgradeReport> {
    let mut report = UpgradeReport::default();
    for prefix in DATA_PREFIXES {
        let mut scan = store.scan(prefix);
        while let Some(keys) = scan.next_page().await? {
            for key in keys {
                let Some(entry) = store.storage().get(&key).await? else {
                    continue;
                };
                if entry.value.first() == Some(&sealed::FORMAT) {
                    report.already_sealed += 1;
                    continue;
                }
                let base = Version {
                    revision: entry.revision,
                    generation: 0,
                };
                let legacy = |e: coffer_crypto::CryptoError| {
                    Error::Invalid(format!("{key}: not a record of the older format: {e}"))
                };
                let written = if prefix == layout::SECRETS_PREFIX {
                    let record = SecretRecord::decode_legacy(&entry.value).map_err(legacy)?;
                    report.secrets += 1;
                    store.put(&key, &record, Some(base)).await?.is_some()
                } else if prefix == layout::DATA_KEYS {
                    let set = DataKeySet::decode_legacy(&entry.value).map_err(legacy)?;
                    report.data_key_sets += 1;
                    store.put(&key, &set, Some(base)).await?.is_some()
                } else {
                    let token = TokenRecord::decode(&entry.value)?;
                    report.tokens += 1;
                    store.put(&key, &token, Some(base)).await?.is_some()
                };
                if !written {
                    return Err(Error::Conflict(format!(
                        "{key} changed during the upgrade: is a server still running?"
                    )));
                }
            }
        }
    }
    for prefix in BOOKKEEPING_PREFIXES {
        let mut scan = store.scan(prefix);
        while let Some(keys) = scan.next_page().await? {
            for key in keys {
                store
                    .storage()
                    .delete(&key, coffer_runtime::Expected::Any)
                    .await?;
                report.dropped += 1;
            }
        }
    }
    mark(store).await?;
    Ok(report)
}
