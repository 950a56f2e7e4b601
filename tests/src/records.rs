//! Rows of a coffer SQLite database read and written behind coffer's back,
//! as a DBA, a restored backup or a hostile storage plugin could.

use std::path::Path;

use coffer_crypto::WrappingKey;
use coffer_crypto::record::SystemKeyRecord;
use coffer_crypto::sealed::{RecordKey, danger_parse_unverified};
use coffer_crypto::tink::parse_keyset_json;

async fn open(database: &Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", database.display()))
        .await
        .unwrap()
}

/// The stored bytes of `key`, if the row exists.
pub async fn read(database: &Path, key: &str) -> Option<Vec<u8>> {
    let pool = open(database).await;
    let value: Option<(Vec<u8>,)> = sqlx::query_as("SELECT v FROM coffer_kv WHERE k = $1")
        .bind(key)
        .fetch_optional(&pool)
        .await
        .unwrap();
    pool.close().await;
    value.map(|(v,)| v)
}

/// Whether `file` holds `needle` anywhere (false when there is no file).
pub fn file_holds(file: &Path, needle: &[u8]) -> bool {
    std::fs::read(file)
        .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        .unwrap_or(false)
}

/// The body inside the sealed record at `key` (unverified: for looking).
pub async fn body(database: &Path, key: &str) -> Vec<u8> {
    let sealed = read(database, key).await.unwrap();
    danger_parse_unverified(&sealed).unwrap().body.to_vec()
}

/// Writes `value` at `key`, replacing any row there (with a new revision,
/// as a real write would).
pub async fn plant(database: &Path, key: &str, value: &[u8]) {
    let pool = open(database).await;
    sqlx::query(
        "INSERT INTO coffer_kv (k, v, rev) VALUES ($1, $2, 1) \
         ON CONFLICT (k) DO UPDATE SET v = excluded.v, rev = coffer_kv.rev + 1",
    )
    .bind(key)
    .bind(value)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

/// Puts `value` in the row at `key` and leaves its revision as it was:
/// a copy restored over the row by someone who also forged its revision.
pub async fn plant_keeping_revision(database: &Path, key: &str, value: &[u8]) {
    let pool = open(database).await;
    let updated = sqlx::query("UPDATE coffer_kv SET v = $2 WHERE k = $1")
        .bind(key)
        .bind(value)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 1, "no row at {key}");
    pool.close().await;
}

pub async fn remove(database: &Path, key: &str) {
    let pool = open(database).await;
    sqlx::query("DELETE FROM coffer_kv WHERE k = $1")
        .bind(key)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// Copies the row at `key` from one database to another.
pub async fn copy(from: &Path, to: &Path, key: &str) {
    let value = read(from, key).await.unwrap();
    plant(to, key, &value).await;
}

/// The record key of a store, recovered from its wrapped system key with
/// the KEK keyset — what another node holding the same keyset has.
pub fn record_key(keyset_json: &str, wrapped: &[u8]) -> RecordKey {
    let keyset = parse_keyset_json(keyset_json).unwrap();
    let record = SystemKeyRecord::decode(wrapped).unwrap();
    let kek = keyset.get(record.kek_id).unwrap();
    let wrapping = WrappingKey::new(kek.id, kek.output_prefix, kek.material.clone());
    let key = wrapping
        .unwrap(&record.wrapped, b"coffer.system-key.v1:records")
        .unwrap();
    RecordKey::new(&key).unwrap()
}

/// Every storage key in the database.
pub async fn keys(database: &Path) -> Vec<String> {
    let pool = open(database).await;
    let keys: Vec<(String,)> = sqlx::query_as("SELECT k FROM coffer_kv ORDER BY k")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    keys.into_iter().map(|(k,)| k).collect()
}
