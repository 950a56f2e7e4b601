//! The whole server on PostgreSQL storage (a real server that `cargo xtask
//! test` starts, or the one `COFFER_TEST_DATABASE_URL` names).

#![allow(clippy::unwrap_used)]

use coffer_e2e::Server;
use reqwest::StatusCode;

#[tokio::test]
async fn secrets_round_trip_through_postgres_and_survive_a_restart() {
    let url = std::env::var("COFFER_TEST_DATABASE_URL").expect(
        "COFFER_TEST_DATABASE_URL is not set: run `cargo xtask test`, which starts PostgreSQL",
    );
    let table = format!("e2e_{}", std::process::id());
    let extra = format!(
        "[storage]\nplugin = \"storage-sql\"\n[storage.sql]\nurl = {url:?}\n[storage.config]\ntable = {table:?}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &extra);
    let (status, _) = server.put("pg/one", "from postgres").await;
    assert_eq!(status, StatusCode::OK);
    server.stop();
    assert!(
        !dir.path().join("coffer.db").exists(),
        "nothing went to SQLite"
    );

    let server = Server::start(dir.path(), &extra);
    let (status, body) = server.get("pg/one").await;
    assert_eq!(
        (status, body["value"].as_str()),
        (StatusCode::OK, Some("from postgres"))
    );
}
