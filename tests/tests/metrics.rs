//! `/v1/sys/metrics` as Prometheus reads it: parsed by the reference
//! parser (PyPI `prometheus-client`), with requests, plugin calls, the
//! audit trail and the janitor counted, and no secret name in any label.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use coffer_e2e::Server;
use coffer_e2e::python::python;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Parses the text format with prometheus-client; the samples as JSON.
fn parse(text: &str) -> Vec<Value> {
    let script = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        print(json.dumps([{'family': f.name, 'type': f.type, 'name': s.name, 'labels': s.labels, 'value': s.value}\n\
            for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]))";
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the parser refused it: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn value(samples: &[Value], name: &str, labels: Value) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| {
            labels
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| &s["labels"][k] == v)
        })
        .map(|s| s["value"].as_f64().unwrap())
        .sum()
}

async fn scrape(server: &Server, token: Option<&str>) -> (StatusCode, String) {
    let mut request = reqwest::Client::new().get(format!("{}/v1/sys/metrics", server.addr));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_parse_and_count_requests_plugin_calls_audit_and_janitor() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "[janitor]\ninterval_ms = 100\n");
    for i in 0..5 {
        server.put(&format!("app/quarterly-merger-{i}"), "v").await;
    }
    server.get("app/quarterly-merger-0").await;
    server.get("app/missing").await;
    server
        .call(Method::GET, "/v1/app/data/quarterly-merger-1", None)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;

    let (status, _) = scrape(&server, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "metrics need a token by default"
    );
    let (status, text) = scrape(&server, Some(&server.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !text.contains("quarterly-merger"),
        "no secret name in the metrics"
    );
    let samples = parse(&text);

    let requests = "coffer_http_request_duration_seconds_count";
    assert_eq!(
        value(
            &samples,
            requests,
            json!({ "route": "secret.write", "status": "200" })
        ),
        5.0
    );
    assert_eq!(
        value(
            &samples,
            requests,
            json!({ "route": "secret.read", "status": "404" })
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            requests,
            json!({ "route": "secret.read", "status": "200" })
        ),
        2.0
    );
    let calls = "coffer_plugin_call_duration_seconds_count";
    assert!(
        value(
            &samples,
            calls,
            json!({ "plugin": "storage-sql", "function": "put", "outcome": "ok" })
        ) >= 5.0
    );
    assert!(
        value(
            &samples,
            calls,
            json!({ "plugin": "keyring-file", "function": "load", "outcome": "ok" })
        ) >= 1.0
    );
    let buckets: Vec<&Value> = samples
        .iter()
        .filter(|s| {
            s["name"] == "coffer_plugin_call_duration_seconds_bucket"
                && s["labels"]["function"] == "put"
        })
        .collect();
    assert_eq!(buckets.last().unwrap()["labels"]["le"], "+Inf");
    assert!(value(&samples, "coffer_audit_records_total", json!({})) >= 10.0);
    assert_eq!(value(&samples, "coffer_audit_writable", json!({})), 1.0);
    assert!(value(&samples, "coffer_janitor_cycles_total", json!({})) >= 1.0);
    // Eight requests with the root token: one read its record, the rest
    // found it cached; the namespace's keys were unwrapped once.
    let hits = |cache: &str| {
        value(
            &samples,
            "coffer_cache_hits_total",
            json!({ "cache": cache }),
        )
    };
    let misses = |cache: &str| {
        value(
            &samples,
            "coffer_cache_misses_total",
            json!({ "cache": cache }),
        )
    };
    assert!(hits("tokens") >= 7.0 && misses("tokens") >= 1.0);
    assert!(hits("data_keys") >= 6.0 && misses("data_keys") >= 1.0);
    // The janitor's cycles are done: this node holds no lease between them
    // (or is in one); either way the gauge names the node.
    let held: Vec<&Value> = samples
        .iter()
        .filter(|s| s["name"] == "coffer_lease_held")
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0]["labels"]["node"].as_str().unwrap().contains(':'));
    let families: Vec<&str> = samples
        .iter()
        .filter_map(|s| s["family"].as_str())
        .collect();
    assert!(
        families.contains(&"coffer_plugin_calls_in_flight"),
        "{families:?}"
    );
}

#[tokio::test]
async fn a_scraper_needs_no_token_when_the_config_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "[metrics]\nunauthenticated = true\n");
    let (status, text) = scrape(&server, None).await;
    assert_eq!(status, StatusCode::OK);
    parse(&text);
}
