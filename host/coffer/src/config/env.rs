//! `COFFER_A__B__C=value` environment overrides of configuration keys.

use super::scalar_string;

/// Top-level keys environment variables may override; other `COFFER_…`
/// variables (the client's `COFFER_ADDR`, `COFFER_TOKEN`) are not config.
const OVERRIDABLE: &[&str] = &[
    "listen",
    "data_dir",
    "plugin_dir",
    "cache_dir",
    "max_versions",
    "max_value_bytes",
    "storage",
    "keyring",
    "kms",
    "audit",
    "keys",
    "janitor",
    "http",
    "transport",
];

/// Applies `COFFER_A__B__C=value` overrides to `table`.
pub(super) fn apply_env(table: &mut toml::Table, vars: impl IntoIterator<Item = (String, String)>) {
    for (name, value) in vars {
        let Some(path) = name.strip_prefix("COFFER_") else {
            continue;
        };
        let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
        if keys.iter().any(String::is_empty) || !OVERRIDABLE.contains(&keys[0].as_str()) {
            continue;
        }
        set_path(table, &keys, env_value(&value));
    }
}

/// An environment value as TOML: numbers and booleans keep their type,
/// anything else is a string.
fn env_value(raw: &str) -> toml::Value {
    let typed = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut parsed| parsed.remove("v"))
        .filter(|v| {
            matches!(
                v,
                toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_)
            )
        })
        // Only when the value reads back exactly as written: `1e5`, `0x1F`
        // or `1_000` stay strings, so a plugin sees what the operator typed.
        .filter(|v| scalar_string(v).as_deref() == Some(raw));
    typed.unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn set_path(table: &mut toml::Table, keys: &[String], value: toml::Value) {
    let Some((last, parents)) = keys.split_last() else {
        return;
    };
    let mut current = table;
    for key in parents {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = entry else {
            return;
        };
        current = next;
    }
    current.insert(last.clone(), value);
}
