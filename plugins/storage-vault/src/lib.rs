//! coffer storage on a Vault/OpenBao KV v2 mount, through the host's
//! `http` capability (the host adds the Vault token; this plugin never
//! sees it).
//!
//! Config: `mount` (default `secret`) and `path` (default `coffer`): keys
//! live under `<mount>/data/<path>/`. Each coffer key is one KV secret
//! `{"v": <base64 value>}` whose name encodes the key ([`names`]); its
//! revision is the KV version, which only grows, so a key deleted and
//! written again never matches a revision read before.
//!
//! Writes use KV's check-and-set. KV's own delete has none, so a delete is
//! a check-and-set write of a tombstone, and only that tombstone version
//! is then soft-deleted: a writer that raced in either made the delete
//! fail, or wrote a newer version the soft-delete does not touch.
//! Listing walks the encoded names in order, with OpenBao's
//! `detailed-metadata` listing telling deleted keys apart (on a Vault
//! without it, each listed key is read).

mod kv;
mod names;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use coffer_sdk::Error;
use coffer_sdk::http::json;
use coffer_sdk::storage::{Entry, Expected, Page, Storage};

use kv::{Kv, Read};
use names::SEGMENT;

/// Entries asked for per folder listing.
const LIST_PAGE: u32 = 500;
/// Deepest folder walked: a 1 KiB key encodes to 6 segments.
const MAX_DEPTH: usize = 8;

struct VaultKv {
    kv: Kv,
}

/// The KV path of `key`.
fn path_of(key: &str) -> Result<String, Error> {
    if key.is_empty() {
        return Err(Error::Invalid("the empty key cannot be stored".to_owned()));
    }
    Ok(names::path(&names::encode(key)))
}

