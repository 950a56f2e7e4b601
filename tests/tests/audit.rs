//! The audit trail end to end: one chained record per request, no values or
//! tokens in it or in the log, tampering caught by `coffer audit verify` —
//! edits, deletions, a tail cut off, a chain recomputed without the key —
//! rotation and retention keeping the chain, a torn last line continued,
//! unauthenticated floods bounded, filtered reads, and fail-closed serving.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use coffer_e2e::Server;
use coffer_e2e::server::coffer_binary;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// `coffer audit verify --config <the server's config> [files]`: checked
/// without the server, with its keys.
fn verify(server: &Server, files: &[&str]) -> (bool, String) {
    let output = Command::new(coffer_binary())
        .args(["audit", "verify", "--config"])
        .arg(&server.config_file)
        .args(files)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

/// `coffer audit verify` against the running server.
fn verify_online(server: &Server) -> (bool, String) {
    let output = Command::new(coffer_binary())
        .args(["audit", "verify", "--addr", &server.addr])
        .env("COFFER_TOKEN", &server.token)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

#[tokio::test]
async fn every_request_leaves_one_chained_record_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    let value = "audit-canary-value-91c3";
    server.put("payments/db/password", value).await;
    server.get("payments/db/password").await;
    server.get("payments").await;
    server
        .call(Method::DELETE, "/v1/secrets/payments/db/password", None)
        .await;
    server
        .call_as("cft_not-valid", Method::GET, "/v1/secrets/payments/x", None)
        .await;
    let (_, created) = server
        .call(Method::POST, "/v1/auth/tokens", Some(json!({"name": "reader", "rules": [{"namespaces": "orders", "capabilities": ["read"]}]})))
        .await;
    let reader = created["token"].as_str().unwrap().to_owned();
    server
        .call_as(
            &reader,
            Method::GET,
            "/v1/secrets/payments/db/password",
            None,
        )
        .await;
    server.call(Method::GET, "/v1/sys/health", None).await;

    let records = server.audit_records();
    let seen: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("secret.write", "requested"),
            ("secret.write", "allowed"),
            ("secret.read", "allowed"),
            ("secret.list", "allowed"),
            ("secret.delete", "requested"),
            ("secret.delete", "allowed"),
            ("secret.read", "denied"),
            ("token.create", "requested"),
            ("token.create", "allowed"),
            ("secret.read", "denied"),
        ],
        "changes are recorded before and after; health checks are left out by default"
    );
    assert_eq!(records[0]["request_id"], records[1]["request_id"]);
    assert_eq!(
        records[6]["actor_id"],
        serde_json::Value::Null,
        "an invalid token is nobody"
    );
    assert_eq!(records[9]["actor_name"], "reader");
    assert_eq!(records[0]["namespace"], "payments");
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["seq"], i as u64 + 1);
        assert!(record["request_id"].as_str().unwrap().len() >= 16);
        assert_eq!(record["remote"], "127.0.0.1");
    }

    // Names appear only as HMACs, which an auditor can recompute.
    let (_, hashed) = server
        .call(
            Method::POST,
            "/v1/audit/hash",
            Some(json!({"value": "db/password"})),
        )
        .await;
    assert_eq!(records[0]["path"], hashed["hash"]);
    assert!(hashed["hash"].as_str().unwrap().starts_with("hmac-sha256:"));

    let audit_text = std::fs::read_to_string(dir.path().join("audit/audit.log")).unwrap();
    for (what, secret) in [
        ("value", value),
        ("name", "db/password"),
        ("root token", &server.token),
        ("token", &reader),
    ] {
        assert!(
            !audit_text.contains(secret),
            "the audit log holds the {what}"
        );
        assert!(
            !server.log().contains(secret),
            "the server log holds the {what}"
        );
    }

    let (intact, report) = verify_online(&server);
    assert!(intact, "{report}");
    assert!(report.contains("11 records"), "{report}");
    let (intact, report) = verify(&server, &[]);
    assert!(intact, "{report}");
}

