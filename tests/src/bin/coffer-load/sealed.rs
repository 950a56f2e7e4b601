//! What the sealed transport costs: coffer's writes and reads in
//! plaintext against the same sealed, in alternating rounds on one server,
//! as requests per second and as the server's CPU time per request (read
//! from `/proc`, so the load generator's own sealing is not counted).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use coffer_crypto::sealing::{self, KEY_LEN, RequestBinding, TransportKey};
use reqwest::Client;
use serde_json::{Value, json};

use super::phase::{self, Figures, Summary, Work};
use super::{Options, Target, line};

/// How a phase's requests travel.
#[derive(Clone)]
pub enum Carriage {
    Plain,
    /// Writes sealed to the server's transport key; reads asking for the
    /// value sealed to a client key.
    Sealed(Arc<SealKeys>),
}

/// The server's transport key, and a client key reads are sealed to.
pub struct SealKeys {
    kid: String,
    public: [u8; KEY_LEN],
    read_header: String,
}

impl SealKeys {
    async fn fetch(client: &Client, target: &Target) -> Result<SealKeys> {
        let key: Value = client
            .get(format!("{}/v1/sys/transport-key", target.base))
            .header(target.auth.0, &target.auth.1)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let public = STANDARD
            .decode(key["public_key"].as_str().context("no public_key")?)?
            .try_into()
            .ok()
            .context("the transport key is not 32 bytes")?;
        Ok(SealKeys {
            kid: key["kid"].as_str().context("no kid")?.to_owned(),
            public,
            read_header: STANDARD.encode(TransportKey::generate().public_key()),
        })
    }
}

impl Carriage {
    /// The body of a write of `body` to `path`, as it travels.
    pub fn body(&self, method: &str, path: &str, body: Value) -> Result<Value> {
        let Carriage::Sealed(keys) = self else {
            return Ok(body);
        };
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let binding = RequestBinding {
            method,
            path,
            timestamp,
            kid: &keys.kid,
        };
        let sealed = sealing::seal_request(&keys.public, &binding, body.to_string().as_bytes())?;
        Ok(json!({ "sealed": {
            "kid": keys.kid,
            "enc": STANDARD.encode(sealed.enc),
            "ciphertext": STANDARD.encode(&sealed.ciphertext),
            "timestamp": timestamp,
        }}))
    }

    /// The header a read adds, if any.
    pub fn read_header(&self) -> Option<(&'static str, &str)> {
        match self {
            Carriage::Plain => None,
            Carriage::Sealed(keys) => Some((sealing::SEAL_TO_HEADER, keys.read_header.as_str())),
        }
    }
}

/// Rounds of each comparison, taken in turn.
const ROUNDS: usize = 3;

/// Compares plain and sealed writes and reads on `target`, the coffer
/// whose process is `pid`, and prints the figures.
pub async fn compare(client: &Client, target: Arc<Target>, options: &Options) -> Result<()> {
    let sealed = Carriage::Sealed(Arc::new(SealKeys::fetch(client, &target).await?));
    let carriages = [Carriage::Plain, sealed];
    let mut writes: [Vec<Figures>; 2] = Default::default();
    let mut reads: [Vec<Figures>; 2] = Default::default();
    let round = Duration::from_secs(options.seconds).div_f64(ROUNDS as f64);
    let pid = Some(target.pid);
    for _ in 0..ROUNDS {
        for (work, figures) in [(Work::Names, &mut writes), (Work::Reads, &mut reads)] {
            for (carriage, done) in carriages.iter().zip(figures.iter_mut()) {
                let phase = phase::run(target.clone(), options, work, round, carriage, pid);
                done.push(phase.await?);
            }
        }
    }
    for (label, [plain, sealed]) in [("sealed writes", writes), ("sealed reads", reads)] {
        line(
            label,
            "sealed",
            &Summary::of(&sealed),
            "plain",
            &Summary::of(&plain),
        );
    }
    Ok(())
}
