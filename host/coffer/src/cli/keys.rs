//! `coffer keys …`, `coffer kek …` and `coffer reencrypt`: key management
//! on a running server over the HTTP API.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::client::{Connection, Failure, each_page, encode_path, exit, request};
use super::output::{Format, Table, cell, print_json};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Namespaces with data keys, their Active key and retired keys.
    List,
    /// A namespace's data keys with what each protects.
    Show {
        namespace: String,
        /// Also list the secret versions under each key (up to 100 each).
        #[arg(long)]
        secrets: bool,
    },
    /// Make a new Active key; the old one becomes Deprecated.
    Rotate {
        namespace: String,
        /// AES256_GCM (default) or AES128_GCM.
        #[arg(long)]
        algorithm: Option<String>,
    },
    /// Bring an Inactive key back to Deprecated.
    Deprecate { namespace: String, id: u32 },
    /// Retire a Deprecated key that nothing uses any more.
    Inactivate { namespace: String, id: u32 },
    /// Crypto-shred a retired key (refused while secrets use it).
    Destroy {
        namespace: String,
        id: u32,
        /// Destroy even though secret versions use it: they become
        /// unreadable for good, and are listed.
        #[arg(long)]
        force: bool,
    },
    /// Print a data key wrapped under a transport keyset (Tink JSON).
    Export {
        namespace: String,
        id: u32,
        /// The transport keyset file both instances hold.
        #[arg(long)]
        transport: PathBuf,
    },
    /// Import a key printed by `export`; it arrives Deprecated.
    Import {
        namespace: String,
        /// The file `export` wrote ("-" for stdin).
        file: PathBuf,
        #[arg(long)]
        transport: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum KekCommand {
    /// The keyset's keys and how many data keys each still wraps.
    Status,
    /// Add a key to the keyset, promote it, re-wrap every data key; the
    /// transport key rotates too.
    Rotate,
    /// Re-wrap every data key not yet under the primary KEK.
    Rewrap,
    /// Read the keyset again after tinkey or Tink changed it.
    Reload,
}

pub async fn run_keys(connection: Connection, command: KeysCommand) -> ExitCode {
    exit(keys(&connection, command).await)
}

pub async fn run_kek(connection: Connection, command: KekCommand) -> ExitCode {
    exit(kek(&connection, command).await)
}

pub async fn run_reencrypt(
    connection: Connection,
    namespace: Option<String>,
    full: bool,
    restart: bool,
    batch: u32,
) -> ExitCode {
    exit(reencrypt(&connection, namespace, full, restart, batch).await)
}

fn base(connection: &Connection) -> &str {
    connection.addr.trim_end_matches('/')
}

fn read_file(path: &PathBuf) -> Result<Zeroizing<String>, Failure> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Failure::other(format!("cannot read stdin: {e}")))?;
        text
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?
    };
    Ok(Zeroizing::new(text))
}

fn body(value: &Value) -> Option<Zeroizing<String>> {
    Some(Zeroizing::new(value.to_string()))
}

