//! The `coffer` CLI against a running server, and its exit codes.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use coffer_e2e::Server;
use coffer_e2e::server::coffer_binary;

fn coffer(server: &Server, args: &[&str], stdin: Option<&str>) -> Output {
    coffer_as(server, &server.token, args, stdin)
}

fn coffer_as(server: &Server, token: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(coffer_binary())
        .args(args)
        .env("COFFER_ADDR", &server.addr)
        .env("COFFER_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn the_cli_puts_gets_lists_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");

    let out = stdout(&coffer(
        &server,
        &["secret", "put", "app", "db/password"],
        Some("s3cret value\n"),
    ));
    assert!(out.contains("version 1"), "{out}");
    stdout(&coffer(
        &server,
        &["secret", "put", "app", "api-key", "from-arg"],
        None,
    ));
    assert_eq!(
        stdout(&coffer(
            &server,
            &["secret", "get", "app", "db/password"],
            None
        )),
        "s3cret value\n"
    );
    assert_eq!(
        stdout(&coffer(&server, &["secret", "get", "app", "api-key"], None)),
        "from-arg\n"
    );
    assert_eq!(
        stdout(&coffer(&server, &["secret", "list", "app"], None)),
        "api-key\ndb/password\n"
    );

    let conflict = coffer(
        &server,
        &["secret", "put", "app", "api-key", "x", "--cas", "0"],
        None,
    );
    assert_eq!(
        conflict.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&conflict.stderr)
    );

    stdout(&coffer(
        &server,
        &["secret", "delete", "app", "api-key"],
        None,
    ));
    let missing = coffer(&server, &["secret", "get", "app", "api-key"], None);
    assert_eq!(missing.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("is deleted"));
}

#[test]
fn the_cli_creates_lists_and_revokes_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    stdout(&coffer(
        &server,
        &["secret", "put", "app", "db"],
        Some("value"),
    ));

    let created = stdout(&coffer(
        &server,
        &[
            "token",
            "create",
            "--name",
            "app-reader",
            "--allow",
            "app:read",
        ],
        None,
    ));
    let token = created.trim().to_owned();
    assert!(token.starts_with("cft_"), "{created}");
    assert_eq!(
        stdout(&coffer_as(
            &server,
            &token,
            &["secret", "get", "app", "db"],
            None
        )),
        "value\n"
    );
    let refused = coffer_as(&server, &token, &["secret", "put", "app", "db", "x"], None);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("HTTP 403"));

    let listing = stdout(&coffer(&server, &["token", "list"], None));
    let line = listing.lines().find(|l| l.contains("app-reader")).unwrap();
    let id = line.split_whitespace().next().unwrap();
    assert!(!listing.contains(&token));
    stdout(&coffer(&server, &["token", "revoke", id], None));
    let revoked = coffer_as(&server, &token, &["secret", "get", "app", "db"], None);
    assert_eq!(revoked.status.code(), Some(2));

    let bad = coffer(
        &server,
        &["token", "create", "--name", "x", "--allow", "app:fly"],
        None,
    );
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_wrong_token_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), "");
    server.token = "cft_wrong".into();
    let output = coffer(&server, &["secret", "get", "app", "x"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("token"));
}

