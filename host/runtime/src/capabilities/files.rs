//! The `files` capability: files the operator grants a plugin by name,
//! read and written by the host.
//!
//! A grant is exactly one file: the plugin never sees a path or a
//! directory, so with a keyset at `/etc/coffer/keyset.json` it cannot read
//! `/etc/coffer/coffer.toml` or replace anything beside it. Writes are
//! atomic (a new file beside the old one, created exclusively, never
//! through a symlink, mode 0600, synced, then renamed over it), and both
//! directions are capped at [`MAX_FILE_BYTES`], since the host does this
//! work on the plugin's behalf.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use wasmtime::component::HasSelf;

use super::Capability;
use crate::bindings;
use crate::bindings::files::Host;
use crate::bindings::types::Error as WitError;
use crate::plugin::PluginKind;
use crate::state::PluginState;

/// Keyrings reach the files their section grants. A keyring may import
/// `files` without a grant (a raw key needs none); every call then answers
/// `denied`.
pub(crate) const CAPABILITY: Capability = Capability {
    interface: "coffer:plugin/files",
    kinds: &[PluginKind::Keyring],
    grant: None,
    link: |linker| bindings::files::add_to_linker::<_, HasSelf<_>>(linker, |s| s),
};

/// Largest file the host reads or writes for a plugin.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// One file lent to a plugin under a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileGrant {
    /// What the plugin calls it.
    pub name: String,
    /// Where it is on the host.
    pub path: PathBuf,
    /// Whether the plugin may replace it.
    pub writable: bool,
}

fn grant<'a>(grants: &'a [FileGrant], name: &str) -> Result<&'a FileGrant, WitError> {
    grants.iter().find(|g| g.name == name).ok_or_else(|| {
        WitError::Denied(format!(
            "no file `{name}` is granted to this plugin: add it to its [<section>.files] table"
        ))
    })
}

fn read(path: &Path) -> Result<Option<Vec<u8>>, WitError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(unavailable("read", &error)),
    };
    let metadata = file.metadata().map_err(|e| unavailable("read", &e))?;
    if !metadata.is_file() {
        return Err(WitError::Invalid(
            "the granted file is not a regular file".to_owned(),
        ));
    }
    let mut content = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut content)
        .map_err(|e| unavailable("read", &e))?;
    if content.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    Ok(Some(content))
}

fn write(path: &Path, content: &[u8]) -> Result<(), WitError> {
    let (Some(dir), Some(file_name)) = (path.parent(), path.file_name()) else {
        return Err(WitError::Invalid(
            "the granted path names no file".to_owned(),
        ));
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let tmp = dir.join(format!(
        ".{}.{:016x}.tmp",
        file_name.to_string_lossy(),
        rand_suffix()
    ));
    let written = write_new(&tmp, content).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(unavailable("write", &error));
    }
    // The rename is durable once the directory is synced.
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Creates `path` (never an existing file, never through a symlink),
/// owner-only, and syncs `content` into it.
fn write_new(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // create_new refuses an existing file or symlink; O_NOFOLLOW
        // says the same of the last component, for good measure.
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let mut file = options.open(path)?;
    file.write_all(content)?;
    file.sync_all()
}

/// A suffix for a temporary name, distinct within the process (creation is
/// exclusive, so a clash with another process only fails that write).
fn rand_suffix() -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn too_large() -> WitError {
    WitError::Invalid(format!(
        "files given to plugins are at most {MAX_FILE_BYTES} bytes"
    ))
}

fn unavailable(action: &str, error: &std::io::Error) -> WitError {
    match error.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            WitError::Denied(format!("cannot {action} the granted file: {error}"))
        }
        _ => WitError::Unavailable(format!("cannot {action} the granted file: {error}")),
    }
}

impl Host for PluginState {
    async fn read(&mut self, name: String) -> wasmtime::Result<Result<Option<Vec<u8>>, WitError>> {
        let path = match grant(&self.grants.files, &name) {
            Ok(grant) => grant.path.clone(),
            Err(error) => return Ok(Err(error)),
        };
        Ok(tokio::task::spawn_blocking(move || read(&path))
            .await
            .unwrap_or_else(|e| Err(WitError::Internal(e.to_string()))))
    }

    async fn write(
        &mut self,
        name: String,
        content: Vec<u8>,
    ) -> wasmtime::Result<Result<(), WitError>> {
        let path = match grant(&self.grants.files, &name) {
            Ok(grant) if grant.writable => grant.path.clone(),
            Ok(_) => {
                return Ok(Err(WitError::Denied(format!(
                    "file `{name}` is granted read-only (set writable = true in its grant)"
                ))));
            }
            Err(error) => return Ok(Err(error)),
        };
        if content.len() > MAX_FILE_BYTES {
            return Ok(Err(too_large()));
        }
        let content = zeroize::Zeroizing::new(content);
        Ok(tokio::task::spawn_blocking(move || write(&path, &content))
            .await
            .unwrap_or_else(|e| Err(WitError::Internal(e.to_string()))))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_atomic_private_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyset.json");
        assert_eq!(read(&path).unwrap(), None);
        write(&path, b"one").unwrap();
        write(&path, b"two").unwrap();
        assert_eq!(read(&path).unwrap(), Some(b"two".to_vec()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Nothing is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(&path, vec![0u8; MAX_FILE_BYTES + 1]).unwrap();
        assert!(matches!(read(&path), Err(WitError::Invalid(_))));
        assert!(matches!(
            read(dir.path()),
            Err(WitError::Invalid(_)) | Err(WitError::Unavailable(_))
        ));
    }
}
