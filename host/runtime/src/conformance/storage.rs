//! The storage contract (`wit/storage.wit`): revisions and the three kinds
//! of expectation, deletes, no ABA after a delete, listing by prefix with
//! cursors at every page size, keys of any character up to 1,024 bytes,
//! binary and large values, and no lost update between concurrent writers;
//! and the batch of many keys per call ([`super::storage_batch`]).

use std::sync::Arc;

use super::{Outcome, Report, conflict, ensure, fails, not_found, ok};
use crate::{Expected, GuestError, Storage};

/// Where the checks write.
#[derive(Clone, Debug)]
pub struct Scope {
    /// Every key the checks write starts with this.
    root: String,
    /// Whether the store holds nothing else (a scratch database), so a
    /// listing of the empty prefix can be checked exactly.
    alone: bool,
}

impl Scope {
    /// A store made for the check, holding nothing else (a database the
    /// checks already ran on is not: run them on a fresh one).
    pub fn scratch() -> Scope {
        Scope {
            root: "conformance/".to_owned(),
            alone: true,
        }
    }

    /// A store that may hold other keys: the checks write only under
    /// `<prefix><a name unique to this run>/` and delete that at the end.
    pub fn under(prefix: &str) -> Scope {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Scope {
            root: format!(
                "{prefix}{}-{nanos}-{:x}/",
                std::process::id(),
                rand::random::<u32>()
            ),
            alone: false,
        }
    }

    pub(super) fn key(&self, name: &str) -> String {
        format!("{}{name}", self.root)
    }
}

/// Runs every storage check against `storage`.
pub async fn storage(storage: Arc<dyn Storage>, scope: Scope) -> Report {
    let s = storage.as_ref();
    let at = &scope;
    let mut report = Report::default();
    report
        .run("get of a missing key is none", missing_is_none(s, at))
        .await;
    report
        .run(
            "put `absent` creates a key once, then conflicts",
            absent(s, at),
        )
        .await;
    report
        .run(
            "put `revision` writes only at that revision",
            at_revision(s, at),
        )
        .await;
    report
        .run("put `any` creates and overwrites", any(s, at))
        .await;
    report
        .run(
            "every write gives a positive revision the key never had",
            fresh_revisions(s, at),
        )
        .await;
    report
        .run(
            "delete checks the revision; a missing key is not-found",
            deletes(s, at),
        )
        .await;
    report
        .run(
            "a key deleted and created again never matches an old revision",
            no_aba(s, at),
        )
        .await;
    report
        .run(
            "listing pages through a prefix at every page size",
            paging(s, at),
        )
        .await;
    report
        .run(
            "listing after a key that is not there starts where it would be",
            after_a_gap(s, at),
        )
        .await;
    if scope.alone {
        report
            .run("the empty prefix lists every key", empty_prefix(s, at))
            .await;
    }
    report
        .run(
            "keys of any character round trip and list in byte order",
            odd_keys(s, at),
        )
        .await;
    report
        .run("a 1,024-byte key round trips and lists", long_key(s, at))
        .await;
    report
        .run("empty and binary values round trip", binary_values(s, at))
        .await;
    report
        .run("a 256 KiB value round trips", large_value(s, at))
        .await;
    report
        .run(
            "concurrent writers lose no update",
            concurrent_writers(storage.clone(), at),
        )
        .await;
    report
        .run(
            "a delete racing a write leaves exactly one winner",
            delete_racing_write(storage.clone(), at),
        )
        .await;
    super::storage_batch::checks(&mut report, s, at).await;
    if !scope.alone {
        report
            .run("what the checks wrote can be deleted", clean_up(s, at))
            .await;
    }
    report
}

async fn missing_is_none(s: &dyn Storage, at: &Scope) -> Outcome {
    let got = ok("get", s.get(&at.key("missing/x")).await)?;
    ensure(got.is_none(), || {
        format!("got {got:?} for a key never written")
    })
}

