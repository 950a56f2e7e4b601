//! The sealed transport: secret values that cross the wire encrypted to a
//! key, not only inside TLS, so a proxy, load balancer or mesh between
//! client and server sees ciphertext only (HPKE, RFC 9180, through
//! [`coffer_crypto::sealing`]).
//!
//! - A client seals a write to the server's current transport key
//!   (`GET /v1/sys/transport-key`), bound to the method, the path and a
//!   timestamp; the server opens it, refusing a stale timestamp and a
//!   repeated encapsulated key ([`replay`]).
//! - A client reads with a one-time public key of its own; the server seals
//!   the value to it, authenticated by the server's transport key and bound
//!   to the path and the version.
//!
//! The server's transport keys form a ring ([`ring`]) kept in storage, each
//! key's private half a system key wrapped by the KEK. The ring rotates
//! when its current key expires, with `coffer transport rotate`, and with
//! `coffer kek rotate`; a replaced key still opens requests for a grace
//! period. Namespaces in `[transport] require_sealed`, and tokens whose
//! policy says `require_sealed`, refuse plaintext values both ways.

pub mod replay;
pub mod ring;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use coffer_crypto::sealing::{self, KEY_LEN, RequestBinding, ResponseBinding, SUITE, TransportKey};
use coffer_runtime::Expected;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::auth::{Actor, Pattern};
use crate::clock::{now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::keys::RootKeys;
use crate::keys::system::{read_system_key, system_key};
use crate::store::{Change, Start, Store, layout};
use replay::{Refusal, ReplayGuard};
use ring::{TransportRing, system_key_name};

/// Most keys the ring holds: rotating faster than keys retire drops the
/// oldest early rather than piling up system keys.
const MAX_RING: usize = 8;

/// How long a node trusts its copy of the ring before reading it again
/// (another node may have rotated).
const RING_TTL: Duration = Duration::from_secs(30);

/// Fewest time between two reads of the ring prompted by an unknown key
/// id, so a flood of made-up ids costs at most one read a second.
const UNKNOWN_KID_RELOAD: Duration = Duration::from_secs(1);

/// How long a failed rotation is not tried again; the current key serves
/// meanwhile.
const ROTATION_RETRY: Duration = Duration::from_secs(30);

/// Most sealed requests remembered per replay generation.
const REPLAY_CAPACITY: usize = 500_000;

/// `[transport]`, resolved.
#[derive(Clone, Debug)]
pub struct TransportSettings {
    pub key_lifetime_ms: i64,
    pub grace_ms: i64,
    pub window: Duration,
    pub require_sealed: Vec<Pattern>,
}

/// A sealed request body: `{"sealed": {…}}` and nothing else.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SealedRequest {
    pub sealed: SealedBody,
}

/// The sealed form of a request body: the plain body, sealed to the
/// server's transport key `kid`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SealedBody {
    /// The transport key's id, from `GET /v1/sys/transport-key`.
    pub kid: String,
    /// The HPKE encapsulated key, base64 (32 bytes).
    pub enc: String,
    /// The HPKE ciphertext of the plain JSON body, base64.
    pub ciphertext: String,
    /// When it was sealed: seconds since the Unix epoch.
    pub timestamp: u64,
}

/// A value sealed to a client's one-time key.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SealedValue {
    /// The server transport key that sealed it (HPKE auth mode).
    pub kid: String,
    /// The HPKE encapsulated key, base64.
    pub enc: String,
    /// The HPKE ciphertext of the value, base64.
    pub ciphertext: String,
}

/// A transport key's public half, as clients fetch it.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct PublishedKey {
    pub kid: String,
    /// The X25519 public key, base64 (32 bytes).
    pub public_key: String,
    pub created_at: String,
    /// When clients should fetch the key again: it is replaced after this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Until when a replaced key still opens requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_until: Option<String>,
}

/// `GET /v1/sys/transport-key`: the key to seal to, and the replaced keys
/// still accepted (whose public keys also verify sealed answers).
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct TransportKeys {
    pub suite: &'static str,
    #[serde(flatten)]
    pub current: PublishedKey,
    pub previous: Vec<PublishedKey>,
}

/// Why a sealed request was refused; each is a stable error code.
#[derive(Debug)]
pub enum SealError {
    /// Malformed, or it does not open: another key, another binding, a
    /// changed bit.
    Invalid(String),
    /// Sealed to a key this server does not hold (or no longer accepts).
    UnknownKey(String),
    Refused(Refusal),
    Engine(Error),
}

