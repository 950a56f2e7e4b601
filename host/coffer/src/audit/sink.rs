//! Where audit lines go: an append-only JSON-lines file (rotated by size,
//! re-created and reported if it disappears) and standard output.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// How often the file's identity is checked.
const IDENTITY_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// One destination of audit lines.
pub enum Sink {
    File(FileSink),
    Stdout,
}

impl Sink {
    pub fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::File(file) => file.write(line),
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line)?;
                out.flush()
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Sink::File(file) => file.path.display().to_string(),
            Sink::Stdout => "stdout".to_owned(),
        }
    }
}

/// The audit file. Rotation renames it to `NAME.N` (N counting up) and
/// starts a new one; the chain runs on across files.
pub struct FileSink {
    path: PathBuf,
    file: Option<File>,
    /// Identity of the open file, to notice it being deleted or replaced.
    identity: Option<(u64, u64)>,
    size: u64,
    rotate_bytes: u64,
    /// When the file's identity was last checked: once a second is enough
    /// to notice deletion without a stat on every request.
    checked: std::time::Instant,
}

impl FileSink {
    pub fn new(path: PathBuf, rotate_bytes: u64) -> FileSink {
        FileSink {
            path,
            file: None,
            identity: None,
            size: 0,
            rotate_bytes,
            checked: std::time::Instant::now(),
        }
    }

    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.file.is_some() && self.checked.elapsed() >= IDENTITY_CHECK_INTERVAL {
            self.checked = std::time::Instant::now();
            if self.identity != identity(&self.path) {
                tracing::error!(path = %self.path.display(), "the audit file was deleted or replaced; starting a new one");
                self.file = None;
            }
        }
        if self.file.is_some() && self.size + line.len() as u64 > self.rotate_bytes {
            self.rotate()?;
        }
        if self.file.is_none() {
            self.open()?;
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("audit file not open"))?;
        let written = file.write_all(line).and_then(|()| file.flush());
        if written.is_err() {
            // Reopen next time rather than append after a partial line.
            self.file = None;
        }
        written?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn open(&mut self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            coffer_runtime::create_private_dir(dir)?;
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        self.identity = identity(&self.path);
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let next = super::verify::log_files(&self.path)
            .iter()
            .filter_map(|p| p.extension()?.to_str()?.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        let rotated = PathBuf::from(format!("{}.{next}", self.path.display()));
        std::fs::rename(&self.path, rotated)?;
        self.open()
    }
}

#[cfg(unix)]
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|_| (0, 0))
}
