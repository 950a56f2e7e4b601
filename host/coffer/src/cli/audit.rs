//! `coffer audit verify|hash`: check an audit log, and ask a server what
//! HMAC a sensitive string appears as.
//!
//! The chain is keyed with the audit key, so checking it needs that key:
//! `verify` asks the running server to check its own log, or, given the
//! server's configuration (`--config`), opens its storage and keyring
//! itself and checks the files — the way to inspect a log while the server
//! is down.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;
use zeroize::Zeroizing;

use super::client::{Connection, Failure, exit, request};
use crate::audit::verify::{Break, Report, log_files};
use crate::service::Foundation;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Prove a log intact, or name its first bad record (exit 1). Asks the
    /// server unless --config is given.
    Verify {
        /// Check without a server, with the keys of this configuration.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Log files to check, oldest first (default: the configured log
        /// and its rotated files). Only with --config.
        files: Vec<PathBuf>,
    },
    /// Print the HMAC a secret name appears as in audit records (asks the server).
    Hash { value: String },
}

pub async fn run(connection: Connection, command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify {
            config: Some(config),
            files,
        } => verify_offline(&config, files).await,
        AuditCommand::Verify {
            config: None,
            files,
        } if files.is_empty() => verify_on_server(&connection).await,
        AuditCommand::Verify { .. } => {
            eprintln!(
                "coffer: checking given files needs the audit key: pass --config with the server's configuration"
            );
            ExitCode::from(2)
        }
        AuditCommand::Hash { value } => exit(hash(&connection, &value).await),
    }
}

async fn verify_on_server(connection: &Connection) -> ExitCode {
    let url = format!("{}/v1/audit/verify", connection.addr.trim_end_matches('/'));
    let answer = match request(Method::GET, &url, None).await {
        Ok(answer) => answer,
        Err(failure) => return exit(Err(failure)),
    };
    if answer["intact"].as_bool() == Some(true) {
        println!(
            "{} records in {} file(s): intact{}",
            answer["records"],
            answer["files"].as_array().map_or(0, Vec::len),
            if answer["torn_tail"].is_null() {
                ""
            } else {
                " (the last line is torn: a crash mid-write)"
            }
        );
        ExitCode::SUCCESS
    } else {
        let broken = &answer["break"];
        println!(
            "TAMPERED: {} line {}: {}",
            broken["file"].as_str().unwrap_or_default(),
            broken["line"],
            broken["reason"].as_str().unwrap_or_default()
        );
        ExitCode::FAILURE
    }
}

async fn verify_offline(config_file: &std::path::Path, files: Vec<PathBuf>) -> ExitCode {
    let config = match super::load_config(Some(config_file), None) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let files = if files.is_empty() {
        config
            .audit_settings()
            .file
            .as_deref()
            .map(log_files)
            .unwrap_or_default()
    } else {
        files
    };
    if files.is_empty() {
        eprintln!("coffer: no audit log found");
        return ExitCode::from(2);
    }
    let foundation = match Foundation::open(&config).await {
        Ok(foundation) => foundation,
        Err(error) => {
            eprintln!("coffer: cannot open the engine's keys: {error}");
            return ExitCode::FAILURE;
        }
    };
    let count = files.len();
    match crate::audit::verify_offline(
        files,
        &foundation.store,
        &foundation.audit_key,
        &config.node_name(),
    )
    .await
    {
        Ok(outcome) => print_outcome(outcome, count),
        Err(error) => {
            eprintln!("coffer: cannot verify: {error}");
            ExitCode::FAILURE
        }
    }
}

fn print_outcome(outcome: Result<Report, Break>, files: usize) -> ExitCode {
    match outcome {
        Ok(report) => {
            let torn = if report.torn_tail.is_some() {
                " (the last line is torn: a crash mid-write)"
            } else {
                ""
            };
            println!(
                "{} records in {files} file(s): intact{torn}",
                report.records
            );
            ExitCode::SUCCESS
        }
        Err(broken) => {
            println!("TAMPERED: {broken}");
            ExitCode::FAILURE
        }
    }
}

async fn hash(connection: &Connection, value: &str) -> Result<(), Failure> {
    let url = format!("{}/v1/audit/hash", connection.addr.trim_end_matches('/'));
    let body = Zeroizing::new(json!({ "value": value }).to_string());
    let answer = request(Method::POST, &url, Some(body)).await?;
    println!("{}", answer["hash"].as_str().unwrap_or_default());
    Ok(())
}
