//! What this node has seen of each tracked record: the highest generation
//! and that record's tag. A record read back older than that — or gone, or
//! of the same generation with another tag (a fork) — was rolled back by
//! whoever controls storage, and is refused.
//!
//! The floor a read is checked against is taken *before* the read goes to
//! storage: whatever this node had seen by then, a consistent store must
//! return at least that, while a read that overlaps this node's own write
//! may legitimately return either side of it.
//!
//! The memory is per node and bounded ([`REMEMBERED`] records, least
//! recently used forgotten first, [`super::bounded`]): a node that
//! restarts, or has never read a record, accepts whatever authentic copy
//! storage shows it first.

use coffer_crypto::sealed::Opened;

use super::bounded::{BoundedMap, Weigh};

/// Records whose generation a node remembers.
pub const REMEMBERED: u64 = 200_000;

/// What a node remembers of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pub generation: u64,
    tag: [u8; 8],
}

impl Mark {
    /// The mark of a record of `generation` whose tag starts with `tag`.
    pub fn new(generation: u64, tag: &[u8]) -> Mark {
        let mut first = [0u8; 8];
        for (to, from) in first.iter_mut().zip(tag) {
            *to = *from;
        }
        Mark {
            generation,
            tag: first,
        }
    }

    pub fn of(opened: &Opened<'_>) -> Mark {
        Mark::new(opened.generation, &opened.tag)
    }

    /// Why `found`, read after this mark was seen, cannot be right.
    pub fn refuses(&self, found: &Mark) -> Option<String> {
        if found.generation < self.generation {
            Some(format!(
                "rolled back: generation {} read after generation {} was seen",
                found.generation, self.generation
            ))
        } else if found.generation == self.generation && found.tag != self.tag {
            Some(format!(
                "forked: two different records of generation {}",
                found.generation
            ))
        } else {
            None
        }
    }
}

impl Weigh for Mark {
    fn weight(&self, _: &str) -> u64 {
        1
    }
}

/// The marks of the most recently used records.
pub struct Watermarks {
    marks: BoundedMap<Mark>,
}

impl Watermarks {
    pub fn new() -> Watermarks {
        Watermarks {
            marks: BoundedMap::new(REMEMBERED),
        }
    }

    /// The mark of `key`, if this node has seen it.
    pub fn get(&self, key: &str) -> Option<Mark> {
        self.marks.get(key)
    }

    /// Remembers `mark` for `key` unless a newer one is remembered.
    pub fn raise(&self, key: &str, mark: Mark) {
        self.marks.update(key, |current| match current {
            Some(current) if current.generation > mark.generation => *current,
            _ => mark,
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mark(generation: u64, tag: u8) -> Mark {
        Mark {
            generation,
            tag: [tag; 8],
        }
    }

    #[test]
    fn older_and_forked_records_are_refused() {
        let seen = mark(5, 1);
        assert!(seen.refuses(&mark(4, 1)).unwrap().contains("rolled back"));
        assert!(seen.refuses(&mark(5, 2)).unwrap().contains("forked"));
        assert_eq!(seen.refuses(&mark(5, 1)), None);
        assert_eq!(seen.refuses(&mark(6, 9)), None);
    }

    #[test]
    fn marks_only_go_up() {
        let marks = Watermarks::new();
        marks.raise("k", mark(3, 1));
        marks.raise("k", mark(2, 1));
        assert_eq!(marks.get("k"), Some(mark(3, 1)));
        marks.raise("k", mark(4, 1));
        assert_eq!(marks.get("k"), Some(mark(4, 1)));
    }
}
