//! The storage contract, checked against any `Storage`: revisions,
//! compare-and-set, deletes, listing with prefixes and cursors, no lost
//! updates under concurrent writers, and conditional deletes that race
//! writers without losing what a writer was told it wrote.

use std::sync::Arc;

use coffer_runtime::{Expected, GuestError, PluginError, Storage};

fn is_conflict(error: &PluginError) -> bool {
    matches!(error.guest(), Some(GuestError::Conflict(_)))
}

pub async fn run_all(storage: Arc<dyn Storage>) {
    revisions_and_compare_and_set(storage.as_ref()).await;
    deletes_check_revisions(storage.as_ref()).await;
    listing_pages_through_a_prefix(storage.as_ref()).await;
    binary_values_round_trip(storage.as_ref()).await;
    concurrent_writers_lose_no_update(storage.clone()).await;
    a_delete_racing_a_write_leaves_one_winner(storage).await;
}

async fn revisions_and_compare_and_set(s: &dyn Storage) {
    assert_eq!(s.get("cas/a").await.unwrap(), None);
    let r1 = s.put("cas/a", b"one", Expected::Absent).await.unwrap();
    assert!(is_conflict(
        &s.put("cas/a", b"two", Expected::Absent).await.unwrap_err()
    ));
    assert!(is_conflict(
        &s.put("cas/a", b"two", Expected::Revision(r1 + 7))
            .await
            .unwrap_err()
    ));
    let r2 = s
        .put("cas/a", b"two", Expected::Revision(r1))
        .await
        .unwrap();
    assert_ne!(r1, r2);
    let entry = s.get("cas/a").await.unwrap().unwrap();
    assert_eq!((entry.value.as_slice(), entry.revision), (&b"two"[..], r2));
    let r3 = s.put("cas/a", b"three", Expected::Any).await.unwrap();
    assert_ne!(r3, r2);
    let r4 = s
        .put("cas/new-with-any", b"x", Expected::Any)
        .await
        .unwrap();
    assert!(r4 > 0);
    assert!(is_conflict(
        &s.put("cas/missing", b"x", Expected::Revision(1))
            .await
            .unwrap_err()
    ));
}

async fn deletes_check_revisions(s: &dyn Storage) {
    let r = s.put("del/a", b"v", Expected::Absent).await.unwrap();
    assert!(is_conflict(
        &s.delete("del/a", Expected::Revision(r + 1))
            .await
            .unwrap_err()
    ));
    s.delete("del/a", Expected::Revision(r)).await.unwrap();
    assert_eq!(s.get("del/a").await.unwrap(), None);
    let missing = s.delete("del/a", Expected::Any).await.unwrap_err();
    assert_eq!(missing.guest(), Some(&GuestError::NotFound));
    // A key deleted and created again must not match a revision read before.
    let r_old = s.put("del/c", b"v", Expected::Absent).await.unwrap();
    s.delete("del/c", Expected::Any).await.unwrap();
    s.put("del/c", b"new", Expected::Absent).await.unwrap();
    assert!(is_conflict(
        &s.put("del/c", b"stale", Expected::Revision(r_old))
            .await
            .unwrap_err()
    ));
    s.put("del/b", b"v", Expected::Absent).await.unwrap();
    s.delete("del/b", Expected::Any).await.unwrap();
}

async fn listing_pages_through_a_prefix(s: &dyn Storage) {
    let keys = [
        "ls/a/1", "ls/a/2", "ls/a/3", "ls/a/4", "ls/a/5", "ls/a0", "ls/b/1", "ls/a/ü",
    ];
    for key in keys {
        s.put(key, b"v", Expected::Any).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.list("ls/a/", after.as_deref(), 2).await.unwrap();
        assert!(page.keys.len() <= 2);
        seen.extend(page.keys.clone());
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["ls/a/1", "ls/a/2", "ls/a/3", "ls/a/4", "ls/a/5", "ls/a/ü"]
    );
    let all = s.list("ls/", None, 100).await.unwrap();
    assert_eq!(all.keys.len(), keys.len());
    assert_eq!(all.next, None);
    let none = s.list("ls/zzz", None, 10).await.unwrap();
    assert!(none.keys.is_empty());
}

async fn binary_values_round_trip(s: &dyn Storage) {
    let value: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    s.put("bin/all-bytes", &value, Expected::Any).await.unwrap();
    assert_eq!(s.get("bin/all-bytes").await.unwrap().unwrap().value, value);
}

/// Writers incrementing one counter with read–compare-and-set–retry: the
/// final count equals the number of increments.
async fn concurrent_writers_lose_no_update(s: Arc<dyn Storage>) {
    const WRITERS: u64 = 8;
    const INCREMENTS: u64 = 10;
    s.put("race/counter", b"0", Expected::Any).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..INCREMENTS {
                loop {
                    let entry = s.get("race/counter").await.unwrap().unwrap();
                    let n: u64 = std::str::from_utf8(&entry.value).unwrap().parse().unwrap();
                    let next = (n + 1).to_string();
                    match s
                        .put(
                            "race/counter",
                            next.as_bytes(),
                            Expected::Revision(entry.revision),
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(e) if is_conflict(&e) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let entry = s.get("race/counter").await.unwrap().unwrap();
    assert_eq!(entry.value, (WRITERS * INCREMENTS).to_string().into_bytes());
}

/// A conditional delete and a write at the same revision, at once: exactly
/// one wins, and what is stored says which.
async fn a_delete_racing_a_write_leaves_one_winner(s: Arc<dyn Storage>) {
    const ROUNDS: usize = 12;
    for round in 0..ROUNDS {
        let key = format!("race/delete-{round}");
        let revision = s.put(&key, b"first", Expected::Absent).await.unwrap();
        let writer = {
            let (s, key) = (s.clone(), key.clone());
            tokio::spawn(async move { s.put(&key, b"second", Expected::Revision(revision)).await })
        };
        let deleter = {
            let (s, key) = (s.clone(), key.clone());
            tokio::spawn(async move { s.delete(&key, Expected::Revision(revision)).await })
        };
        let (wrote, deleted) = (writer.await.unwrap(), deleter.await.unwrap());
        let stored = s.get(&key).await.unwrap();
        match (wrote, deleted) {
            (Ok(written), Err(e)) => {
                assert!(
                    is_conflict(&e) || e.guest() == Some(&GuestError::NotFound),
                    "round {round}: the losing delete says {e}"
                );
                let stored = stored.expect("the acknowledged write was lost");
                assert_eq!(
                    (stored.value.as_slice(), stored.revision),
                    (&b"second"[..], written)
                );
            }
            (Err(e), Ok(())) => {
                assert!(is_conflict(&e), "round {round}: the losing write says {e}");
                assert_eq!(stored, None, "round {round}: the delete did not hold");
            }
            (wrote, deleted) => panic!("round {round}: both or neither won: {wrote:?} {deleted:?}"),
        }
    }
}
