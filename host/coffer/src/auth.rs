//! Bearer tokens. A token is 256 random bits shown once; storage keeps only
//! its SHA-256, under which the token's record is filed. Until policies
//! arrive every valid token is root.

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
    pub policies: Vec<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
}

/// A freshly minted token: shown once, wiped when dropped.
pub struct NewToken {
    pub token: Zeroizing<String>,
    pub record: TokenRecord,
}

/// The identity behind an authenticated request.
#[derive(Clone, Debug)]
pub struct Actor {
    pub token_id: String,
    pub name: String,
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

    /// Mints and stores a token.
    pub async fn create(&self, name: &str, policies: Vec<String>) -> Result<NewToken> {
        let new = mint(name, policies);
        self.store(&new.record).await?;
        Ok(new)
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
                let record: TokenRecord = serde_json::from_slice(&entry.value)
                    .map_err(|e| Error::Internal(format!("malformed token record: {e}")))?;
                let record = Arc::new(record);
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
        let new = mint("root", vec!["root".to_owned()]);
        write_private(file, new.token.as_bytes())
            .map_err(|e| Error::Internal(format!("cannot write {}: {e}", file.display())))?;
        if let Err(error) = self.store(&new.record).await {
            let _ = std::fs::remove_file(file);
            return Err(error);
        }
        Ok(Some(new.token))
    }
}

/// A new random token and its record (not yet stored).
fn mint(name: &str, policies: Vec<String>) -> NewToken {
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
        policies,
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
