//! `coffer migrate --to SECTION`: has the running server move every record
//! to another configured storage and switch to it (see
//! `plugins::migrate`), showing its progress until it is done.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::client::{Connection, Failure, exit, request};

/// How often the progress is asked for.
const POLL: Duration = Duration::from_millis(250);

pub async fn run(connection: Connection, to: String) -> ExitCode {
    exit(migrate(&connection, &to).await)
}

async fn migrate(connection: &Connection, to: &str) -> Result<(), Failure> {
    let url = format!("{}/v1/sys/migrate", connection.addr.trim_end_matches('/'));
    let body = Zeroizing::new(json!({ "to": to }).to_string());
    request(Method::POST, &url, Some(body)).await?;
    loop {
        tokio::time::sleep(POLL).await;
        let status = request(Method::GET, &url, None).await?;
        draw(&status);
        match status["phase"].as_str().unwrap_or_default() {
            "done" => {
                eprintln!();
                report(&status, to);
                return Ok(());
            }
            "failed" => {
                eprintln!();
                return Err(Failure::other(format!(
                    "migration failed: {}; the server keeps its storage, and running this \
                     again resumes the copy",
                    status["error"].as_str().unwrap_or("no reason given")
                )));
            }
            _ => {}
        }
    }
}

/// One progress line, redrawn in place.
fn draw(status: &Value) {
    const WIDTH: u64 = 30;
    let (copied, total) = (
        status["copied"].as_u64().unwrap_or(0),
        status["total"].as_u64().unwrap_or(0).max(1),
    );
    let filled = (copied.min(total) * WIDTH / total) as usize;
    let mut stderr = std::io::stderr();
    let _ = write!(
        stderr,
        "\r{:<9} [{}{}] {copied}/{total} records",
        status["phase"].as_str().unwrap_or_default(),
        "#".repeat(filled),
        " ".repeat(WIDTH as usize - filled),
    );
    let _ = stderr.flush();
}

fn report(status: &Value, to: &str) {
    if status["resumed"] == json!(true) {
        println!("resumed a copy an earlier run left unfinished");
    }
    let elapsed = status["elapsed_ms"].as_u64().unwrap_or(0);
    let records = status["records"].as_u64().unwrap_or(0);
    println!(
        "moved {records} records in {elapsed} ms ({} records/s); {} written meanwhile were copied \
         again while writes waited {} ms at the switch",
        records * 1000 / elapsed.max(1),
        status["rewritten"],
        status["freeze_ms"]
    );
    println!(
        "both stores hold the same records: sha256 {}",
        status["digest"].as_str().unwrap_or_default()
    );
    println!(
        "the server now runs on [{to}]: make that section [storage] in coffer.toml before the \
         next restart (the old store now refuses to start)"
    );
}
