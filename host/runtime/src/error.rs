//! Errors of plugin loading and plugin calls.
//!
//! A [`GuestError`] is what a healthy plugin answers (the WIT `error`
//! variant). A [`PluginFailure`] is the plugin misbehaving: it trapped, ran
//! out of CPU or memory, overran its deadline. Callers treat the first as a
//! backend's answer and the second as a broken backend.

use std::time::Duration;

/// An error value a plugin returned on purpose.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuestError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("denied: {0}")]
    Denied(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("internal: {0}")]
    Internal(String),
}

/// How a plugin call failed without the plugin answering.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PluginFailure {
    #[error("trapped: {0}")]
    Trapped(String),
    #[error("exceeded its CPU budget of {0:?}")]
    CpuExhausted(Duration),
    #[error("exceeded its memory limit of {0} bytes")]
    OutOfMemory(usize),
    #[error("did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("has no free instance (all {0} busy)")]
    Busy(usize),
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
}

impl PluginFailure {
    /// What happened, without detail from inside the plugin: safe to show
    /// to API clients.
    pub fn summary(&self) -> &'static str {
        match self {
            PluginFailure::Trapped(_) => "trapped",
            PluginFailure::CpuExhausted(_) => "exceeded its CPU budget",
            PluginFailure::OutOfMemory(_) => "exceeded its memory limit",
            PluginFailure::TimedOut(_) => "did not answer in time",
            PluginFailure::Busy(_) => "has no free instance",
            PluginFailure::Instantiate(_) => "could not start an instance",
        }
    }
}

/// The error of one plugin call, naming the plugin.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The plugin answered with an error.
    #[error("plugin {plugin}: {error}")]
    Guest { plugin: String, error: GuestError },
    /// The plugin failed to answer; its instance has been discarded.
    #[error("plugin {plugin} {failure}")]
    Failed {
        plugin: String,
        failure: PluginFailure,
    },
}

impl PluginError {
    /// The plugin's own error, if it answered with one.
    pub fn guest(&self) -> Option<&GuestError> {
        match self {
            PluginError::Guest { error, .. } => Some(error),
            PluginError::Failed { .. } => None,
        }
    }

    /// The name of the plugin that failed.
    pub fn plugin(&self) -> &str {
        match self {
            PluginError::Guest { plugin, .. } | PluginError::Failed { plugin, .. } => plugin,
        }
    }
}

/// Why a plugin could not be loaded. Messages are written for the operator.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("plugin {plugin}: cannot read {path}: {source}")]
    Read {
        plugin: String,
        path: String,
        source: std::io::Error,
    },
    #[error(
        "plugin {plugin}: sha256 mismatch: the configuration pins {expected} but {path} has {actual}"
    )]
    Sha256Mismatch {
        plugin: String,
        path: String,
        expected: String,
        actual: String,
    },
    #[error("plugin {plugin}: {path} is not a valid component: {detail}")]
    Compile {
        plugin: String,
        path: String,
        detail: String,
    },
    /// `refusal` names the import and why it is refused.
    #[error("plugin {plugin} imports {refusal}")]
    NotGranted { plugin: String, refusal: String },
    #[error("plugin {plugin} does not export {interface}: is it the right kind of plugin?")]
    MissingExport {
        plugin: String,
        interface: &'static str,
    },
    #[error("plugin {plugin}: {detail}")]
    Grant { plugin: String, detail: String },
    #[error("plugin {plugin} cannot start: {detail}")]
    Start { plugin: String, detail: String },
    #[error("plugin runtime: {0}")]
    Engine(String),
}

impl From<crate::bindings::types::Error> for GuestError {
    /// What a plugin says is guest text: escaped and bounded here, at the
    /// boundary, so no log line or error downstream carries it raw.
    fn from(error: crate::bindings::types::Error) -> Self {
        use crate::bindings::types::Error as E;
        let clean = |m: String| crate::text::from_guest(&m, crate::text::MAX_MESSAGE_BYTES);
        match error {
            E::NotFound => GuestError::NotFound,
            E::Conflict(m) => GuestError::Conflict(clean(m)),
            E::Unavailable(m) => GuestError::Unavailable(clean(m)),
            E::Denied(m) => GuestError::Denied(clean(m)),
            E::Invalid(m) => GuestError::Invalid(clean(m)),
            E::Internal(m) => GuestError::Internal(clean(m)),
        }
    }
}

impl From<GuestError> for crate::bindings::types::Error {
    fn from(error: GuestError) -> Self {
        use crate::bindings::types::Error as E;
        match error {
            GuestError::NotFound => E::NotFound,
            GuestError::Conflict(m) => E::Conflict(m),
            GuestError::Unavailable(m) => E::Unavailable(m),
            GuestError::Denied(m) => E::Denied(m),
            GuestError::Invalid(m) => E::Invalid(m),
            GuestError::Internal(m) => E::Internal(m),
        }
    }
}
