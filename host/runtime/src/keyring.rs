//! The `Keyring` trait the host uses, and its implementation by a plugin.
//!
//! Key material crosses the boundary as bytes and is moved straight into
//! zeroizing buffers on the host side; copies made for `store` are wiped
//! after the call.

use zeroize::Zeroize;

use coffer_crypto::tink::{KeyStatus, TinkKey, TinkKeyset};
use coffer_crypto::{Algorithm, KeyMaterial, OutputPrefix};

use crate::bindings::keyring as wit;
use crate::engine::Runtime;
use crate::error::{GuestError, LoadError, PluginError};
use crate::plugin::{PluginKind, PluginSpec};
use crate::pool::Pool;

/// Where root keys are loaded from and persisted to.
#[async_trait::async_trait]
pub trait Keyring: Send + Sync {
    /// The stored keyset; none when there is none yet and one may be created.
    async fn load(&self) -> Result<Option<TinkKeyset>, PluginError>;
    /// Replaces the stored keyset.
    async fn store(&self, keyset: &TinkKeyset) -> Result<(), PluginError>;
}

/// A keyring running as a WebAssembly component.
pub struct KeyringPlugin {
    pool: Pool<wit::Guest>,
}

impl KeyringPlugin {
    /// Loads a keyring plugin and starts one instance to prove it can run.
    pub async fn load(runtime: &Runtime, spec: PluginSpec) -> Result<KeyringPlugin, LoadError> {
        let prepared = runtime.prepare(spec, PluginKind::Keyring)?;
        let pool = Pool::start(
            prepared,
            "coffer:plugin/keyring",
            |pre| wit::GuestIndices::new(pre).is_ok(),
            |pre, store, instance| wit::GuestIndices::new(pre)?.load(store, instance),
        )
        .await?;
        Ok(KeyringPlugin { pool })
    }

    /// The plugin's configured name.
    pub fn name(&self) -> &str {
        &self.pool.prepared.name
    }

    /// SHA-256 of the loaded `.wasm`.
    pub fn sha256(&self) -> &str {
        &self.pool.prepared.sha256
    }

    fn guest_error(&self, error: GuestError) -> PluginError {
        PluginError::Guest {
            plugin: self.name().to_owned(),
            error,
        }
    }
}

#[async_trait::async_trait]
impl Keyring for KeyringPlugin {
    async fn load(&self) -> Result<Option<TinkKeyset>, PluginError> {
        let loaded = self
            .pool
            .call_guest("load", |w| {
                Box::pin(async move { w.guest.call_load(&mut w.store).await })
            })
            .await?;
        let Some(keyset) = loaded else {
            return Ok(None);
        };
        // Whatever is left in the wire copy when this returns (early, on a
        // bad key) is wiped with it.
        let mut wire = WipedOnDrop(keyset);
        let mut keys = Vec::with_capacity(wire.0.keys.len());
        for key in &mut wire.0.keys {
            let algorithm = from_wit_algorithm(key.algorithm);
            let material =
                KeyMaterial::new(algorithm, std::mem::take(&mut key.material)).map_err(|e| {
                    self.guest_error(GuestError::Invalid(format!("key {}: {e}", key.id)))
                })?;
            keys.push(TinkKey {
                id: key.id,
                algorithm,
                status: from_wit_status(key.status),
                output_prefix: from_wit_prefix(key.output_prefix),
                material,
            });
        }
        Ok(Some(TinkKeyset {
            primary_key_id: wire.0.primary_key_id,
            keys,
        }))
    }

    async fn store(&self, keyset: &TinkKeyset) -> Result<(), PluginError> {
        let wire = WipedOnDrop(wit::Keyset {
            primary_key_id: keyset.primary_key_id,
            keys: keyset
                .keys
                .iter()
                .map(|key| wit::Key {
                    id: key.id,
                    algorithm: to_wit_algorithm(key.algorithm),
                    status: to_wit_status(key.status),
                    output_prefix: to_wit_prefix(key.output_prefix),
                    material: key.material.as_bytes().to_vec(),
                })
                .collect(),
        });
        self.pool
            .call_guest("store", move |w| {
                Box::pin(async move { w.guest.call_store(&mut w.store, &wire.0).await })
            })
            .await
    }
}

/// The wire copy of a keyset, wiped when dropped: after a call, when the
/// call is abandoned, or on an early return.
struct WipedOnDrop(wit::Keyset);

impl Drop for WipedOnDrop {
    fn drop(&mut self) {
        for key in &mut self.0.keys {
            key.material.zeroize();
        }
    }
}

fn from_wit_algorithm(a: wit::Algorithm) -> Algorithm {
    match a {
        wit::Algorithm::Aes128Gcm => Algorithm::Aes128Gcm,
        wit::Algorithm::Aes256Gcm => Algorithm::Aes256Gcm,
    }
}

fn to_wit_algorithm(a: Algorithm) -> wit::Algorithm {
    match a {
        Algorithm::Aes128Gcm => wit::Algorithm::Aes128Gcm,
        Algorithm::Aes256Gcm => wit::Algorithm::Aes256Gcm,
    }
}

fn from_wit_status(s: wit::KeyStatus) -> KeyStatus {
    match s {
        wit::KeyStatus::Enabled => KeyStatus::Enabled,
        wit::KeyStatus::Disabled => KeyStatus::Disabled,
        wit::KeyStatus::Destroyed => KeyStatus::Destroyed,
    }
}

fn to_wit_status(s: KeyStatus) -> wit::KeyStatus {
    match s {
        KeyStatus::Enabled => wit::KeyStatus::Enabled,
        KeyStatus::Disabled => wit::KeyStatus::Disabled,
        KeyStatus::Destroyed => wit::KeyStatus::Destroyed,
    }
}

fn from_wit_prefix(p: wit::OutputPrefix) -> OutputPrefix {
    match p {
        wit::OutputPrefix::Tink => OutputPrefix::Tink,
        wit::OutputPrefix::Legacy => OutputPrefix::Legacy,
        wit::OutputPrefix::Crunchy => OutputPrefix::Crunchy,
        wit::OutputPrefix::Raw => OutputPrefix::Raw,
    }
}

fn to_wit_prefix(p: OutputPrefix) -> wit::OutputPrefix {
    match p {
        OutputPrefix::Tink => wit::OutputPrefix::Tink,
        OutputPrefix::Legacy => wit::OutputPrefix::Legacy,
        OutputPrefix::Crunchy => wit::OutputPrefix::Crunchy,
        OutputPrefix::Raw => wit::OutputPrefix::Raw,
    }
}
