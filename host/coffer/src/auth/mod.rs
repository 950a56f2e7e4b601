//! Bearer tokens. A token is 256 random bits shown once; storage keeps only
//! its SHA-256, under which the token's record is filed with the token's
//! policy ([`policy`]).

pub mod policy;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use coffer_runtime::{Expected, Storage};

use crate::clock::now_ms;
use crate::error::{Error, Result};
pub use policy::{Admin, Capability, Policy, Role, Rule};

/// Every coffer token starts with this, so secret scanners can spot leaks.
const TOKEN_PREFIX: &str = "cft_";
/// How long a verified token is trusted without re-reading storage.
const CACHE_TTL: Duration = Duration::from_secs(30);

/// What is stored for a token: never the token itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public identifier (a prefix of the hash), safe to log.
    pub id: String,
    /// Hex SHA-256 of the token.
    pub hash: String,
    pub name: String,
    pub policy: Policy,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
}

/// A freshly minted token: shown once, wiped when dropped.
pub struct NewToken {
    pub token: Zeroizing<String>,
    pub record: TokenRecord,
}

/// The identity behind an authenticated request, and what it may do.
#[derive(Clone, Debug)]
pub struct Actor {
    pub token_id: String,
    pub name: String,
    pub policy: Policy,
}

impl Actor {
    /// Refuses unless `capability` is granted on `namespace`. The refusal is
    /// the same whether or not anything exists there.
    pub fn require(&self, capability: Capability, namespace: &str) -> Result<()> {
        if self.policy.allows(capability, namespace) {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }

    /// Refuses unless the administrative capability is granted.
    pub fn require_admin(&self, admin: Admin) -> Result<()> {
        if self.policy.allows_admin(admin) {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }
}

pub struct Auth {
    storage: Arc<dyn Storage>,
    cache: moka::future::Cache<String, Arc<TokenRecord>>,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn record_key(hash: &str) -> String {
    format!("tokens/{hash}")
}

impl Auth {
    pub fn new(storage: Arc<dyn Storage>) -> Auth {
        Auth {
            storage,
            cache: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CACHE_TTL)
                .build(),
        }
    }

    /// Mints and stores a token, valid for `ttl` when given.
    pub async fn create(
        &self,
        name: &str,
        policy: Policy,
        ttl: Option<Duration>,
    ) -> Result<NewToken> {
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err(Error::Invalid(
                "a token name must be 1 to 128 printable characters".to_owned(),
            ));
        }
        let mut new = mint(name, policy);
        if let Some(ttl) = ttl {
            let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
            new.record.expires_at_ms = Some(new.record.created_at_ms.saturating_add(ttl_ms));
        }
        self.store(&new.record).await?;
        Ok(new)
    }

    /// Every token's record, oldest first.
    pub async fn list(&self) -> Result<Vec<TokenRecord>> {
        let mut records = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.storage.list("tokens/", after.as_deref(), 1000).await?;
            for key in &page.keys {
                if let Some(entry) = self.storage.get(key).await? {
                    records.push(decode(&entry.value)?);
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        records.sort_by_key(|r| r.created_at_ms);
        Ok(records)
    }

    /// Revokes the token with public id `id`. Other nodes stop accepting
    /// it within the verification cache's lifetime (30 s).
    pub async fn revoke(&self, id: &str) -> Result<TokenRecord> {
        let not_found = || Error::NotFound(format!("token {id} not found"));
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let page = self.storage.list(&format!("tokens/{id}"), None, 2).await?;
        let [key] = page.keys.as_slice() else {
            return Err(not_found());
        };
        let entry = self.storage.get(key).await?.ok_or_else(not_found)?;
        let record = decode(&entry.value)?;
        self.storage
            .delete(key, Expected::Revision(entry.revision))
            .await?;
        self.cache.invalidate(&record.hash).await;
        Ok(record)
    }

    async fn store(&self, record: &TokenRecord) -> Result<()> {
        let bytes = serde_json::to_vec(record).map_err(|e| Error::Internal(e.to_string()))?;
        self.storage
            .put(&record_key(&record.hash), &bytes, Expected::Absent)
            .await?;
        Ok(())
    }

    /// The actor a presented token belongs to, or none if it is not valid.
    pub async fn verify(&self, token: &str) -> Result<Option<Actor>> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Ok(None);
        }
        let hash = token_hash(token);
        let record = match self.cache.get(&hash).await {
            Some(record) => record,
            None => {
                let Some(entry) = self.storage.get(&record_key(&hash)).await? else {
                    return Ok(None);
                };
                let record = Arc::new(decode(&entry.value)?);
                self.cache.insert(hash.clone(), record.clone()).await;
                record
            }
        };
        // The lookup already keyed on the hash; comparing again in constant
        // time guards against a record filed under the wrong key.
        if !bool::from(record.hash.as_bytes().ct_eq(hash.as_bytes())) {
            return Ok(None);
        }
        if record.expires_at_ms.is_some_and(|t| t <= now_ms()) {
            return Ok(None);
        }
        Ok(Some(Actor {
            token_id: record.id.clone(),
            name: record.name.clone(),
            policy: record.policy.clone(),
        }))
    }

    /// Whether any token exists yet.
    pub async fn has_tokens(&self) -> Result<bool> {
        Ok(!self.storage.list("tokens/", None, 1).await?.keys.is_empty())
    }

    /// On a server's first start, mints the root token, writes it to
    /// `file` (owner-only) and returns it for printing once.
    pub async fn bootstrap_root(&self, file: &Path) -> Result<Option<Zeroizing<String>>> {
        if self.has_tokens().await? {
            return Ok(None);
        }
        // The file is written before the record is stored: if the file cannot
        // be written, no token exists that nobody could ever see.
        let new = mint("root", Role::Admin.policy());
        write_private(file, new.token.as_bytes())
            .map_err(|e| Error::Internal(format!("cannot write {}: {e}", file.display())))?;
        if let Err(error) = self.store(&new.record).await {
            let _ = std::fs::remove_file(file);
            return Err(error);
        }
        Ok(Some(new.token))
    }
}

fn decode(bytes: &[u8]) -> Result<TokenRecord> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Internal(format!("malformed token record: {e}")))
}

/// A new random token and its record (not yet stored).
fn mint(name: &str, policy: Policy) -> NewToken {
    let mut secret = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(secret.as_mut());
    let token = Zeroizing::new(format!(
        "{TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(secret.as_ref())
    ));
    let hash = token_hash(&token);
    let record = TokenRecord {
        id: hash[..16].to_owned(),
        hash,
        name: name.to_owned(),
        policy,
        created_at_ms: now_ms(),
        expires_at_ms: None,
    };
    NewToken { token, record }
}

/// Writes `bytes` to a new file readable only by its owner.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.write_all(b"\n")?;
    file.sync_all()
}
