//! Key-lifecycle benchmark, `cargo xtask keybench`: how fast the janitor
//! and `coffer reencrypt` re-wrap secrets onto a rotated data key, and how long a KEK rotation
//! takes for 10 and 1,000 namespaces, on SQLite and on PostgreSQL.
//!
//! Each figure comes with a baseline measured in the same run on the same
//! server: the rate of plain secret writes (HTTP, same concurrency as the
//! seeding), so the re-wrap rates read as ratios that do not depend on the
//! machine. The janitor runs one cycle on request with a limit above the
//! number of secrets, so one cycle re-wraps them all; each re-wrap figure
//! is the median of three rounds, each after a fresh rotation.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use coffer_e2e::Server;
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

/// Secrets written at once while seeding.
const CONCURRENCY: usize = 16;

struct Options {
    secrets: usize,
    database_url: Option<String>,
}

fn options() -> Result<Options> {
    let mut options = Options {
        secrets: 5000,
        database_url: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--secrets" => options.secrets = value.parse()?,
            "--database-url" => options.database_url = Some(value),
            other => bail!("unknown option {other}"),
        }
    }
    if options.secrets == 0 || options.secrets > 100_000 {
        bail!("--secrets must be between 1 and 100000");
    }
    Ok(options)
}

fn config(database_url: Option<&str>, table: &str) -> String {
    let mut config = String::from(
        "[audit]\nenabled = false\n[keys]\ngrace_ms = 0\n[janitor]\nenabled = false\nlimit = 1000000\n",
    );
    if let Some(url) = database_url {
        config.push_str(&format!(
            "[storage]\nplugin = \"storage-sql\"\n[storage.sql]\nurl = {url:?}\nmax_connections = 16\n\
             [storage.config]\ntable = {table:?}\n"
        ));
    }
    config
}

async fn call(client: &Client, server: &Server, method: Method, path: &str) -> Result<Value> {
    let response = client
        .request(method, format!("{}{path}", server.addr))
        .bearer_auth(&server.token)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status != StatusCode::OK {
        bail!("{path}: {status} {body}");
    }
    Ok(body)
}

/// Writes `paths` with `CONCURRENCY` requests in flight; returns writes/s.
async fn write_all(client: &Client, server: &Server, paths: Vec<String>) -> Result<f64> {
    let started = Instant::now();
    let count = paths.len();
    let mut chunks: Vec<Vec<String>> = (0..CONCURRENCY).map(|_| Vec::new()).collect();
    for (i, path) in paths.into_iter().enumerate() {
        chunks[i % CONCURRENCY].push(path);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in chunks {
        let client = client.clone();
        let url = server.addr.clone();
        let token = server.token.clone();
        tasks.spawn(async move {
            for path in chunk {
                let response = client
                    .put(format!("{url}/v1/secrets/{path}"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({ "value": format!("value of {path}") }))
                    .send()
                    .await?;
                if !response.status().is_success() {
                    bail!("write {path}: {}", response.status());
                }
            }
            Ok(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Rounds of each re-wrap measurement; the median is reported.
const ROUNDS: usize = 3;

/// Seeds `secrets` secrets, then times moving them onto a freshly rotated
/// data key, `ROUNDS` times each way: one janitor cycle, and `coffer
/// reencrypt`'s API in batches of the largest size (each saving the
/// pass's progress) until done.
async fn rewrap(client: &Client, backend: &str, url: Option<&str>, secrets: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let table = format!("keybench_rewrap_{}", std::process::id());
    let server = Server::start(dir.path(), &config(url, &table));
    let paths = (0..secrets)
        .map(|i| format!("bench/secret-{i:06}"))
        .collect();
    let writes = write_all(client, &server, paths).await?;
    let (mut janitor, mut reencrypt) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        janitor.push(janitor_round(client, &server, secrets).await?);
        reencrypt.push(reencrypt_round(client, &server, secrets).await?);
    }
    for (what, mut elapsed) in [("janitor", janitor), ("reencrypt", reencrypt)] {
        elapsed.sort();
        let median = elapsed[ROUNDS / 2];
        let rate = secrets as f64 / median.as_secs_f64();
        println!(
            "{what:<9} {backend:<10} {secrets} secrets re-wrapped in {:>7.1} ms (median of {ROUNDS}): \
             {rate:>8.0}/s (plain writes {writes:>6.0}/s; {what}/writes {:.2})",
            median.as_secs_f64() * 1000.0,
            rate / writes
        );
    }
    Ok(())
}

/// Rotates the data key and times one janitor cycle moving every secret.
async fn janitor_round(client: &Client, server: &Server, secrets: usize) -> Result<Duration> {
    call(client, server, Method::POST, "/v1/keys/bench/rotate").await?;
    let started = Instant::now();
    let cycle = call(client, server, Method::POST, "/v1/sys/janitor/run").await?;
    let elapsed = started.elapsed();
    let moved = cycle["moved"]["versions"].as_u64().unwrap_or(0);
    if moved != secrets as u64 {
        bail!("the janitor moved {moved} of {secrets}: {cycle}");
    }
    Ok(elapsed)
}

/// Rotates the data key and times `coffer reencrypt`'s pass over it.
async fn reencrypt_round(client: &Client, server: &Server, secrets: usize) -> Result<Duration> {
    call(client, server, Method::POST, "/v1/keys/bench/rotate").await?;
    let started = Instant::now();
    let mut moved = 0;
    loop {
        let batch = client
            .post(format!("{}/v1/keys/bench/reencrypt", server.addr))
            .bearer_auth(&server.token)
            .json(&serde_json::json!({ "limit": 1000 }))
            .send()
            .await?;
        let status = batch.status();
        let batch: Value = batch.json().await?;
        if status != StatusCode::OK {
            bail!("reencrypt: {status} {batch}");
        }
        moved += batch["batch"]["versions"].as_u64().unwrap_or(0);
        if batch["done"] == true {
            break;
        }
    }
    let elapsed = started.elapsed();
    if moved != secrets as u64 {
        bail!("coffer reencrypt moved {moved} of {secrets}");
    }
    Ok(elapsed)
}

async fn kek_rotation(
    client: &Client,
    backend: &str,
    url: Option<&str>,
    namespaces: usize,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let table = format!("keybench_kek_{namespaces}_{}", std::process::id());
    let server = Server::start(dir.path(), &config(url, &table));
    let paths = (0..namespaces).map(|i| format!("ns-{i:05}/only")).collect();
    write_all(client, &server, paths).await?;
    let started = Instant::now();
    let report = call(client, &server, Method::POST, "/v1/sys/kek/rotate").await?;
    let elapsed = started.elapsed();
    if report["data_keys_rewrapped"].as_u64() != Some(namespaces as u64) {
        bail!("KEK rotation re-wrapped {report}");
    }
    println!(
        "kek      {backend:<10} {namespaces:>5} namespaces rotated in {:>7.1} ms ({:.3} ms per namespace)",
        elapsed.as_secs_f64() * 1000.0,
        elapsed.as_secs_f64() * 1000.0 / namespaces as f64
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let options = options()?;
    let client = Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let mut backends: Vec<(&str, Option<&str>)> = vec![("sqlite", None)];
    if let Some(url) = options.database_url.as_deref() {
        backends.push(("postgresql", Some(url)));
    }
    for (backend, url) in &backends {
        rewrap(&client, backend, *url, options.secrets).await?;
        for namespaces in [10, 1000] {
            kek_rotation(&client, backend, *url, namespaces).await?;
        }
    }
    Ok(())
}
