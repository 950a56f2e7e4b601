//! Turning a `[<section>.http]` table into the runtime's grant: the
//! credentials it names are read here, from the host's environment or
//! files, into zeroizing memory; the plugin never sees them.

use std::path::Path;
use std::time::Duration;

use coffer_crypto::sigv4::{Credentials, Scope};
use coffer_runtime::{HttpAuth, HttpGrant};
use zeroize::Zeroizing;

use super::PluginStartError;
use crate::config::{HttpAuthKind, HttpGrantSection};

/// The grant of `section` (named `key`, such as `storage.http`), its
/// credentials read.
pub fn grant(key: &str, section: &HttpGrantSection) -> Result<HttpGrant, PluginStartError> {
    let fail = |field: &str, message: String| PluginStartError(format!("{key}.{field}: {message}"));
    let secret = |env_field: &str,
                  env: &Option<String>,
                  file_field: &str,
                  file: &Option<std::path::PathBuf>| {
        match (env, file) {
            (Some(name), _) => read_env(name).map_err(|m| fail(env_field, m)),
            (None, Some(path)) => read_file(path).map_err(|m| fail(file_field, m)),
            (None, None) => Err(fail(env_field, "is not set".to_owned())),
        }
    };
    let auth = match section.auth {
        HttpAuthKind::None => HttpAuth::None,
        HttpAuthKind::AwsSigv4 => HttpAuth::AwsSigV4 {
            scope: Scope {
                region: section.region.clone().unwrap_or_default(),
                service: section.service.clone().unwrap_or_default(),
            },
            credentials: aws_credentials(section).map_err(|(field, m)| fail(field, m))?,
        },
        HttpAuthKind::VaultToken => HttpAuth::VaultToken {
            token: secret(
                "token_env",
                &section.token_env,
                "token_file",
                &section.token_file,
            )?,
        },
        HttpAuthKind::VaultApprole => HttpAuth::VaultAppRole {
            mount: section
                .approle_mount
                .clone()
                .unwrap_or_else(|| "approle".to_owned()),
            role_id: secret(
                "role_id_env",
                &section.role_id_env,
                "role_id_file",
                &section.role_id_file,
            )?,
            secret_id: secret(
                "secret_id_env",
                &section.secret_id_env,
                "secret_id_file",
                &section.secret_id_file,
            )?,
        },
    };
    Ok(HttpGrant {
        origin: section.origin.trim_end_matches('/').to_owned(),
        ca_file: section.ca_file.clone(),
        timeout: Duration::from_millis(section.timeout_ms),
        max_response_bytes: section.max_response_bytes,
        actions: section.actions.clone(),
        paths: section.paths.clone(),
        auth,
    })
}

/// AWS credentials from the shared credentials file, the variables the
/// section names, or the standard `AWS_…` variables.
fn aws_credentials(section: &HttpGrantSection) -> Result<Credentials, (&'static str, String)> {
    if let Some(path) = &section.credentials_file {
        let profile = section.profile.as_deref().unwrap_or("default");
        let text = read_file(path).map_err(|m| ("credentials_file", m))?;
        return profile_credentials(&text, profile).ok_or_else(|| {
            (
                "credentials_file",
                format!(
                    "{} has no aws_access_key_id and aws_secret_access_key in profile [{profile}]",
                    path.display()
                ),
            )
        });
    }
    let access_key = section
        .access_key_env
        .as_deref()
        .unwrap_or("AWS_ACCESS_KEY_ID");
    let secret_key = section
        .secret_key_env
        .as_deref()
        .unwrap_or("AWS_SECRET_ACCESS_KEY");
    let session_token = match &section.session_token_env {
        Some(name) => Some(read_env(name).map_err(|m| ("session_token_env", m))?),
        None => read_env("AWS_SESSION_TOKEN").ok(),
    };
    Ok(Credentials {
        access_key_id: read_env(access_key)
            .map_err(|m| ("access_key_env", m))?
            .to_string(),
        secret_access_key: read_env(secret_key).map_err(|m| ("secret_key_env", m))?,
        session_token,
    })
}

/// The credentials of `profile` in an AWS shared credentials file.
fn profile_credentials(text: &str, profile: &str) -> Option<Credentials> {
    let mut in_profile = false;
    let mut access_key = None;
    let mut secret_key = None;
    let mut session_token = None;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = name.trim() == profile;
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !in_profile {
            continue;
        }
        let value = Zeroizing::new(value.trim().to_owned());
        match key.trim() {
            "aws_access_key_id" => access_key = Some(value.to_string()),
            "aws_secret_access_key" => secret_key = Some(value),
            "aws_session_token" => session_token = Some(value),
            _ => {}
        }
    }
    Some(Credentials {
        access_key_id: access_key?,
        secret_access_key: secret_key?,
        session_token,
    })
}

fn read_env(name: &str) -> Result<Zeroizing<String>, String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(Zeroizing::new(value)),
        Ok(_) => Err(format!("{name} is empty")),
        Err(std::env::VarError::NotPresent) => Err(format!("{name} is not set")),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
    }
}

/// A credential file's content, without the trailing line break.
fn read_file(path: &Path) -> Result<Zeroizing<String>, String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
    );
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(Zeroizing::new(trimmed.to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_profile_is_read_from_a_shared_credentials_file() {
        let text = "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n\n\
                    [ci]\naws_access_key_id=AKIDCI\naws_secret_access_key=s2\naws_session_token = t\n";
        let ci = profile_credentials(text, "ci").unwrap();
        assert_eq!(ci.access_key_id, "AKIDCI");
        assert_eq!(ci.secret_access_key.as_str(), "s2");
        assert_eq!(ci.session_token.as_deref().map(String::as_str), Some("t"));
        let default = profile_credentials(text, "default").unwrap();
        assert!(default.session_token.is_none());
        assert!(profile_credentials(text, "missing").is_none());
    }
}
