//! The KMS contract (`wit/kms.wit`): a described key with a version from
//! 1, wraps that unwrap under the same AAD only, tampered blobs refused as
//! `invalid`, and (when asked, since it changes the key) a rotation that
//! starts a newer version while older blobs still unwrap.

use std::sync::Arc;

use super::{Outcome, Report, ensure, fails, invalid, not_found, ok};
use crate::{GuestError, Kms};

/// What the KMS checks may do besides wrapping.
#[derive(Clone, Copy, Debug, Default)]
pub struct KmsChecks {
    /// Rotate the key (it stays rotated: a new version for every later
    /// wrap).
    pub rotate: bool,
}

const AAD: &[u8] = b"coffer conformance: namespace app, data key 1";
const OTHER_AAD: &[u8] = b"coffer conformance: namespace app, data key 2";

/// Runs every KMS check against `kms`.
pub async fn kms(kms: Arc<dyn Kms>, checks: KmsChecks) -> Report {
    let k = kms.as_ref();
    let mut report = Report::default();
    report
        .run("describe names the key and a version from 1", describe(k))
        .await;
    report
        .run(
            "wrap and unwrap round trip 16- and 32-byte keys",
            round_trip(k),
        )
        .await;
    report
        .run("wraps report the version describe gives", wrap_version(k))
        .await;
    report
        .run("unwrap under another AAD is invalid", other_aad(k))
        .await;
    report
        .run("a tampered or truncated blob is invalid", tampered(k))
        .await;
    if checks.rotate {
        report
            .run(
                "rotate starts a newer version and older blobs still unwrap",
                rotate(k),
            )
            .await;
    }
    report
}

async fn describe(k: &dyn Kms) -> Outcome {
    let key = ok("describe", k.describe().await)?;
    ensure(!key.name.is_empty() && key.version >= 1, || {
        format!("described {:?} at version {}", key.name, key.version)
    })
}

fn key_of(length: usize, seed: u8) -> Vec<u8> {
    (0..length)
        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

async fn round_trip(k: &dyn Kms) -> Outcome {
    for length in [16, 32] {
        let plaintext = key_of(length, 1);
        let wrapped = ok("wrap", k.wrap(&plaintext, AAD).await)?;
        ensure(
            !wrapped.blob.is_empty() && wrapped.blob.windows(length).all(|w| w != plaintext),
            || "the blob is empty, or holds the plaintext".to_owned(),
        )?;
        let back = ok("unwrap", k.unwrap(&wrapped.blob, AAD).await)?;
        ensure(back.as_slice() == plaintext, || {
            format!("a {length}-byte key unwrapped to something else")
        })?;
    }
    Ok(())
}

async fn wrap_version(k: &dyn Kms) -> Outcome {
    let key = ok("describe", k.describe().await)?;
    let wrapped = ok("wrap", k.wrap(&key_of(32, 2), AAD).await)?;
    ensure(wrapped.version == key.version, || {
        format!(
            "describe says version {}, the wrap says {}",
            key.version, wrapped.version
        )
    })
}

async fn other_aad(k: &dyn Kms) -> Outcome {
    let wrapped = ok("wrap", k.wrap(&key_of(32, 3), AAD).await)?;
    fails(
        "unwrap under another AAD",
        "invalid",
        k.unwrap(&wrapped.blob, OTHER_AAD).await.map(|_| ()),
        invalid,
    )?;
    fails(
        "unwrap under an empty AAD",
        "invalid",
        k.unwrap(&wrapped.blob, b"").await.map(|_| ()),
        invalid,
    )
}

async fn tampered(k: &dyn Kms) -> Outcome {
    let wrapped = ok("wrap", k.wrap(&key_of(32, 4), AAD).await)?;
    let blob = &wrapped.blob;
    ensure(!blob.is_empty(), || {
        "wrap returned an empty blob".to_owned()
    })?;
    let flipped = |at: usize| {
        let mut flipped = blob.clone();
        flipped[at] ^= 0x01;
        flipped
    };
    // A refusal is `invalid`; a changed start may name another key (AWS),
    // which the KMS may answer as `denied` or `not-found`.
    let variants = [
        ("its first byte flipped", flipped(0)),
        ("its middle byte flipped", flipped(blob.len() / 2)),
        (
            "a byte near its end flipped",
            flipped(blob.len().saturating_sub(3)),
        ),
        ("its last byte flipped", flipped(blob.len() - 1)),
        ("half of it cut off", blob[..blob.len() / 2].to_vec()),
        ("nothing in it", Vec::new()),
    ];
    for (what, variant) in variants {
        if variant == *blob {
            continue;
        }
        fails(
            &format!("unwrap of a blob with {what}"),
            "invalid (or denied, not-found)",
            k.unwrap(&variant, AAD).await.map(|_| ()),
            |error| invalid(error) || not_found(error) || matches!(error, GuestError::Denied(_)),
        )?;
    }
    Ok(())
}

async fn rotate(k: &dyn Kms) -> Outcome {
    let before = ok("describe", k.describe().await)?;
    let plaintext = key_of(32, 5);
    let old = ok("wrap", k.wrap(&plaintext, AAD).await)?;
    let after = ok("rotate", k.rotate().await)?;
    ensure(after.version > before.version, || {
        format!(
            "rotate went from version {} to {}",
            before.version, after.version
        )
    })?;
    let new = ok("wrap after the rotation", k.wrap(&plaintext, AAD).await)?;
    ensure(new.version == after.version, || {
        format!("a wrap after the rotation says version {}", new.version)
    })?;
    let back = ok(
        "unwrap of a blob from before the rotation",
        k.unwrap(&old.blob, AAD).await,
    )?;
    ensure(back.as_slice() == plaintext, || {
        "a blob from before the rotation unwrapped to something else".to_owned()
    })
}
