//! Load test of the HTTP API against OpenBao as the baseline, measured in
//! the same run on the same machine: `cargo xtask load`.
//!
//! coffer persists to local disk (SQLite), and so does the first OpenBao
//! (integrated raft storage, one node, initialised and unsealed here, KV v2
//! mounted at `secret/`); the second is OpenBao's dev server, which keeps
//! everything in memory.
//! Each gets the same workloads ([`phase`]), each bounded in time and
//! split in rounds the servers take in turn: writes of names never
//! written before, writes of `--keys` names over and over (the first of
//! each makes it, the rest replace it), writes of one name every client
//! writes at once, then random reads of the `--keys` names. Figures are
//! reported as coffer/OpenBao ratios, with each server's CPU time per
//! request, and the audit trail's cost as a ratio of coffer with and
//! without it; absolute numbers depend on the machine.
//!
//! `--remote vault|dynamodb|all` adds coffer on its remote storage plugins:
//! `storage-vault` on a KV v2 mount of the same OpenBao (so the ratio is
//! what coffer's envelope and audit add on top of the store it uses), and
//! `storage-dynamodb` on moto, the AWS emulator the tests use (served one
//! request at a time, so this measures the plugin path, not DynamoDB).
//!
//! Last, coffer's own writes and reads are compared in plaintext and
//! sealed ([`sealed`]).

mod phase;
mod sealed;
mod wire;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use coffer_e2e::aws::{Moto, REGION};
use phase::{Figures, Summary, Work};
use reqwest::{Client, Method};
use sealed::Carriage;
use serde_json::{Value, json};

struct Options {
    coffer: PathBuf,
    plugins: PathBuf,
    bao: PathBuf,
    seconds: u64,
    concurrency: usize,
    keys: usize,
    remote: Vec<Remote>,
}

/// A remote storage plugin to drive coffer on.
#[derive(Clone, Copy, PartialEq)]
enum Remote {
    Vault,
    DynamoDb,
}

fn remotes(value: &str) -> Result<Vec<Remote>> {
    Ok(match value {
        "none" => vec![],
        "vault" => vec![Remote::Vault],
        "dynamodb" => vec![Remote::DynamoDb],
        "all" => vec![Remote::Vault, Remote::DynamoDb],
        other => bail!("--remote takes none, vault, dynamodb or all, not {other}"),
    })
}

fn options() -> Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        coffer: PathBuf::new(),
        plugins: PathBuf::new(),
        bao: PathBuf::new(),
        seconds: 10,
        concurrency: 16,
        keys: 1000,
        remote: vec![],
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--coffer" => options.coffer = value.into(),
            "--plugins" => options.plugins = value.into(),
            "--bao" => options.bao = value.into(),
            "--seconds" => options.seconds = value.parse()?,
            "--concurrency" => options.concurrency = value.parse()?,
            "--keys" => options.keys = value.parse()?,
            "--remote" => options.remote = remotes(&value)?,
            other => bail!("unknown option {other}"),
        }
    }
    if options.seconds == 0
        || options.seconds > 120
        || options.concurrency == 0
        || options.concurrency > 256
    {
        bail!("--seconds must be 1..=120 and --concurrency 1..=256");
    }
    Ok(options)
}

/// A server process, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// How one target is driven: its address, auth header and request
/// shapes, and its process, whose CPU time is measured.
struct Target {
    name: &'static str,
    pid: u32,
    base: String,
    auth: (&'static str, String),
    write: fn(&str) -> (Method, String, Value),
    read: fn(&str) -> String,
}

fn log_file(dir: &Path, name: &str) -> Result<std::fs::File> {
    Ok(std::fs::File::create(dir.join(name))?)
}

async fn wait_ready(client: &Client, url: &str) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if client.get(url).send().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{url} did not answer within 60 s")
}

/// One coffer to start: its name, and what its config and environment add
/// to the embedded default.
struct Flavour {
    name: &'static str,
    audit: bool,
    config: String,
    env: Vec<(&'static str, String)>,
}

impl Flavour {
    fn embedded(name: &'static str, audit: bool) -> Flavour {
        Flavour {
            name,
            audit,
            config: String::new(),
            env: vec![],
        }
    }

