//! Resource bounds applied to every plugin call.

use std::time::Duration;

/// How much one plugin may use. Every call gets a fresh CPU budget and
/// deadline; memory is bounded for the instance's lifetime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum linear memory of one instance.
    pub memory_bytes: usize,
    /// CPU time one call may spend executing WebAssembly.
    pub cpu_time: Duration,
    /// Wall-clock time one call may take, waiting on the host included.
    pub call_timeout: Duration,
    /// Instances of this plugin that may run at once.
    pub max_instances: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            cpu_time: Duration::from_secs(2),
            call_timeout: Duration::from_secs(10),
            max_instances: 32,
        }
    }
}

/// The largest `memory_bytes` a plugin may be given: the pooling allocator
/// reserves this much address space per instance slot.
pub const MAX_MEMORY_BYTES: usize = 1 << 30;
