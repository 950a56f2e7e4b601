//! A moto server (the AWS wire emulator) for one test, with signature
//! checking on: the first requests create an IAM user and its access key,
//! and from then on every request must carry a valid SigV4 signature made
//! with that key. Stopped when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::python::{python, support_script};
use crate::server::free_port;

/// Requests moto serves unsigned: creating the user, its policy and its key.
const UNSIGNED_BOOTSTRAP: &str = "3";
/// The region the tests use.
pub const REGION: &str = "eu-west-1";

pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub port: u16,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Moto {
    pub fn start() -> Moto {
        let port = free_port();
        // One request at a time: see support/moto_serve.py.
        let child = Command::new(python())
            .arg(support_script("moto_serve.py"))
            .args(["127.0.0.1", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", UNSIGNED_BOOTSTRAP)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let endpoint = format!("http://127.0.0.1:{port}");
        wait_listening(port);
        let keys: Value = serde_json::from_str(&aws_tool(&[], &["bootstrap", &endpoint])).unwrap();
        Moto {
            child,
            endpoint,
            port,
            access_key_id: keys["access_key_id"].as_str().unwrap().to_owned(),
            secret_access_key: keys["secret_access_key"].as_str().unwrap().to_owned(),
        }
    }

    /// The environment that gives coffer (or the Python helper) the key.
    pub fn env(&self) -> [(&'static str, &str); 2] {
        [
            ("AWS_ACCESS_KEY_ID", self.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.as_str()),
        ]
    }

    /// Runs `aws_tool.py` with this server's key.
    pub fn tool(&self, args: &[&str]) -> String {
        aws_tool(&self.env(), args)
    }

    /// A new KMS key (aliased `alias/coffer-test`): its id and ARN.
    pub fn kms_key(&self) -> (String, String) {
        let key: Value =
            serde_json::from_str(&self.tool(&["kms-key", &self.endpoint, REGION])).unwrap();
        (
            key["key_id"].as_str().unwrap().to_owned(),
            key["arn"].as_str().unwrap().to_owned(),
        )
    }

    /// Every item of `table`, as JSON objects (binary values in base64).
    pub fn scan(&self, table: &str) -> Vec<Value> {
        self.tool(&["scan", &self.endpoint, REGION, table])
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tests/support/aws_tool.py` with `env`; returns its stdout.
pub fn aws_tool(env: &[(&str, &str)], args: &[&str]) -> String {
    crate::python::support_tool("aws_tool.py", env, args)
}

/// Waits until something accepts connections on `port`.
pub fn wait_listening(port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nothing listens on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
