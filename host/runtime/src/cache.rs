//! The on-disk cache of compiled components.
//!
//! Compiling a component takes tens of milliseconds (hundreds in a debug
//! build); loading a precompiled one takes a fraction of one. But a cached
//! artifact is native code the host runs, so it must be exactly what this
//! host compiled from the pinned `.wasm`:
//! - each entry carries an HMAC-SHA256 tag, under a key kept in the cache
//!   directory (owner-only), over the `.wasm`'s SHA-256, the engine's
//!   compatibility hash and the artifact; an entry whose tag does not verify
//!   — corrupt, planted, or another component's artifact renamed — is
//!   recompiled, and the artifact that is loaded is the one that verified
//!   (read into memory first, never re-read from the file);
//! - the directory must be a directory of this user that nobody else can
//!   write; otherwise the cache is not used at all;
//! - files are created exclusively, owner-only, never through a symlink,
//!   and renamed into place.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use wasmtime::Engine;
use wasmtime::component::Component;
use zeroize::Zeroizing;

/// Length of the tag after each artifact.
const TAG_LEN: usize = 32;
/// Name of the key file in the cache directory.
const KEY_FILE: &str = "cache.key";
/// Largest artifact the cache reads back.
const MAX_ARTIFACT_BYTES: u64 = 256 << 20;

/// Where compiled components are kept, if anywhere.
pub struct ComponentCache {
    store: Option<Store>,
    engine_hash: String,
}

/// A usable cache directory and its key.
struct Store {
    dir: PathBuf,
    key: Zeroizing<Vec<u8>>,
}

impl ComponentCache {
    /// A cache in `dir` (created owner-only), or none. A directory that is
    /// not this user's, or that others may write, is not used.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> std::io::Result<ComponentCache> {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let store = match dir {
            None => None,
            Some(dir) => {
                create_private_dir(&dir)?;
                match private_key(&dir) {
                    Ok(key) => Some(Store { dir, key }),
                    Err(error) => {
                        tracing::warn!(
                            dir = %dir.display(),
                            %error,
                            "not using the compiled-component cache: plugins are compiled at every start"
                        );
                        None
                    }
                }
            }
        };
        Ok(ComponentCache {
            store,
            engine_hash: format!("{:016x}", hasher.finish()),
        })
    }

    /// The component for `wasm` (whose SHA-256 is `sha256`), from the cache
    /// when an entry verifies, compiled (and stored) otherwise.
    pub fn load(&self, engine: &Engine, wasm: &[u8], sha256: &str) -> wasmtime::Result<Component> {
        let Some(store) = &self.store else {
            return Component::new(engine, wasm);
        };
        let path = store
            .dir
            .join(format!("{sha256}-{}.cwasm", self.engine_hash));
        match store.read(&path, sha256, &self.engine_hash) {
            Ok(Some(artifact)) => match deserialize(engine, &artifact) {
                Ok(component) => return Ok(component),
                Err(error) => tracing::warn!(
                    path = %path.display(), %error, "discarding an unusable compiled component"
                ),
            },
            Ok(None) => {}
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "refusing a cached component; recompiling");
            }
        }
        let component = Component::new(engine, wasm)?;
        match component.serialize() {
            Ok(artifact) => {
                if let Err(error) = store.write(&path, sha256, &self.engine_hash, &artifact) {
                    tracing::warn!(path = %path.display(), %error, "cannot cache compiled component");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot serialize compiled component"),
        }
        Ok(component)
    }
}

impl Store {
    fn tag(&self, sha256: &str, engine_hash: &str, artifact: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(b"coffer.component-cache.v1\0");
        mac.update(sha256.as_bytes());
        mac.update(b"\0");
        mac.update(engine_hash.as_bytes());
        mac.update(b"\0");
        mac.update(artifact);
        mac.finalize().into_bytes().into()
    }

    /// The verified artifact at `path`, none when there is no entry, or why
    /// the entry was refused.
    fn read(
        &self,
        path: &Path,
        sha256: &str,
        engine_hash: &str,
    ) -> Result<Option<Vec<u8>>, String> {
        let mut file = match open_no_follow(path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error.to_string()),
        };
        let mut bytes = Vec::new();
        (&mut file)
            .take(MAX_ARTIFACT_BYTES + TAG_LEN as u64)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        let Some(split) = bytes.len().checked_sub(TAG_LEN) else {
            return Err("the entry is shorter than its tag".to_owned());
        };
        let (artifact, tag) = bytes.split_at(split);
        let expected = self.tag(sha256, engine_hash, artifact);
        if !bool::from(expected.ct_eq(tag)) {
            return Err(
                "the entry's tag does not verify: not what this host compiled from this component"
                    .to_owned(),
            );
        }
        bytes.truncate(split);
        Ok(Some(bytes))
    }

    /// Stores `artifact` with its tag at `path`.
    fn write(
        &self,
        path: &Path,
        sha256: &str,
        engine_hash: &str,
        artifact: &[u8],
    ) -> std::io::Result<()> {
        let tag = self.tag(sha256, engine_hash, artifact);
        write_atomically(path, &[artifact, &tag])
    }
}

/// Loads a precompiled component from memory.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime requires that the bytes be an artifact it produced.
    // They are: their tag, under a key only this user can read, verified
    // that this host compiled them from the component whose hash it just
    // checked, for this engine's settings; and they were read into memory
    // before verifying, so nothing can change them in between.
    unsafe { Component::deserialize(engine, artifact) }
}

/// The cache's key, created on first use. Refused unless the directory and
/// the key file are this user's and nobody else may write the directory or
/// read the key.
fn private_key(dir: &Path) -> std::io::Result<Zeroizing<Vec<u8>>> {
    check_private(
        dir,
        0o022,
        "the cache directory may be written by other users",
    )?;
    let path = dir.join(KEY_FILE);
    let mut key = Zeroizing::new(vec![0u8; 32]);
    match create_new(&path) {
        Ok(mut file) => {
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
            file.write_all(&key)?;
            file.sync_all()?;
            return Ok(key);
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error),
    }
    check_private(&path, 0o077, "the cache key may be read by other users")?;
    let mut file = open_no_follow(&path)?;
    let mut stored = Zeroizing::new(Vec::new());
    (&mut file).take(64).read_to_end(&mut stored)?;
    if stored.len() != 32 {
        return Err(std::io::Error::other("the cache key is not 32 bytes"));
    }
    Ok(stored)
}

/// Refuses `path` unless it is this user's and has none of `forbidden`
/// permission bits.
fn check_private(path: &Path, forbidden: u32, message: &str) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::symlink_metadata(path)?;
        if metadata.uid() != effective_uid()
            || metadata.mode() & forbidden != 0
            || metadata.file_type().is_symlink()
        {
            return Err(std::io::Error::other(format!(
                "{message} ({})",
                path.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, forbidden, message);
    Ok(())
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
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

fn open_no_follow(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// A new file, owner-only, failing if anything (a symlink included) is there.
fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// Writes `parts` to `path` so that readers never see a partial file, even
/// when several processes fill the same cache at once.
fn write_atomically(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!(
        "tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let written = create_new(&tmp).and_then(|mut file| {
        for part in parts {
            file.write_all(part)?;
        }
        file.sync_all()
    });
    written
        .and_then(|()| std::fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
}
