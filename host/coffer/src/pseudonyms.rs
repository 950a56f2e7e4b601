//! How secret names appear wherever the engine writes about them — audit
//! records and the server log: `hmac-sha256:<hex>` under the audit key. An
//! operator can look a name up (`coffer audit hash NAME`); a reader of the
//! log or the audit trail cannot tell what it names.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::lower_hex::lower_hex;
use crate::store::layout;

/// What every pseudonym starts with.
const PREFIX: &str = "hmac-sha256:";

/// Pseudonyms under one key.
pub struct Pseudonyms {
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonyms(..)")
    }
}

impl Pseudonyms {
    pub fn new(key: Zeroizing<Vec<u8>>) -> Pseudonyms {
        Pseudonyms { key }
    }

    /// `hmac-sha256:<hex>` of `value`.
    pub fn of(&self, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(value.as_bytes());
        let mut shown = String::with_capacity(PREFIX.len() + 64);
        shown.push_str(PREFIX);
        shown.push_str(&lower_hex(&mac.finalize().into_bytes()));
        shown
    }

    /// A storage key as the log may show it: a secret's name becomes its
    /// pseudonym, a token record shows only the token's public id.
    pub fn storage_key(&self, key: &str) -> String {
        if let Some(rest) = key.strip_prefix(layout::SECRETS_PREFIX)
            && let Some((namespace, name)) = rest.split_once('/')
        {
            return format!("{}{}", layout::secrets_of(namespace), self.of(name));
        }
        if let Some(hash) = key.strip_prefix(layout::TOKENS) {
            let id: String = hash.chars().take(16).collect();
            return format!("{}{id}…", layout::TOKENS);
        }
        key.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_show_in_storage_keys() {
        let names = Pseudonyms::new(Zeroizing::new(vec![7; 32]));
        let shown = names.storage_key("secrets/pay/db/password");
        assert!(shown.starts_with("secrets/pay/hmac-sha256:"), "{shown}");
        assert!(!shown.contains("password"));
        assert_eq!(shown, format!("secrets/pay/{}", names.of("db/password")));
        assert_eq!(
            names.storage_key(&format!("tokens/{}", "ab".repeat(32))),
            format!("tokens/{}…", "ab".repeat(8))
        );
        assert_eq!(names.storage_key("datakeys/pay"), "datakeys/pay");
    }
}
