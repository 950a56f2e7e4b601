//! A namespace-wide pass: moving a page of a namespace's secrets onto its
//! Active data key, the step both the janitor and `coffer reencrypt` take.

use futures_util::{StreamExt, stream};

use super::KeyAdmin;
use crate::error::{Error, Result};
use crate::secrets::{Mode, Moved};
use crate::store::layout;

/// Secrets read, and written back, in one storage call.
const BATCH: usize = 32;
/// Batches of a page moved at once: a backend that answers a batch key by
/// key (a remote one) still has 32 round trips in flight, and SQLite's
/// writer gets groups large enough to share its commits widely.
const BATCHES_AT_ONCE: usize = 32;

/// One page of a namespace-wide pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassPage {
    pub moved: Moved,
    /// The last secret name handled, to continue after; none when done.
    pub next: Option<String>,
}

impl KeyAdmin {
    /// Moves up to `limit` secrets of `namespace`, those after the name
    /// `after`, onto the Active data key. A secret that fails is counted and
    /// logged (under its pseudonym), and the page goes on past it.
    pub async fn rewrap_page(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: u32,
        mode: Mode,
    ) -> Result<PassPage> {
        let prefix = layout::secrets_of(namespace);
        let after_key = after.map(|a| format!("{prefix}{a}"));
        let page = self
            .store
            .page(&prefix, after_key.as_deref(), limit.max(1))
            .await?;
        // The Active key as stored now, not a copy cached before another
        // node rotated it: moving onto that would move versions backwards.
        self.keys.forget(namespace).await;
        // Secrets are moved in batches, each read with one storage call and
        // written back with another, so their writes share commits; each is
        // still its own compare-and-set.
        let names: Vec<String> = page
            .keys
            .iter()
            .filter_map(|key| key.strip_prefix(&prefix))
            .map(str::to_owned)
            .collect();
        let batches: Vec<_> = names
            .chunks(BATCH)
            .map(|batch| async move {
                let outcomes = self.secrets.rewrap_many(namespace, batch, mode).await;
                (batch, outcomes)
            })
            .collect();
        let mut batches = stream::iter(batches).buffered(BATCHES_AT_ONCE);
        let mut moved = Moved::default();
        let mut last = None;
        while let Some((batch, outcomes)) = batches.next().await {
            for (name, outcome) in batch.iter().zip(outcomes?) {
                match outcome {
                    Ok(done) => moved.add(done),
                    // This record's own trouble: skip it, keep going.
                    Err(
                        error @ (Error::Conflict(_)
                        | Error::Internal(_)
                        | Error::Integrity(_)
                        | Error::Invalid(_)),
                    ) => {
                        tracing::warn!(
                            namespace,
                            secret = %self.names.of(name),
                            %error,
                            "could not move a secret's versions; skipped"
                        );
                        moved.failed += 1;
                    }
                    // The backend or the keys are failing: stop here (the
                    // pass goes on later from its saved cursor).
                    Err(error) => return Err(error),
                }
                last = Some(name.clone());
            }
        }
        Ok(PassPage {
            moved,
            next: page.next.and(last),
        })
    }
}