#[tokio::test]
async fn every_kind_of_tampering_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), "");
    for i in 0..6 {
        server.put(&format!("app/s{i}"), "v").await;
    }
    server.stop();
    let file = dir.path().join("audit/audit.log");
    let original = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    let file_arg = file.to_str().unwrap();
    assert!(verify(&server, &[file_arg]).0);

    let edited = original
        .replacen("\"secret.write\"", "\"secret.read\"", 3)
        .replacen("\"secret.read\"", "\"secret.write\"", 2);
    let mut deleted = lines.clone();
    deleted.remove(2);
    let mut inserted = lines.clone();
    inserted.insert(2, lines[1]);
    let mut reordered = lines.clone();
    reordered.swap(2, 4);
    let cases = [
        ("edit", edited),
        ("delete", deleted.join("\n") + "\n"),
        ("insert", inserted.join("\n") + "\n"),
        ("reorder", reordered.join("\n") + "\n"),
    ];
    for (kind, text) in cases {
        std::fs::write(&file, &text).unwrap();
        let (intact, report) = verify(&server, &[file_arg]);
        assert!(!intact, "{kind} went unnoticed");
        assert!(report.contains("line 3"), "{kind}: {report}");
    }

    // Cut the last records off: every remaining link is right, but the
    // checkpoint written at shutdown vouches for more.
    std::fs::write(&file, lines[..lines.len() - 3].join("\n") + "\n").unwrap();
    let (intact, report) = verify(&server, &[file_arg]);
    assert!(!intact, "a cut tail went unnoticed");
    assert!(report.contains("cut from the end"), "{report}");

    // Edit record 3 and recompute every link after it, as one can without
    // the key: SHA-256 over the same input, the chain older builds wrote.
    let mut prev = String::new();
    let rechained: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let mut record: Value = serde_json::from_str(line).unwrap();
            if i < 2 {
                prev = record["mac"].as_str().unwrap().to_owned();
                return (*line).to_owned();
            }
            if i == 2 {
                record["action"] = json!("secret.read");
            }
            let seq = record["seq"].as_u64().unwrap();
            // The entry's JSON, its fields in the order coffer writes them.
            let fields = [
                "time",
                "request_id",
                "actor_id",
                "actor_name",
                "action",
                "namespace",
                "path",
                "outcome",
                "status",
                "remote",
            ];
            let entry = format!(
                "{{{}}}",
                fields
                    .iter()
                    .map(|f| format!("{:?}:{}", f, record[*f]))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
            sha2::Digest::update(&mut hasher, prev.as_bytes());
            sha2::Digest::update(&mut hasher, seq.to_be_bytes());
            sha2::Digest::update(&mut hasher, entry.as_bytes());
            let link = hex::encode(sha2::Digest::finalize(hasher));
            format!(
                "{{\"seq\":{seq},\"prev\":\"{}\",{},\"mac\":\"{link}\"}}",
                std::mem::replace(&mut prev, link.clone()),
                &entry[1..entry.len() - 1]
            )
        })
        .collect();
    std::fs::write(&file, rechained.join("\n") + "\n").unwrap();
    let (intact, report) = verify(&server, &[file_arg]);
    assert!(!intact, "a chain recomputed without the key went unnoticed");
    assert!(report.contains("line 3"), "{report}");
}

#[tokio::test]
async fn a_torn_last_line_continues_the_chain_instead_of_restarting_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), "");
    for i in 0..3 {
        server.put(&format!("app/s{i}"), "v").await;
    }
    server.kill();
    // A crash in the middle of a write leaves half a record.
    let file = dir.path().join("audit/audit.log");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("{\"seq\":7,\"prev\":\"00");
    std::fs::write(&file, &text).unwrap();

    let server = Server::start(dir.path(), "");
    server.put("app/after", "v").await;
    let records = server.audit_records();
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "one chain, no restart at 1"
    );
    assert_eq!(records[6]["action"], "audit.recovered", "{}", records[6]);
    assert!(
        records[6]["detail"].as_str().unwrap().contains("torn"),
        "{}",
        records[6]
    );
    let (intact, report) = verify_online(&server);
    assert!(intact, "{report}");
}

#[tokio::test]
async fn unauthenticated_requests_cost_a_bounded_record_and_a_flood_is_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    // The root token is used once before the flood: this node knows it is good.
    server.put("app/before", "v").await;
    let audit = dir.path().join("audit/audit.log");
    let before = std::fs::metadata(&audit).unwrap().len();
    // A 60 KB path, without a token.
    let long = "n".repeat(60_000);
    let (status, _) = server
        .call_as(
            "",
            Method::PUT,
            &format!("/v1/secrets/{long}/x"),
            Some(json!({"value": "v"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let size = std::fs::metadata(&audit).unwrap().len() - before;
    assert!(size < 2_000, "two records took {size} bytes");

    // Bad tokens from one address: after a burst they are dropped unseen.
    let mut statuses = Vec::new();
    for i in 0..60 {
        let bogus = format!("cft_{:043}", i);
        let (status, _) = server
            .call_as(&bogus, Method::GET, "/v1/secrets/app/x", None)
            .await;
        statuses.push(status);
    }
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let dropped = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        refused <= 25 && dropped >= 35,
        "{refused} refused, {dropped} dropped"
    );
    let records = server.audit_records();
    let throttled: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "auth.throttled")
        .collect();
    assert_eq!(throttled.len(), 1, "one summary, not a record per request");
    assert!(
        records.len() < 35,
        "{} records for the flood",
        records.len()
    );
    // A good token from the same address is still served.
    let (status, _) = server.put("app/ok", "v").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn retention_deletes_only_rotated_files_that_verify() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        "[audit]\nrotate_bytes = 4096\nkeep_files = 2\ncheckpoint_ms = 50\n",
    );
    let rotated = || {
        std::fs::read_dir(dir.path().join("audit"))
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with("audit.log.")
            })
            .count()
    };
    for i in 0..60 {
        server.put(&format!("app/s{i}"), "v").await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(rotated() <= 2, "{} rotated files kept", rotated());
    let (intact, report) = verify_online(&server);
    assert!(intact, "what is retained still verifies: {report}");

    // A rotated file someone edited is never deleted: retention stops.
    let oldest = {
        let mut files: Vec<_> = std::fs::read_dir(dir.path().join("audit"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e.to_string_lossy().parse::<u64>().is_ok())
            })
            .collect();
        files.sort_by_key(|p| {
            p.extension()
                .unwrap()
                .to_string_lossy()
                .parse::<u64>()
                .unwrap()
        });
        files.remove(0)
    };
    let text = std::fs::read_to_string(&oldest).unwrap();
    std::fs::write(&oldest, text.replacen("secret.write", "secret.read", 1)).unwrap();
    for i in 0..60 {
        server.put(&format!("app/t{i}"), "v").await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(oldest.exists(), "an unverified file was deleted");
    let (_, health) = server.call(Method::GET, "/v1/sys/health", None).await;
    assert_eq!(health["audit_retention"], "blocked", "{health}");
}