async fn absent(s: &dyn Storage, at: &Scope) -> Outcome {
    let key = at.key("absent/a");
    let revision = ok("put absent", s.put(&key, b"one", Expected::Absent).await)?;
    ensure(revision > 0, || {
        "revision 0 (revisions are positive)".to_owned()
    })?;
    fails(
        "a second put absent",
        "conflict",
        s.put(&key, b"two", Expected::Absent).await,
        conflict,
    )?;
    let entry = ok("get", s.get(&key).await)?;
    ensure(
        entry.as_ref().map(|e| (e.value.as_slice(), e.revision)) == Some((b"one", revision)),
        || format!("after a refused put, read {entry:?}"),
    )
}

async fn at_revision(s: &dyn Storage, at: &Scope) -> Outcome {
    let key = at.key("revision/a");
    let first = ok("put absent", s.put(&key, b"one", Expected::Absent).await)?;
    fails(
        "put at a revision the key does not have",
        "conflict",
        s.put(&key, b"two", Expected::Revision(first.wrapping_add(7)))
            .await,
        conflict,
    )?;
    let second = ok(
        "put at the key's revision",
        s.put(&key, b"two", Expected::Revision(first)).await,
    )?;
    ensure(second != first, || format!("a write kept revision {first}"))?;
    let entry = ok("get", s.get(&key).await)?;
    ensure(
        entry.as_ref().map(|e| (e.value.as_slice(), e.revision)) == Some((b"two", second)),
        || format!("read {entry:?} after writing revision {second}"),
    )?;
    fails(
        "put at a revision of a key that does not exist",
        "conflict",
        s.put(&at.key("revision/missing"), b"x", Expected::Revision(1))
            .await,
        conflict,
    )
}

async fn any(s: &dyn Storage, at: &Scope) -> Outcome {
    let key = at.key("any/a");
    let created = ok(
        "put any on a new key",
        s.put(&key, b"one", Expected::Any).await,
    )?;
    let overwritten = ok(
        "put any on an existing key",
        s.put(&key, b"two", Expected::Any).await,
    )?;
    ensure(created > 0 && overwritten != created, || {
        format!("revisions {created} then {overwritten}")
    })?;
    let entry = ok("get", s.get(&key).await)?;
    ensure(
        entry.as_ref().map(|e| e.value.as_slice()) == Some(b"two"),
        || format!("read {entry:?}"),
    )
}

async fn fresh_revisions(s: &dyn Storage, at: &Scope) -> Outcome {
    let key = at.key("revisions/a");
    let mut seen = Vec::new();
    for round in 0..20u32 {
        let revision = ok(
            "put",
            s.put(&key, &round.to_be_bytes(), Expected::Any).await,
        )?;
        ensure(revision > 0 && !seen.contains(&revision), || {
            format!("write {round} got revision {revision}, after {seen:?}")
        })?;
        seen.push(revision);
    }
    Ok(())
}

async fn deletes(s: &dyn Storage, at: &Scope) -> Outcome {
    let key = at.key("delete/a");
    let revision = ok("put", s.put(&key, b"v", Expected::Absent).await)?;
    fails(
        "delete at another revision",
        "conflict",
        s.delete(&key, Expected::Revision(revision.wrapping_add(1)))
            .await,
        conflict,
    )?;
    ok(
        "delete at the key's revision",
        s.delete(&key, Expected::Revision(revision)).await,
    )?;
    let entry = ok("get", s.get(&key).await)?;
    ensure(entry.is_none(), || format!("a deleted key reads {entry:?}"))?;
    fails(
        "delete `any` of a missing key",
        "not-found",
        s.delete(&key, Expected::Any).await,
        not_found,
    )?;
    fails(
        "delete `revision` of a missing key",
        "not-found",
        s.delete(&key, Expected::Revision(revision)).await,
        not_found,
    )?;
    let other = at.key("delete/b");
    ok("put", s.put(&other, b"v", Expected::Any).await)?;
    ok("delete `any`", s.delete(&other, Expected::Any).await)?;
    let entry = ok("get", s.get(&other).await)?;
    ensure(entry.is_none(), || format!("a deleted key reads {entry:?}"))
}

