//! Two nodes sharing one PostgreSQL database and one keyset file: key
//! changes made on either reach the other, concurrent rotations from both
//! never leave two Active keys, and a KEK rotated on one node is picked up
//! by the other without a restart. A node's first write of a secret the
//! other wrote keeps every version there.

#![allow(clippy::unwrap_used)]

use coffer_e2e::{Server, key_usage};
use reqwest::{Method, StatusCode};

fn database_url() -> String {
    std::env::var("COFFER_TEST_DATABASE_URL").expect(
        "COFFER_TEST_DATABASE_URL is not set: run `cargo xtask test`, which starts PostgreSQL",
    )
}

fn shared_config(dir: &std::path::Path, table: &str) -> String {
    let url = database_url();
    let keyset = dir.join("kek").join("keyset.json");
    format!(
        "[storage]\nplugin = \"storage-sql\"\n[storage.sql]\nurl = {url:?}\n[storage.config]\ntable = {table:?}\n\
         {}[keys]\ncache_ttl_ms = 200\ngrace_ms = 0\n[janitor]\nenabled = false\n",
        coffer_e2e::keyring_file(&keyset, true, true)
    )
}

/// Two nodes on one table, `table` and this process's id, in a scratch
/// directory that lives as long as the first value returned.
fn two_nodes(table: &str) -> (tempfile::TempDir, Server, Server) {
    let dir = tempfile::tempdir().unwrap();
    let config = shared_config(dir.path(), &format!("{table}_{}", std::process::id()));
    let a = Server::start(&dir.path().join("a"), &config);
    // The second node reads the root token the first one created.
    let mut b = Server::start(&dir.path().join("b"), &config);
    b.token = a.token.clone();
    (dir, a, b)
}

