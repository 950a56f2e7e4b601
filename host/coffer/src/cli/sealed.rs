//! The client's side of the sealed transport, for `coffer secret put|get`:
//! the server's transport keys, fetched once per command and pinned by
//! id; a write's body sealed to the current one; a read's value sealed
//! back to a one-time key made for that read alone, and opened only if the
//! server's key it names sealed it. And `coffer transport show|rotate`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Subcommand;
use coffer_crypto::sealing::{self, KEY_LEN, RequestBinding, ResponseBinding, TransportKey};
use reqwest::Method;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::client::{Connection, Failure, exit, request};
use super::output::{Format, Table, print_json};

/// Transport public keys (base64, comma-separated) the CLI accepts, when
/// set: the key fetched from the server must be one of them, so whatever
/// sits in between cannot hand over a key of its own.
const PIN_ENV: &str = "COFFER_TRANSPORT_PIN";

/// The server's transport keys: the one to seal to, and every key whose
/// sealed answers are accepted.
pub struct ServerKeys {
    current: String,
    keys: HashMap<String, [u8; KEY_LEN]>,
}

impl ServerKeys {
    /// The server's keys. A server that offers none is refused, not
    /// written to in plaintext: whatever sits in between could answer
    /// that it has none.
    pub async fn fetch(base: &str) -> Result<ServerKeys, Failure> {
        let url = format!("{base}/v1/sys/transport-key");
        let answer = request(Method::GET, &url, None).await.map_err(|failure| {
            failure.while_doing(|message| {
                format!(
                    "cannot fetch the server's transport key to seal with ({message}); \
                     --no-seal sends the value in plaintext instead"
                )
            })
        })?;
        let malformed = || Failure::other("the server's transport key is malformed");
        let mut keys = HashMap::new();
        let listed =
            std::iter::once(&answer).chain(answer["previous"].as_array().into_iter().flatten());
        for key in listed {
            let kid = key["kid"].as_str().ok_or_else(malformed)?;
            let public = STANDARD
                .decode(key["public_key"].as_str().ok_or_else(malformed)?)
                .ok()
                .and_then(|bytes| <[u8; KEY_LEN]>::try_from(bytes.as_slice()).ok())
                .ok_or_else(malformed)?;
            keys.insert(kid.to_owned(), public);
        }
        if let Ok(pins) = std::env::var(PIN_ENV) {
            // Only keys the operator handed over out of band count.
            let pinned: Vec<&str> = pins.split(',').map(str::trim).collect();
            keys.retain(|_, public| pinned.contains(&STANDARD.encode(*public).as_str()));
        }
        let current = answer["kid"].as_str().ok_or_else(malformed)?.to_owned();
        if !keys.contains_key(&current) {
            return Err(Failure::other(format!(
                "the server's transport key {current} is not one {PIN_ENV} names: refusing to \
                 seal to it"
            )));
        }
        Ok(ServerKeys { current, keys })
    }

    /// `body` (plain JSON) sealed for `method` on the secret `path`.
    pub fn seal(&self, method: &str, path: &str, body: &str) -> Result<Zeroizing<String>, Failure> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let binding = RequestBinding {
            method,
            path,
            timestamp,
            kid: &self.current,
        };
        let server = self.keys.get(&self.current).ok_or_else(|| {
            Failure::other("the server's transport key is missing from its own answer")
        })?;
        let sealed = sealing::seal_request(server, &binding, body.as_bytes())
            .map_err(|e| Failure::other(format!("cannot seal the request: {e}")))?;
        Ok(Zeroizing::new(
            json!({ "sealed": {
                "kid": self.current,
                "enc": STANDARD.encode(sealed.enc),
                "ciphertext": STANDARD.encode(&sealed.ciphertext),
                "timestamp": timestamp,
            }})
            .to_string(),
        ))
    }
}

/// A key pair made for one read, wiped when dropped.
pub struct OneTimeKey(TransportKey);

impl OneTimeKey {
    pub fn new() -> OneTimeKey {
        OneTimeKey(TransportKey::generate())
    }

    /// The `Coffer-Seal-To` header's value.
    pub fn header(&self) -> String {
        STANDARD.encode(self.0.public_key())
    }

    /// Opens the sealed value of `answer`, a read of the secret `path`,
    /// into a plain answer (`value` in place of `sealed`).
    pub fn open(&self, keys: &ServerKeys, path: &str, mut answer: Value) -> Result<Value, Failure> {
        let malformed = || Failure::other("the server's sealed answer is malformed");
        let sealed = answer
            .as_object_mut()
            .and_then(|fields| fields.remove("sealed"))
            .ok_or_else(|| Failure::other("the server answered in plaintext, not sealed"))?;
        let kid = sealed["kid"].as_str().ok_or_else(malformed)?;
        let server = keys.keys.get(kid).ok_or_else(|| {
            Failure::other(format!(
                "the answer was sealed by transport key {kid}, which the server did not list"
            ))
        })?;
        let field = |name: &str| {
            sealed[name]
                .as_str()
                .and_then(|text| STANDARD.decode(text).ok())
                .ok_or_else(malformed)
        };
        let version = answer["version"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(malformed)?;
        let binding = ResponseBinding { path, version, kid };
        let value = sealing::open_response(
            &self.0,
            server,
            &binding,
            &field("enc")?,
            &field("ciphertext")?,
        )
        .map_err(|_| {
            Failure::other(
                "the sealed answer does not open: it was not sealed by the server's transport \
                 key for this secret and version",
            )
        })?;
        let value = String::from_utf8(value.to_vec())
            .map_err(|_| Failure::other("the sealed value is not UTF-8"))?;
        answer["value"] = Value::String(value);
        Ok(answer)
    }
}

#[derive(Subcommand)]
pub enum TransportCommand {
    /// The transport key clients seal to, and the replaced keys still
    /// accepted.
    Show,
    /// Make a new transport key current; the replaced one is accepted for
    /// `[transport] grace_ms`.
    Rotate,
}

pub async fn run(connection: Connection, command: TransportCommand) -> ExitCode {
    exit(transport(&connection, command).await)
}

async fn transport(connection: &Connection, command: TransportCommand) -> Result<(), Failure> {
    let base = connection.addr.trim_end_matches('/');
    let answer = match command {
        TransportCommand::Show => {
            request(Method::GET, &format!("{base}/v1/sys/transport-key"), None).await?
        }
        TransportCommand::Rotate => {
            let url = format!("{base}/v1/sys/transport-key/rotate");
            request(Method::POST, &url, None).await?
        }
    };
    match connection.format_or(Format::Table) {
        Format::Json => print_json(&answer),
        Format::Raw => println!("{}", answer["kid"].as_str().unwrap_or_default()),
        Format::Table => {
            let mut table = Table::new(&["KID", "PUBLIC KEY", "STATE", "UNTIL"]);
            let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
            table.text_row(vec![
                text(&answer["kid"]),
                text(&answer["public_key"]),
                "current".to_owned(),
                text(&answer["expires_at"]),
            ]);
            for key in answer["previous"].as_array().into_iter().flatten() {
                table.text_row(vec![
                    text(&key["kid"]),
                    text(&key["public_key"]),
                    "accepted".to_owned(),
                    text(&key["accepted_until"]),
                ]);
            }
            table.print();
            println!("suite: {}", text(&answer["suite"]));
        }
    }
    Ok(())
}