#[tokio::test]
async fn rotation_keeps_the_chain_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "[audit]\nrotate_bytes = 4096\n");
    for i in 0..40 {
        server.put(&format!("app/s{i}"), "v").await;
    }
    let (intact, report) = verify(&server, &[]);
    assert!(intact, "{report}");
    assert!(report.contains("80 records"), "{report}");
    let files = std::fs::read_dir(dir.path().join("audit")).unwrap().count();
    assert!(files >= 3, "{files} files: the log rotated");
    let (alone, _) = verify(
        &server,
        &[dir.path().join("audit/audit.log").to_str().unwrap()],
    );
    assert!(!alone, "the newest file alone does not start the chain");
}

#[tokio::test]
async fn audit_reads_are_filtered_and_need_audit_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    server.put("payments/a", "v").await;
    server.put("orders/b", "v").await;
    server.get("orders/b").await;
    let (_, ops) = server
        .call(
            Method::POST,
            "/v1/auth/tokens",
            Some(json!({"name": "ops", "role": "operator"})),
        )
        .await;
    let ops = ops["token"].as_str().unwrap().to_owned();
    let (_, app) = server
        .call(
            Method::POST,
            "/v1/auth/tokens",
            Some(json!({"name": "app", "rules": [{"namespaces": "*", "capabilities": ["read"]}]})),
        )
        .await;
    let app = app["token"].as_str().unwrap().to_owned();

    let (status, body) = server
        .call_as(&ops, Method::GET, "/v1/audit?namespace=orders", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let actions: Vec<&str> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["secret.write", "secret.write", "secret.read"]);
    let (_, body) = server
        .call_as(
            &ops,
            Method::GET,
            "/v1/audit?action=token.create&actor=root",
            None,
        )
        .await;
    // Each creation is recorded before it runs and once answered, both
    // naming who asked.
    let outcomes: Vec<&str> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["requested", "allowed", "requested", "allowed"]);
    let (_, body) = server
        .call_as(&ops, Method::GET, "/v1/audit?since=3&limit=1", None)
        .await;
    assert_eq!(body["records"][0]["seq"], 3);
    let (status, _) = server.call_as(&app, Method::GET, "/v1/audit", None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "reading secrets does not grant reading the audit log"
    );
}

#[tokio::test]
async fn nothing_is_served_when_no_audit_sink_can_write() {
    let dir = tempfile::tempdir().unwrap();
    // /dev/full answers every write with "no space left on device".
    let mut server = Server::start(dir.path(), "[audit]\nfile = \"/dev/full\"\n");
    let (status, body) = server.put("app/x", "v").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("audit_unavailable"))
    );
    let (status, _) = server.get("app/x").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, health) = server.call(Method::GET, "/v1/sys/health", None).await;
    assert_eq!(
        (status, health["audit"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("failing"))
    );
    let (status, _) = server.call(Method::GET, "/v1/sys/ready", None).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready without an audit trail"
    );
    let (status, _) = server.call(Method::GET, "/v1/sys/live", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "but alive: a restart would not help"
    );
    assert!(server.log().contains("audit sink failed"));
    server.stop();

    // With a second sink that works, the failing one does not stop service.
    let server = Server::start(dir.path(), "[audit]\nfile = \"/dev/full\"\nstdout = true\n");
    let (status, _) = server.put("app/x", "v").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        std::fs::read_to_string(dir.path().join("server.out"))
            .unwrap()
            .contains("\"secret.write\"")
    );
}

#[tokio::test]
async fn a_deleted_audit_file_is_noticed_and_shows_in_verification() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    server.put("app/a", "v").await;
    std::fs::remove_file(dir.path().join("audit/audit.log")).unwrap();
    // The file's identity is checked once a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _) = server.put("app/b", "v").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        server.log().contains("deleted or replaced"),
        "{}",
        server.log()
    );
    let (intact, report) = verify_online(&server);
    assert!(
        !intact && report.contains("line 1"),
        "the new file cannot hide the loss: {report}"
    );
}

#[tokio::test]
async fn a_change_that_cannot_be_audited_is_not_made() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), "[audit]\nfile = \"/dev/full\"\n");
    let (status, _) = server.put("app/unaudited", "v").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    server.stop();
    let server = Server::start(dir.path(), "");
    let (status, _) = server.get("app/unaudited").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the refused write never happened"
    );
}