/// Rotates `namespace` on the node at `addr`; owns its inputs so it can
/// run on a task of its own.
async fn rotate(addr: String, token: String, namespace: &'static str) -> StatusCode {
    let url = format!("{addr}/v1/keys/{namespace}/rotate");
    reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn two_nodes_share_keys_and_never_make_two_active_keys() {
    let (_dir, a, b) = two_nodes("nodes");

    let (status, body) = a.put("orders/db", "from a").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    b.assert_reads("orders/db", "from a").await;

    let rotations = (0..4).flat_map(|_| {
        [
            rotate(a.addr.clone(), a.token.clone(), "orders"),
            rotate(b.addr.clone(), b.token.clone(), "orders"),
        ]
    });
    let mut statuses = Vec::new();
    for status in futures_all(rotations).await {
        assert!(
            status == StatusCode::OK || status == StatusCode::CONFLICT,
            "{status}"
        );
        statuses.push(status);
    }
    let succeeded = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let (_, shown) = b.call(Method::GET, "/v1/keys/orders", None).await;
    let keys = shown["keys"].as_array().unwrap();
    assert_eq!(
        keys.iter().filter(|k| k["status"] == "active").count(),
        1,
        "{shown}"
    );
    assert_eq!(keys.len(), 1 + succeeded, "{shown}");

    // A writes under the newest key; B, whose cached keys expire, reads it.
    a.put("orders/db", "after rotations").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    b.assert_reads("orders/db", "after rotations").await;

    // A KEK rotated on A is followed by B without a reload.
    let (status, report) = a.call(Method::POST, "/v1/sys/kek/rotate", None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    b.assert_reads("orders/db", "after rotations").await;
    assert!(
        b.log().contains("picked up a KEK changed elsewhere"),
        "{}",
        b.log()
    );
    // B's own re-wrap and janitor keep the new primary rather than reverting to its old one.
    let (status, _) = b.call(Method::POST, "/v1/sys/janitor/run", None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, kek) = b.call(Method::GET, "/v1/sys/kek", None).await;
    assert_eq!(kek["primary_key_id"], report["primary_key_id"], "{kek}");
    assert_eq!(kek["pending_rewrap"], 0, "{kek}");
}

/// A node writes a secret without reading it first: as new when it has
/// never seen it, and from what it wrote last otherwise. Where the other
/// node wrote in between, the write must still land on top of what is
/// there, and check-and-set must judge it against the stored versions,
/// not the guess.
#[tokio::test]
async fn writes_from_a_nodes_guess_keep_what_the_other_node_wrote() {
    let (_dir, a, b) = two_nodes("guess");
    let names = ["orders/plain", "orders/checked", "orders/taken"];
    for (version, value) in [(1, "one"), (2, "two")] {
        for name in names {
            assert_eq!(write(&a, name, value, None).await, Ok(version), "{name}");
        }
    }

    // Each name is new to B, and each write gets past the guess its own
    // way: storage refuses the record guessed new (no check-and-set, and
    // `cas: 0`), or the write refuses the guess itself (`cas: 2`).
    assert_eq!(write(&b, "orders/plain", "from b", None).await, Ok(3));
    assert_eq!(write(&b, "orders/checked", "from b", Some(2)).await, Ok(3));
    let refused = write(&b, "orders/taken", "from b", Some(0)).await;
    assert_eq!(refused, Err(StatusCode::CONFLICT));

    // A remembers writing version 2 of each, and its next write starts
    // from that: storage refuses it where B wrote since.
    assert_eq!(write(&a, "orders/plain", "from a", None).await, Ok(4));
    assert_eq!(write(&a, "orders/checked", "from a", Some(3)).await, Ok(4));
    assert_eq!(write(&a, "orders/taken", "from a", None).await, Ok(3));

    for name in names {
        let kept: &[&str] = match name {
            "orders/taken" => &["one", "two", "from a"],
            _ => &["one", "two", "from b", "from a"],
        };
        for (version, value) in (1..).zip(kept) {
            let (status, read) = b.get(&format!("{name}?version={version}")).await;
            assert_eq!(
                (status, read["value"].as_str()),
                (StatusCode::OK, Some(*value))
            );
        }
    }
}

/// Writes `value` to the secret `name` on `server`, with `cas` when
/// given; the version written, or the refusal's status.
async fn write(
    server: &Server,
    name: &str,
    value: &str,
    cas: Option<u32>,
) -> Result<u64, StatusCode> {
    let mut body = serde_json::json!({ "value": value });
    if let Some(cas) = cas {
        body["cas"] = cas.into();
    }
    let path = format!("/v1/secrets/{name}");
    match server.call(Method::PUT, &path, Some(body)).await {
        (StatusCode::OK, answer) => Ok(answer["version"].as_u64().unwrap()),
        (status, _) => Err(status),
    }
}

/// Runs the futures concurrently on spawned tasks.
async fn futures_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

/// Writes the lease record as a node named `holder` would, expiring in
/// `ms` milliseconds: sealed with the store's record key, which a node
/// holding the keyset at `keyset` can recover.
async fn plant_lease(table: &str, keyset: &std::path::Path, holder: &str, ms: i64) {
    let pool = sqlx::PgPool::connect(&database_url()).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (wrapped,): (Vec<u8>,) = sqlx::query_as(&format!(
        "SELECT v FROM {table} WHERE k = 'sys/keys/records'"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    let key = coffer_e2e::records::record_key(&std::fs::read_to_string(keyset).unwrap(), &wrapped);
    let body = serde_json::json!({ "holder": holder, "expires_at_ms": now + ms }).to_string();
    let value = coffer_crypto::sealed::seal(&key, "sys/leases/keys", b'L', 1, body.as_bytes());
    sqlx::query(&format!(
        "INSERT INTO {table} (k, v, rev) VALUES ('sys/leases/keys', $1, 7) \
         ON CONFLICT (k) DO UPDATE SET v = excluded.v, rev = {table}.rev + 1"
    ))
    .bind(value)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

#[tokio::test]
async fn key_changes_wait_for_another_nodes_lease_and_take_it_over_when_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let table = format!("lease_{}", std::process::id());
    let server = Server::start(dir.path(), &shared_config(dir.path(), &table));
    server.put("leased/one", "1").await;

    // A live lease held elsewhere: the change waits, then says who holds it.
    let keyset = dir.path().join("kek").join("keyset.json");
    plant_lease(&table, &keyset, "node-elsewhere", 60_000).await;
    let (status, body) = server
        .call(Method::POST, "/v1/keys/leased/rotate", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("node-elsewhere"),
        "{body}"
    );
    let (_, cycle) = server.call(Method::POST, "/v1/sys/janitor/run", None).await;
    assert_eq!(
        cycle["ran"], false,
        "the janitor skips while another node holds the lease"
    );

    // A lease about to expire is taken over once it has.
    plant_lease(&table, &keyset, "node-elsewhere", 1_000).await;
    let started = std::time::Instant::now();
    let (status, body) = server
        .call(Method::POST, "/v1/keys/leased/rotate", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "it waited for the expiry"
    );
    let (_, cycle) = server.call(Method::POST, "/v1/sys/janitor/run", None).await;
    assert_eq!(cycle["ran"], true, "{cycle}");
}

#[tokio::test]
async fn a_node_with_stale_caches_moves_secrets_forward_and_wraps_under_the_new_kek() {
    let dir = tempfile::tempdir().unwrap();
    let config = shared_config(dir.path(), &format!("stale_{}", std::process::id()));
    let a = Server::start(&dir.path().join("a"), &config);
    // B trusts its cached keys for a minute: every change below is made on A.
    let slow = config.replace("cache_ttl_ms = 200", "cache_ttl_ms = 60000");
    let mut b = Server::start(&dir.path().join("b"), &slow);
    b.token = a.token.clone();
    for i in 0..5 {
        b.put(&format!("stale/secret-{i}"), "v").await;
    }
    let (_, old) = b.call(Method::GET, "/v1/keys/stale", None).await;
    let old = old["keys"][0]["id"].clone();
    let (status, new) = a.call(Method::POST, "/v1/keys/stale/rotate", None).await;
    assert_eq!(status, StatusCode::OK, "{new}");

    // B's cache still names the old key Active; re-encryption on B must
    // move the secrets onto the new one all the same, not leave them.
    let (status, pass) = b.call(Method::POST, "/v1/keys/stale/reencrypt", None).await;
    assert_eq!(status, StatusCode::OK, "{pass}");
    assert_eq!(pass["total"]["versions"], 5, "{pass}");
    let (_, shown) = a.call(Method::GET, "/v1/keys/stale", None).await;
    assert_eq!(
        (key_usage(&shown, &old), key_usage(&shown, &new["id"])),
        (0, 5),
        "{shown}"
    );

    // A rotates the KEK; B, which never met a key wrapped by the new one,
    // still wraps the next namespace's key under it.
    let (status, rotated) = a.call(Method::POST, "/v1/sys/kek/rotate", None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    b.put("fresh/one", "1").await;
    let (_, fresh) = a.call(Method::GET, "/v1/keys/fresh", None).await;
    assert_eq!(
        fresh["keys"][0]["kek_id"], rotated["primary_key_id"],
        "{fresh}"
    );
    b.assert_reads("stale/secret-0", "v").await;
}
