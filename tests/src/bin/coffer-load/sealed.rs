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

use super::{Figures, Names, Options, Summary, Target, line, read_phase, write_phase};

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

/// The server's CPU time so far (user and system), from `/proc`.
fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("malformed /proc stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // /proc counts in USER_HZ, which is 100 on Linux.
    Ok(Duration::from_millis(ticks * 10))
}

/// A phase's figures and the server CPU it took per request.
async fn measured(
    pid: u32,
    phase: impl Future<Output = Result<Figures>>,
) -> Result<(Figures, Duration)> {
    let before = cpu_time(pid)?;
    let figures = phase.await?;
    let spent = cpu_time(pid)?.saturating_sub(before);
    let per_request = spent / u32::try_from(figures.requests.max(1)).unwrap_or(u32::MAX);
    Ok((figures, per_request))
}

/// Rounds of each comparison, taken in turn.
const ROUNDS: usize = 3;

/// Compares plain and sealed writes and reads on `target`, the coffer
/// whose process is `pid`, and prints the figures.
pub async fn compare(
    client: &Client,
    target: Arc<Target>,
    pid: u32,
    options: &Options,
) -> Result<()> {
    let sealed = Carriage::Sealed(Arc::new(SealKeys::fetch(client, &target).await?));
    let carriages = [Carriage::Plain, sealed];
    let mut writes: [Vec<(Figures, Duration)>; 2] = Default::default();
    let mut reads: [Vec<(Figures, Duration)>; 2] = Default::default();
    let round = Duration::from_secs(options.seconds).div_f64(ROUNDS as f64);
    for _ in 0..ROUNDS {
        for (carriage, figures) in carriages.iter().zip(writes.iter_mut()) {
            let phase = write_phase(client, target.clone(), options, Names::Distinct, carriage);
            figures.push(measured(pid, phase).await?);
        }
        for (carriage, figures) in carriages.iter().zip(reads.iter_mut()) {
            let phase = read_phase(client, target.clone(), options, round, carriage);
            figures.push(measured(pid, phase).await?);
        }
    }
    for (label, [plain, sealed]) in [("sealed writes", writes), ("sealed reads", reads)] {
        let summary = |rounds: &[(Figures, Duration)]| {
            let figures: Vec<Figures> = rounds.iter().map(|(f, _)| f.clone()).collect();
            let mut cpu: Vec<Duration> = rounds.iter().map(|(_, cpu)| *cpu).collect();
            cpu.sort_unstable();
            (Summary::of(&figures), cpu[cpu.len() / 2])
        };
        let ((sealed, sealed_cpu), (plain, plain_cpu)) = (summary(&sealed), summary(&plain));
        line(label, "sealed", &sealed, "plain", &plain);
        println!(
            "{label:<16} server CPU per request: sealed {} µs, plain {} µs",
            sealed_cpu.as_micros(),
            plain_cpu.as_micros()
        );
    }
    Ok(())
}
