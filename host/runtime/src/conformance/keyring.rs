//! The keyring contract (`wit/keyring.wit`): a keyset loads whole (its
//! primary among its keys, ids unique), and, where the keyring may write,
//! a stored keyset loads back exactly as stored, every field of every key.

use std::sync::Arc;

use coffer_crypto::tink::{KeyStatus, TinkKey, TinkKeyset};
use coffer_crypto::{Algorithm, KeyMaterial, OutputPrefix, random_key_id};

use super::{Outcome, Report, ensure, ok};
use crate::Keyring;

/// Runs every keyring check against `keyring`; the store checks only when
/// `writable` (they replace the stored keyset).
pub async fn keyring(keyring: Arc<dyn Keyring>, writable: bool) -> Report {
    let k = keyring.as_ref();
    let mut report = Report::default();
    report
        .run("load answers a whole keyset, or none", load(k))
        .await;
    if writable {
        report
            .run(
                "a stored keyset loads back exactly as stored",
                store_and_load(k),
            )
            .await;
        report
            .run("a second store replaces the first", store_twice(k))
            .await;
    }
    report
}

async fn load(k: &dyn Keyring) -> Outcome {
    let Some(keyset) = ok("load", k.load().await)? else {
        return Ok(());
    };
    ensure(keyset.primary().is_some(), || {
        format!(
            "the primary key {} is not among the keyset's keys",
            keyset.primary_key_id
        )
    })?;
    let mut ids: Vec<u32> = keyset.keys.iter().map(|key| key.id).collect();
    ids.sort_unstable();
    ids.dedup();
    ensure(ids.len() == keyset.keys.len(), || {
        "two keys of the keyset share an id".to_owned()
    })
}

fn key(algorithm: Algorithm, status: KeyStatus, output_prefix: OutputPrefix) -> TinkKey {
    TinkKey {
        id: random_key_id(),
        algorithm,
        status,
        output_prefix,
        material: KeyMaterial::generate(algorithm),
    }
}

/// A keyset with a key of every kind the contract names.
fn sample() -> TinkKeyset {
    let keys = vec![
        key(Algorithm::Aes256Gcm, KeyStatus::Enabled, OutputPrefix::Tink),
        key(Algorithm::Aes128Gcm, KeyStatus::Disabled, OutputPrefix::Raw),
        key(
            Algorithm::Aes256Gcm,
            KeyStatus::Enabled,
            OutputPrefix::Legacy,
        ),
        key(
            Algorithm::Aes256Gcm,
            KeyStatus::Enabled,
            OutputPrefix::Crunchy,
        ),
    ];
    TinkKeyset {
        primary_key_id: keys[0].id,
        keys,
    }
}

/// `keyset` with its keys in id order: a keyring may keep them in any.
fn by_id(mut keyset: TinkKeyset) -> TinkKeyset {
    keyset.keys.sort_by_key(|key| key.id);
    keyset
}

async fn store_and_load(k: &dyn Keyring) -> Outcome {
    let keyset = sample();
    ok("store", k.store(&keyset).await)?;
    let loaded = ok("load", k.load().await)?.ok_or("load found nothing after a store")?;
    let (keyset, loaded) = (by_id(keyset), by_id(loaded));
    ensure(keyset == loaded, || {
        format!("stored {keyset:?}, loaded {loaded:?} (materials compared, not shown)")
    })
}

async fn store_twice(k: &dyn Keyring) -> Outcome {
    let (first, second) = (sample(), sample());
    ok("store", k.store(&first).await)?;
    ok("store again", k.store(&second).await)?;
    let loaded = ok("load", k.load().await)?.ok_or("load found nothing after a store")?;
    ensure(by_id(second) == by_id(loaded), || {
        "the keyset loaded is not the last one stored".to_owned()
    })
}
