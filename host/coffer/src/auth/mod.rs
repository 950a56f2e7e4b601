//! Bearer tokens. A token is 256 random bits shown once; storage keeps only
//! its SHA-256, under which the token's record is filed with the token's
//! policy ([`policy`]). The record is sealed ([`crate::store`]): a row
//! planted in storage is not a token.
//!
//! Tokens form a tree: each records the token that created it, may never
//! outlive it, and stops working when any token above it is revoked or
//! expires. Revocation leaves a sealed tombstone rather than deleting the
//! record, so a node that saw it cannot be shown the live record again.

pub mod policy;
mod throttle;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::metrics::CacheCounter;
use zeroize::Zeroizing;

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::store::{Change, Start, Store, layout};
pub use policy::{Admin, Capability, Pattern, Policy, Role, Rule};
pub use throttle::Throttle;

/// Every coffer token starts with this, so secret scanners can spot leaks.
const TOKEN_PREFIX: &str = "cft_";
/// Length of a token: the prefix and 32 bytes in unpadded base64url.
const TOKEN_LEN: usize = TOKEN_PREFIX.len() + 43;
/// How long a token record read from storage is trusted without reading it
/// again (and so how long another node's revocation takes to reach here).
const CACHE_TTL: Duration = Duration::from_secs(30);
/// Token records kept in memory, and token hashes remembered as unknown.
const CACHED_RECORDS: u64 = 100_000;
/// Most tokens above a token: a deeper tree is refused when created.
pub const MAX_DEPTH: usize = 16;
/// Most token records one listing reads.
const MAX_LISTED: usize = 100_000;

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
    /// The hash of the token that created this one; none for the root.
    #[serde(default)]
    pub parent: Option<String>,
    /// When the token was revoked; a revoked token's record stays as a
    /// tombstone.
    #[serde(default)]
    pub revoked_at_ms: Option<i64>,
}

impl TokenRecord {
    /// Whether the token itself (leaving aside the tokens above it) is
    /// still good at `now_ms`.
    fn live(&self, now_ms: i64) -> bool {
        self.revoked_at_ms.is_none() && self.expires_at_ms.is_none_or(|t| t > now_ms)
    }
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
    /// The token's hash: what its record is filed under (not the token).
    pub token_hash: String,
    pub name: String,
    pub policy: Policy,
    pub expires_at_ms: Option<i64>,
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
    store: Arc<Store>,
    /// Token records recently read, by hash.
    cache: moka::future::Cache<String, Arc<TokenRecord>>,
    cache_counter: CacheCounter,
    /// Hashes recently looked up and not found, so a flood of made-up
    /// tokens does not reach storage.
    misses: moka::future::Cache<String, ()>,
    /// Counts revocations, so a lookup that overlapped one does not leave
    /// the record it read before the revocation in the cache.
    revocations: AtomicU64,
    /// Failed authentications per client address.
    pub throttle: Throttle,
}

fn token_hash(token: &str) -> String {
    crate::lower_hex::lower_hex(&Sha256::digest(token.as_bytes()))
}

impl Auth {
    pub fn new(store: Arc<Store>) -> Auth {
        Auth {
            store,
            cache: moka::future::Cache::builder()
                .max_capacity(CACHED_RECORDS)
                .time_to_live(CACHE_TTL)
                .build(),
            cache_counter: CacheCounter::default(),
            misses: moka::future::Cache::builder()
                .max_capacity(CACHED_RECORDS)
                .time_to_live(CACHE_TTL)
                .build(),
            revocations: AtomicU64::new(0),
            throttle: Throttle::default(),
        }
    }

