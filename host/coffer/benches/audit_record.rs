//! The cost of one audit record before it reaches the file, as every
//! request pays it (twice for a change): the entry with its time and the
//! secret's pseudonym, its canonical JSON, the keyed chain value and the
//! line. `cargo bench -p coffer --bench audit_record`.

#![allow(clippy::unwrap_used)]

use coffer::audit::record::{ChainKey, Entry, GENESIS, line};
use coffer::clock::{now_ms, rfc3339};
use coffer::pseudonyms::Pseudonyms;
use criterion::{Criterion, criterion_group, criterion_main};
use zeroize::Zeroizing;

fn entry(names: &Pseudonyms) -> Entry {
    Entry {
        time: rfc3339(now_ms()),
        request_id: "0123456789abcdef01234567".to_owned(),
        actor_id: Some("2a5f76391c2eaa23".to_owned()),
        actor_name: Some("root".to_owned()),
        action: "secret.write".to_owned(),
        namespace: Some("load".to_owned()),
        path: Some(names.of("u-123")),
        outcome: "allowed".to_owned(),
        status: 200,
        remote: "127.0.0.1".to_owned(),
        detail: Some("pruned versions 57 (max_versions)".to_owned()),
        sealed: false,
    }
}

fn audit_record(c: &mut Criterion) {
    let names = Pseudonyms::new(Zeroizing::new(vec![7; 32]));
    let key = ChainKey::derive(&[9; 32]);
    let mut group = c.benchmark_group("audit record");
    group.bench_function("time", |b| b.iter(|| rfc3339(now_ms())));
    group.bench_function("pseudonym", |b| b.iter(|| names.of("u-123")));
    group.bench_function("entry, JSON, chain value and line", |b| {
        b.iter(|| {
            let entry = entry(&names);
            let json = serde_json::to_vec(&entry).unwrap();
            let record = key.seal(42, GENESIS, entry, &json);
            line(&record, &json)
        })
    });
    group.finish();
}

criterion_group!(benches, audit_record);
criterion_main!(benches);
