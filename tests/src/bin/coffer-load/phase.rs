//! One timed phase of load against one server: `--concurrency` clients,
//! each on its own connection ([`wire`]), sending one kind of request
//! back to back until the time is up; and the figures of the phase:
//! throughput, latency, and the CPU time the server and the load
//! generator each spent per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::sealed::Carriage;
use super::wire::Connection;
use super::{Options, Target};

/// What a phase sends.
#[derive(Clone, Copy)]
pub enum Work {
    /// Writes of names no write has used before.
    NewNames,
    /// Writes of `--keys` names in turn: after the first round of them,
    /// every write replaces a version.
    Names,
    /// Writes of one name, by every client at once.
    OneName,
    /// Reads of the `--keys` names at random.
    Reads,
}

/// Names of [`Work::NewNames`] so far, across phases.
static NEW_NAMES: AtomicUsize = AtomicUsize::new(0);

/// Runs `work` on `target` for `length` and measures it; the server's
/// CPU time is read from `/proc` when its process id is given.
pub async fn run(
    target: Arc<Target>,
    options: &Options,
    work: Work,
    length: Duration,
    carriage: &Carriage,
    server: Option<u32>,
) -> Result<Figures> {
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let (server_before, own_before) = (server.map(cpu_time).transpose()?, own_cpu_time()?);
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..options.concurrency {
        let mut connection = Connection::open(&target.base).await?;
        let (target, stop, written) = (target.clone(), stop.clone(), written.clone());
        let (carriage, keys) = (carriage.clone(), options.keys);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut next = worker.wrapping_mul(7919);
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let status = match work {
                    Work::Reads => {
                        next = next.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        let path = (target.read)(&format!("key-{}", next % keys));
                        let mut headers = vec![(target.auth.0, target.auth.1.as_str())];
                        headers.extend(carriage.read_header());
                        connection.send("GET", &path, &headers, None).await?
                    }
                    write => {
                        let name = match write {
                            Work::NewNames => {
                                format!("new-{}", NEW_NAMES.fetch_add(1, Ordering::Relaxed))
                            }
                            Work::OneName => "hot".to_owned(),
                            _ => format!("key-{}", written.fetch_add(1, Ordering::Relaxed) % keys),
                        };
                        send_write(&mut connection, &target, &carriage, &name).await?
                    }
                };
                if !(200..300).contains(&status) {
                    bail!("{}: HTTP {status}", target.name);
                }
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let elapsed = started.elapsed();
    let requests = u32::try_from(latencies.len().max(1)).unwrap_or(u32::MAX);
    let server_cpu = match (server, server_before) {
        (Some(pid), Some(before)) => Some(cpu_time(pid)?.saturating_sub(before) / requests),
        _ => None,
    };
    let own_cpu = own_cpu_time()?.saturating_sub(own_before) / requests;
    Ok(Figures::from(latencies, elapsed, server_cpu, own_cpu))
}

/// Writes every name of `--keys` that a [`Work::Names`] phase did not
/// reach, so that reads find them all.
pub async fn fill(target: &Target, options: &Options) -> Result<()> {
    let mut connection = Connection::open(&target.base).await?;
    for key in 0..options.keys {
        let name = format!("key-{key}");
        let path = (target.read)(&name);
        let headers = [(target.auth.0, target.auth.1.as_str())];
        if connection.send("GET", &path, &headers, None).await? == 404 {
            send_write(&mut connection, target, &Carriage::Plain, &name).await?;
        }
    }
    Ok(())
}

/// Sends `target`'s write of `name`, as `carriage` carries it.
async fn send_write(
    connection: &mut Connection,
    target: &Target,
    carriage: &Carriage,
    name: &str,
) -> Result<u16> {
    let (method, path, body) = (target.write)(name);
    let body = serde_json::to_vec(&carriage.body(method.as_str(), &path, body)?)?;
    let headers = [(target.auth.0, target.auth.1.as_str())];
    connection
        .send(method.as_str(), &path, &headers, Some(&body))
        .await
}

/// Throughput, latency and CPU time of one phase.
#[derive(Clone)]
pub struct Figures {
    requests: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// The server's CPU time per request, when it was measured.
    server_cpu: Option<Duration>,
    /// The load generator's own CPU time per request.
    own_cpu: Duration,
}

impl Figures {
    fn from(
        mut latencies: Vec<Duration>,
        elapsed: Duration,
        server_cpu: Option<Duration>,
        own_cpu: Duration,
    ) -> Figures {
        latencies.sort_unstable();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        Figures {
            requests: latencies.len(),
            seconds: elapsed.as_secs_f64(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            server_cpu,
            own_cpu,
        }
    }

    fn per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// The median of `values` (which is not empty).
fn median<T: Copy + PartialOrd>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values[values.len() / 2]
}

/// Median throughput, latencies and CPU times over rounds.
pub struct Summary {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub server_cpu: Option<Duration>,
    pub own_cpu: Duration,
}

impl Summary {
    pub fn of(rounds: &[Figures]) -> Summary {
        let server: Vec<Duration> = rounds.iter().filter_map(|f| f.server_cpu).collect();
        Summary {
            per_second: median(rounds.iter().map(Figures::per_second).collect()),
            p50_ms: median(rounds.iter().map(|f| f.p50_ms).collect()),
            p99_ms: median(rounds.iter().map(|f| f.p99_ms).collect()),
            server_cpu: (!server.is_empty()).then(|| median(server)),
            own_cpu: median(rounds.iter().map(|f| f.own_cpu).collect()),
        }
    }
}

/// A process's CPU time so far (user and system), from `/proc`.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    proc_cpu_time(&format!("/proc/{pid}/stat"))
}

/// This process's CPU time so far.
fn own_cpu_time() -> Result<Duration> {
    proc_cpu_time("/proc/self/stat")
}

fn proc_cpu_time(stat: &str) -> Result<Duration> {
    let stat = std::fs::read_to_string(stat)?;
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