impl From<Error> for SealError {
    fn from(error: Error) -> SealError {
        SealError::Engine(error)
    }
}

/// The ring as this node last read it, with the keys' private halves.
struct Loaded {
    ring: TransportRing,
    keys: HashMap<u32, Arc<TransportKey>>,
    read_at: Instant,
}

/// The server's side of the sealed transport.
pub struct Transport {
    store: Arc<Store>,
    root: Arc<RootKeys>,
    settings: TransportSettings,
    loaded: RwLock<Option<Arc<Loaded>>>,
    /// One read of the ring at a time; when the last one was.
    reading: tokio::sync::Mutex<Option<Instant>>,
    /// When a due rotation last failed.
    rotation_failed: std::sync::Mutex<Option<Instant>>,
    replay: ReplayGuard,
}

impl Transport {
    pub fn new(store: Arc<Store>, root: Arc<RootKeys>, settings: TransportSettings) -> Transport {
        let replay = ReplayGuard::new(settings.window, REPLAY_CAPACITY);
        Transport {
            store,
            root,
            settings,
            loaded: RwLock::new(None),
            reading: tokio::sync::Mutex::new(None),
            rotation_failed: std::sync::Mutex::new(None),
            replay,
        }
    }

    /// Whether values must cross the wire sealed for `actor` in `namespace`.
    pub fn required(&self, actor: Option<&Actor>, namespace: &str) -> bool {
        actor.is_some_and(|actor| actor.policy.require_sealed)
            || self
                .settings
                .require_sealed
                .iter()
                .any(|pattern| pattern.matches(namespace))
    }

    /// The key clients seal to (made, or rotated, when due) and the
    /// replaced keys still accepted.
    pub async fn published(&self) -> Result<TransportKeys> {
        publish(&*self.current().await?)
    }

    /// Makes a new transport key current now.
    pub async fn rotate(&self) -> Result<TransportKeys> {
        let seen = self.read().await?.ring.current().map(|key| key.kid);
        let loaded = self.rotate_from(seen).await?;
        publish(&loaded)
    }

    /// Opens a request body sealed for `method` on `path`.
    pub async fn open(
        &self,
        method: &str,
        path: &str,
        body: &SealedBody,
    ) -> std::result::Result<Zeroizing<Vec<u8>>, SealError> {
        self.replay
            .check_time(body.timestamp, now_ms())
            .map_err(SealError::Refused)?;
        let enc = decode_key(&body.enc, "enc")?;
        let ciphertext = STANDARD
            .decode(&body.ciphertext)
            .map_err(|_| SealError::Invalid("`ciphertext` is not base64".to_owned()))?;
        let key = self.accepted_key(&body.kid).await?;
        let binding = RequestBinding {
            method,
            path,
            timestamp: body.timestamp,
            kid: &body.kid,
        };
        let plain = sealing::open_request(&key, &binding, &enc, &ciphertext).map_err(|_| {
            SealError::Invalid(
                "the sealed body does not open: it was sealed to another key, for another \
                 method, path or time, or changed on the way"
                    .to_owned(),
            )
        })?;
        self.replay.admit(&enc).map_err(SealError::Refused)?;
        Ok(plain)
    }

    /// Seals `value`, read at `path` as `version`, to a client's one-time
    /// key, under the current transport key.
    pub async fn seal(
        &self,
        client_key: &[u8; KEY_LEN],
        path: &str,
        version: u32,
        value: &[u8],
    ) -> Result<SealedValue> {
        let (kid, key) = current_key(&*self.current().await?)?;
        let kid = kid.to_string();
        let binding = ResponseBinding {
            path,
            version,
            kid: &kid,
        };
        let sealed = sealing::seal_response(client_key, &key, &binding, value)
            .map_err(|e| Error::Invalid(format!("Coffer-Seal-To: {e}")))?;
        Ok(SealedValue {
            kid,
            enc: STANDARD.encode(sealed.enc),
            ciphertext: STANDARD.encode(sealed.ciphertext),
        })
    }

