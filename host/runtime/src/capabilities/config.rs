//! The `config` capability: a plugin reads its own configuration table.

use wasmtime::component::HasSelf;

use super::{ALL_KINDS, Capability};
use crate::bindings::{self, config::Host};
use crate::state::PluginState;

/// Every plugin reads its own configuration.
pub(crate) const CAPABILITY: Capability = Capability {
    interface: "coffer:plugin/config",
    kinds: ALL_KINDS,
    grant: None,
    link: |linker| bindings::config::add_to_linker::<_, HasSelf<_>>(linker, |s| s),
};

impl Host for PluginState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.config.get(&key).cloned())
    }

    async fn entries(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}
