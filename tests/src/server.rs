//! A `coffer server` process for one test, stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// How long a server may take to start (a debug build compiling its plugins).
const START_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Server {
    child: Option<Child>,
    pub addr: String,
    pub data_dir: PathBuf,
    pub config_file: PathBuf,
    pub token: String,
    client: reqwest::Client,
}

/// The `coffer` binary: `COFFER_BINARY` when set (benchmarks use a release
/// build), otherwise the one cargo built next to this test's executable.
pub fn coffer_binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("COFFER_BINARY") {
        return PathBuf::from(binary);
    }
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let binary = profile_dir.join("coffer");
    assert!(
        binary.is_file(),
        "{} is missing: run the tests through `cargo xtask test` or `cargo nextest run --workspace`",
        binary.display()
    );
    binary
}

/// Where `cargo xtask` installed the plugin components.
pub fn plugin_dir() -> PathBuf {
    std::env::var_os("COFFER_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/plugins")))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `coffer.toml` for a test server: its own port and data dir, the shared
/// compile cache, the built plugins, plus `extra` TOML.
pub fn config_text(data_dir: &Path, port: u16, extra: &str) -> String {
    let cache = std::env::var_os("COFFER_TEST_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir.join("cache"));
    format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = {:?}\ncache_dir = {:?}\nplugin_dir = {:?}\n{extra}\n",
        data_dir.display().to_string(),
        cache.display().to_string(),
        plugin_dir().display().to_string(),
    )
}

/// How a test client reaches a server that serves HTTPS: the CA it
/// trusts, and for mutual TLS the client's certificate and key (PEM).
#[derive(Clone)]
pub struct TlsClient {
    pub ca_pem: Vec<u8>,
    pub identity_pem: Option<Vec<u8>>,
}

impl TlsClient {
    pub fn client(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&self.ca_pem).unwrap());
        if let Some(identity) = &self.identity_pem {
            builder = builder.identity(reqwest::Identity::from_pem(identity).unwrap());
        }
        builder.build().unwrap()
    }
}

impl Server {
    /// Starts a server on `data_dir` with `extra` configuration and waits
    /// until it is healthy. The root token is read from its file.
    pub fn start(data_dir: &Path, extra: &str) -> Server {
        Server::start_with_env(data_dir, extra, &[])
    }

    /// Like [`Server::start`], with `env` added to the server's environment.
    pub fn start_with_env(data_dir: &Path, extra: &str, env: &[(&str, &str)]) -> Server {
        Server::launch(data_dir, extra, env, None)
    }

    /// Like [`Server::start`] for a server whose `extra` configuration
    /// has a `[tls]` table; `tls` is how clients reach it.
    pub fn start_tls(data_dir: &Path, extra: &str, tls: TlsClient) -> Server {
        Server::launch(data_dir, extra, &[], Some(tls))
    }

    fn launch(
        data_dir: &Path,
        extra: &str,
        env: &[(&str, &str)],
        tls: Option<TlsClient>,
    ) -> Server {
        let port = free_port();
        let config_file = data_dir.join("coffer.toml");
        std::fs::create_dir_all(data_dir).unwrap();
        std::fs::write(&config_file, config_text(data_dir, port, extra)).unwrap();
        // stdout (where the root token is shown once) and the log (stderr)
        // go to separate files, so tests can prove the log holds no secrets.
        let open = |name: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(data_dir.join(name))
                .unwrap()
        };
        let child = Command::new(coffer_binary())
            .args(["server", "--config"])
            .arg(&config_file)
            .env_remove("COFFER_TOKEN")
            .env_remove("COFFER_ADDR")
            .env("COFFER_LOG", "info,coffer=debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(open("server.out"))
            .stderr(open("server.log"))
            .spawn()
            .unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut server = Server {
            child: Some(child),
            addr: format!("{scheme}://127.0.0.1:{port}"),
            data_dir: data_dir.to_path_buf(),
            config_file,
            token: String::new(),
            client: tls
                .as_ref()
                .map_or_else(reqwest::Client::new, TlsClient::client),
        };
        server.wait_healthy(tls.as_ref());
        server.token = std::fs::read_to_string(data_dir.join("root-token"))
            .map(|t| t.trim().to_owned())
            .unwrap_or_default();
        server
    }