impl VaultKv {
    /// Walks `folder` (and the folders below it) in name order, collecting
    /// live keys starting with `prefix` whose names sort after `bound` (the
    /// rest of an encoded name, relative to this folder), until `out` holds
    /// `want`. Returns whether the walk is over (enough keys, or past the
    /// prefix).
    fn walk(
        &self,
        folder: &str,
        depth: usize,
        bound: Option<&str>,
        prefix: &str,
        want: usize,
        out: &mut Vec<String>,
    ) -> Result<bool, Error> {
        if depth > MAX_DEPTH {
            return Err(Error::Internal(format!(
                "Vault lists folders nested deeper than {MAX_DEPTH}: not names this plugin wrote"
            )));
        }
        let mut after = bound.map(|b| b[..b.len().min(SEGMENT)].to_owned());
        loop {
            let entries = self.kv.list(folder, after.as_deref(), LIST_PAGE)?;
            if entries.is_empty() {
                return Ok(false);
            }
            for entry in entries {
                // Listings must move forward, and only into names this
                // plugin could have written.
                let shown = if entry.folder {
                    format!("{}/", entry.name)
                } else {
                    entry.name.clone()
                };
                if after.as_ref().is_some_and(|after| shown <= *after) {
                    return Err(Error::Internal(
                        "Vault listed a name out of order".to_owned(),
                    ));
                }
                if !names::is_segment(&entry.name) {
                    after = Some(shown);
                    continue;
                }
                if entry.folder {
                    after = Some(format!("{}/", entry.name));
                    let inner = bound.filter(|b| b.len() > SEGMENT && b[..SEGMENT] == entry.name);
                    let below = format!("{folder}{}/", entry.name);
                    if self.walk(
                        &below,
                        depth + 1,
                        inner.map(|b| &b[SEGMENT..]),
                        prefix,
                        want,
                        out,
                    )? {
                        return Ok(true);
                    }
                    continue;
                }
                after = Some(entry.name.clone());
                let encoded = format!("{}{}", folder.replace('/', ""), entry.name);
                let Some(key) = names::decode(&encoded) else {
                    continue;
                };
                if key.as_str() < prefix {
                    continue;
                }
                if !key.starts_with(prefix) {
                    return Ok(true);
                }
                let live = match entry.live {
                    Some(live) => live,
                    None => matches!(self.kv.read(&names::path(&encoded))?, Read::Live { .. }),
                };
                if live {
                    out.push(key);
                    if out.len() >= want {
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// Why a check-and-set on `path` failed: the key is gone, or at
    /// another revision.
    fn refused(&self, path: &str) -> Result<Error, Error> {
        Ok(match self.kv.read(path)? {
            Read::Live { version, .. } => {
                Error::Conflict(format!("the key is at revision {version}"))
            }
            Read::Missing | Read::Gone(_) => Error::NotFound,
        })
    }
}

impl Storage for VaultKv {
    fn open() -> Result<Self, Error> {
        let mount = coffer_sdk::config::path("mount", "secret", false)?;
        let path = coffer_sdk::config::path("path", "coffer", true)?;
        Ok(VaultKv {
            kv: Kv {
                mount: format!("/v1/{mount}"),
                base: if path.is_empty() {
                    path
                } else {
                    format!("{path}/")
                },
                detailed: std::cell::Cell::new(None),
            },
        })
    }

    fn get(&self, key: &str) -> Result<Option<Entry>, Error> {
        Ok(match self.kv.read(&path_of(key)?)? {
            Read::Live { value, version } => Some(Entry {
                value,
                revision: version,
            }),
            Read::Missing | Read::Gone(_) => None,
        })
    }

    fn put(&self, key: &str, value: Vec<u8>, expected: Expected) -> Result<u64, Error> {
        let path = path_of(key)?;
        let cas = match expected {
            Expected::Any => None,
            Expected::Absent => match self.kv.read(&path)? {
                Read::Missing => Some(0),
                Read::Gone(version) => Some(version),
                Read::Live { .. } => return Err(Error::Conflict("the key exists".to_owned())),
            },
            // KV reads a check-and-set of 0 as "create only".
            Expected::Revision(0) => {
                return Err(Error::Conflict("no key has revision 0".to_owned()));
            }
            Expected::Revision(revision) => Some(revision),
        };
        self.kv
            .write(&path, json!({ "v": STANDARD.encode(&value) }), cas)
    }

    fn delete(&self, key: &str, expected: Expected) -> Result<(), Error> {
        let path = path_of(key)?;
        let live = || -> Result<Option<u64>, Error> {
            Ok(match self.kv.read(&path)? {
                Read::Live { version, .. } => Some(version),
                Read::Missing | Read::Gone(_) => None,
            })
        };
        let cas = match expected {
            Expected::Absent => {
                return match live()? {
                    None => Ok(()),
                    Some(_) => Err(Error::Conflict("the key exists".to_owned())),
                };
            }
            Expected::Any => live()?.ok_or(Error::NotFound)?,
            Expected::Revision(0) => return Err(self.refused(&path)?),
            Expected::Revision(revision) => revision,
        };
        let tombstone = match self
            .kv
            .write(&path, json!({ "tombstone": true }), Some(cas))
        {
            Ok(version) => version,
            Err(Error::Conflict(_)) => return Err(self.refused(&path)?),
            Err(error) => return Err(error),
        };
        // The tombstone already reads as deleted; soft-deleting it keeps
        // it out of listings.
        if let Err(error) = self.kv.delete_version(&path, tombstone) {
            coffer_sdk::log::warn(&format!(
                "a deleted key may still be listed until it is written again: {error}"
            ));
        }
        Ok(())
    }

    fn list(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<Page, Error> {
        let limit = limit.clamp(1, 1000) as usize;
        let bound = match after {
            Some(after) if after >= prefix => names::encode(after),
            _ => names::before(prefix),
        };
        // One key more than asked says whether there is a next page.
        let mut keys = Vec::with_capacity(limit + 1);
        let bound = (!bound.is_empty()).then_some(bound.as_str());
        self.walk("", 0, bound, prefix, limit + 1, &mut keys)?;
        let next = if keys.len() > limit {
            keys.truncate(limit);
            keys.last().cloned()
        } else {
            None
        };
        Ok(Page { keys, next })
    }
}

coffer_sdk::export_storage!(VaultKv);