    /// coffer on `storage-vault`, under `secret/data/coffer-load/` of the
    /// OpenBao at `origin`.
    fn vault(origin: &str, token: &str) -> Flavour {
        Flavour {
            name: "coffer-vault",
            audit: true,
            config: format!(
                "[storage]\nplugin = \"storage-vault\"\n[storage.config]\nmount = \"secret\"\npath = \"coffer-load\"\n\
                 [storage.http]\norigin = {origin:?}\nauth = \"vault-token\"\ntoken_env = \"COFFER_LOAD_VAULT_TOKEN\"\n\
                 paths = [\"/v1/secret/\"]\n"
            ),
            env: vec![("COFFER_LOAD_VAULT_TOKEN", token.to_owned())],
        }
    }

    /// coffer on `storage-dynamodb`, in a table it creates on `moto`.
    fn dynamodb(moto: &Moto) -> Flavour {
        Flavour {
            name: "coffer-dynamodb",
            audit: true,
            config: format!(
                "[storage]\nplugin = \"storage-dynamodb\"\n[storage.config]\ntable = \"coffer-load\"\ncreate_table = true\n\
                 [storage.http]\norigin = {:?}\nauth = \"aws-sigv4\"\nservice = \"dynamodb\"\nregion = \"{REGION}\"\n",
                moto.endpoint
            ),
            env: moto
                .env()
                .iter()
                .map(|(name, value)| (*name, (*value).to_owned()))
                .collect(),
        }
    }
}

async fn start_coffer(
    options: &Options,
    dir: &Path,
    client: &Client,
    flavour: &Flavour,
) -> Result<(Process, Target)> {
    let port = free_port()?;
    let dir = dir.join(flavour.name);
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("coffer.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {:?}\nplugin_dir = {:?}\n[audit]\nenabled = {}\n{}",
            dir.join("data").display().to_string(),
            options.plugins.display().to_string(),
            flavour.audit,
            flavour.config,
        ),
    )?;
    let child = Command::new(&options.coffer)
        .args(["server", "--config"])
        .arg(&config)
        .envs(flavour.env.iter().map(|(name, value)| (name, value)))
        .env("COFFER_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log_file(&dir, "coffer.log")?)
        .spawn()
        .context("cannot start coffer")?;
    let process = Process(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(client, &format!("{base}/v1/sys/health")).await?;
    let token = std::fs::read_to_string(dir.join("data").join("root-token"))?
        .trim()
        .to_owned();
    let target = Target {
        name: flavour.name,
        pid: process.0.id(),
        base,
        auth: ("authorization", format!("Bearer {token}")),
        write: |key| {
            (
                Method::PUT,
                format!("/v1/secrets/load/{key}"),
                json!({"value": "x".repeat(64)}),
            )
        },
        read: |key| format!("/v1/secrets/load/{key}"),
    };
    Ok((process, target))
}

async fn start_openbao(
    options: &Options,
    dir: &Path,
    client: &Client,
) -> Result<(Process, Target)> {
    let (port, cluster_port) = (free_port()?, free_port()?);
    let data = dir.join("bao-data");
    std::fs::create_dir_all(&data)?;
    let config = dir.join("bao.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"raft\" {{\n  path = {:?}\n  node_id = \"load\"\n}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  cluster_address = \"127.0.0.1:{cluster_port}\"\n  tls_disable = true\n}}\n\
             api_addr = \"http://127.0.0.1:{port}\"\ncluster_addr = \"http://127.0.0.1:{cluster_port}\"\n",
            data.display().to_string()
        ),
    )?;
    let child = Command::new(&options.bao)
        .args(["server", "-config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log_file(dir, "openbao.log")?)
        .spawn()
        .context("cannot start bao")?;
    let process = Process(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(client, &format!("{base}/v1/sys/health")).await?;
    let init: Value = client
        .put(format!("{base}/v1/sys/init"))
        .json(&json!({"secret_shares": 1, "secret_threshold": 1}))
        .send()
        .await?
        .json()
        .await?;
    let unseal_key = init["keys"][0].as_str().context("no unseal key")?;
    let token = init["root_token"]
        .as_str()
        .context("no root token")?
        .to_owned();
    client
        .put(format!("{base}/v1/sys/unseal"))
        .json(&json!({"key": unseal_key}))
        .send()
        .await?
        .error_for_status()?;
    // Raft elects its leader after the unseal: retry until the mount lands.
    let started = Instant::now();
    loop {
        let response = client
            .post(format!("{base}/v1/sys/mounts/secret"))
            .header("x-vault-token", &token)
            .json(&json!({"type": "kv", "options": {"version": "2"}}))
            .send()
            .await?;
        if response.status().is_success() {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("OpenBao did not mount KV v2: {}", response.text().await?);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let target = openbao_target("openbao", process.0.id(), base, token);
    wait_writable(client, &target).await?;
    Ok((process, target))
}

/// OpenBao's dev server: in memory, unsealed, KV v2 at `secret/`. The
/// baseline coffer's durable writes are held against.
async fn start_openbao_dev(
    options: &Options,
    dir: &Path,
    client: &Client,
) -> Result<(Process, Target)> {
    let port = free_port()?;
    let token = "load-root".to_owned();
    let child = Command::new(&options.bao)
        .args(["server", "-dev"])
        .arg(format!("-dev-root-token-id={token}"))
        .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log_file(dir, "openbao-dev.log")?)
        .spawn()
        .context("cannot start bao -dev")?;
    let process = Process(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(client, &format!("{base}/v1/sys/health")).await?;
    let target = openbao_target("openbao-dev", process.0.id(), base, token);
    wait_writable(client, &target).await?;
    Ok((process, target))
}

/// KV v2 at `secret/` of the OpenBao at `base`.
fn openbao_target(name: &'static str, pid: u32, base: String, token: String) -> Target {
    Target {
        name,
        pid,
        base,
        auth: ("x-vault-token", token),
        write: |key| {
            (
                Method::POST,
                format!("/v1/secret/data/{key}"),
                json!({"data": {"value": "x".repeat(64)}}),
            )
        },
        read: |key| format!("/v1/secret/data/{key}"),
    }
}

/// Waits until `target` takes a write: KV v2 finishes its upgrade in the
/// background after mounting.
async fn wait_writable(client: &Client, target: &Target) -> Result<()> {
    let probe = (target.write)("warmup");
    let started = Instant::now();
    loop {
        let response = client
            .request(probe.0.clone(), format!("{}{}", target.base, probe.1))
            .header(target.auth.0, &target.auth.1)
            .json(&probe.2)
            .send()
            .await?;
        if response.status().is_success() {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!(
                "{} KV v2 did not become writable: {}",
                target.name,
                response.status()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Prints how `a` compared with `b` on one workload: throughput,
/// latencies, their ratio, and the CPU time each server spent per request.
fn line(label: &str, a_name: &str, a: &Summary, b_name: &str, b: &Summary) {
    let cpu = |summary: &Summary| {
        summary
            .server_cpu
            .map_or_else(|| "-".to_owned(), |cpu| cpu.as_micros().to_string())
    };
    println!(
        "{label:<20} {a_name:<16} {:>8.0}/s p50 {:>6.2} ms p99 {:>6.2} ms | {b_name:<16} {:>8.0}/s p50 {:>6.2} ms p99 {:>6.2} ms | ratio {:>5.2} | server CPU µs/request {} vs {}",
        a.per_second,
        a.p50_ms,
        a.p99_ms,
        b.per_second,
        b.p50_ms,
        b.p99_ms,
        a.per_second / b.per_second.max(f64::MIN_POSITIVE),
        cpu(a),
        cpu(b),
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let options = options()?;
    let dir = tempfile::tempdir()?;
    let outcome = run(&options, dir.path()).await;
    if outcome.is_err() {
        for log in [
            "coffer/coffer.log",
            "coffer-unaudited/coffer.log",
            "coffer-vault/coffer.log",
            "coffer-dynamodb/coffer.log",
            "openbao.log",
        ] {
            let text = std::fs::read_to_string(dir.path().join(log)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(10).collect();
            eprintln!("--- last lines of {log}:");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
    outcome
}

/// Rounds each workload's time is split into. The servers take turns each
/// round, so a shared machine's drifting speed hits all of them alike, and
/// each figure is the median over rounds.
const ROUNDS: usize = 5;

async fn run(options: &Options, dir: &Path) -> Result<()> {
    let client = Client::builder()
        .pool_max_idle_per_host(options.concurrency * 3)
        .build()?;

    // All run at once and take turns, so they see the same machine.
    let mut processes = Vec::new();
    let (bao_process, bao) = start_openbao(options, dir, &client).await?;
    processes.push(bao_process);
    let (dev_process, bao_dev) = start_openbao_dev(options, dir, &client).await?;
    processes.push(dev_process);
    let mut flavours = vec![
        Flavour::embedded("coffer", true),
        Flavour::embedded("coffer-unaudited", false),
    ];
    let moto = options.remote.contains(&Remote::DynamoDb).then(Moto::start);
    for remote in &options.remote {
        flavours.push(match remote {
            Remote::Vault => Flavour::vault(&bao.base, &bao.auth.1),
            Remote::DynamoDb => Flavour::dynamodb(moto.as_ref().context("moto is not running")?),
        });
    }
    let mut targets = vec![Arc::new(bao), Arc::new(bao_dev)];
    for flavour in &flavours {
        let (process, target) = start_coffer(options, dir, &client, flavour).await?;
        processes.push(process);
        targets.push(Arc::new(target));
    }

    let workloads = [Work::NewNames, Work::Names, Work::OneName, Work::Reads];
    let mut figures: Vec<Vec<Summary>> = Vec::new();
    let round = Duration::from_secs(options.seconds).div_f64(ROUNDS as f64);
    for work in workloads {
        let mut rounds: Vec<Vec<Figures>> = targets.iter().map(|_| Vec::new()).collect();
        for _ in 0..ROUNDS {
            for (target, done) in targets.iter().zip(rounds.iter_mut()) {
                let pid = Some(target.pid);
                let phase = phase::run(target.clone(), options, work, round, &Carriage::Plain, pid);
                done.push(phase.await?);
            }
        }
        if matches!(work, Work::Names) {
            for target in &targets {
                phase::fill(target, options).await?;
            }
        }
        figures.push(rounds.iter().map(|r| Summary::of(r)).collect());
    }
    let [new_names, writes, hot_writes, reads] = <[Vec<Summary>; 4]>::try_from(figures)
        .map_err(|_| anyhow::anyhow!("one summary per workload"))?;
    // targets: openbao (raft), openbao-dev (in memory), coffer,
    // coffer-unaudited, then the remote flavours.
    let (raft, dev, coffer, unaudited) = (0, 1, 2, 3);
    let own_cpu = writes[coffer].own_cpu.as_micros();

    println!(
        "{} names, {} concurrent clients, each workload {} s per server in {ROUNDS} alternating rounds \
         (medians); coffer and openbao persist to local disk, openbao-dev keeps everything in memory; \
         the load generator spent {own_cpu} µs of CPU per coffer write",
        options.keys, options.concurrency, options.seconds
    );
    let compared = [
        ("new-name writes", &new_names),
        ("writes", &writes),
        ("one-name writes", &hot_writes),
        ("reads", &reads),
    ];
    for (label, summaries) in compared {
        for baseline in [raft, dev] {
            let baseline_name = targets[baseline].name;
            line(
                label,
                "coffer",
                &summaries[coffer],
                baseline_name,
                &summaries[baseline],
            );
        }
    }
    for (label, summaries) in [("audit writes", &writes), ("audit reads", &reads)] {
        line(
            label,
            "with",
            &summaries[coffer],
            "without",
            &summaries[unaudited],
        );
    }
    sealed::compare(&client, targets[coffer].clone(), options).await?;
    for (index, flavour) in flavours.iter().enumerate().skip(2) {
        let at = index + 2;
        line(
            &format!("{} writes", flavour.name.trim_start_matches("coffer-")),
            flavour.name,
            &writes[at],
            "openbao",
            &writes[0],
        );
        line(
            &format!("{} reads", flavour.name.trim_start_matches("coffer-")),
            flavour.name,
            &reads[at],
            "openbao",
            &reads[0],
        );
    }
    Ok(())
}
