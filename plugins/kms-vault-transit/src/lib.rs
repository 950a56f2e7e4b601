//! coffer's root key in Vault/OpenBao transit, through the host's `http`
//! capability (the host adds the Vault token; this plugin never sees it).
//!
//! Config: `key` (required), `mount` (default `transit`), `create_key`
//! (default false: a missing key is an error, never made behind the
//! operator's back; true creates an `aes256-gcm96` key). Data keys are
//! wrapped with `encrypt` and the host's AAD as `associated_data`; the
//! blob is transit's `vault:vN:…` ciphertext, whose N is the key version.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use coffer_sdk::Error;
use coffer_sdk::http::{self, Value, json};
use coffer_sdk::kms::{Description, Kms, Wrapped};

/// What transit says of a ciphertext that does not authenticate.
const FORGED: &[&str] = &["message authentication failed", "invalid ciphertext"];

/// Key types whose encryption takes associated data.
const AEAD_TYPES: &[&str] = &["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305"];

struct Transit {
    mount: String,
    key: String,
}

impl Transit {
    fn url(&self, op: &str) -> String {
        format!("/v1/{}/{op}/{}", self.mount, http::encode(&self.key))
    }

    /// The key's description from transit; none when it does not exist.
    fn read(&self) -> Result<Option<Description>, Error> {
        let reply = http::get(self.url("keys")).send()?;
        if reply.status() == 404 {
            return Ok(None);
        }
        let data = &reply.ok_json()?["data"];
        let kind = data["type"].as_str().unwrap_or("");
        if !AEAD_TYPES.contains(&kind) {
            return Err(Error::Invalid(format!(
                "transit key {} is of type {kind}, which takes no associated data: use aes256-gcm96",
                self.key
            )));
        }
        let version = data["latest_version"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| Error::Internal("transit gave no latest_version".to_owned()))?;
        Ok(Some(Description {
            key_name: format!("{}/keys/{}", self.mount, self.key),
            current_version: version,
        }))
    }
}

/// The key version of a `vault:vN:…` ciphertext.
fn version_of(ciphertext: &str) -> Option<u32> {
    ciphertext
        .strip_prefix("vault:v")?
        .split(':')
        .next()?
        .parse()
        .ok()
}

impl Kms for Transit {
    fn open() -> Result<Self, Error> {
        let transit = Transit {
            mount: coffer_sdk::config::path("mount", "transit", false)?,
            key: coffer_sdk::config::require("key")?,
        };
        // Transit's encrypt would create a missing key if the token may:
        // the key must exist before anything is wrapped.
        if transit.read()?.is_none() {
            if !coffer_sdk::config::flag("create_key", false)? {
                coffer_sdk::log::error(&format!(
                    "transit key {} does not exist in mount {}: create it, or set create_key = true",
                    transit.key, transit.mount
                ));
                return Err(Error::NotFound);
            }
            http::post(transit.url("keys"))
                .json(&json!({ "type": "aes256-gcm96" }))
                .send()?
                .ok_json()?;
            coffer_sdk::log::info(&format!("created transit key {}", transit.key));
        }
        Ok(transit)
    }

    fn describe(&self) -> Result<Description, Error> {
        self.read()?.ok_or(Error::NotFound)
    }

    fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<Wrapped, Error> {
        let body = json!({
            "plaintext": STANDARD.encode(plaintext),
            "associated_data": STANDARD.encode(aad),
        });
        let answer = http::post(self.url("encrypt"))
            .json(&body)
            .send()?
            .ok_json()?;
        let ciphertext = answer["data"]["ciphertext"].as_str().unwrap_or("");
        let version = version_of(ciphertext)
            .ok_or_else(|| Error::Internal("transit gave no vault:vN: ciphertext".to_owned()))?;
        Ok(Wrapped {
            blob: ciphertext.as_bytes().to_vec(),
            version,
        })
    }

    fn unwrap(&self, blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
        let ciphertext = std::str::from_utf8(blob)
            .ok()
            .filter(|c| version_of(c).is_some())
            .ok_or_else(|| Error::Invalid("not a transit ciphertext".to_owned()))?;
        let body = json!({ "ciphertext": ciphertext, "associated_data": STANDARD.encode(aad) });
        let reply = http::post(self.url("decrypt")).json(&body).send()?;
        if reply.status() == 400 {
            let why = reply.snippet();
            // Authentication failed (a forged blob, or another AAD) is
            // tampering; a version the key's policy no longer decrypts,
            // or a missing key, is the operator's to fix.
            return Err(if FORGED.iter().any(|sign| why.contains(sign)) {
                Error::Invalid(format!("transit refused to decrypt: {why}"))
            } else {
                Error::Denied(format!("transit would not decrypt: {why}"))
            });
        }
        let answer: Value = reply.ok_json()?;
        answer["data"]["plaintext"]
            .as_str()
            .and_then(|p| STANDARD.decode(p).ok())
            .ok_or_else(|| Error::Internal("transit gave no plaintext".to_owned()))
    }

    fn rotate(&self) -> Result<Description, Error> {
        http::post(format!("{}/rotate", self.url("keys")))
            .json(&json!({}))
            .send()?
            .ok_json()?;
        self.describe()
    }
}

coffer_sdk::export_kms!(Transit);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_ciphertexts() {
        assert_eq!(version_of("vault:v12:abc="), Some(12));
        assert_eq!(version_of("vault:x:abc"), None);
        assert_eq!(version_of("abc"), None);
    }
}
