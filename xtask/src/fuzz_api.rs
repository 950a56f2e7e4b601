//! `cargo xtask fuzz-api`: starts coffer on a scratch directory and runs
//! schemathesis (PyPI) against it with the server's own OpenAPI document:
//! no answer may be a 5xx, or have a status, content type or body the
//! document does not allow. Prints how many requests it generated. Not
//! part of `cargo xtask test`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cargo, python, status, target_dir, wasm};

/// The checks run on every answer.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

/// Operations left out: revoking a token could revoke the one the run
/// uses, and every later request would only test a 401.
const EXCLUDED_OPERATIONS: &[&str] = &["tokens.revoke"];

/// A server the run stops when it ends.
struct Scratch(Child);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(args: &[String]) -> Result<()> {
    let mut examples = 50u32;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--examples" => {
                examples = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .context("--examples needs a number")?;
            }
            other => bail!("unknown fuzz-api argument {other} (known: --examples N)"),
        }
    }
    wasm::build_components(wasm::PLUGINS)?;
    status(cargo().args(["build", "--package", "coffer", "--bin", "coffer"]))?;
    let bin = python::venv_named("fuzz-api-venv", "fuzz-api-requirements.txt")?;

    let dir = scratch_dir()?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    std::fs::write(
        dir.join("coffer.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {:?}\nplugin_dir = {:?}\n",
            dir.display().to_string(),
            wasm::plugin_dir().display().to_string(),
        ),
    )?;
    let log = std::fs::File::create(dir.join("server.log"))?;
    let server = Scratch(
        Command::new(target_dir().join("debug").join("coffer"))
            .arg("server")
            .arg("--config")
            .arg(dir.join("coffer.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start coffer")?,
    );
    wait_healthy(port)?;
    let token = std::fs::read_to_string(dir.join("root-token"))
        .context("the server wrote no root token")?;

    let mut command = Command::new(bin.join("st"));
    command
        .arg("run")
        .arg(format!("http://127.0.0.1:{port}/v1/sys/openapi.json"))
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
        .args(["--checks", CHECKS])
        .args(["--max-examples", &examples.to_string()])
        .args(["--workers", "1", "--no-color"]);
    for operation in EXCLUDED_OPERATIONS {
        command.args(["--exclude-operation-id", operation]);
    }
    let output = command
        .current_dir(&dir)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run schemathesis")?;
    let text = String::from_utf8_lossy(&output.stdout);
    print!("{text}");
    drop(server);
    // The summary's "Test cases: N generated, …" line.
    let generated = text
        .lines()
        .filter_map(|line| line.split_once(" generated"))
        .find_map(|(before, _)| before.split_whitespace().last()?.parse::<u64>().ok());
    println!(
        "\nfuzz-api: {} requests generated; server log in {}",
        generated.map_or_else(|| "?".to_owned(), |n| n.to_string()),
        dir.join("server.log").display()
    );
    if !output.status.success() {
        bail!("schemathesis found answers that contradict the document (above)");
    }
    Ok(())
}

/// A fresh directory under the target directory.
fn scratch_dir() -> Result<std::path::PathBuf> {
    let dir = target_dir().join("fuzz-api").join(format!(
        "run-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Waits until `/v1/sys/health` answers 200.
fn wait_healthy(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if health(port).unwrap_or(false) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("coffer did not become healthy on port {port}")
}

fn health(port: u16) -> Result<bool> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(
        b"GET /v1/sys/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer.starts_with("HTTP/1.1 200"))
}
