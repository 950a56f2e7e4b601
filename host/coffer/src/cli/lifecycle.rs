//! `coffer secret undelete|destroy|metadata`: a secret's versions and
//! metadata beyond its value.

use std::collections::BTreeMap;

use clap::Args;
use reqwest::Method;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::client::{Failure, encode_path, request};
use super::output::{Format, Table, cell, print_json};

/// What `coffer secret metadata` changes; nothing given only shows it.
#[derive(Args)]
pub struct MetadataArgs {
    /// Versions to keep (0: the server's max_versions).
    #[arg(long)]
    max_versions: Option<u32>,
    /// Whether every write must give --cas.
    #[arg(long)]
    cas_required: Option<bool>,
    /// A custom metadata entry KEY=VALUE (repeat it); replaces all of them.
    #[arg(long = "custom", value_name = "KEY=VALUE")]
    custom: Vec<String>,
    /// Remove every custom metadata entry.
    #[arg(long, conflicts_with = "custom")]
    clear_custom: bool,
    /// Delete the secret: every version destroyed, metadata gone.
    #[arg(long, conflicts_with_all = ["max_versions", "cas_required", "custom", "clear_custom"])]
    delete: bool,
}

fn secret_url(base: &str, namespace: &str, name: &str, operation: &str) -> String {
    format!(
        "{base}/v1/secrets/{}/{}/{operation}",
        encode_path(namespace),
        encode_path(name)
    )
}

/// Undeletes or destroys `versions`, naming those that changed.
pub(super) async fn versions(
    base: &str,
    operation: &str,
    namespace: &str,
    name: &str,
    versions: &[u32],
) -> Result<(), Failure> {
    let body = Zeroizing::new(json!({ "versions": versions }).to_string());
    let url = secret_url(base, namespace, name, operation);
    let answer = request(Method::POST, &url, Some(body)).await?;
    let changed: Vec<String> = answer["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(Value::to_string)
        .collect();
    let verb = if operation == "destroy" {
        "destroyed"
    } else {
        "undeleted"
    };
    if changed.is_empty() {
        println!("{namespace}/{name}: nothing to do (no such versions, or already so)");
    } else {
        println!("{namespace}/{name}: {verb} versions {}", changed.join(", "));
    }
    Ok(())
}

/// Shows, changes or deletes a secret's metadata.
pub(super) async fn metadata(
    base: &str,
    namespace: &str,
    name: &str,
    args: MetadataArgs,
    format: Format,
) -> Result<(), Failure> {
    let url = secret_url(base, namespace, name, "metadata");
    if args.delete {
        request(Method::DELETE, &url, None).await?;
        println!("{namespace}/{name}: deleted with every version");
        return Ok(());
    }
    let mut change = Map::new();
    if let Some(max) = args.max_versions {
        change.insert("max_versions".into(), max.into());
    }
    if let Some(required) = args.cas_required {
        change.insert("cas_required".into(), required.into());
    }
    if args.clear_custom || !args.custom.is_empty() {
        change.insert(
            "custom_metadata".into(),
            json!(custom_entries(&args.custom)?),
        );
    }
    let answer = if change.is_empty() {
        request(Method::GET, &url, None).await?
    } else {
        let body = Zeroizing::new(Value::Object(change).to_string());
        request(Method::PUT, &url, Some(body)).await?
    };
    match format {
        Format::Json => print_json(&answer),
        Format::Raw => println!("{}", answer["current_version"]),
        Format::Table => print_metadata(&answer),
    }
    Ok(())
}

/// The settings as KEY/VALUE rows, then one row per version.
fn print_metadata(metadata: &Value) {
    let mut settings = Table::new(&["KEY", "VALUE"]);
    for key in [
        "namespace",
        "name",
        "current_version",
        "oldest_version",
        "max_versions",
        "effective_max_versions",
        "cas_required",
        "created_at",
        "updated_at",
    ] {
        settings.text_row(vec![key.to_owned(), cell(&metadata[key])]);
    }
    for (key, value) in metadata["custom_metadata"]
        .as_object()
        .into_iter()
        .flatten()
    {
        settings.text_row(vec![format!("custom_metadata.{key}"), cell(value)]);
    }
    settings.print();
    println!();
    let mut versions = Table::new(&["VERSION", "CREATED", "DELETED", "DESTROYED"]);
    for version in metadata["versions"].as_array().into_iter().flatten() {
        versions.row([
            &version["version"],
            &version["created_at"],
            &version["deleted_at"],
            &version["destroyed_at"],
        ]);
    }
    versions.print();
}

fn custom_entries(entries: &[String]) -> Result<BTreeMap<&str, &str>, Failure> {
    entries
        .iter()
        .map(|entry| {
            entry
                .split_once('=')
                .ok_or_else(|| Failure::usage(format!("--custom takes KEY=VALUE, not `{entry}`")))
        })
        .collect()
}
