//! The on-disk cache of compiled components.
//!
//! Compiling a component takes tens of milliseconds (hundreds in a debug
//! build); loading a precompiled one takes a fraction of one. Entries are
//! keyed by the SHA-256 of the `.wasm` and a hash of the engine's settings,
//! so a new wasmtime or a changed configuration never loads a stale artifact.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled components are kept, if anywhere.
pub struct ComponentCache {
    dir: Option<PathBuf>,
    engine_hash: String,
}

impl ComponentCache {
    /// A cache in `dir` (created with owner-only permissions), or none.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> std::io::Result<ComponentCache> {
        if let Some(dir) = &dir {
            create_private_dir(dir)?;
        }
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(ComponentCache {
            dir,
            engine_hash: format!("{:016x}", hasher.finish()),
        })
    }

    /// The component for `wasm` (whose SHA-256 is `sha256`), from the cache
    /// when a usable entry exists, compiled (and stored) otherwise.
    pub fn load(&self, engine: &Engine, wasm: &[u8], sha256: &str) -> wasmtime::Result<Component> {
        let Some(dir) = &self.dir else {
            return Component::new(engine, wasm);
        };
        let path = dir.join(format!("{sha256}-{}.cwasm", self.engine_hash));
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok(component),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "discarding unusable compiled component");
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        match component.serialize() {
            Ok(compiled) => {
                if let Err(error) = write_atomically(&path, &compiled) {
                    tracing::warn!(path = %path.display(), %error, "cannot cache compiled component");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot serialize compiled component"),
        }
        Ok(component)
    }
}

/// Loads a precompiled component from the cache.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime requires that the file be an artifact it produced.
    // Only this process writes the cache directory (owner-only permissions),
    // always through a temporary file renamed into place, and the file name
    // binds the source hash and the engine settings it was compiled for.
    unsafe { Component::deserialize_file(engine, path) }
}

/// Creates `dir` and any missing parents, each enterable by its owner only.
/// A directory that already exists is left as it is: its permissions are
/// the operator's (it may be shared, like `/var/lib` or `/dev`).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Writes `bytes` to `path` so that readers never see a partial file, even
/// when several processes fill the same cache at once.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!(
        "tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
