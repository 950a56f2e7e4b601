//! Host-side bindings generated from the `coffer:plugin` WIT package.
//!
//! One host world imports every capability and exports every plugin
//! interface, so shared types are generated once. Each plugin kind links only
//! the imports it is granted and looks up only the export it implements.

wasmtime::component::bindgen!({
    inline: "
        package coffer:host;

        world plugins {
            import coffer:plugin/log@0.1.1;
            import coffer:plugin/config@0.1.1;
            import coffer:plugin/sql@0.1.1;
            import coffer:plugin/files@0.1.1;
            import coffer:plugin/http@0.1.1;
            export coffer:plugin/storage@0.1.1;
            export coffer:plugin/storage-batch@0.1.1;
            export coffer:plugin/keyring@0.1.1;
            export coffer:plugin/kms@0.1.1;
        }
    ",
    path: "../../wit",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use coffer::plugin::{config, files, http, log, sql, types};
pub use exports::coffer::plugin::{keyring, kms, storage, storage_batch};
