//! The configuration loader: arbitrary TOML (and environment overrides
//! taken from it) is loaded or refused with an error, never a panic.

#![no_main]

use coffer::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Lines after a `%%` line become COFFER_… variables.
    let (file, vars) = text.split_once("\n%%\n").unwrap_or((text, ""));
    let vars: Vec<(String, String)> = vars
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (format!("COFFER_{k}"), v.to_owned()))
        .collect();
    if let Ok(config) = Config::parse(file, "fuzz", vars, None) {
        let _ = config.storage_section();
        let _ = config.keyring_section();
        let _ = config.audit_settings();
        let _ = config.http_limits();
        let _ = config.key_admin_settings();
    }
});