async fn keys(connection: &Connection, command: KeysCommand) -> Result<(), Failure> {
    let base = base(connection);
    let ns_url = |ns: &str| format!("{base}/v1/keys/{}", encode_path(ns));
    match command {
        KeysCommand::List => {
            let mut namespaces: Vec<Value> = Vec::new();
            each_page(namespaces_url(base), |answer| {
                namespaces.extend(
                    answer["namespaces"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .cloned(),
                );
            })
            .await?;
            match connection.format_or(Format::Table) {
                Format::Json => print_json(&json!({ "namespaces": namespaces })),
                Format::Raw => {
                    for ns in &namespaces {
                        println!("{}", ns["namespace"].as_str().unwrap_or_default());
                    }
                }
                Format::Table => {
                    let mut table = Table::new(&["NAMESPACE", "ACTIVE", "KEYS", "RETIRED"]);
                    for ns in &namespaces {
                        table.row([
                            &ns["namespace"],
                            &ns["active_key"],
                            &ns["keys"],
                            &ns["retired_keys"],
                        ]);
                    }
                    table.print();
                }
            }
        }
        KeysCommand::Show { namespace, secrets } => {
            let answer = request(Method::GET, &ns_url(&namespace), None).await?;
            match connection.format_or(Format::Table) {
                Format::Json => print_json(&answer),
                Format::Raw => {
                    for key in answer["keys"].as_array().into_iter().flatten() {
                        println!("{}", key["id"]);
                    }
                }
                Format::Table => print_namespace_keys(&namespace, &answer, secrets),
            }
        }
        KeysCommand::Rotate {
            namespace,
            algorithm,
        } => {
            let url = format!("{}/rotate", ns_url(&namespace));
            let answer =
                request(Method::POST, &url, body(&json!({ "algorithm": algorithm }))).await?;
            println!(
                "namespace {namespace}: data key {} is active; the previous key is deprecated",
                answer["id"]
            );
        }
        KeysCommand::Deprecate { namespace, id } => {
            key_action(connection, &namespace, id, "deprecate", json!({})).await?;
        }
        KeysCommand::Inactivate { namespace, id } => {
            key_action(connection, &namespace, id, "inactivate", json!({})).await?;
        }
        KeysCommand::Destroy {
            namespace,
            id,
            force,
        } => {
            let answer = key_action(
                connection,
                &namespace,
                id,
                "destroy",
                json!({ "force": force }),
            )
            .await?;
            let lost = &answer["unreadable"];
            if lost["versions"].as_u64().unwrap_or(0) > 0 {
                eprintln!(
                    "{} secret version(s) are now unreadable for good:",
                    lost["versions"]
                );
                for name in lost["secrets"].as_array().into_iter().flatten() {
                    eprintln!("  {namespace}/{}", name.as_str().unwrap_or_default());
                }
                if lost["truncated"].as_bool().unwrap_or(false) {
                    eprintln!("  …");
                }
            }
        }
        KeysCommand::Export {
            namespace,
            id,
            transport,
        } => {
            let transport = read_file(&transport)?;
            let payload = Zeroizing::new(json!({ "transport": transport.as_str() }).to_string());
            let url = format!("{}/{id}/export", ns_url(&namespace));
            let answer = request(Method::POST, &url, Some(payload)).await?;
            print_json(&answer);
        }
        KeysCommand::Import {
            namespace,
            file,
            transport,
        } => {
            let transport = read_file(&transport)?;
            let exported: Value = serde_json::from_str(&read_file(&file)?)
                .map_err(|e| Failure::usage(format!("{}: not JSON: {e}", file.display())))?;
            let payload = Zeroizing::new(
                json!({ "transport": transport.as_str(), "key": exported }).to_string(),
            );
            let url = format!("{}/import", ns_url(&namespace));
            let answer = request(Method::POST, &url, Some(payload)).await?;
            println!(
                "namespace {namespace}: imported data key {} as {}",
                answer["id"],
                answer["status"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// A namespace's keys, one row each (and, with `secrets`, the names each
/// protects under it).
fn print_namespace_keys(namespace: &str, answer: &Value, secrets: bool) {
    println!(
        "namespace {}: {} secrets, {} versions",
        namespace, answer["secrets"], answer["versions"]
    );
    if answer["unreadable_records"].as_u64().unwrap_or(0) > 0 {
        println!(
            "{} secret record(s) could not be decoded (the server log names them); \
             usage below leaves them out",
            answer["unreadable_records"]
        );
    }
    println!();
    let mut table = Table::new(&[
        "ID",
        "STATUS",
        "ALGORITHM",
        "VERSION",
        "KEK",
        "USAGE",
        "UPDATED",
    ]);
    for key in answer["keys"].as_array().into_iter().flatten() {
        table.row([
            &key["id"],
            &key["status"],
            &key["algorithm"],
            &key["version"],
            &key["kek_id"],
            &key["usage"]["versions"],
            &key["updated_at"],
        ]);
    }
    table.print();
    if secrets {
        for key in answer["keys"].as_array().into_iter().flatten() {
            let names = key["usage"]["secrets"].as_array().into_iter().flatten();
            println!("\nkey {}:", key["id"]);
            let mut any = false;
            for name in names {
                println!("  {}", cell(name));
                any = true;
            }
            if !any {
                println!("  (no secret versions)");
            }
        }
    }
}

async fn key_action(
    connection: &Connection,
    namespace: &str,
    id: u32,
    action: &str,
    payload: Value,
) -> Result<Value, Failure> {
    let url = format!(
        "{}/v1/keys/{}/{id}/{action}",
        base(connection),
        encode_path(namespace)
    );
    let answer = request(Method::POST, &url, body(&payload)).await?;
    let key = answer.get("key").unwrap_or(&answer);
    println!(
        "namespace {namespace}: data key {id} is {}",
        key["status"].as_str().unwrap_or_default()
    );
    Ok(answer)
}

async fn kek(connection: &Connection, command: KekCommand) -> Result<(), Failure> {
    let base = base(connection);
    let (method, url) = match command {
        KekCommand::Status => (Method::GET, format!("{base}/v1/sys/kek")),
        KekCommand::Rotate => (Method::POST, format!("{base}/v1/sys/kek/rotate")),
        KekCommand::Rewrap => (Method::POST, format!("{base}/v1/sys/kek/rewrap")),
        KekCommand::Reload => (Method::POST, format!("{base}/v1/sys/kek/reload")),
    };
    let answer = request(method, &url, None).await?;
    if answer.get("keys").is_some() {
        match connection.format_or(Format::Table) {
            Format::Json => print_json(&answer),
            Format::Raw => println!("{}", answer["primary_key_id"]),
            Format::Table => print_kek_status(&answer),
        }
    } else {
        println!(
            "primary KEK {}: re-wrapped {} data key(s) in {} namespace(s) and {} system key(s) in {} ms",
            answer["primary_key_id"],
            answer["data_keys_rewrapped"],
            answer["namespaces"],
            answer["system_keys_rewrapped"],
            answer["elapsed_ms"]
        );
        if let Some(kid) = answer["transport_key_id"].as_str() {
            println!("transport key {kid} is now current");
        }
    }
    Ok(())
}

fn print_kek_status(status: &Value) {
    match status["kms_key"].as_str() {
        // A KMS root's keys are the KMS key's versions.
        Some(kms_key) => println!("root: KMS key {kms_key} (IDs are its versions)"),
        None => println!("root: the keyring's keyset"),
    }
    println!(
        "primary {}; {} namespace(s); {} key(s) waiting for re-wrap",
        status["primary_key_id"], status["namespaces"], status["pending_rewrap"]
    );
    println!();
    let mut table = Table::new(&[
        "ID",
        "STATUS",
        "ALGORITHM",
        "PRIMARY",
        "DATA KEYS",
        "SYSTEM KEYS",
    ]);
    for key in status["keys"].as_array().into_iter().flatten() {
        table.row([
            &key["id"],
            &key["status"],
            &key["algorithm"],
            &key["primary"],
            &key["data_keys"],
            &key["system_keys"],
        ]);
    }
    table.print();
}

async fn reencrypt(
    connection: &Connection,
    namespace: Option<String>,
    full: bool,
    restart: bool,
    batch: u32,
) -> Result<(), Failure> {
    let base = base(connection);
    let namespaces = match namespace {
        Some(ns) => vec![ns],
        None => all_namespaces(base).await?,
    };
    let mut failed = 0;
    for namespace in namespaces {
        let ns_url = format!("{base}/v1/keys/{}", encode_path(&namespace));
        let shown = request(Method::GET, &ns_url, None).await?;
        let total = shown["secrets"].as_u64().unwrap_or(0);
        let mut first = true;
        loop {
            let payload = json!({ "full": full, "limit": batch, "restart": restart && first });
            first = false;
            let answer =
                request(Method::POST, &format!("{ns_url}/reencrypt"), body(&payload)).await?;
            let done_records = answer["total"]["records"].as_u64().unwrap_or(0);
            progress(&namespace, done_records, total);
            if answer["done"].as_bool().unwrap_or(true) {
                eprintln!();
                println!(
                    "namespace {namespace}: {} secret(s), {} version(s) moved onto the active key, {} unreadable",
                    answer["total"]["records"],
                    answer["total"]["versions"],
                    answer["total"]["unreadable"]
                );
                failed += answer["total"]["failed"].as_u64().unwrap_or(0);
                break;
            }
        }
    }
    if failed > 0 {
        return Err(Failure::other(format!(
            "{failed} secret(s) could not be moved (the server log names them): run again"
        )));
    }
    Ok(())
}

async fn all_namespaces(base: &str) -> Result<Vec<String>, Failure> {
    let mut out = Vec::new();
    each_page(namespaces_url(base), |answer| {
        for ns in answer["namespaces"].as_array().into_iter().flatten() {
            out.extend(ns["namespace"].as_str().map(str::to_owned));
        }
    })
    .await?;
    Ok(out)
}

/// The address of a page of the namespace listing.
fn namespaces_url(base: &str) -> impl Fn(Option<&str>) -> Result<String, Failure> + '_ {
    move |after| {
        Ok(match after {
            Some(after) => format!("{base}/v1/keys?limit=1000&after={}", encode_path(after)),
            None => format!("{base}/v1/keys?limit=1000"),
        })
    }
}

/// A one-line progress bar on stderr.
fn progress(namespace: &str, done: u64, total: u64) {
    const WIDTH: u64 = 30;
    let total = total.max(done).max(1);
    let filled = done * WIDTH / total;
    let bar: String = (0..WIDTH)
        .map(|i| if i < filled { '#' } else { '.' })
        .collect();
    let mut err = std::io::stderr();
    let _ = write!(err, "\r{namespace} [{bar}] {done}/{total} secrets");
    let _ = err.flush();
}