async fn no_aba(s: &dyn Storage, at: &Scope) -> Outcome {
    let key = at.key("aba/a");
    let old = ok("put", s.put(&key, b"old", Expected::Absent).await)?;
    ok("delete", s.delete(&key, Expected::Any).await)?;
    let new = ok(
        "put absent after the delete",
        s.put(&key, b"new", Expected::Absent).await,
    )?;
    ensure(new != old, || {
        format!("the key created again has its old revision {old}")
    })?;
    fails(
        "put at the revision the key had before it was deleted",
        "conflict",
        s.put(&key, b"stale", Expected::Revision(old)).await,
        conflict,
    )?;
    fails(
        "delete at the revision the key had before it was deleted",
        "conflict",
        s.delete(&key, Expected::Revision(old)).await,
        conflict,
    )
}

/// Lists `prefix` a page of `limit` at a time from `after`; checks each
/// page's shape on the way.
async fn list_all(
    s: &dyn Storage,
    prefix: &str,
    mut after: Option<String>,
    limit: u32,
) -> Result<Vec<String>, String> {
    let mut keys: Vec<String> = Vec::new();
    for _ in 0..10_000 {
        let page = ok(
            &format!("list {prefix:?} after {after:?} limit {limit}"),
            s.list(prefix, after.as_deref(), limit).await,
        )?;
        ensure(page.keys.len() <= limit as usize, || {
            format!("asked for {limit} keys, got {}", page.keys.len())
        })?;
        for key in &page.keys {
            ensure(key.starts_with(prefix), || {
                format!("listing {prefix:?} gave {key:?}")
            })?;
            let floor = keys.last().or(after.as_ref());
            ensure(
                floor.is_none_or(|floor| key.as_bytes() > floor.as_bytes()),
                || {
                    format!(
                        "{key:?} came after {floor:?}: keys must ascend in byte order past the cursor"
                    )
                },
            )?;
            keys.push(key.clone());
        }
        match page.next {
            None => return Ok(keys),
            Some(next) => {
                ensure(after.as_ref().is_none_or(|after| next > *after), || {
                    format!("the cursor went from {after:?} back to {next:?}")
                })?;
                after = Some(next);
            }
        }
    }
    Err(format!("listing {prefix:?} did not end after 10,000 pages"))
}

async fn paging(s: &dyn Storage, at: &Scope) -> Outcome {
    let names = [
        "ls/a/1", "ls/a/2", "ls/a/3", "ls/a/4", "ls/a/5", "ls/a/6", "ls/a/7", "ls/a0", "ls/b/1",
    ];
    for name in names {
        ok("put", s.put(&at.key(name), b"v", Expected::Any).await)?;
    }
    let prefix = at.key("ls/a/");
    let wanted: Vec<String> = names[..7].iter().map(|n| at.key(n)).collect();
    for limit in [1, 2, 3, 6, 7, 8, 1000] {
        let listed = list_all(s, &prefix, None, limit).await?;
        ensure(listed == wanted, || {
            format!("with pages of {limit}, listed {listed:?}")
        })?;
    }
    let from_middle = list_all(s, &prefix, Some(at.key("ls/a/3")), 2).await?;
    ensure(from_middle == wanted[3..], || {
        format!("after ls/a/3, listed {from_middle:?}")
    })?;
    let everything = list_all(s, &at.key("ls/"), None, 4).await?;
    ensure(everything.len() == names.len(), || {
        format!("the whole of ls/ listed {everything:?}")
    })?;
    let none = list_all(s, &at.key("ls/zzz"), None, 10).await?;
    ensure(none.is_empty(), || {
        format!("an unused prefix listed {none:?}")
    })
}