    /// Mints and stores a token for `parent` (none for the root), valid
    /// for `ttl` when given and never beyond the parent's expiry.
    pub async fn create(
        &self,
        name: &str,
        policy: Policy,
        ttl: Option<Duration>,
        parent: Option<&Actor>,
    ) -> Result<NewToken> {
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err(Error::Invalid(
                "a token name must be 1 to 128 printable characters".to_owned(),
            ));
        }
        let mut new = mint(name, policy);
        if let Some(parent) = parent {
            if self.depth(&parent.token_hash).await? + 1 >= MAX_DEPTH {
                return Err(Error::Invalid(format!(
                    "tokens may be nested at most {MAX_DEPTH} deep"
                )));
            }
            new.record.parent = Some(parent.token_hash.clone());
            new.record.expires_at_ms = parent.expires_at_ms;
        }
        if let Some(ttl) = ttl {
            let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
            let wanted = new.record.created_at_ms.saturating_add(ttl_ms);
            new.record.expires_at_ms =
                Some(new.record.expires_at_ms.map_or(wanted, |t| t.min(wanted)));
        }
        self.store(&new.record).await?;
        Ok(new)
    }

    /// The tokens `viewer` may see, oldest first: live ones whose policy
    /// `viewer`'s covers.
    pub async fn list(&self, viewer: &Actor) -> Result<Vec<TokenRecord>> {
        let mut records = Vec::new();
        let mut scan = self.store.scan(layout::TOKENS);
        while let Some(keys) = scan.next_page().await? {
            for key in keys {
                let hash = key.strip_prefix(layout::TOKENS).unwrap_or(&key);
                let record = match self.record(hash).await {
                    Ok(Some(record)) => record,
                    Ok(None) => continue,
                    // Refused and logged by the store; the rest still lists.
                    Err(Error::Integrity(_)) => continue,
                    Err(error) => return Err(error),
                };
                if records.len() >= MAX_LISTED {
                    return Err(Error::Backend(format!(
                        "more than {MAX_LISTED} token records: listing refused"
                    )));
                }
                if viewer.policy.covers(&record.policy) && self.in_force(&record).await? {
                    records.push(TokenRecord::clone(&record));
                }
            }
        }
        records.sort_by_key(|r| r.created_at_ms);
        Ok(records)
    }

    /// Revokes the token with public id `id`, and with it every token it
    /// created. `by` must hold at least the rights of the token it revokes.
    /// Other nodes stop accepting it within their cache lifetime (30 s).
    pub async fn revoke(&self, id: &str, by: &Actor) -> Result<TokenRecord> {
        let not_found = || Error::NotFound(format!("token {id} not found"));
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let page = self
            .store
            .page(&format!("{}{id}", layout::TOKENS), None, 2)
            .await?;
        let [key] = page.keys.as_slice() else {
            return Err(not_found());
        };
        let hash = key.strip_prefix(layout::TOKENS).unwrap_or(key);
        let record = self.record(hash).await?.ok_or_else(not_found)?;
        if record.revoked_at_ms.is_some() {
            return Err(not_found());
        }
        if !by.policy.covers(&record.policy) {
            return Err(Error::Forbidden);
        }
        let now = now_ms();
        let (revoked, _) = self
            .store
            .edit(
                key,
                Start::Read,
                || std::future::ready(Err(not_found())),
                |mut record: TokenRecord, _| {
                    record.revoked_at_ms.get_or_insert(now);
                    let revoked = record.clone();
                    std::future::ready(Ok((record, Change::Write(revoked))))
                },
            )
            .await?;
        // Order matters: the count moves before the cache entry goes, so a
        // lookup that read the live record either sees the count change
        // and drops what it cached, or cached it before this invalidation.
        self.revocations.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate(hash).await;
        Ok(revoked)
    }

    async fn store(&self, record: &TokenRecord) -> Result<()> {
        let written = self
            .store
            .put(&layout::token(&record.hash), record, None)
            .await?;
        if written.is_none() {
            return Err(Error::Conflict("the token already exists".to_owned()));
        }
        self.misses.invalidate(&record.hash).await;
        Ok(())
    }

    /// The actor a presented token belongs to, or none if it is not valid
    /// (unknown, expired, revoked, or under a token that is).
    pub async fn verify(&self, token: &str) -> Result<Option<Actor>> {
        if !well_formed(token) {
            return Ok(None);
        }
        let hash = token_hash(token);
        let Some(record) = self.record(&hash).await? else {
            return Ok(None);
        };
        // The lookup already keyed on the hash; comparing again in constant
        // time guards against a record filed under the wrong key.
        if !bool::from(record.hash.as_bytes().ct_eq(hash.as_bytes())) {
            return Ok(None);
        }
        if !self.in_force(&record).await? {
            return Ok(None);
        }
        Ok(Some(Actor {
            token_id: record.id.clone(),
            token_hash: record.hash.clone(),
            name: record.name.clone(),
            policy: record.policy.clone(),
            expires_at_ms: record.expires_at_ms,
        }))
    }

    /// Whether `token` is one this node verified recently and still holds
    /// as live, without touching storage: what a throttled address may
    /// still use.
    pub async fn known_good(&self, token: &str) -> bool {
        if !well_formed(token) {
            return false;
        }
        self.cache
            .get(&token_hash(token))
            .await
            .is_some_and(|record| record.live(now_ms()))
    }

    /// Whether `record` and every token above it are live.
    async fn in_force(&self, record: &TokenRecord) -> Result<bool> {
        let now = now_ms();
        if !record.live(now) {
            return Ok(false);
        }
        let mut parent = record.parent.clone();
        for _ in 0..MAX_DEPTH {
            let Some(hash) = parent else {
                return Ok(true);
            };
            match self.record(&hash).await? {
                Some(above) if above.live(now) => parent = above.parent.clone(),
                _ => return Ok(false),
            }
        }
        Ok(false)
    }

    /// How many tokens are above the token with `hash`.
    async fn depth(&self, hash: &str) -> Result<usize> {
        let mut depth = 0;
        let mut current = self.record(hash).await?.and_then(|r| r.parent.clone());
        while let Some(hash) = current {
            depth += 1;
            if depth >= MAX_DEPTH {
                break;
            }
            current = self.record(&hash).await?.and_then(|r| r.parent.clone());
        }
        Ok(depth)
    }

    /// (hits, misses) of the token cache.
    pub fn cache_counts(&self) -> (u64, u64) {
        self.cache_counter.counts()
    }

    /// The record of the token with `hash`, through the caches.
    async fn record(&self, hash: &str) -> Result<Option<Arc<TokenRecord>>> {
        self.cache_counter.lookup();
        if let Some(record) = self.cache.get(hash).await {
            return Ok(Some(record));
        }
        self.cache_counter.missed();
        if self.misses.contains_key(hash) {
            return Ok(None);
        }
        let before = self.revocations.load(Ordering::SeqCst);
        let Some(stored) = self.store.read::<TokenRecord>(&layout::token(hash)).await? else {
            self.misses.insert(hash.to_owned(), ()).await;
            return Ok(None);
        };
        let record = Arc::new(stored.record);
        self.cache.insert(hash.to_owned(), record.clone()).await;
        if self.revocations.load(Ordering::SeqCst) != before {
            // A revocation overlapped this read: what was read may be the
            // record from before it.
            self.cache.invalidate(hash).await;
        }
        Ok(Some(record))
    }

    /// Whether any token exists yet.
    pub async fn has_tokens(&self) -> Result<bool> {
        Ok(!self
            .store
            .page(layout::TOKENS, None, 1)
            .await?
            .keys
            .is_empty())
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

/// Whether `token` could be a coffer token at all: anything else is
/// refused without a lookup.
fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token.starts_with(TOKEN_PREFIX)
        && token[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
        parent: None,
        revoked_at_ms: None,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::memory::{MemoryKeyring, MemoryStorage};
    use crate::service::Foundation;

    async fn auth() -> (Arc<MemoryStorage>, Arc<Store>) {
        let storage = Arc::new(MemoryStorage::default());
        let foundation = Foundation::assemble(
            storage.clone(),
            crate::keys::RootSource::Keyring(Arc::new(MemoryKeyring::default())),
            None,
            Vec::new(),
        )
        .await
        .unwrap();
        (storage, foundation.store.clone())
    }

    fn root_actor(record: &TokenRecord) -> Actor {
        Actor {
            token_id: record.id.clone(),
            token_hash: record.hash.clone(),
            name: record.name.clone(),
            policy: record.policy.clone(),
            expires_at_ms: record.expires_at_ms,
        }
    }

    #[tokio::test]
    async fn an_unknown_token_reaches_storage_once_and_a_malformed_one_never() {
        let (storage, store) = auth().await;
        let auth = Auth::new(store);
        let unknown = format!("cft_{}", "a".repeat(43));
        for _ in 0..5 {
            assert!(auth.verify(&unknown).await.unwrap().is_none());
        }
        assert_eq!(storage.gets(&layout::token(&token_hash(&unknown))), 1);
        let malformed = "cft_short";
        assert!(auth.verify(malformed).await.unwrap().is_none());
        assert_eq!(storage.gets(&layout::token(&token_hash(malformed))), 0);
    }

    #[tokio::test]
    async fn a_lookup_that_overlaps_a_revocation_leaves_nothing_stale_in_the_cache() {
        let (storage, store) = auth().await;
        let minted = Auth::new(store.clone())
            .create("victim", Role::Admin.policy(), None, None)
            .await
            .unwrap();
        let auth = Arc::new(Auth::new(store));
        let key = layout::token(&minted.record.hash);
        // The lookup reads the live record, then waits before caching it...
        let release = storage.hold_next_get(&key);
        let token = minted.token.clone();
        let lookup = tokio::spawn({
            let auth = auth.clone();
            async move { auth.verify(&token).await.unwrap().is_some() }
        });
        while storage.gets(&key) == 0 {
            tokio::task::yield_now().await;
        }
        // ...while the token is revoked.
        auth.revoke(&minted.record.id, &root_actor(&minted.record))
            .await
            .unwrap();
        release.send(()).unwrap();
        lookup.await.unwrap();
        assert!(
            auth.verify(&minted.token).await.unwrap().is_none(),
            "the revoked token was cached as live"
        );
    }

    #[tokio::test]
    async fn a_child_never_outlives_its_parent_nor_a_revoked_ancestor() {
        let (_, store) = auth().await;
        let auth = Auth::new(store);
        let root = auth
            .create("root", Role::Admin.policy(), None, None)
            .await
            .unwrap();
        let parent = auth
            .create(
                "parent",
                Role::Admin.policy(),
                Some(Duration::from_secs(60)),
                Some(&root_actor(&root.record)),
            )
            .await
            .unwrap();
        let parent_actor = auth.verify(&parent.token).await.unwrap().unwrap();
        let ten_years = Duration::from_secs(10 * 365 * 24 * 3600);
        let child = auth
            .create(
                "child",
                Role::Admin.policy(),
                Some(ten_years),
                Some(&parent_actor),
            )
            .await
            .unwrap();
        assert_eq!(child.record.expires_at_ms, parent.record.expires_at_ms);
        let unbounded = auth
            .create("unbounded", Role::Admin.policy(), None, Some(&parent_actor))
            .await
            .unwrap();
        assert_eq!(unbounded.record.expires_at_ms, parent.record.expires_at_ms);
        let child_actor = auth.verify(&child.token).await.unwrap().unwrap();
        let grandchild = auth
            .create("grandchild", Role::Admin.policy(), None, Some(&child_actor))
            .await
            .unwrap();
        auth.revoke(&parent.record.id, &root_actor(&root.record))
            .await
            .unwrap();
        for token in [
            &parent.token,
            &child.token,
            &unbounded.token,
            &grandchild.token,
        ] {
            assert!(auth.verify(token).await.unwrap().is_none());
        }
        assert!(auth.verify(&root.token).await.unwrap().is_some());
    }
}
