//! The plugin contract, checked against any plugin of each kind: the one
//! suite `coffer plugin check` runs, the project's tests run on every
//! in-repo plugin, and plugin authors may run in `cargo test`.
//!
//! Each check is named, runs to its end or its first failure, and reports
//! why it failed; nothing panics, so a run reports every check.
//!
//! ```ignore
//! let report = coffer_runtime::conformance::storage(plugin, Scope::scratch()).await;
//! print!("{report}");
//! assert!(report.passed());
//! ```

mod keyring;
mod kms;
mod storage;
mod storage_batch;

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

pub use keyring::keyring;
pub use kms::{KmsChecks, kms};
pub use storage::{Scope, storage};

use crate::{GuestError, PluginError};

/// One check's outcome.
#[derive(Debug)]
pub struct Check {
    /// What the check holds the plugin to, as a sentence fragment.
    pub name: &'static str,
    /// Why it failed, if it did.
    pub failure: Option<String>,
    pub elapsed: Duration,
}

/// Every check of one run.
#[derive(Debug, Default)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.failure.is_none())
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|check| check.failure.is_some())
    }

    /// Runs `check` and records its outcome under `name`.
    pub(crate) async fn run<F>(&mut self, name: &'static str, check: F)
    where
        F: Future<Output = Outcome>,
    {
        let started = Instant::now();
        let failure = check.await.err();
        self.checks.push(Check {
            name,
            failure,
            elapsed: started.elapsed(),
        });
    }
}

impl fmt::Display for Report {
    /// One line per check, then a summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            match &check.failure {
                None => writeln!(f, "pass  {} ({} ms)", check.name, check.elapsed.as_millis())?,
                Some(why) => writeln!(f, "FAIL  {}: {why}", check.name)?,
            }
        }
        let failed = self.failures().count();
        writeln!(
            f,
            "{} checks, {} passed, {failed} failed",
            self.checks.len(),
            self.checks.len() - failed
        )
    }
}

/// What one check returns: why it failed, if it did.
pub(crate) type Outcome = Result<(), String>;

/// Fails the check with `message` unless `condition` holds.
pub(crate) fn ensure(condition: bool, message: impl FnOnce() -> String) -> Outcome {
    if condition { Ok(()) } else { Err(message()) }
}

/// A plugin call that must succeed; its error, named by `what`, otherwise.
pub(crate) fn ok<T>(what: &str, outcome: Result<T, PluginError>) -> Result<T, String> {
    outcome.map_err(|error| format!("{what} failed: {error}"))
}

/// A plugin call that must fail with the error `matches` accepts (the one
/// the WIT documents, described by `wanted`).
pub(crate) fn fails<T: fmt::Debug>(
    what: &str,
    wanted: &str,
    outcome: Result<T, PluginError>,
    matches: impl Fn(&GuestError) -> bool,
) -> Outcome {
    match outcome {
        Err(error) if error.guest().is_some_and(&matches) => Ok(()),
        Err(error) => Err(format!("{what} should fail with {wanted}, but: {error}")),
        Ok(value) => Err(format!(
            "{what} should fail with {wanted}, but succeeded: {value:?}"
        )),
    }
}

pub(crate) fn conflict(error: &GuestError) -> bool {
    matches!(error, GuestError::Conflict(_))
}

pub(crate) fn not_found(error: &GuestError) -> bool {
    matches!(error, GuestError::NotFound)
}

pub(crate) fn invalid(error: &GuestError) -> bool {
    matches!(error, GuestError::Invalid(_))
}
