//! A coffer KMS backend: the root key stays in a remote KMS, reached
//! through the host's `http` capability (`[kms.http]`: the origin, and the
//! credentials the host adds — this plugin never sees them). Written here
//! against Vault/OpenBao transit's API; replace the four calls with your
//! KMS's.
//!
//! What the contract asks (`coffer plugin check` tests each rule):
//! - `unwrap` fails with `invalid` when the blob was altered or wrapped
//!   under another `aad`: bind the AAD in the KMS, never beside it;
//! - `wrap` reports the key version it used, and `rotate` starts a newer
//!   one while older blobs still unwrap.

use coffer_sdk::Error;
use coffer_sdk::http::{self, json};
use coffer_sdk::kms::{Description, Kms, Wrapped};

struct Transit {
    /// Transit's path for the key: `/v1/<mount>/<op>/<key>` minus `<op>`.
    mount: String,
    key: String,
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

fn unbase64(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let digits: Vec<u32> = text
        .trim_end_matches('=')
        .bytes()
        .map(|c| ALPHABET.iter().position(|a| *a == c).map(|p| p as u32))
        .collect::<Option<_>>()?;
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | d << (18 - 6 * i));
        out.extend((0..chunk.len().saturating_sub(1)).map(|i| (n >> (16 - 8 * i)) as u8));
    }
    Some(out)
}

impl Transit {
    fn url(&self, op: &str) -> String {
        format!("/v1/{}/{op}/{}", self.mount, http::encode(&self.key))
    }

    /// The version of a `vault:vN:…` ciphertext.
    fn version_of(ciphertext: &str) -> Option<u32> {
        ciphertext
            .strip_prefix("vault:v")?
            .split(':')
            .next()?
            .parse()
            .ok()
    }
}

impl Kms for Transit {
    fn open() -> Result<Self, Error> {
        Ok(Transit {
            mount: coffer_sdk::config::path("mount", "transit", false)?,
            key: coffer_sdk::config::require("key")?,
        })
    }

    fn describe(&self) -> Result<Description, Error> {
        let data = &http::get(self.url("keys")).send()?.ok_json()?["data"];
        let version = data["latest_version"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok());
        Ok(Description {
            key_name: format!("{}/keys/{}", self.mount, self.key),
            current_version: version
                .ok_or_else(|| Error::Internal("no latest_version".to_owned()))?,
        })
    }

    fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<Wrapped, Error> {
        let body = json!({ "plaintext": base64(plaintext), "associated_data": base64(aad) });
        let answer = http::post(self.url("encrypt"))
            .json(&body)
            .send()?
            .ok_json()?;
        let ciphertext = answer["data"]["ciphertext"].as_str().unwrap_or_default();
        let version = Self::version_of(ciphertext)
            .ok_or_else(|| Error::Internal("no vault:vN: ciphertext".to_owned()))?;
        Ok(Wrapped {
            blob: ciphertext.as_bytes().to_vec(),
            version,
        })
    }

    fn unwrap(&self, blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
        let ciphertext = std::str::from_utf8(blob)
            .ok()
            .filter(|c| Self::version_of(c).is_some())
            .ok_or_else(|| Error::Invalid("not a transit ciphertext".to_owned()))?;
        let body = json!({ "ciphertext": ciphertext, "associated_data": base64(aad) });
        let reply = http::post(self.url("decrypt")).json(&body).send()?;
        if reply.status() == 400 {
            // `invalid` tells the host the blob was forged or bound to
            // another AAD: only for the KMS's authentication failures, not
            // for a missing key or a version its policy retired.
            let why = reply.snippet();
            let forged = ["message authentication failed", "invalid ciphertext"];
            return Err(if forged.iter().any(|sign| why.contains(sign)) {
                Error::Invalid(format!("the KMS refused the blob: {why}"))
            } else {
                Error::Denied(format!("the KMS would not decrypt: {why}"))
            });
        }
        let answer = reply.ok_json()?;
        answer["data"]["plaintext"]
            .as_str()
            .and_then(unbase64)
            .ok_or_else(|| Error::Internal("no plaintext".to_owned()))
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
