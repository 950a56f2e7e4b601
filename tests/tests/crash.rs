//! Crash safety of the key lifecycle: the server is killed with SIGKILL at
//! random moments while it rotates the KEK, rotates data keys, runs the
//! janitor and re-encrypts, with writers running alongside. After every
//! restart, every secret ever acknowledged is readable with its value, each
//! namespace has exactly one Active key, and the usage the server reports
//! adds up to exactly the versions written.
//!
//! The random delays come from a seed printed at the start, so a failure
//! can be replayed with `COFFER_CRASH_SEED`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use coffer_e2e::Server;
use reqwest::{Method, StatusCode};

/// Kill-and-restart runs (each operation kind gets a quarter).
const RUNS: usize = 24;
const NAMESPACES: usize = 40;
const SECRETS_PER_NAMESPACE: usize = 4;
/// The janitor runs all the time, a few secrets per cycle, so kills land
/// in the middle of its work too.
const CONFIG: &str = "[keys]\nnode = \"crash-node\"\ncache_ttl_ms = 200\ngrace_ms = 0\nlease_ttl_ms = 1000\n\
                      [janitor]\ninterval_ms = 20\nlimit = 16\n";

/// What the server logs once a KEK rotation has stored the new keyset and
/// begins re-wrapping data keys.
const KEK_REWRAP_STARTED: &str = "rotated the KEK; re-wrapping";

/// A small deterministic generator (xorshift), so runs can be replayed.
struct Random(u64);

impl Random {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn seed() -> u64 {
    std::env::var("COFFER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
                | 1
        })
}

/// What the test knows was acknowledged: the latest value of each secret
/// and how many versions each namespace holds.
#[derive(Default)]
struct Ledger {
    values: BTreeMap<String, String>,
    versions: BTreeMap<String, u64>,
}

impl Ledger {
    /// Every acknowledged write adds a version (10 are kept per secret;
    /// no secret here gets near that).
    fn record(&mut self, namespace: &str, name: &str, value: String) {
        self.values.insert(format!("{namespace}/{name}"), value);
        *self.versions.entry(namespace.to_owned()).or_default() += 1;
    }
}

fn operation(run: usize) -> &'static str {
    ["kek-rotate", "data-key-rotate", "reencrypt-full", "janitor"][run % 4]
}

