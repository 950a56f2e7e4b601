//! `coffer secret put|get|list|delete` (and, through [`super::lifecycle`],
//! `undelete|destroy|metadata`): a small client of the HTTP API, and the
//! request plumbing the other client commands share.
//!
//! The server address comes from `--addr` / `COFFER_ADDR`, the token from
//! `COFFER_TOKEN` or else the root-token file in the default data dir; an
//! HTTPS server is verified against `COFFER_CACERT` (a PEM file) when set,
//! else against the system's roots, and a server asking for mutual TLS
//! gets `COFFER_CLIENT_CERT` and `COFFER_CLIENT_KEY`.

use std::io::Read;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::output::{Format, Table, cell, print_json};
use super::sealed::{OneTimeKey, ServerKeys};
use crate::config::default_data_dir;
use coffer_crypto::sealing::{SEAL_TO_HEADER, secret_path};

#[derive(Args)]
pub struct Connection {
    /// The server's base URL.
    #[arg(
        long,
        env = "COFFER_ADDR",
        default_value = "http://127.0.0.1:8270",
        global = true
    )]
    pub(super) addr: String,
    /// How reads print: table, json or raw (each command has its default).
    #[arg(long, env = "COFFER_FORMAT", value_enum, global = true)]
    pub(super) format: Option<Format>,
}

impl Connection {
    /// The format asked for, or the command's own default.
    pub(super) fn format_or(&self, default: Format) -> Format {
        self.format.unwrap_or(default)
    }
}

