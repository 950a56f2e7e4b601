//! `coffer token create|list|revoke`: manage tokens on a running server.

use std::process::ExitCode;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::client::{Connection, Failure, encode_path, exit, request};
use super::output::{Format, Table, cell, print_json};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once and never stored.
    Create {
        /// A display name (shown in listings and, later, in the audit log).
        #[arg(long)]
        name: String,
        /// A built-in role: admin (everything) or operator (keys, audit, sys; no secrets).
        #[arg(long)]
        role: Option<String>,
        /// A rule NAMESPACE-PATTERN:CAPABILITIES, e.g. `payments-*:read,list` (repeatable).
        #[arg(long = "allow")]
        rules: Vec<String>,
        /// An administrative capability: keys:read, keys:manage, audit:read, tokens:manage, sys (repeatable).
        #[arg(long = "admin")]
        admin: Vec<String>,
        /// Lifetime in seconds; tokens do not expire otherwise.
        #[arg(long)]
        ttl: Option<u64>,
        /// Values this token writes and reads must cross the wire sealed
        /// (plaintext writes and reads, and the Vault-compatible API, are refused).
        #[arg(long)]
        require_sealed: bool,
    },
    /// List tokens (ids, names, policies, expiry; never the tokens).
    List,
    /// Revoke a token by its id.
    Revoke { id: String },
}

pub async fn run(connection: Connection, command: TokenCommand) -> ExitCode {
    exit(execute(&connection, command).await)
}

async fn execute(connection: &Connection, command: TokenCommand) -> Result<(), Failure> {
    let url = format!("{}/v1/auth/tokens", connection.addr.trim_end_matches('/'));
    match command {
        TokenCommand::Create {
            name,
            role,
            rules,
            admin,
            ttl,
            require_sealed,
        } => {
            let rules = rules
                .iter()
                .map(|rule| rule.parse::<crate::auth::Rule>().map_err(Failure::usage))
                .collect::<Result<Vec<_>, _>>()?;
            let body = json!({
                "name": name,
                "role": role,
                "rules": rules,
                "admin": admin,
                "require_sealed": require_sealed,
                "ttl_seconds": ttl,
            });
            let answer =
                request(Method::POST, &url, Some(Zeroizing::new(body.to_string()))).await?;
            let token = answer["token"]
                .as_str()
                .ok_or_else(|| Failure::other("the server answered without a token"))?;
            eprintln!(
                "token {} ({name}) created; it is shown once:",
                answer["id"].as_str().unwrap_or_default()
            );
            println!("{token}");
        }
        TokenCommand::List => {
            let answer = request(Method::GET, &url, None).await?;
            let tokens = answer["tokens"].as_array().into_iter().flatten();
            match connection.format_or(Format::Table) {
                Format::Json => print_json(&answer),
                Format::Raw => {
                    for token in tokens {
                        println!("{}", token["id"].as_str().unwrap_or_default());
                    }
                }
                Format::Table => {
                    let mut table =
                        Table::new(&["ID", "NAME", "CREATED", "EXPIRES", "CREATED BY", "POLICY"]);
                    for token in tokens {
                        let expires = match &token["expires_at"] {
                            Value::String(at) => at.clone(),
                            _ => "never".to_owned(),
                        };
                        table.text_row(vec![
                            cell(&token["id"]),
                            cell(&token["name"]),
                            cell(&token["created_at"]),
                            expires,
                            cell(&token["created_by"]),
                            policy_summary(&token["policy"]),
                        ]);
                    }
                    table.print();
                }
            }
        }
        TokenCommand::Revoke { id } => {
            request(Method::DELETE, &format!("{url}/{}", encode_path(&id)), None).await?;
            eprintln!("token {id} revoked");
        }
    }
    Ok(())
}

/// A policy in the `--allow`, `--admin` and `--require-sealed` terms it
/// was made with: `payments-*:read,list admin:sys sealed-only`.
fn policy_summary(policy: &Value) -> String {
    let words = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .into_iter()
            .flatten()
            .map(|word| word.as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let mut parts: Vec<String> = policy["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|rule| {
            format!(
                "{}:{}",
                rule["namespaces"].as_str().unwrap_or_default(),
                words(&rule["capabilities"]).join(",")
            )
        })
        .collect();
    let admin = words(&policy["admin"]);
    if !admin.is_empty() {
        parts.push(format!("admin:{}", admin.join(",")));
    }
    if policy["require_sealed"].as_bool() == Some(true) {
        parts.push("sealed-only".to_owned());
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(" ")
    }
}