    /// The ring, with a current key that has not expired: made, or
    /// rotated, when due.
    /// A rotation that fails while the expired key still works is logged
    /// and tried again after [`ROTATION_RETRY`]; the expired key serves.
    async fn current(&self) -> Result<Arc<Loaded>> {
        let loaded = self.fresh().await?;
        if !loaded.ring.due(now_ms()) {
            return Ok(loaded);
        }
        let seen = loaded.ring.current().map(|key| key.kid);
        let failed = || {
            self.rotation_failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
        };
        let backing_off = failed().is_some_and(|at| at.elapsed() < ROTATION_RETRY);
        if backing_off && seen.is_some() {
            return Ok(loaded);
        }
        match self.rotate_from(seen).await {
            Ok(rotated) => Ok(rotated),
            Err(error) if seen.is_some() => {
                tracing::warn!(%error, "could not rotate the expired transport key; it serves on");
                *failed() = Some(Instant::now());
                Ok(loaded)
            }
            Err(error) => Err(error),
        }
    }

    /// The private key `kid` names, if the ring still accepts it; an id
    /// this node does not know sends it to read the ring again (at most
    /// once a second).
    async fn accepted_key(&self, kid: &str) -> std::result::Result<Arc<TransportKey>, SealError> {
        let unknown = || {
            SealError::UnknownKey(
                "the transport key `kid` names is unknown or retired: fetch \
                 /v1/sys/transport-key and seal again"
                    .to_owned(),
            )
        };
        // Ids are written as the ring writes them, or not at all.
        let id: u32 = kid
            .parse()
            .ok()
            .filter(|id: &u32| id.to_string() == kid)
            .ok_or_else(unknown)?;
        let find = |loaded: &Loaded| {
            loaded
                .ring
                .accepted(id, now_ms())
                .and_then(|_| loaded.keys.get(&id).cloned())
        };
        let loaded = self.fresh().await?;
        if let Some(key) = find(&loaded) {
            return Ok(key);
        }
        let reread = self.read_if_older_than(UNKNOWN_KID_RELOAD).await?;
        reread.as_deref().and_then(find).ok_or_else(unknown)
    }

    /// The ring, read again when this node's copy is older than
    /// [`RING_TTL`].
    async fn fresh(&self) -> Result<Arc<Loaded>> {
        if let Some(loaded) = self.cached() {
            return Ok(loaded);
        }
        let mut last = self.reading.lock().await;
        // Requests that waited here while another read it take that read.
        if let Some(loaded) = self.cached() {
            return Ok(loaded);
        }
        *last = Some(Instant::now());
        self.load().await
    }

    /// This node's copy of the ring, unless older than [`RING_TTL`].
    fn cached(&self) -> Option<Arc<Loaded>> {
        self.loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .filter(|loaded| loaded.read_at.elapsed() < RING_TTL)
    }

    /// Reads the ring now.
    async fn read(&self) -> Result<Arc<Loaded>> {
        let mut last = self.reading.lock().await;
        *last = Some(Instant::now());
        self.load().await
    }

    /// Reads the ring unless it was read within `within`; none then.
    async fn read_if_older_than(&self, within: Duration) -> Result<Option<Arc<Loaded>>> {
        let mut last = self.reading.lock().await;
        if last.is_some_and(|at| at.elapsed() < within) {
            return Ok(None);
        }
        // A read that fails counts too: a broken ring is not read again
        // for every request naming an unknown key.
        *last = Some(Instant::now());
        self.load().await.map(Some)
    }

