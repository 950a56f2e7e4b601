//! The `storage-batch` contract: `get-many` and `put-many` answer every
//! item, in the order asked, as `get` and `put` would answer it alone —
//! whether the plugin exports the batch or the host asks key by key.

use super::storage::Scope;
use super::{Report, conflict, ensure, fails, ok};
use crate::{Entry, Expected, Storage, Write};

/// Items in the largest batch checked: enough to cross any page or chunk
/// a backend might split a batch into.
const LARGE: usize = 250;

/// Runs every batch check against `s`.
pub(super) async fn checks(report: &mut Report, s: &dyn Storage, at: &Scope) {
    report
        .run(
            "get-many answers each key in order, as get would",
            get_many(s, at),
        )
        .await;
    report
        .run(
            "put-many answers each write in order, as put would one by one",
            put_many(s, at),
        )
        .await;
    report
        .run("a batch of 250 keys round trips", large_batch(s, at))
        .await;
}

async fn get_many(s: &dyn Storage, at: &Scope) -> super::Outcome {
    let (a, b) = (at.key("many/get/a"), at.key("many/get/b"));
    let ra = ok("put", s.put(&a, b"A", Expected::Absent).await)?;
    let rb = ok("put", s.put(&b, b"B", Expected::Absent).await)?;
    let keys = [b.clone(), at.key("many/get/missing"), a, b];
    let got = ok("get-many", s.get_many(&keys).await)?;
    let got = values_and_revisions(&got);
    let wanted = [
        Some((&b"B"[..], rb)),
        None,
        Some((&b"A"[..], ra)),
        Some((&b"B"[..], rb)),
    ];
    ensure(got == wanted, || {
        format!("asked b, missing, a, b; got {got:?}")
    })?;
    let none = ok("get-many of no keys", s.get_many(&[]).await)?;
    ensure(none.is_empty(), || format!("no keys answered {none:?}"))
}

async fn put_many(s: &dyn Storage, at: &Scope) -> super::Outcome {
    let (fresh, existing, any) = (
        at.key("many/put/fresh"),
        at.key("many/put/existing"),
        at.key("many/put/any"),
    );
    let first = ok("put", s.put(&existing, b"old", Expected::Absent).await)?;
    let write = |key: &str, value: &[u8], expected| Write {
        key: key.to_owned(),
        value: value.to_vec(),
        expected,
    };
    let writes = [
        write(&fresh, b"created", Expected::Absent),
        write(
            &existing,
            b"stale",
            Expected::Revision(first.wrapping_add(7)),
        ),
        write(&existing, b"updated", Expected::Revision(first)),
        write(&fresh, b"again", Expected::Absent),
        write(&any, b"any", Expected::Any),
    ];
    let answers = ok("put-many", s.put_many(&writes).await)?;
    ensure(answers.len() == writes.len(), || {
        format!("{} answers to {} writes", answers.len(), writes.len())
    })?;
    let mut answers = answers.into_iter();
    let mut next = || answers.next().unwrap_or(Ok(0));
    let created = ok("put-many's absent write of a new key", next())?;
    fails(
        "put-many's write at a revision the key does not have",
        "conflict",
        next(),
        conflict,
    )?;
    let updated = ok("put-many's write at the key's revision", next())?;
    fails(
        "put-many's absent write of a key an earlier write created",
        "conflict",
        next(),
        conflict,
    )?;
    let overwritten = ok("put-many's `any` write", next())?;
    ensure(created > 0 && updated != first && overwritten > 0, || {
        format!("revisions {created}, {updated} (from {first}), {overwritten}")
    })?;
    let read = ok("get-many", s.get_many(&[fresh, existing, any]).await)?;
    let read = values_and_revisions(&read);
    let wanted = [
        Some((&b"created"[..], created)),
        Some((&b"updated"[..], updated)),
        Some((&b"any"[..], overwritten)),
    ];
    ensure(read == wanted, || {
        format!("after put-many read {read:?}, wanted {wanted:?}")
    })
}

async fn large_batch(s: &dyn Storage, at: &Scope) -> super::Outcome {
    let writes: Vec<Write> = (0..LARGE)
        .map(|i| Write {
            key: at.key(&format!("many/large/{i:04}")),
            value: format!("value {i}").into_bytes(),
            expected: Expected::Absent,
        })
        .collect();
    let answers = ok("put-many", s.put_many(&writes).await)?;
    let revisions = answers
        .into_iter()
        .enumerate()
        .map(|(i, answer)| ok(&format!("put-many's write {i}"), answer))
        .collect::<Result<Vec<u64>, String>>()?;
    ensure(revisions.len() == LARGE, || {
        format!("{} answers to {LARGE} writes", revisions.len())
    })?;
    let keys: Vec<String> = writes.into_iter().map(|write| write.key).collect();
    let read = ok("get-many", s.get_many(&keys).await)?;
    let wrong = read
        .iter()
        .zip(&revisions)
        .enumerate()
        .find(|(i, (entry, revision))| {
            entry.as_ref().map(|e| (e.value.clone(), e.revision))
                != Some((format!("value {i}").into_bytes(), **revision))
        });
    ensure(read.len() == LARGE && wrong.is_none(), || {
        format!(
            "{} answers to {LARGE} keys; first wrong: {:?}",
            read.len(),
            wrong.map(|(i, (entry, _))| (i, entry))
        )
    })
}

/// Each answer of a read as its value and revision, to compare.
fn values_and_revisions(entries: &[Option<Entry>]) -> Vec<Option<(&[u8], u64)>> {
    entries
        .iter()
        .map(|entry| entry.as_ref().map(|e| (e.value.as_slice(), e.revision)))
        .collect()
}