async fn after_a_gap(s: &dyn Storage, at: &Scope) -> Outcome {
    for name in ["gap/b", "gap/d", "gap/f"] {
        ok("put", s.put(&at.key(name), b"v", Expected::Any).await)?;
    }
    let listed = list_all(s, &at.key("gap/"), Some(at.key("gap/c")), 10).await?;
    ensure(listed == [at.key("gap/d"), at.key("gap/f")], || {
        format!("after gap/c, listed {listed:?}")
    })
}

async fn empty_prefix(s: &dyn Storage, at: &Scope) -> Outcome {
    let listed = list_all(s, "", None, 7).await?;
    ensure(
        !listed.is_empty() && listed.iter().all(|key| key.starts_with(&at.root)),
        || {
            format!(
                "the empty prefix listed {} keys, some of them not written here",
                listed.len()
            )
        },
    )?;
    let under_root = list_all(s, &at.root, None, 1000).await?;
    ensure(listed == under_root, || {
        "the empty prefix and the checks' root list different keys".to_owned()
    })
}

/// Keys that trip up path-based or escaping backends.
const ODD_NAMES: &[&str] = &[
    "odd/ümlaut",
    "odd/emoji-🔑",
    "odd/with space",
    "odd/percent%2Fslash",
    "odd/dot/../dot",
    "odd/trailing/",
    "odd//double",
    "odd/tab\tand\u{7f}del",
    "odd/quote\"'`",
    "odd/plus+amp&eq=?q",
    "odd/back\\slash",
    "odd/A",
    "odd/a",
    "odd/~tilde",
];

async fn odd_keys(s: &dyn Storage, at: &Scope) -> Outcome {
    for name in ODD_NAMES {
        let key = at.key(name);
        ok(
            &format!("put {name:?}"),
            s.put(&key, name.as_bytes(), Expected::Absent).await,
        )?;
        let entry = ok(&format!("get {name:?}"), s.get(&key).await)?;
        ensure(
            entry.as_ref().map(|e| e.value.as_slice()) == Some(name.as_bytes()),
            || format!("{name:?} read back {entry:?}"),
        )?;
    }
    let mut wanted: Vec<String> = ODD_NAMES.iter().map(|n| at.key(n)).collect();
    wanted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let listed = list_all(s, &at.key("odd/"), None, 5).await?;
    ensure(listed == wanted, || {
        format!("listed {listed:?}, wanted {wanted:?}")
    })
}

async fn long_key(s: &dyn Storage, at: &Scope) -> Outcome {
    let stem = at.key("long/");
    let longest = format!("{stem}{}", "k".repeat(1024usize.saturating_sub(stem.len())));
    let shorter = format!("{stem}{}", "k".repeat(1023usize.saturating_sub(stem.len())));
    for key in [&shorter, &longest] {
        ok(
            &format!("put a {}-byte key", key.len()),
            s.put(key, b"v", Expected::Absent).await,
        )?;
        let entry = ok("get", s.get(key).await)?;
        ensure(entry.is_some(), || {
            format!("a {}-byte key did not read back", key.len())
        })?;
    }
    let listed = list_all(s, &stem, None, 1).await?;
    ensure(listed == [shorter, longest], || {
        format!("listed {} keys of the two long ones", listed.len())
    })
}

async fn binary_values(s: &dyn Storage, at: &Scope) -> Outcome {
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    for (name, value) in [("bin/empty", Vec::new()), ("bin/all", all_bytes)] {
        ok("put", s.put(&at.key(name), &value, Expected::Any).await)?;
        let entry = ok("get", s.get(&at.key(name)).await)?;
        ensure(entry.is_some_and(|e| e.value == value), || {
            format!(
                "{name} did not read back as written ({} bytes)",
                value.len()
            )
        })?;
    }
    Ok(())
}

async fn large_value(s: &dyn Storage, at: &Scope) -> Outcome {
    let value: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    ok("put", s.put(&at.key("big/a"), &value, Expected::Any).await)?;
    let entry = ok("get", s.get(&at.key("big/a")).await)?;
    ensure(entry.is_some_and(|e| e.value == value), || {
        "the 256 KiB value did not read back as written".to_owned()
    })
}

