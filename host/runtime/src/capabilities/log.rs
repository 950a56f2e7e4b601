//! The `log` capability: plugin messages into the host's tracing log.

use crate::bindings::log::{Host, Level};
use crate::state::PluginState;

/// Longest message kept; the rest is cut so a plugin cannot flood the log.
const MAX_MESSAGE_BYTES: usize = 4096;

impl Host for PluginState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let message = escape_controls(truncate(&message, MAX_MESSAGE_BYTES));
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(target: "coffer::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "coffer::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "coffer::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "coffer::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "coffer::plugin", plugin, "{message}"),
        }
        Ok(())
    }
}

/// Escapes newlines and other control characters, so a plugin cannot forge
/// log lines that seem to come from the host.
fn escape_controls(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::{escape_controls, truncate};

    #[test]
    fn control_characters_cannot_forge_log_lines() {
        assert_eq!(
            escape_controls("a\nINFO fake\r\u{1b}[31m"),
            "a\\nINFO fake\\r\\u{1b}[31m"
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("hello", 10), "hello");
    }
}
