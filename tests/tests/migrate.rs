//! `coffer migrate --to storage_next`: a running server moves every record
//! to another backend and switches to it — SQLite to PostgreSQL (killed
//! with SIGKILL midway, then resumed), SQLite to DynamoDB, PostgreSQL to
//! Vault KV — losing no acknowledged write, with the old store refusing to
//! start afterwards and the new one serving everything.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use coffer_e2e::aws::{Moto, REGION};
use coffer_e2e::openbao::OpenBao;
use coffer_e2e::server::{Server, refused_start};
use reqwest::{Method, StatusCode};

fn database_url() -> String {
    std::env::var("COFFER_TEST_DATABASE_URL").expect(
        "COFFER_TEST_DATABASE_URL is not set: run `cargo xtask test`, which starts PostgreSQL",
    )
}

/// A storage-sql section named `name` on PostgreSQL, in a table of its own.
fn postgres_section(name: &str) -> String {
    let table = format!("migrate_{}_{}", std::process::id(), rand_suffix());
    format!(
        "[{name}]\nplugin = \"storage-sql\"\n[{name}.sql]\nurl = {:?}\n[{name}.config]\ntable = \"{table}\"\n",
        database_url()
    )
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// `section` with its header renamed from `[storage_next…]` to `[storage…]`.
fn as_storage(section: &str) -> String {
    section.replace("[storage_next", "[storage")
}

/// Writes `count` secrets from 16 clients; returns (path, value) pairs.
async fn write_secrets(server: &Arc<Server>, count: usize, tag: &str) -> Vec<(String, String)> {
    let mut tasks = Vec::new();
    for client in 0..16 {
        let (server, tag) = (server.clone(), tag.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for i in (client..count).step_by(16) {
                let (path, value) = (format!("ns{}/{tag}-{i}", i % 4), format!("{tag}-value-{i}"));
                let (status, body) = server.put(&path, &value).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                written.push((path, value));
            }
            written
        }));
    }
    let mut written = Vec::new();
    for task in tasks {
        written.extend(task.await.unwrap());
    }
    written
}

async fn assert_all(server: &Server, written: &[(String, String)]) {
    for (path, value) in written {
        server.assert_reads(path, value).await;
    }
}

/// Runs `coffer migrate --to storage_next` against `server` to its end;
/// returns what it printed.
fn migrate(server: &Server) -> String {
    let (said, _) = server.cli_streams(&["migrate", "--to", "storage_next"]);
    assert!(
        said.contains("both stores hold the same records: sha256"),
        "{said}"
    );
    eprintln!("{said}");
    said
}

/// After a migration: the old config is refused, the new one serves all.
async fn only_the_new_store_serves(dir: &Path, old: &str, new: &str, written: &[(String, String)]) {
    let said = refused_start(dir, old, &[]);
    assert!(said.contains("coffer migrated this store"), "{said}");
    let server = Server::start(dir, new);
    assert_all(&server, written).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_to_postgres_resumes_after_a_kill_and_loses_no_write() {
    let dir = tempfile::tempdir().unwrap();
    let next = postgres_section("storage_next");
    let server = Arc::new(Server::start(dir.path(), &next));
    let mut written = write_secrets(&server, 2_000, "before").await;

    // Start, then SIGKILL the server once part of the copy is done.
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/sys/migrate",
            Some(serde_json::json!({ "to": "storage_next" })),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mut copied = 0;
    for _ in 0..2_000 {
        let (_, status) = server.call(Method::GET, "/v1/sys/migrate", None).await;
        copied = status["copied"].as_u64().unwrap_or(0);
        if copied >= 300 || status["phase"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut server = Arc::into_inner(server).unwrap();
    server.kill();
    assert!(copied > 0, "the copy never started");

    // The old store still serves (it was not switched), and a second run
    // resumes while clients keep writing.
    let server = Arc::new(Server::start(dir.path(), &next));
    let writer = {
        let server = server.clone();
        tokio::spawn(async move { write_secrets(&server, 300, "during").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let said = migrate(&server);
    assert!(said.contains("resumed a copy"), "{said}");
    written.extend(writer.await.unwrap());
    assert_all(&server, &written).await;
    let (_, plugins) = server.call(Method::GET, "/v1/sys/plugins", None).await;
    assert_eq!(plugins["plugins"][0]["kind"], "storage");
    drop(server);

    only_the_new_store_serves(dir.path(), &next, &as_storage(&next), &written).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_dynamodb() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let next = format!(
        "[storage_next]\nplugin = \"storage-dynamodb\"\n[storage_next.config]\ntable = \"moved\"\n\
         create_table = true\n[storage_next.http]\norigin = {:?}\nauth = \"aws-sigv4\"\n\
         service = \"dynamodb\"\nregion = \"{REGION}\"\n",
        moto.endpoint
    );
    let server = Arc::new(Server::start_with_env(dir.path(), &next, &moto.env()));
    let written = write_secrets(&server, 400, "s").await;
    migrate(&server);
    assert_all(&server, &written).await;
    drop(server);
    let said = refused_start(dir.path(), &next, &moto.env());
    assert!(said.contains("coffer migrated this store"), "{said}");
    let server = Server::start_with_env(dir.path(), &as_storage(&next), &moto.env());
    assert_all(&server, &written).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_vault_kv() {
    let bao = OpenBao::start();
    let token = bao.prepare(false, "1h").await;
    let dir = tempfile::tempdir().unwrap();
    let source = postgres_section("storage");
    let next = format!(
        "[storage_next]\nplugin = \"storage-vault\"\n[storage_next.http]\norigin = {:?}\n\
         auth = \"vault-token\"\ntoken_env = \"MIGRATE_VAULT_TOKEN\"\npaths = [\"/v1/secret/\"]\n",
        bao.addr
    );
    let env = [("MIGRATE_VAULT_TOKEN", token.as_str())];
    let config = format!("{source}{next}");
    let server = Arc::new(Server::start_with_env(dir.path(), &config, &env));
    let written = write_secrets(&server, 400, "s").await;
    migrate(&server);
    assert_all(&server, &written).await;
    drop(server);
    let said = refused_start(dir.path(), &config, &env);
    assert!(said.contains("coffer migrated this store"), "{said}");
    let server = Server::start_with_env(dir.path(), &as_storage(&next), &env);
    assert_all(&server, &written).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_holding_another_servers_records_is_refused() {
    let shared = tempfile::tempdir().unwrap();
    let db = shared.path().join("shared.db");
    let next = format!(
        "[storage_next]\nplugin = \"storage-sql\"\n[storage_next.sql]\nurl = \"sqlite://{}\"\n",
        db.display()
    );
    // Another server already keeps its records there.
    let other = tempfile::tempdir().unwrap();
    drop(Server::start(other.path(), &as_storage(&next)));
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &next);
    server.put("app/db", "hunter2").await;
    let output = server.cli(&["migrate", "--to", "storage_next"]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("another server's records"), "{said}");
    server.assert_reads("app/db", "hunter2").await;
}
