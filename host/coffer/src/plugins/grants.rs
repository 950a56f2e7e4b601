//! The grants of one plugin section: the database the host opens for it,
//! the files it lends by name, the origin it talks to, the environment
//! variables it may read, and the clock.

use std::env::VarError;
use std::path::Path;
use std::sync::Arc;

use coffer_runtime::{FileGrant, Grants, HttpClient, SqlPool, create_private_dir};
use zeroize::Zeroizing;

use super::PluginStartError;
use crate::config::PluginSection;

/// What section `name` grants its plugin. The configuration was validated,
/// so a grant a kind may not have is not there.
pub async fn make(name: &str, section: &PluginSection) -> Result<Grants, PluginStartError> {
    let sql = match &section.sql {
        Some(grant) => Some(open_database(name, &grant.url, grant.max_connections, section).await?),
        None => None,
    };
    let http = match &section.http {
        Some(grant) => {
            let key = format!("{name}.http");
            let grant = super::http::grant(&key, grant)?;
            let client = HttpClient::connect(grant)
                .await
                .map_err(|e| PluginStartError(format!("{key}: {e}")))?;
            Some(client)
        }
        None => None,
    };
    Ok(Grants {
        sql,
        files: file_grants(name, section)?,
        http,
        env: granted_env(name, &section.env)?,
        clock: section.clock,
    })
}

/// Opens the database of `[<name>.sql]`, creating the directory of a
/// SQLite file.
async fn open_database(
    name: &str,
    url: &str,
    max_connections: u32,
    section: &PluginSection,
) -> Result<Arc<SqlPool>, PluginStartError> {
    if let Some(path) = url.strip_prefix("sqlite://")
        && let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            PluginStartError(format!(
                "{name}.sql.url: cannot create {}: {e}",
                parent.display()
            ))
        })?;
    }
    let statement_timeout = section.limits.to_limits().call_timeout;
    let pool = SqlPool::connect(url, max_connections, statement_timeout)
        .await
        .map_err(|e| PluginStartError(format!("{name}.sql.url: {e}")))?;
    Ok(Arc::new(pool))
}

/// The section's file grants. The directory of a writable file is created
/// (owner-only) when missing, so a keyset can be created in it.
fn file_grants(name: &str, section: &PluginSection) -> Result<Vec<FileGrant>, PluginStartError> {
    let mut grants = Vec::with_capacity(section.files.len());
    for (file, grant) in &section.files {
        if grant.writable
            && let Some(dir) = grant.path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            create_private_dir(dir).map_err(|e| {
                PluginStartError(format!(
                    "{name}.files.{file}: cannot create {}: {e}",
                    dir.display()
                ))
            })?;
        }
        grants.push(FileGrant {
            name: file.clone(),
            path: grant.path.clone(),
            writable: grant.writable,
        });
    }
    Ok(grants)
}

/// The host's values of the variables `<name>.env` grants; each must be
/// set (a grant of nothing is a mistake worth stopping for).
fn granted_env(
    name: &str,
    variables: &[String],
) -> Result<Vec<(String, Zeroizing<String>)>, PluginStartError> {
    let mut env: Vec<(String, Zeroizing<String>)> = Vec::with_capacity(variables.len());
    for variable in variables {
        let fail = |what: &str| PluginStartError(format!("{name}.env: {variable} {what}"));
        if variable.is_empty() || variable.contains(['=', '\0']) {
            return Err(PluginStartError(format!(
                "{name}.env: `{variable}` is not an environment variable name"
            )));
        }
        if env.iter().any(|(granted, _)| granted == variable) {
            continue;
        }
        match std::env::var(variable) {
            Ok(value) => env.push((variable.clone(), Zeroizing::new(value))),
            Err(VarError::NotPresent) => return Err(fail("is not set")),
            Err(VarError::NotUnicode(_)) => return Err(fail("is not valid UTF-8")),
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn granted_variables_are_read_from_the_host() {
        let (name, value) = std::env::vars().next().unwrap();
        let env = granted_env("keyring", &[name.clone(), name.clone()]).unwrap();
        assert_eq!(
            env,
            [(name, Zeroizing::new(value))],
            "read once, duplicates dropped"
        );
    }

    #[test]
    fn a_granted_variable_that_is_not_set_stops_the_start() {
        let error = granted_env("keyring", &names(&["COFFER_TEST_NEVER_SET_4F1C"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "keyring.env: COFFER_TEST_NEVER_SET_4F1C is not set"
        );
        let error = granted_env("storage", &names(&["A=B"])).unwrap_err();
        assert!(error.to_string().starts_with("storage.env:"), "{error}");
    }
}
