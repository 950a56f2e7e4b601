//! Guest bindings generated from the `coffer:plugin` WIT package, one module
//! per world. Shared interfaces are generated once (in `storage_world`) and
//! reused by the others. Plugin authors use the wrappers in this crate
//! instead.

/// The `storage-batch-plugin` world: a storage backend with `storage-batch`
/// (whose methods [`crate::storage::Storage`] provides as loops).
pub mod storage_world {
    wit_bindgen::generate!({
        world: "storage-batch-plugin",
        path: "wit",
        pub_export_macro: true,
        default_bindings_module: "coffer_sdk::bindings::storage_world",
        runtime_path: "coffer_sdk::wit_bindgen::rt",
    });
}

/// The `keyring-plugin` world.
pub mod keyring_world {
    wit_bindgen::generate!({
        world: "keyring-plugin",
        path: "wit",
        pub_export_macro: true,
        default_bindings_module: "coffer_sdk::bindings::keyring_world",
        runtime_path: "coffer_sdk::wit_bindgen::rt",
        with: {
            "coffer:plugin/types@0.1.1": crate::bindings::storage_world::coffer::plugin::types,
            "coffer:plugin/log@0.1.1": crate::bindings::storage_world::coffer::plugin::log,
            "coffer:plugin/config@0.1.1": crate::bindings::storage_world::coffer::plugin::config,
        },
    });
}

/// The `kms-plugin` world.
pub mod kms_world {
    wit_bindgen::generate!({
        world: "kms-plugin",
        path: "wit",
        pub_export_macro: true,
        default_bindings_module: "coffer_sdk::bindings::kms_world",
        runtime_path: "coffer_sdk::wit_bindgen::rt",
        with: {
            "coffer:plugin/types@0.1.1": crate::bindings::storage_world::coffer::plugin::types,
            "coffer:plugin/log@0.1.1": crate::bindings::storage_world::coffer::plugin::log,
            "coffer:plugin/config@0.1.1": crate::bindings::storage_world::coffer::plugin::config,
            "coffer:plugin/http@0.1.1": crate::bindings::storage_world::coffer::plugin::http,
        },
    });
}
