//! The `Kms` trait the host uses, and its implementation by a plugin.
//!
//! A KMS keeps its root key to itself: the host hands it a data key to
//! wrap and gets back an opaque blob, and hands the blob back to unwrap
//! it. Data keys cross the boundary as bytes; the host's copies are moved
//! into zeroizing buffers, and the copies made for a call are wiped after
//! it.

use zeroize::Zeroizing;

use crate::bindings::kms as wit;
use crate::engine::Runtime;
use crate::error::{LoadError, PluginError};
use crate::plugin::{PluginKind, PluginSpec};
use crate::pool::Pool;

/// What a KMS says about its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsKey {
    /// The KMS's name for the key (an ARN, a transit key name).
    pub name: String,
    /// The version new wraps use: 1 until the key is first rotated.
    pub version: u32,
}

/// A data key wrapped by a KMS, and the key version that wrapped it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsWrapped {
    pub blob: Vec<u8>,
    pub version: u32,
}

/// A remote key-management service holding the root key.
#[async_trait::async_trait]
pub trait Kms: Send + Sync {
    /// The key new wraps use.
    async fn describe(&self) -> Result<KmsKey, PluginError>;
    /// Wraps `plaintext` (a data key) bound to `aad`.
    async fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<KmsWrapped, PluginError>;
    /// Unwraps a blob made by `wrap` with the same `aad`.
    async fn unwrap(&self, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, PluginError>;
    /// Starts a new key version for future wraps; returns the key as it
    /// now stands.
    async fn rotate(&self) -> Result<KmsKey, PluginError>;
}

/// A KMS reached through a WebAssembly component.
pub struct KmsPlugin {
    pool: Pool<wit::Guest>,
}

impl KmsPlugin {
    /// Loads a KMS plugin with the grants of `spec` and starts one instance
    /// to prove it can run.
    pub async fn load(runtime: &Runtime, spec: PluginSpec) -> Result<KmsPlugin, LoadError> {
        let prepared = runtime.prepare(spec, PluginKind::Kms)?;
        let pool = Pool::start(
            prepared,
            "coffer:plugin/kms",
            |pre| wit::GuestIndices::new(pre).is_ok(),
            |pre, store, instance| wit::GuestIndices::new(pre)?.load(store, instance),
        )
        .await?;
        Ok(KmsPlugin { pool })
    }

    /// The plugin's configured name.
    pub fn name(&self) -> &str {
        &self.pool.prepared.name
    }

    /// SHA-256 of the loaded `.wasm`.
    pub fn sha256(&self) -> &str {
        &self.pool.prepared.sha256
    }
}

impl From<wit::Description> for KmsKey {
    fn from(description: wit::Description) -> KmsKey {
        KmsKey {
            name: description.key_name,
            version: description.current_version,
        }
    }
}

#[async_trait::async_trait]
impl Kms for KmsPlugin {
    async fn describe(&self) -> Result<KmsKey, PluginError> {
        let description = self
            .pool
            .call_guest("describe", |w| {
                Box::pin(async move { w.guest.call_describe(&mut w.store).await })
            })
            .await?;
        Ok(description.into())
    }

    async fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<KmsWrapped, PluginError> {
        let plaintext = Zeroizing::new(plaintext.to_vec());
        let aad = aad.to_vec();
        let wrapped = self
            .pool
            .call_guest("wrap", move |w| {
                Box::pin(async move { w.guest.call_wrap(&mut w.store, &plaintext, &aad).await })
            })
            .await?;
        Ok(KmsWrapped {
            blob: wrapped.blob,
            version: wrapped.version,
        })
    }

    async fn unwrap(&self, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, PluginError> {
        let blob = blob.to_vec();
        let aad = aad.to_vec();
        let plaintext = self
            .pool
            .call_guest("unwrap", move |w| {
                Box::pin(async move { w.guest.call_unwrap(&mut w.store, &blob, &aad).await })
            })
            .await?;
        // Moved, not copied: the only copy is the zeroizing one.
        Ok(Zeroizing::new(plaintext))
    }

    async fn rotate(&self) -> Result<KmsKey, PluginError> {
        let description = self
            .pool
            .call_guest("rotate", |w| {
                Box::pin(async move { w.guest.call_rotate(&mut w.store).await })
            })
            .await?;
        Ok(description.into())
    }
}
