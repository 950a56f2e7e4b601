//! `coffer audit verify|hash`: check an audit log offline, and ask a server
//! what HMAC a sensitive string appears as.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;
use zeroize::Zeroizing;

use super::client::{Connection, Failure, exit, request};
use crate::audit::verify::{log_files, verify};
use crate::config::default_data_dir;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Prove a log intact, or name its first bad record (exit 1). With no
    /// files, checks the data directory's log and its rotated files, in order.
    Verify {
        files: Vec<PathBuf>,
        /// The data directory whose `audit/audit.log` to check.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print the HMAC a secret name appears as in audit records (asks the server).
    Hash { value: String },
}

pub async fn run(connection: Connection, command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify { files, data_dir } => verify_files(files, data_dir),
        AuditCommand::Hash { value } => exit(hash(&connection, &value).await),
    }
}

fn verify_files(files: Vec<PathBuf>, data_dir: Option<PathBuf>) -> ExitCode {
    let files = if files.is_empty() {
        let current = data_dir
            .unwrap_or_else(default_data_dir)
            .join("audit")
            .join("audit.log");
        log_files(&current)
    } else {
        files
    };
    if files.is_empty() {
        eprintln!("coffer: no audit log found");
        return ExitCode::from(2);
    }
    match verify(&files) {
        Ok(count) => {
            println!("{count} records in {} file(s): intact", files.len());
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