#[derive(Subcommand)]
pub enum SecretCommand {
    /// Store a new version (the value is read from stdin when not given).
    Put {
        namespace: String,
        name: String,
        /// The value; prefer stdin, as arguments show in process listings.
        value: Option<String>,
        /// Write only if the latest version is this one (0: only if new).
        #[arg(long)]
        cas: Option<u32>,
        /// Send the value in plaintext (inside TLS only), not sealed to the
        /// server's transport key.
        #[arg(long)]
        no_seal: bool,
    },
    /// Print a secret's value (latest, or --version); raw by default.
    Get {
        namespace: String,
        name: String,
        #[arg(long)]
        version: Option<u32>,
        /// The same as --format json.
        #[arg(long, hide = true)]
        json: bool,
        /// Take the value in plaintext (inside TLS only), not sealed to a
        /// one-time key of this command's.
        #[arg(long)]
        no_seal: bool,
    },
    /// List names in a namespace, one per line by default.
    List {
        namespace: String,
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Soft-delete the latest version.
    Delete { namespace: String, name: String },
    /// Bring soft-deleted versions back.
    Undelete {
        namespace: String,
        name: String,
        /// Versions to undelete, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        versions: Vec<u32>,
    },
    /// Throw versions' keys and ciphertext away, for good (needs `destroy`).
    Destroy {
        namespace: String,
        name: String,
        /// Versions to destroy, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        versions: Vec<u32>,
    },
    /// Show a secret's versions and metadata, change the metadata, or
    /// delete the secret with every version (--delete, needs `destroy`).
    Metadata {
        namespace: String,
        name: String,
        #[command(flatten)]
        change: super::lifecycle::MetadataArgs,
    },
}

pub async fn run(connection: Connection, command: SecretCommand) -> ExitCode {
    exit(execute(&connection, command).await)
}

/// The process exit for a client command's outcome.
pub(super) fn exit(outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("coffer: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

pub(super) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    pub(super) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    pub(super) fn other(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

impl Failure {
    /// The same failure (and exit code), told with what was being done.
    pub(super) fn while_doing(self, what: impl FnOnce(&str) -> String) -> Failure {
        Failure {
            code: self.code,
            message: what(&self.message),
        }
    }
}

fn token() -> Result<Zeroizing<String>, Failure> {
    if let Ok(token) = std::env::var("COFFER_TOKEN") {
        return Ok(Zeroizing::new(token));
    }
    let file = default_data_dir().join("root-token");
    std::fs::read_to_string(&file)
        .map(|t| Zeroizing::new(t.trim().to_owned()))
        .map_err(|_| {
            Failure::usage(format!(
                "no token: set COFFER_TOKEN (or run the server once so {} exists)",
                file.display()
            ))
        })
}

/// Percent-encodes one path segment, keeping `/` inside secret names.
pub(super) fn encode_path(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

async fn execute(connection: &Connection, command: SecretCommand) -> Result<(), Failure> {
    let base = connection.addr.trim_end_matches('/');
    match command {
        SecretCommand::Put {
            namespace,
            name,
            value,
            cas,
            no_seal,
        } => {
            let value = match value {
                Some(v) if v != "-" => Zeroizing::new(v),
                _ => {
                    let mut text = Zeroizing::new(String::new());
                    std::io::stdin().read_to_string(&mut text).map_err(|e| {
                        Failure::other(format!("cannot read the value from stdin: {e}"))
                    })?;
                    if text.ends_with('\n') {
                        text.pop();
                    }
                    text
                }
            };
            let url = format!(
                "{base}/v1/secrets/{}/{}",
                encode_path(&namespace),
                encode_path(&name)
            );
            let mut body =
                Zeroizing::new(json!({ "value": value.as_str(), "cas": cas }).to_string());
            if !no_seal {
                let keys = ServerKeys::fetch(base).await?;
                body = keys.seal("PUT", &secret_path(&namespace, &name), &body)?;
            }
            let answer = request(Method::PUT, &url, Some(body)).await?;
            println!("{}/{} version {}", namespace, name, answer["version"]);
        }
        SecretCommand::Get {
            namespace,
            name,
            version,
            json,
            no_seal,
        } => {
            let mut url = format!(
                "{base}/v1/secrets/{}/{}",
                encode_path(&namespace),
                encode_path(&name)
            );
            if let Some(version) = version {
                url.push_str(&format!("?version={version}"));
            }
            let answer = if no_seal {
                request(Method::GET, &url, None).await?
            } else {
                let keys = ServerKeys::fetch(base).await?;
                let one_time = OneTimeKey::new();
                let header = [(SEAL_TO_HEADER, one_time.header())];
                let sealed = request_with(Method::GET, &url, None, &header).await?;
                one_time.open(&keys, &secret_path(&namespace, &name), sealed)?
            };
            let format = if json {
                Format::Json
            } else {
                connection.format_or(Format::Raw)
            };
            match format {
                Format::Raw => println!("{}", answer["value"].as_str().unwrap_or_default()),
                Format::Json => print_json(&answer),
                Format::Table => {
                    let mut table = Table::new(&["KEY", "VALUE"]);
                    for key in [
                        "namespace",
                        "name",
                        "version",
                        "created_at",
                        "format",
                        "value",
                    ] {
                        if let Some(field) = answer.get(key) {
                            table.text_row(vec![key.to_owned(), cell(field)]);
                        }
                    }
                    table.print();
                }
            }
        }
        SecretCommand::List { namespace, prefix } => {
            let page_url = |after: Option<&str>| {
                let mut url =
                    reqwest::Url::parse(&format!("{base}/v1/secrets/{}", encode_path(&namespace)))
                        .map_err(|e| Failure::usage(format!("bad address: {e}")))?;
                url.query_pairs_mut()
                    .append_pair("prefix", &prefix)
                    .append_pair("limit", "1000");
                if let Some(after) = after {
                    url.query_pairs_mut().append_pair("after", after);
                }
                Ok(url.to_string())
            };
            let mut names: Vec<Value> = Vec::new();
            each_page(page_url, |answer| {
                names.extend(answer["names"].as_array().into_iter().flatten().cloned());
            })
            .await?;
            match connection.format_or(Format::Raw) {
                Format::Raw => {
                    for name in &names {
                        println!("{}", name.as_str().unwrap_or_default());
                    }
                }
                Format::Json => print_json(&json!({ "names": names })),
                Format::Table => {
                    let mut table = Table::new(&["NAME"]);
                    for name in &names {
                        table.row([name]);
                    }
                    table.print();
                }
            }
        }
        SecretCommand::Delete { namespace, name } => {
            let url = format!(
                "{base}/v1/secrets/{}/{}",
                encode_path(&namespace),
                encode_path(&name)
            );
            request(Method::DELETE, &url, None).await?;
        }
        SecretCommand::Undelete {
            namespace,
            name,
            versions,
        } => super::lifecycle::versions(base, "undelete", &namespace, &name, &versions).await?,
        SecretCommand::Destroy {
            namespace,
            name,
            versions,
        } => super::lifecycle::versions(base, "destroy", &namespace, &name, &versions).await?,
        SecretCommand::Metadata {
            namespace,
            name,
            change,
        } => {
            let format = connection.format_or(Format::Table);
            super::lifecycle::metadata(base, &namespace, &name, change, format).await?
        }
    }
    Ok(())
}

/// Reads every page of a listing, `page_url(after)` giving each page's
/// address, until the server answers no `next`. A `next` that does not
/// move forward ends it with an error instead of looping for ever.
pub(super) async fn each_page(
    page_url: impl Fn(Option<&str>) -> Result<String, Failure>,
    mut visit: impl FnMut(&Value),
) -> Result<(), Failure> {
    let mut after: Option<String> = None;
    loop {
        let answer = request(Method::GET, &page_url(after.as_deref())?, None).await?;
        visit(&answer);
        match answer["next"].as_str() {
            None => return Ok(()),
            Some(next) if after.as_deref().is_some_and(|after| next <= after) => {
                return Err(Failure::other(
                    "the server's listing does not move forward (its storage plugin misbehaves)",
                ));
            }
            Some(next) => after = Some(next.to_owned()),
        }
    }
}

/// The HTTP client, trusting `COFFER_CACERT` when it is set.
fn http_client() -> Result<reqwest::Client, Failure> {
    let mut builder = reqwest::Client::builder();
    if let Some(file) = std::env::var_os("COFFER_CACERT") {
        let file = std::path::PathBuf::from(file);
        let pem = std::fs::read(&file).map_err(|e| {
            Failure::usage(format!(
                "COFFER_CACERT: cannot read {}: {e}",
                file.display()
            ))
        })?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            Failure::usage(format!(
                "COFFER_CACERT: {} holds no PEM certificate: {e}",
                file.display()
            ))
        })?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if let Some(identity) = client_identity()? {
        builder = builder.identity(identity);
    }
    builder
        .build()
        .map_err(|e| Failure::other(format!("cannot set up the HTTP client: {e}")))
}

/// The certificate a server asking for mutual TLS gets:
/// `COFFER_CLIENT_CERT` (PEM, the certificate and its chain) and
/// `COFFER_CLIENT_KEY` (PEM, its private key), both or neither.
fn client_identity() -> Result<Option<reqwest::Identity>, Failure> {
    let cert = std::env::var_os("COFFER_CLIENT_CERT");
    let key = std::env::var_os("COFFER_CLIENT_KEY");
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (
            std::path::PathBuf::from(cert),
            std::path::PathBuf::from(key),
        ),
        _ => {
            return Err(Failure::usage(
                "set both COFFER_CLIENT_CERT and COFFER_CLIENT_KEY, or neither",
            ));
        }
    };
    let read = |variable: &str, file: &std::path::Path| {
        std::fs::read(file)
            .map(Zeroizing::new)
            .map_err(|e| Failure::usage(format!("{variable}: cannot read {}: {e}", file.display())))
    };
    let mut pem = read("COFFER_CLIENT_CERT", &cert)?;
    pem.extend_from_slice(b"\n");
    pem.extend_from_slice(&read("COFFER_CLIENT_KEY", &key)?);
    reqwest::Identity::from_pem(&pem).map(Some).map_err(|e| {
        Failure::usage(format!(
            "COFFER_CLIENT_CERT and COFFER_CLIENT_KEY do not make a client identity: {e}"
        ))
    })
}

pub(super) async fn request(
    method: Method,
    url: &str,
    body: Option<Zeroizing<String>>,
) -> Result<Value, Failure> {
    request_with(method, url, body, &[]).await
}

/// [`request`] with extra headers.
pub(super) async fn request_with(
    method: Method,
    url: &str,
    body: Option<Zeroizing<String>>,
    headers: &[(&str, String)],
) -> Result<Value, Failure> {
    let token = token()?;
    let client = http_client()?;
    let mut builder = client.request(method, url).bearer_auth(token.as_str());
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    if let Some(body) = body {
        builder = builder
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.as_str().to_owned());
    }
    let response = builder
        .send()
        .await
        .map_err(|e| Failure::other(format!("cannot reach {url}: {e}")))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| Failure::other(format!("cannot read the answer: {e}")))?;
    if status.is_success() {
        return Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        });
    }
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or(text);
    let code = match status {
        StatusCode::NOT_FOUND => 3,
        StatusCode::CONFLICT => 4,
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => 2,
        _ => 1,
    };
    Err(Failure {
        code,
        message: format!("{message} (HTTP {})", status.as_u16()),
    })
}