/// Writers incrementing one counter with read, compare-and-set, retry:
/// the final count equals the number of increments.
async fn concurrent_writers(s: Arc<dyn Storage>, at: &Scope) -> Outcome {
    const WRITERS: u64 = 8;
    const INCREMENTS: u64 = 10;
    let key = at.key("race/counter");
    ok("put", s.put(&key, b"0", Expected::Any).await)?;
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let (s, key) = (s.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..INCREMENTS {
                increment(s.as_ref(), &key).await?;
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await
            .map_err(|e| format!("a writer panicked: {e}"))??;
    }
    let entry = ok("get", s.get(&key).await)?;
    let total = (WRITERS * INCREMENTS).to_string();
    ensure(
        entry.as_ref().map(|e| e.value.as_slice()) == Some(total.as_bytes()),
        || format!("{WRITERS} writers × {INCREMENTS} increments left {entry:?}"),
    )
}

async fn increment(s: &dyn Storage, key: &str) -> Outcome {
    for _ in 0..1_000 {
        let entry = ok("get", s.get(key).await)?.ok_or("the counter vanished")?;
        let count: u64 = std::str::from_utf8(&entry.value)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or("the counter is not a number")?;
        let next = (count + 1).to_string();
        match s
            .put(key, next.as_bytes(), Expected::Revision(entry.revision))
            .await
        {
            Ok(_) => return Ok(()),
            Err(error) if error.guest().is_some_and(conflict) => continue,
            Err(error) => return Err(format!("put at the read revision failed: {error}")),
        }
    }
    Err("an increment lost 1,000 races in a row".to_owned())
}

/// A conditional delete and a write at the same revision, at once: exactly
/// one wins, and what is stored says which.
async fn delete_racing_write(s: Arc<dyn Storage>, at: &Scope) -> Outcome {
    for round in 0..12 {
        let key = at.key(&format!("race/delete-{round}"));
        let revision = ok("put", s.put(&key, b"first", Expected::Absent).await)?;
        let writer = {
            let (s, key) = (s.clone(), key.clone());
            tokio::spawn(async move { s.put(&key, b"second", Expected::Revision(revision)).await })
        };
        let deleter = {
            let (s, key) = (s.clone(), key.clone());
            tokio::spawn(async move { s.delete(&key, Expected::Revision(revision)).await })
        };
        let wrote = writer
            .await
            .map_err(|e| format!("the writer panicked: {e}"))?;
        let deleted = deleter
            .await
            .map_err(|e| format!("the deleter panicked: {e}"))?;
        let stored = ok("get", s.get(&key).await)?;
        match (wrote, deleted) {
            (Ok(written), Err(error)) => {
                ensure(
                    error
                        .guest()
                        .is_some_and(|e| conflict(e) || *e == GuestError::NotFound),
                    || format!("round {round}: the losing delete says {error}"),
                )?;
                ensure(
                    stored
                        .as_ref()
                        .is_some_and(|e| e.value == b"second" && e.revision == written),
                    || format!("round {round}: the acknowledged write reads {stored:?}"),
                )?;
            }
            (Err(error), Ok(())) => {
                ensure(error.guest().is_some_and(conflict), || {
                    format!("round {round}: the losing write says {error}")
                })?;
                ensure(stored.is_none(), || {
                    format!("round {round}: the acknowledged delete left {stored:?}")
                })?;
            }
            (wrote, deleted) => {
                return Err(format!(
                    "round {round}: both or neither won: {wrote:?} {deleted:?}"
                ));
            }
        }
    }
    Ok(())
}

async fn clean_up(s: &dyn Storage, at: &Scope) -> Outcome {
    let keys = list_all(s, &at.root, None, 500).await?;
    for key in keys {
        match s.delete(&key, Expected::Any).await {
            Ok(()) => {}
            Err(error) if error.guest().is_some_and(not_found) => {}
            Err(error) => return Err(format!("delete {key:?} failed: {error}")),
        }
    }
    Ok(())
}
