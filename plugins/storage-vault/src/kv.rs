//! The KV v2 calls the backend makes: read, write with check-and-set,
//! soft-delete one version, and list one folder — with each listed key's
//! liveness from OpenBao's `detailed-metadata` listing, or from a read of
//! each key on a Vault without it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use coffer_sdk::Error;
use coffer_sdk::http::{self, Reply, Retries, Value, json};

/// What a path holds.
pub enum Read {
    /// Never written.
    Missing,
    /// Deleted; its last version.
    Gone(u64),
    Live {
        value: Vec<u8>,
        version: u64,
    },
}

/// One entry of a folder.
pub struct Listed {
    /// Without the trailing `/` of a folder.
    pub name: String,
    pub folder: bool,
    /// Whether the key's latest version is live; none when unknown.
    pub live: Option<bool>,
}

/// A KV v2 mount, under a path prefix.
pub struct Kv {
    /// `/v1/<mount>`.
    pub mount: String,
    /// `<path>/`, or empty.
    pub base: String,
    /// Whether the server has OpenBao's `detailed-metadata` listing; none
    /// until a listing found out.
    pub detailed: std::cell::Cell<Option<bool>>,
}

impl Kv {
    fn url(&self, kind: &str, path: &str) -> String {
        format!("{}/{kind}/{}{path}", self.mount, self.base)
    }

    fn no_mount(&self) -> Error {
        Error::Unavailable(format!(
            "nothing is mounted at {}: enable a KV v2 engine there, or set `mount`",
            self.mount.trim_start_matches("/v1/")
        ))
    }

    pub fn read(&self, path: &str) -> Result<Read, Error> {
        let reply = retried(|| http::get(self.url("data", path)).send())?;
        let body = reply.json().unwrap_or(Value::Null);
        let version = body["data"]["metadata"]["version"].as_u64();
        match (reply.status(), version) {
            (200, Some(version)) => {
                let data = &body["data"]["data"];
                if data["tombstone"] == json!(true) {
                    return Ok(Read::Gone(version));
                }
                let value = data["v"]
                    .as_str()
                    .and_then(|v| STANDARD.decode(v).ok())
                    .ok_or_else(|| Error::Internal(format!("{path}: not a value coffer wrote")))?;
                Ok(Read::Live { value, version })
            }
            (404, Some(version)) => Ok(Read::Gone(version)),
            (404, None) if contains(reply.body(), b"no handler for route") => Err(self.no_mount()),
            (404, None) => Ok(Read::Missing),
            _ => Err(reply.error()),
        }
    }

    /// Writes `data` as a new version, if the latest is `cas` (0: none);
    /// returns the new version.
    pub fn write(&self, path: &str, data: Value, cas: Option<u64>) -> Result<u64, Error> {
        let body = match cas {
            Some(cas) => json!({ "options": { "cas": cas }, "data": data }),
            None => json!({ "data": data }),
        };
        let reply = http::post(self.url("data", path)).json(&body).send()?;
        if reply.status() == 400 && reply.snippet().contains("check-and-set") {
            return Err(Error::Conflict("another writer changed the key".to_owned()));
        }
        reply.ok_json()?["data"]["version"]
            .as_u64()
            .ok_or_else(|| Error::Internal("the write returned no version".to_owned()))
    }

    /// Soft-deletes exactly `version` of `path` (a newer one stays).
    pub fn delete_version(&self, path: &str, version: u64) -> Result<(), Error> {
        let body = json!({ "versions": [version] });
        http::post(self.url("delete", path))
            .json(&body)
            .send()?
            .ok_json()?;
        Ok(())
    }

    /// Up to `limit` entries of `folder` (empty, or ending in `/`) after
    /// `after` (a listed name, with the `/` of a folder).
    pub fn list(
        &self,
        folder: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Listed>, Error> {
        let mut query = format!("?limit={limit}");
        if let Some(after) = after {
            query.push_str(&format!("&after={}", http::encode(after)));
        }
        let list = |kind: &str| {
            let url = format!("{}{query}", self.url(kind, folder));
            retried(|| http::Request::new(http::Method::Get, format!("{url}&list=true")).send())
        };
        let mut detailed = self.detailed.get() != Some(false);
        let mut reply = list(if detailed {
            "detailed-metadata"
        } else {
            "metadata"
        })?;
        // A Vault without the detailed listing says the path is invalid.
        if detailed && reply.status() == 404 && contains(reply.body(), b"Invalid path") {
            self.detailed.set(Some(false));
            detailed = false;
            reply = list("metadata")?;
        }
        if reply.status() == 404 && contains(reply.body(), b"no handler for route") {
            return Err(self.no_mount());
        }
        if reply.status() == 404 {
            return Ok(Vec::new());
        }
        let body = reply.ok_json()?;
        let names = body["data"]["keys"].as_array().cloned().unwrap_or_default();
        let mut listed = Vec::with_capacity(names.len());
        for name in names.iter().filter_map(Value::as_str) {
            // Vault without paging answers with the whole folder.
            if after.is_some_and(|after| name <= after) {
                continue;
            }
            let folder_name = name.strip_suffix('/');
            let live = match (folder_name, detailed) {
                (Some(_), _) => None,
                (None, true) => Some(is_live(&body["data"]["key_info"][name])),
                (None, false) => None,
            };
            listed.push(Listed {
                name: folder_name.unwrap_or(name).to_owned(),
                folder: folder_name.is_some(),
                live,
            });
            if listed.len() >= limit as usize {
                break;
            }
        }
        Ok(listed)
    }
}

/// Whether detailed metadata says the latest version is live (a tombstone
/// not yet soft-deleted also looks live; reads tell it apart).
fn is_live(info: &Value) -> bool {
    let current = info["current_version"].as_u64().unwrap_or(0).to_string();
    let version = &info["versions"][current.as_str()];
    version["deletion_time"].as_str().unwrap_or("").is_empty()
        && version["destroyed"] != json!(true)
        && current != "0"
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A read retried while the server is briefly unavailable.
fn retried(send: impl Fn() -> Result<Reply, Error>) -> Result<Reply, Error> {
    http::with_retries(
        Retries::default(),
        |e| matches!(e, Error::Unavailable(_)),
        || {
            let reply = send()?;
            match reply.status() {
                429 | 500..=599 => Err(reply.error()),
                _ => Ok(reply),
            }
        },
    )
}
