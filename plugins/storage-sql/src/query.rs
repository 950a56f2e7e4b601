//! The SQL statements of the storage table, per dialect.

use coffer_sdk::sql::Dialect;

/// A key created anew starts at a random revision of 1 to this.
pub const FIRST_REVISIONS: u64 = 1 << 52;

/// Every statement the backend runs, built once when it opens.
pub struct Statements {
    table: String,
    pub create_table: String,
    pub get: String,
    pub upsert: String,
    /// Writes answered by their count of changed rows: the revision they
    /// leave is known beforehand (the one given, or the expected one plus
    /// one). `RETURNING` costs SQLite a temporary table per statement.
    pub insert: String,
    pub update: String,
    /// The same writes returning the revision they leave, for batches,
    /// whose answers are rows; the first revision is drawn by the database.
    pub insert_returning: String,
    pub update_returning: String,
    pub delete: String,
    pub delete_at: String,
    pub list_from: String,
    pub list_after: String,
    pub list_from_bounded: String,
    pub list_after_bounded: String,
}

impl Statements {
    /// The statements on `table`, a plain identifier
    /// (`coffer_sdk::sql::identifier`).
    pub fn new(table: &str, dialect: Dialect) -> Statements {
        // PostgreSQL's default collation is locale-aware; keys must sort
        // bytewise for prefix ranges and cursors to be right.
        // A key created anew starts at a random revision, not at 1: after a
        // delete and re-create, a writer holding the old revision must not
        // match the new key (ABA). Later writes add one.
        let (key_type, blob_type, first_rev) = match dialect {
            Dialect::Sqlite => (
                "TEXT",
                "BLOB",
                format!("(abs(random()) % {FIRST_REVISIONS}) + 1"),
            ),
            Dialect::Postgres => (
                "TEXT COLLATE \"C\"",
                "BYTEA",
                format!("(floor(random() * {FIRST_REVISIONS}) + 1)::bigint"),
            ),
        };
        let t = table;
        Statements {
            table: t.to_owned(),
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (k {key_type} PRIMARY KEY, v {blob_type} NOT NULL, rev BIGINT NOT NULL)"
            ),
            get: format!("SELECT v, rev FROM {t} WHERE k = $1"),
            upsert: format!(
                "INSERT INTO {t} (k, v, rev) VALUES ($1, $2, {first_rev}) \
                 ON CONFLICT (k) DO UPDATE SET v = excluded.v, rev = {t}.rev + 1 RETURNING rev"
            ),
            insert: format!(
                "INSERT INTO {t} (k, v, rev) VALUES ($1, $2, $3) ON CONFLICT (k) DO NOTHING"
            ),
            update: format!("UPDATE {t} SET v = $2, rev = rev + 1 WHERE k = $1 AND rev = $3"),
            insert_returning: format!(
                "INSERT INTO {t} (k, v, rev) VALUES ($1, $2, {first_rev}) ON CONFLICT (k) DO NOTHING RETURNING rev"
            ),
            update_returning: format!(
                "UPDATE {t} SET v = $2, rev = rev + 1 WHERE k = $1 AND rev = $3 RETURNING rev"
            ),
            delete: format!("DELETE FROM {t} WHERE k = $1"),
            delete_at: format!("DELETE FROM {t} WHERE k = $1 AND rev = $2"),
            list_from: format!("SELECT k FROM {t} WHERE k >= $1 ORDER BY k LIMIT $2"),
            list_after: format!("SELECT k FROM {t} WHERE k > $1 ORDER BY k LIMIT $2"),
            list_from_bounded: format!(
                "SELECT k FROM {t} WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3"
            ),
            list_after_bounded: format!(
                "SELECT k FROM {t} WHERE k > $1 AND k < $2 ORDER BY k LIMIT $3"
            ),
        }
    }

    /// The statement reading the rows of `count` keys (`k, v, rev`), the
    /// keys bound as `$1` … `$count`.
    pub fn get_many(&self, count: usize) -> String {
        let placeholders: Vec<String> = (1..=count).map(|n| format!("${n}")).collect();
        format!(
            "SELECT k, v, rev FROM {} WHERE k IN ({})",
            self.table,
            placeholders.join(", ")
        )
    }
}

/// The smallest string greater than every string starting with `prefix`
/// (in code-point order, which is UTF-8 byte order), or none when `prefix`
/// is empty or cannot be bounded.
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        // Skip the surrogate gap, which holds no chars.
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bound_increments_the_last_char() {
        assert_eq!(
            prefix_upper_bound("secrets/a/"),
            Some("secrets/a0".to_owned())
        );
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a\u{10FFFF}"), Some("b".to_owned()));
    }
}