async fn trigger(server: &Server, run: usize, random: &mut Random) {
    let namespace = format!("ns-{}", random.next(NAMESPACES as u64));
    let (path, body) = match operation(run) {
        "kek-rotate" => ("/v1/sys/kek/rotate".to_owned(), None),
        "data-key-rotate" => {
            // Rotate several namespaces so the janitor has work when killed.
            for _ in 0..3 {
                let other = format!("ns-{}", random.next(NAMESPACES as u64));
                let (status, _) = server
                    .call(Method::POST, &format!("/v1/keys/{other}/rotate"), None)
                    .await;
                assert!(status == StatusCode::OK || status == StatusCode::CONFLICT);
            }
            (format!("/v1/keys/{namespace}/rotate"), None)
        }
        "reencrypt-full" => (
            format!("/v1/keys/{namespace}/reencrypt"),
            Some(serde_json::json!({"full": true, "limit": 2})),
        ),
        _ => ("/v1/sys/janitor/run".to_owned(), None),
    };
    // Fire and forget: the server may die before it answers.
    let url = format!("{}{path}", server.addr);
    let token = server.token.clone();
    tokio::spawn(async move {
        let mut request = reqwest::Client::new().post(url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let _ = request.send().await;
    });
}

/// Writes new versions until told to stop; records what was acknowledged.
async fn write_while(
    server: &Server,
    run: usize,
    ledger: &mut Ledger,
    random: &mut Random,
    for_ms: u64,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(for_ms);
    let mut i = 0;
    while tokio::time::Instant::now() < deadline {
        let namespace = format!("ns-{}", random.next(NAMESPACES as u64));
        let name = format!("run-{run}-{i}");
        let value = format!("value of {name}");
        let (status, _) = server.put(&format!("{namespace}/{name}"), &value).await;
        if status == StatusCode::OK {
            ledger.record(&namespace, &name, value);
        }
        i += 1;
    }
}

async fn check(server: &Server, ledger: &Ledger, context: &str) {
    for (path, value) in &ledger.values {
        let (status, body) = server.get(path).await;
        assert_eq!(status, StatusCode::OK, "{context}: {path}: {body}");
        assert_eq!(
            body["value"].as_str(),
            Some(value.as_str()),
            "{context}: {path}"
        );
    }
    let mut data_keys = 0;
    for (namespace, versions) in &ledger.versions {
        let (status, shown) = server
            .call(Method::GET, &format!("/v1/keys/{namespace}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{context}: {shown}");
        let keys = shown["keys"].as_array().unwrap();
        let active = keys.iter().filter(|k| k["status"] == "active").count();
        assert_eq!(
            active, 1,
            "{context}: {namespace} has {active} active keys: {shown}"
        );
        let usage: u64 = keys
            .iter()
            .map(|k| k["usage"]["versions"].as_u64().unwrap())
            .sum();
        let stored = shown["versions"].as_u64().unwrap();
        // Writes killed before their answer may have landed: at least
        // what was acknowledged, and every stored version counted once.
        assert!(
            stored >= *versions && usage == stored,
            "{context}: {namespace}: usage {usage}, versions {stored}, written at least {versions}: {shown}"
        );
        for key in keys {
            if key["status"] == "destroyed" {
                assert_eq!(key["usage"]["versions"], 0, "{context}: {shown}");
            } else {
                data_keys += 1;
            }
        }
    }
    let (status, kek) = server.call(Method::GET, "/v1/sys/kek", None).await;
    assert_eq!(status, StatusCode::OK, "{context}: {kek}");
    let wrapped: u64 = kek["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["data_keys"].as_u64().unwrap())
        .sum();
    assert_eq!(
        wrapped, data_keys,
        "{context}: every data key is wrapped by a key in the keyset: {kek}"
    );
}

#[tokio::test]
async fn sigkill_during_key_work_loses_nothing() {
    let seed = seed();
    eprintln!("crash test seed: {seed} (replay with COFFER_CRASH_SEED={seed})");
    let mut random = Random(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::default();

    let mut server = Server::start(dir.path(), CONFIG);
    for n in 0..NAMESPACES {
        for s in 0..SECRETS_PER_NAMESPACE {
            let (namespace, name) = (format!("ns-{n}"), format!("seed-{s}"));
            let value = format!("seed value {s} of {namespace}");
            let (status, body) = server.put(&format!("{namespace}/{name}"), &value).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            ledger.record(&namespace, &name, value);
        }
    }

    for run in 0..RUNS {
        let started = server.log().matches(KEK_REWRAP_STARTED).count();
        trigger(&server, run, &mut random).await;
        if operation(run) == "kek-rotate" {
            // Aim the kill into the re-wrap: wait until it has begun.
            for _ in 0..200 {
                if server.log().matches(KEK_REWRAP_STARTED).count() > started {
                    break;
                }
                write_while(&server, run, &mut ledger, &mut random, 5).await;
            }
        }
        let delay = random.next(60);
        write_while(&server, run, &mut ledger, &mut random, delay).await;
        server.kill();

        let context = format!(
            "run {run} ({}, killed after {delay} ms, seed {seed})",
            operation(run)
        );
        server = Server::start(dir.path(), CONFIG);
        check(&server, &ledger, &context).await;
    }

    // Left alone, the janitor finishes every pending move: nothing stays
    // under a KEK other than the primary.
    let mut pending = u64::MAX;
    for _ in 0..100 {
        let (_, kek) = server.call(Method::GET, "/v1/sys/kek", None).await;
        pending = kek["pending_rewrap"].as_u64().unwrap();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pending, 0, "the janitor completes interrupted KEK re-wraps");
    let (_, kek) = server.call(Method::GET, "/v1/sys/kek", None).await;
    assert!(
        kek["keys"].as_array().unwrap().len() > 1,
        "KEK rotations happened: {kek}"
    );
    check(&server, &ledger, "final").await;
    let log = server.log();
    let count = |needle: &str| log.matches(needle).count();

    eprintln!(
        "KEK rotations started {}, completed {}; janitor passes that moved secrets {}; starts {}",
        count(KEK_REWRAP_STARTED),
        count("re-wrapped data keys under the primary KEK"),
        count("janitor moved keys onto the active keys"),
        count("coffer is serving"),
    );
}
