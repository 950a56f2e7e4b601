//! Paging through keys under a prefix: the one loop every listing of
//! storage uses. A storage plugin decides what pages it returns, so each
//! page is checked before anyone acts on it: keys in the prefix, ascending,
//! after the cursor, no more than asked for, and a `next` cursor that moves
//! forward. A plugin that answers `next = prefix` forever, or invents keys
//! without end, ends the loop with an error instead of hanging it.

use coffer_runtime::{Page, Storage};

use crate::error::{Error, Result};

/// Keys asked for per page.
pub const PAGE: u32 = 1000;
/// Most keys one scan walks before it gives up on the listing as runaway.
pub const MAX_SCAN_KEYS: u64 = 10_000_000;

/// Checks one page of `prefix` listed after `after`, at most `limit` keys.
pub fn check_page(prefix: &str, after: Option<&str>, limit: u32, page: &Page) -> Result<()> {
    let refuse = |what: &str| {
        Err(Error::Backend(format!(
            "the storage plugin answered a listing with {what}"
        )))
    };
    if page.keys.len() > limit as usize {
        return refuse("more keys than asked for");
    }
    let mut floor = after;
    for key in &page.keys {
        if !key.starts_with(prefix) {
            return refuse("a key outside the prefix");
        }
        if floor.is_some_and(|floor| key.as_str() <= floor) {
            return refuse("keys out of order, or not after the cursor");
        }
        floor = Some(key);
    }
    if let Some(next) = &page.next {
        let advances = next.starts_with(prefix)
            && after.is_none_or(|after| next.as_str() > after)
            && page.keys.last().is_none_or(|last| next >= last);
        if !advances {
            return refuse("a cursor that does not move forward");
        }
    }
    Ok(())
}

/// Every key under a prefix, a checked page at a time.
pub struct Scan<'a> {
    storage: &'a dyn Storage,
    prefix: String,
    after: Option<String>,
    done: bool,
    walked: u64,
}

impl<'a> Scan<'a> {
    pub fn new(storage: &'a dyn Storage, prefix: String) -> Scan<'a> {
        Scan {
            storage,
            prefix,
            after: None,
            done: false,
            walked: 0,
        }
    }

    /// Continues after the storage key `after` instead of from the start.
    pub fn after(mut self, after: Option<String>) -> Scan<'a> {
        self.after = after;
        self
    }

    /// The next page of keys; none once the listing is done.
    pub async fn next_page(&mut self) -> Result<Option<Vec<String>>> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .storage
            .list(&self.prefix, self.after.as_deref(), PAGE)
            .await?;
        check_page(&self.prefix, self.after.as_deref(), PAGE, &page)?;
        self.walked += page.keys.len() as u64;
        if self.walked > MAX_SCAN_KEYS {
            return Err(Error::Backend(format!(
                "the storage plugin listed more than {MAX_SCAN_KEYS} keys under {}",
                self.prefix
            )));
        }
        match page.next {
            Some(next) => self.after = Some(next),
            None => self.done = true,
        }
        Ok(Some(page.keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(keys: &[&str], next: Option<&str>) -> Page {
        Page {
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            next: next.map(str::to_owned),
        }
    }

    #[test]
    fn honest_pages_pass() {
        assert!(check_page("p/", None, 2, &page(&["p/a", "p/b"], Some("p/b"))).is_ok());
        assert!(check_page("p/", Some("p/b"), 2, &page(&["p/c"], None)).is_ok());
        assert!(check_page("p/", None, 2, &page(&[], None)).is_ok());
    }

    #[test]
    fn pages_that_do_not_move_forward_are_refused() {
        for (after, bad) in [
            (Some("p/b"), page(&[], Some("p/"))),
            (Some("p/b"), page(&[], Some("p/b"))),
            (None, page(&["p/a", "p/b"], Some("p/a"))),
            (None, page(&["p/b", "p/a"], None)),
            (Some("p/b"), page(&["p/a"], None)),
            (None, page(&["q/a"], None)),
            (None, page(&["p/a", "p/a"], None)),
            (None, page(&["p/a", "p/b", "p/c"], None)),
            (None, page(&["p/a"], Some("q/"))),
        ] {
            assert!(
                check_page("p/", after, 2, &bad).is_err(),
                "{after:?} {bad:?}"
            );
        }
    }
}