    fn wait_healthy(&mut self, tls: Option<&TlsClient>) {
        let started = Instant::now();
        let url = format!("{}/v1/sys/health", self.addr);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "coffer server exited with {status} before serving:\n{}",
                    self.log()
                );
            }
            let healthy = std::thread::spawn({
                let url = url.clone();
                let client = tls.map_or_else(reqwest::Client::new, TlsClient::client);
                move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap()
                        .block_on(async {
                            client
                                .get(&url)
                                .send()
                                .await
                                .is_ok_and(|r| r.status().is_success())
                        })
                }
            })
            .join()
            .unwrap();
            if healthy {
                return;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "coffer server did not become healthy:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends the server process `signal` (`HUP`, `TERM`, …).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().map(Child::id).unwrap();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// Everything the server logged so far (its stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default()
    }

    /// The audit records written so far, parsed.
    pub fn audit_records(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.data_dir.join("audit").join("audit.log"))
            .unwrap_or_default();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Stops the server with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server with SIGKILL (no shutdown of any kind) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Writes `value` to the secret at `path` (under `/v1/secrets/`).
    pub async fn put(&self, path: &str, value: &str) -> (StatusCode, Value) {
        let body = serde_json::json!({ "value": value });
        self.call(Method::PUT, &format!("/v1/secrets/{path}"), Some(body))
            .await
    }

    /// Reads `/v1/secrets/{path}` (a secret, or a listing with its query).
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, &format!("/v1/secrets/{path}"), None)
            .await
    }

    /// Asserts that the secret at `path` reads back as `value`.
    pub async fn assert_reads(&self, path: &str, value: &str) {
        let (status, body) = self.get(path).await;
        assert_eq!(
            (status, body["value"].as_str()),
            (StatusCode::OK, Some(value)),
            "{path}: {body}"
        );
    }

    /// Sends a request with the root token; returns status and JSON body
    /// (`Value::Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_as(&self.token.clone(), method, path, body).await
    }

    pub async fn call_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.addr));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    /// Sends a raw body on its own connection.
    pub async fn call_raw(&self, method: Method, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        // A fresh connection each time: the server closes one whose body it
        // refused to read (413), and a pooled connection would then break
        // the next request.
        let response = reqwest::Client::new()
            .request(method, format!("{}{path}", self.addr))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

impl Server {
    /// Runs the `coffer` CLI against this server, as root.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(coffer_binary())
            .args(args)
            .env("COFFER_ADDR", &self.addr)
            .env("COFFER_TOKEN", &self.token)
            .output()
            .unwrap()
    }

    /// Runs the CLI, asserts it succeeded, and returns its stdout and
    /// stderr.
    pub fn cli_streams(&self, args: &[&str]) -> (String, String) {
        let output = self.cli(args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "coffer {args:?}: {stderr}");
        (String::from_utf8(output.stdout).unwrap(), stderr)
    }
}

/// Runs `coffer server` on `data_dir` with `extra` configuration and `env`
/// added to its environment, expecting it to refuse to start (exit code 1);
/// returns what it printed on stderr.
pub fn refused_start(data_dir: &Path, extra: &str, env: &[(&str, &str)]) -> String {
    let config_file = data_dir.join("coffer.toml");
    std::fs::create_dir_all(data_dir).unwrap();
    std::fs::write(&config_file, config_text(data_dir, free_port(), extra)).unwrap();
    let stderr_file = data_dir.join("refused.log");
    let mut child = Command::new(coffer_binary())
        .args(["server", "--config"])
        .arg(&config_file)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > START_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "coffer server kept running although it should have refused to start:\n{}",
                std::fs::read_to_string(&stderr_file).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&stderr_file).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    stderr
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
