//! storage-sql passes the storage contract on SQLite and on a real
//! PostgreSQL server.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use coffer_runtime::conformance::{self, Scope};
use coffer_runtime::{GuestError, Limits, SqlPool, Storage, StoragePlugin};

async fn sql_storage(url: &str, table: &str) -> Arc<dyn Storage> {
    let pool = Arc::new(
        SqlPool::connect(url, 8, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    let spec = common::storage_spec("storage-sql", &[("table", table)], Limits::default(), pool);
    // The plugin keeps the runtime it was loaded from running.
    Arc::new(StoragePlugin::load(&common::runtime(), spec).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_sql_on_sqlite_passes_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kv.db").display());
    let report = conformance::storage(sql_storage(&url, "coffer_kv").await, Scope::scratch()).await;
    assert!(report.passed(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_sql_on_postgres_passes_the_contract() {
    let url = std::env::var("COFFER_TEST_DATABASE_URL").expect(
        "COFFER_TEST_DATABASE_URL is not set: run `cargo xtask test`, which starts PostgreSQL",
    );
    let table = format!("kv_{}_{}", std::process::id(), rand_suffix());
    let report = conformance::storage(sql_storage(&url, &table).await, Scope::scratch()).await;
    assert!(report.passed(), "{report}");
}

/// Writes that arrive together share a commit, yet each gets the answer it
/// would get alone: of many check-and-set writes on one revision exactly
/// one wins, and every write to its own key lands, readable afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits_and_keep_their_own_answers() {
    use coffer_runtime::Expected;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kv.db").display());
    let storage = sql_storage(&url, "coffer_kv").await;
    let first = storage
        .put("shared", b"v0", Expected::Absent)
        .await
        .unwrap();
    let racers = (0..24).map(|i| {
        let storage = storage.clone();
        tokio::spawn(async move {
            let own = storage
                .put(
                    &format!("own/{i:02}"),
                    format!("v{i}").as_bytes(),
                    Expected::Absent,
                )
                .await;
            let shared = storage
                .put(
                    "shared",
                    format!("r{i}").as_bytes(),
                    Expected::Revision(first),
                )
                .await;
            (own, shared)
        })
    });
    let mut winners = 0;
    for racer in racers {
        let (own, shared) = racer.await.unwrap();
        own.unwrap();
        match shared {
            Ok(_) => winners += 1,
            Err(error) => assert!(
                matches!(error.guest(), Some(GuestError::Conflict(_))),
                "{error:?}"
            ),
        }
    }
    assert_eq!(winners, 1, "one check-and-set write wins its revision");
    for i in 0..24 {
        let entry = storage.get(&format!("own/{i:02}")).await.unwrap().unwrap();
        assert_eq!(entry.value, format!("v{i}").as_bytes());
    }
    // A plugin can neither hold the writer's connection inside a
    // transaction nor end the writer's own, however it spells it.
    let plugin = hostile_on(&url, Duration::from_secs(10)).await;
    for statement in [
        "sql:BEGIN",
        "sql:/* hidden */ COMMIT",
        "sql:CREATE TABLE IF NOT EXISTS hidden (x INTEGER); -- then\n ROLLBACK",
    ] {
        let refused = plugin.get(statement).await.unwrap_err();
        assert!(
            matches!(refused.guest(), Some(GuestError::Invalid(_))),
            "{statement}: {refused:?}"
        );
    }
    storage.put("after", b"x", Expected::Absent).await.unwrap();
}

/// A row planted at the largest revision a SQL integer holds: the next
/// write has no revision to leave, so it is refused as invalid (a lone
/// write's revision is worked out, not read back), and the row is left as
/// it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_planted_at_the_last_revision_refuses_the_next_write() {
    use coffer_runtime::Expected;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kv.db").display());
    let storage = sql_storage(&url, "coffer_kv").await;
    storage
        .put("planted", b"v0", Expected::Absent)
        .await
        .unwrap();
    let dba = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE coffer_kv SET rev = $1 WHERE k = 'planted'")
        .bind(i64::MAX)
        .execute(&dba)
        .await
        .unwrap();
    let last = storage.get("planted").await.unwrap().unwrap().revision;
    assert_eq!(last, i64::MAX as u64);
    let refused = storage
        .put("planted", b"v1", Expected::Revision(last))
        .await
        .unwrap_err();
    assert!(
        matches!(refused.guest(), Some(GuestError::Invalid(_))),
        "{refused:?}"
    );
    let kept = storage.get("planted").await.unwrap().unwrap();
    assert_eq!((kept.value.as_slice(), kept.revision), (&b"v0"[..], last));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_name_that_is_not_an_identifier_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kv.db").display());
    let storage = sql_storage(&url, "kv; DROP TABLE x").await;
    let error = storage.get("k").await.unwrap_err().to_string();
    assert!(error.contains("not a plain SQL identifier"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_sqlite_database_cannot_reach_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kv.db").display());
    let runtime = common::runtime();
    let pool = Arc::new(
        SqlPool::connect(&url, 2, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    let spec = common::hostile_spec_with(pool, Limits::default()).await;
    let plugin = StoragePlugin::load(&runtime, spec).await.unwrap();

    let evil = dir.path().join("evil.db");
    let copy = dir.path().join("copy.db");
    for statement in [
        format!("ATTACH DATABASE '{}' AS evil", evil.display()),
        format!("VACUUM INTO '{}'", copy.display()),
    ] {
        let error = plugin.get(&format!("sql:{statement}")).await.unwrap_err();
        assert!(
            matches!(error.guest(), Some(GuestError::Invalid(_))),
            "{statement}: {error:?}"
        );
    }
    assert!(!evil.exists() && !copy.exists(), "no file was created");
    let ordinary = plugin
        .get("sql:CREATE TABLE fine (a INTEGER)")
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8(ordinary.value)
            .unwrap()
            .contains("CREATE TABLE")
    );
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        .into()
}

/// The hostile guest on a database of its own: `url`, at most one
/// connection (so a connection it spoils is the one the next call gets),
/// and calls cut off after `timeout`.
async fn hostile_on(url: &str, timeout: Duration) -> StoragePlugin {
    let pool = Arc::new(SqlPool::connect(url, 1, timeout).await.unwrap());
    let limits = Limits {
        call_timeout: timeout,
        ..Limits::default()
    };
    let spec = common::hostile_spec_with(pool, limits).await;
    StoragePlugin::load(&common::runtime(), spec).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_value_is_refused_inside_sqlite_before_it_is_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kv.db").display());
    let plugin = hostile_on(&url, Duration::from_secs(10)).await;
    let error = plugin
        .get("sql:SELECT zeroblob(999999999)")
        .await
        .unwrap_err();
    assert!(
        matches!(error.guest(), Some(GuestError::Invalid(message)) if message.contains("too big")),
        "{error:?}"
    );
    // An ordinary record still fits.
    plugin
        .put("k", &vec![7; 1 << 20], coffer_runtime::Expected::Any)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_sqlite_query_is_stopped_at_the_call_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kv.db").display());
    let plugin = hostile_on(&url, Duration::from_millis(1500)).await;
    let endless = "sql:WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                   SELECT count(*) FROM c";
    for _ in 0..3 {
        assert!(plugin.get(endless).await.is_err());
    }
    // The pool's one connection was freed when each call's time ran out:
    // the next call is served, not queued behind a query still running.
    let started = std::time::Instant::now();
    plugin.get("sql:SELECT 1").await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the connection was still busy: {:?}",
        started.elapsed()
    );
}

/// Each trigger program a statement starts is part of that statement's
/// time: a trigger firing per row does not restart the clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_per_row_does_not_keep_a_runaway_statement_alive() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kv.db").display());
    let plugin = hostile_on(&url, Duration::from_millis(1500)).await;
    plugin
        .get("sql:CREATE TABLE rows (x INTEGER)")
        .await
        .unwrap();
    plugin
        .get("sql:CREATE TRIGGER each AFTER INSERT ON rows BEGIN SELECT 1; END")
        .await
        .unwrap();
    let endless = "sql:INSERT INTO rows WITH RECURSIVE c(x) AS \
                   (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c";
    let started = std::time::Instant::now();
    assert!(plugin.get(endless).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
    plugin.get("sql:SELECT 1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_cannot_lift_the_statement_timeout_of_a_pooled_postgres_session() {
    let url = std::env::var("COFFER_TEST_DATABASE_URL").expect(
        "COFFER_TEST_DATABASE_URL is not set: run `cargo xtask test`, which starts PostgreSQL",
    );
    let plugin = hostile_on(&url, Duration::from_millis(1500)).await;
    let marker = format!("runaway_{}", rand_suffix());
    plugin.get("sql:SET statement_timeout = 0").await.unwrap();
    plugin
        .get("sql:SELECT pg_advisory_lock(4242)")
        .await
        .unwrap();
    let runaway = format!("sql:SELECT pg_sleep(60) AS {marker}");
    assert!(plugin.get(&runaway).await.is_err());
    // Within a moment of the call giving up, the query is gone from the
    // server: the SET did not outlive its statement.
    let observer = sqlx::PgPool::connect(&url).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%' || $1 || '%' \
             AND state = 'active' AND pid <> pg_backend_pid()",
        )
        .bind(&marker)
        .fetch_one(&observer)
        .await
        .unwrap();
        if running == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the runaway query still runs on the server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nor did the session-level advisory lock survive the connection's
    // return to the pool.
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242",
    )
    .fetch_one(&observer)
    .await
    .unwrap();
    assert_eq!(held, 0, "a lock the plugin took outlived its statement");
}

/// A storage-sql component built against `coffer:plugin@0.1.0` (checked in
/// as it was built): the host keeps loading components of the versions
/// `wit/README.md` promises, and they keep passing the contract.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_built_against_contract_0_1_0_still_loads_and_passes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kv.db").display());
    let pool = Arc::new(
        SqlPool::connect(&url, 8, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    let mut spec = common::storage_spec("storage-sql", &[], Limits::default(), pool);
    spec.wasm_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/storage-sql-contract-0.1.0.wasm");
    let plugin = StoragePlugin::load(&common::runtime(), spec).await.unwrap();
    let report = conformance::storage(Arc::new(plugin), Scope::scratch()).await;
    assert!(report.passed(), "{report}");
}