#[test]
fn a_bad_configuration_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("coffer.toml");
    for (text, key) in [
        (
            "[storage]\nplugin = \"storage-sql\"\n[storage.limits]\nmemory_mb = \"lots\"\n",
            "storage.limits.memory_mb",
        ),
        ("listen = \"not an address\"\n", "listen"),
        (
            "[keyring]\nplugin = \"keyring-file\"\nsha256 = \"abc\"\n",
            "keyring.sha256",
        ),
        ("colour = \"blue\"\n", "colour"),
    ] {
        std::fs::write(&file, text).unwrap();
        let output = Command::new(coffer_binary())
            .args(["server", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
}

#[test]
fn a_missing_plugin_or_wrong_pin_stops_the_server_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let port = coffer_e2e::server::free_port();
    let file = dir.path().join("coffer.toml");
    for (extra, expected) in [
        ("[storage]\nplugin = \"no-such-plugin\"\n", "no-such-plugin"),
        (
            &*format!(
                "[keyring]\nplugin = \"keyring-file\"\nsha256 = \"{}\"\n",
                "0".repeat(64)
            ),
            "sha256 mismatch",
        ),
    ] {
        std::fs::write(
            &file,
            coffer_e2e::server::config_text(dir.path(), port, extra),
        )
        .unwrap();
        let output = Command::new(coffer_binary())
            .args(["server", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
}

#[test]
fn completions_cover_every_command_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_coffer()"),
        ("zsh", "#compdef coffer"),
        ("fish", "complete -c coffer"),
    ] {
        let output = Command::new(coffer_binary())
            .args(["completions", shell])
            .output()
            .unwrap();
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(
            output.status.success() && script.contains(marker),
            "{shell}: {script}"
        );
        for command in ["secret", "kek", "migrate", "undelete", "completions"] {
            assert!(script.contains(command), "{shell} completes {command}");
        }
    }
}

#[test]
fn config_check_shows_the_effective_configuration_without_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("coffer.toml");
    std::fs::write(
        &file,
        "[storage]\nplugin = \"storage-sql\"\n[storage.sql]\nurl = \"postgres://coffer:hunter2@db.internal/coffer\"\n\
         [keyring]\nplugin = \"keyring-file\"\nenv = [\"COFFER_KEK\"]\n[keyring.config]\nkey_env = \"COFFER_KEK\"\n\
         rotation_key = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n",
    )
    .unwrap();
    let check = |file: &std::path::Path| {
        Command::new(coffer_binary())
            .args(["config", "check"])
            .arg(file)
            .env_remove("COFFER_CONFIG")
            .output()
            .unwrap()
    };
    let output = check(&file);
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !shown.contains("hunter2") && !shown.contains("AAECAwQF"),
        "{shown}"
    );
    assert!(
        shown.contains("postgres://coffer:<redacted>@db.internal/coffer"),
        "{shown}"
    );
    assert!(
        shown.contains("key_env = \"COFFER_KEK\""),
        "a variable's name is no secret: {shown}"
    );
    assert!(
        shown.contains("max_versions = 10"),
        "defaults are filled in: {shown}"
    );

    std::fs::write(&file, "max_versions = 0\n").unwrap();
    let output = check(&file);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("max_versions"));
}

/// Checks that every line of a table starts each column where its header
/// does: the header's words (separated by two spaces or more) mark the
/// columns, and no cell may begin inside a gutter.
fn assert_aligned(table: &str) {
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    let starts: Vec<usize> = header
        .char_indices()
        .filter(|&(i, c)| c != ' ' && (i == 0 || header[..i].ends_with("  ")))
        .map(|(i, _)| i)
        .collect();
    assert!(starts.len() >= 2, "{table}");
    for line in lines {
        for &start in &starts[1..] {
            let before = &line[..start.min(line.len())];
            assert!(
                line.len() <= start || before.ends_with("  "),
                "a cell runs into the column at {start}:\n{table}"
            );
        }
    }
}

#[test]
fn reads_print_as_tables_json_or_raw() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    for namespace in ["a-namespace-with-a-rather-long-name", "b"] {
        stdout(&coffer(
            &server,
            &["secret", "put", namespace, "db", "v1"],
            None,
        ));
    }
    stdout(&coffer(&server, &["keys", "rotate", "b"], None));

    let listing = stdout(&coffer(&server, &["keys", "list"], None));
    assert!(listing.starts_with("NAMESPACE"), "{listing}");
    assert_aligned(&listing);
    let raw = stdout(&coffer(&server, &["keys", "list", "--format", "raw"], None));
    assert_eq!(raw, "a-namespace-with-a-rather-long-name\nb\n");
    let json: serde_json::Value = serde_json::from_str(&stdout(&coffer(
        &server,
        &["keys", "list", "--format", "json"],
        None,
    )))
    .unwrap();
    assert_eq!(json["namespaces"][1]["keys"], 2, "{json}");

    let status = stdout(&coffer(&server, &["kek", "status"], None));
    let table = &status[status.find("ID").unwrap()..];
    assert_aligned(table);
    let shown = stdout(&coffer(&server, &["keys", "show", "b"], None));
    assert_aligned(&shown[shown.find("ID").unwrap()..]);
    let tokens = stdout(&coffer(&server, &["token", "list"], None));
    assert_aligned(&tokens);

    let secret = stdout(&coffer(
        &server,
        &["secret", "get", "b", "db", "--format", "table"],
        None,
    ));
    assert!(
        secret
            .lines()
            .any(|l| l.starts_with("value ") && l.ends_with(" v1")),
        "{secret}"
    );
    assert_aligned(&secret);
    let json: serde_json::Value = serde_json::from_str(&stdout(&coffer_env(
        &server,
        &["secret", "get", "b", "db"],
        ("COFFER_FORMAT", "json"),
    )))
    .unwrap();
    assert_eq!(json["value"], "v1");
}

fn coffer_env(server: &Server, args: &[&str], (key, value): (&str, &str)) -> Output {
    Command::new(coffer_binary())
        .args(args)
        .env("COFFER_ADDR", &server.addr)
        .env("COFFER_TOKEN", &server.token)
        .env(key, value)
        .output()
        .unwrap()
}
