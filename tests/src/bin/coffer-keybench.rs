//! Key-lifecycle benchmark, `cargo xtask keybench`: how fast the janitor
//! and `coffer reencrypt` re-wrap secrets onto a rotated data key, and how long a KEK rotation
//! takes for 10 and 1,000 namespaces, on SQLite and on PostgreSQL.
//!
//! Each figure comes with a baseline measured in the same run on the same
//! server: the rate of plain secret writes (HTTP, same concurrency as the
//! seeding), so the janitor's rate reads as a ratio that does not depend on
//! the machine. The janitor runs one cycle on request with a limit above
//! the number of secrets, so one cycle re-wraps them all.

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

async fn janitor(client: &Client, backend: &str, url: Option<&str>, secrets: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let table = format!("keybench_janitor_{}", std::process::id());
    let server = Server::start(dir.path(), &config(url, &table));
    let paths = (0..secrets)
        .map(|i| format!("bench/secret-{i:06}"))
        .collect();
    let writes = write_all(client, &server, paths).await?;
    call(client, &server, Method::POST, "/v1/keys/bench/rotate").await?;
    let started = Instant::now();
    let cycle = call(client, &server, Method::POST, "/v1/sys/janitor/run").await?;
    let elapsed = started.elapsed();
    let moved = cycle["moved"]["versions"].as_u64().unwrap_or(0);
    if moved != secrets as u64 {
        bail!("the janitor moved {moved} of {secrets}: {cycle}");
    }
    let rate = moved as f64 / elapsed.as_secs_f64();
    println!(
        "janitor  {backend:<10} {secrets} secrets re-wrapped in {:>7.1} ms: {rate:>8.0}/s \
         (plain writes {writes:>6.0}/s; janitor/writes {:.2})",
        elapsed.as_secs_f64() * 1000.0,
        rate / writes
    );

    // The same move through `coffer reencrypt`'s API: batches of the
    // largest size, each saving the pass's progress, until done.
    call(client, &server, Method::POST, "/v1/keys/bench/rotate").await?;
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
    let rate = moved as f64 / elapsed.as_secs_f64();
    println!(
        "reencrypt {backend:<9} {secrets} secrets re-wrapped in {:>7.1} ms: {rate:>8.0}/s \
         (plain writes {writes:>6.0}/s; reencrypt/writes {:.2})",
        elapsed.as_secs_f64() * 1000.0,
        rate / writes
    );
    Ok(())
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
        janitor(&client, backend, *url, options.secrets).await?;
        for namespaces in [10, 1000] {
            kek_rotation(&client, backend, *url, namespaces).await?;
        }
    }
    Ok(())
}