    /// Reads the ring and unwraps the keys this node does not hold yet (a
    /// key's private half never changes, so one unwrapped stays good);
    /// keeps the result. A key that will not unwrap opens nothing, and is
    /// an error only when it is the current one.
    async fn load(&self) -> Result<Arc<Loaded>> {
        let ring = self
            .store
            .read::<TransportRing>(layout::TRANSPORT_KEYS)
            .await?
            .map(|stored| stored.record)
            .unwrap_or_default();
        let held = self
            .loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|loaded| loaded.keys.clone())
            .unwrap_or_default();
        let current = ring.current().map(|key| key.kid);
        let mut keys = HashMap::new();
        for entry in &ring.keys {
            let key = match held.get(&entry.kid) {
                Some(key) => Ok(key.clone()),
                None => self.unwrap_key(entry.kid).await,
            };
            match key {
                Ok(key) => {
                    keys.insert(entry.kid, key);
                }
                Err(error) if Some(entry.kid) == current => return Err(error),
                Err(error) => {
                    tracing::error!(kid = entry.kid, %error, "a replaced transport key opens nothing");
                }
            }
        }
        let loaded = Arc::new(Loaded {
            ring,
            keys,
            read_at: Instant::now(),
        });
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Some(loaded.clone());
        Ok(loaded)
    }

    /// The private half of transport key `kid`, unwrapped by the KEK.
    async fn unwrap_key(&self, kid: u32) -> Result<Arc<TransportKey>> {
        let name = system_key_name(kid);
        let kek = self.root.current();
        let secret = read_system_key(self.store.storage().as_ref(), &kek, &name)
            .await?
            .ok_or_else(|| Error::Integrity(format!("system key {name} is missing")))?;
        let key = TransportKey::from_secret(&secret)
            .map_err(|e| Error::Integrity(format!("system key {name}: {e}")))?;
        Ok(Arc::new(key))
    }

    /// Rotates the ring unless its current key is no longer `seen` (another
    /// request or node rotated it meanwhile); returns the ring as it is.
    async fn rotate_from(&self, seen: Option<u32>) -> Result<Arc<Loaded>> {
        let settings = &self.settings;
        let kek = self.root.current();
        let storage = self.store.storage().clone();
        let (dropped, _) = self
            .store
            .edit(
                layout::TRANSPORT_KEYS,
                Start::Read,
                || async { Ok(TransportRing::default()) },
                |mut ring: TransportRing, _| {
                    let (kek, storage) = (kek.clone(), storage.clone());
                    async move {
                        if ring.current().map(|key| key.kid) != seen {
                            return Ok((ring, Change::Keep(Vec::new())));
                        }
                        let now = now_ms();
                        let mut rotated =
                            ring.rotate(now, settings.key_lifetime_ms, settings.grace_ms);
                        let excess = ring.keys.len().saturating_sub(MAX_RING);
                        rotated
                            .dropped
                            .extend(ring.keys.drain(..excess).map(|key| key.kid));
                        // The private half exists before the ring names it.
                        system_key(storage.as_ref(), &kek, &system_key_name(rotated.kid)).await?;
                        tracing::info!(kid = rotated.kid, "rotated the transport key");
                        Ok((ring, Change::Write(rotated.dropped)))
                    }
                },
            )
            .await?;
        for kid in dropped {
            let record = layout::system_key(&system_key_name(kid));
            if let Err(error) = self.store.storage().delete(&record, Expected::Any).await {
                tracing::warn!(kid, %error, "could not delete a retired transport key");
            }
        }
        self.read().await
    }
}

fn current_key(loaded: &Loaded) -> Result<(u32, Arc<TransportKey>)> {
    loaded
        .ring
        .current()
        .and_then(|entry| Some((entry.kid, loaded.keys.get(&entry.kid)?.clone())))
        .ok_or_else(unreadable_current)
}

fn unreadable_current() -> Error {
    Error::Backend("the current transport key cannot be read from storage".to_owned())
}

fn publish(loaded: &Loaded) -> Result<TransportKeys> {
    let now = now_ms();
    let mut current = None;
    let mut previous = Vec::new();
    for entry in &loaded.ring.keys {
        let Some(key) = loaded.keys.get(&entry.kid) else {
            continue;
        };
        let mut shown = PublishedKey {
            kid: entry.kid.to_string(),
            public_key: STANDARD.encode(key.public_key()),
            created_at: rfc3339(entry.created_at_ms),
            expires_at: None,
            accepted_until: None,
        };
        match entry.retire_at_ms {
            None => {
                shown.expires_at = Some(rfc3339(entry.expires_at_ms));
                current = Some(shown);
            }
            Some(retire) if retire > now => {
                shown.accepted_until = Some(rfc3339(retire));
                previous.push(shown);
            }
            Some(_) => {}
        }
    }
    Ok(TransportKeys {
        suite: SUITE,
        current: current.ok_or_else(unreadable_current)?,
        previous,
    })
}

/// A 32-byte key given in base64.
fn decode_key(text: &str, what: &str) -> std::result::Result<[u8; KEY_LEN], SealError> {
    STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|bytes| <[u8; KEY_LEN]>::try_from(bytes.as_slice()).ok())
        .ok_or_else(|| SealError::Invalid(format!("`{what}` must be 32 bytes in base64")))
}

/// A client's one-time public key, from the `Coffer-Seal-To` header.
pub fn parse_client_key(header: &str) -> std::result::Result<[u8; KEY_LEN], SealError> {
    decode_key(header, "Coffer-Seal-To")
}
