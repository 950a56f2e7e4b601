//! A hostile plugin fails only the call it misbehaves in: loops, memory
//! bombs, panics and sleeps are cut off, escapes are refused, and the next
//! call gets a working instance.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_runtime::{
    GuestError, KeyringPlugin, Limits, LoadError, PluginError, PluginFailure, Storage,
    StoragePlugin,
};

fn tight_limits() -> Limits {
    Limits {
        memory_bytes: 32 << 20,
        cpu_time: Duration::from_millis(200),
        call_timeout: Duration::from_secs(2),
        max_instances: 4,
    }
}

/// The hostile guest, and the directory of the database it is lent.
async fn hostile(limits: Limits) -> (tempfile::TempDir, StoragePlugin) {
    let (dir, spec) = common::hostile_spec(limits).await;
    let plugin = StoragePlugin::load(&common::runtime(), spec).await.unwrap();
    (dir, plugin)
}

fn failure(error: PluginError) -> PluginFailure {
    match error {
        PluginError::Failed { plugin, failure } => {
            assert_eq!(plugin, "hostile-guest");
            failure
        }
        other => panic!("expected a plugin failure, got {other:?}"),
    }
}

async fn still_serves(plugin: &StoragePlugin) {
    let entry = plugin.get("hello").await.unwrap().unwrap();
    assert_eq!(entry.value, b"hello");
}

#[tokio::test]
async fn an_endless_loop_exhausts_its_cpu_budget_and_the_plugin_keeps_serving() {
    let (_db, plugin) = hostile(tight_limits()).await;
    let error = plugin.get("loop").await.unwrap_err();
    assert_eq!(
        failure(error),
        PluginFailure::CpuExhausted(Duration::from_millis(200))
    );
    still_serves(&plugin).await;
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_limit() {
    let (_db, plugin) = hostile(tight_limits()).await;
    let error = plugin.get("oom").await.unwrap_err();
    assert_eq!(failure(error), PluginFailure::OutOfMemory(32 << 20));
    still_serves(&plugin).await;
}

#[tokio::test]
async fn a_panic_traps_and_the_instance_is_replaced() {
    let (_db, plugin) = hostile(Limits {
        max_instances: 1,
        ..tight_limits()
    })
    .await;
    let calls = |e: coffer_runtime::Entry| String::from_utf8(e.value).unwrap();
    assert_eq!(calls(plugin.get("calls").await.unwrap().unwrap()), "1");
    assert_eq!(
        calls(plugin.get("calls").await.unwrap().unwrap()),
        "2",
        "warm instance reused"
    );
    let error = plugin.get("panic").await.unwrap_err();
    assert!(matches!(failure(error), PluginFailure::Trapped(_)));
    assert_eq!(
        calls(plugin.get("calls").await.unwrap().unwrap()),
        "1",
        "fresh instance after the trap"
    );
}

#[tokio::test]
async fn a_call_that_blocks_is_cut_off_at_the_deadline() {
    let (_db, plugin) = hostile(Limits {
        call_timeout: Duration::from_millis(300),
        ..tight_limits()
    })
    .await;
    let started = Instant::now();
    let error = plugin.get("sleep").await.unwrap_err();
    assert_eq!(
        failure(error),
        PluginFailure::TimedOut(Duration::from_millis(300))
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    still_serves(&plugin).await;
}

#[tokio::test]
async fn plugins_get_no_filesystem_environment_or_network_by_default() {
    let (_db, plugin) = hostile(tight_limits()).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let connect = format!("connect:{}", listener.local_addr().unwrap());
    for key in ["read-file", "read-env", connect.as_str()] {
        let error = plugin.get(key).await.unwrap_err();
        assert!(
            matches!(error.guest(), Some(GuestError::Denied(_))),
            "{key}: expected a refusal, got {error:?}"
        );
    }
}

#[tokio::test]
async fn misbehaving_calls_do_not_disturb_concurrent_good_ones() {
    let (_db, plugin) = hostile(tight_limits()).await;
    let plugin = Arc::new(plugin);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let plugin = plugin.clone();
        tasks.push(tokio::spawn(async move {
            let key = match i % 4 {
                0 => "loop".to_owned(),
                1 => "panic".to_owned(),
                _ => format!("good-{i}"),
            };
            (key.clone(), plugin.get(&key).await)
        }));
    }
    for task in tasks {
        let (key, result) = task.await.unwrap();
        if key.starts_with("good-") {
            assert_eq!(result.unwrap().unwrap().value, key.as_bytes());
        } else {
            assert!(result.is_err());
        }
    }
}

#[tokio::test]
async fn a_plugin_importing_a_capability_its_section_does_not_grant_is_refused() {
    let spec = common::spec("hostile-guest", &[], tight_limits());
    let error = StoragePlugin::load(&common::runtime(), spec)
        .await
        .err()
        .unwrap();
    assert!(matches!(error, LoadError::NotGranted { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("coffer:plugin/sql") && message.contains("[<section>.sql]"),
        "{message}"
    );
}

#[tokio::test]
async fn a_sha256_pin_that_does_not_match_is_refused() {
    let (_db, mut spec) = common::hostile_spec(tight_limits()).await;
    spec.sha256 = Some("00".repeat(32));
    let error = StoragePlugin::load(&common::runtime(), spec)
        .await
        .err()
        .unwrap();
    assert!(matches!(error, LoadError::Sha256Mismatch { .. }), "{error}");
    assert!(error.to_string().contains("sha256 mismatch"));
}

#[tokio::test]
async fn a_storage_plugin_is_not_accepted_as_a_keyring() {
    let runtime = common::runtime();
    let spec = common::spec("hostile-guest", &[], tight_limits());
    let error = KeyringPlugin::load(&runtime, spec).await.err().unwrap();
    // It imports `sql`, which keyrings are not granted.
    assert!(matches!(error, LoadError::NotGranted { .. }), "{error}");
    assert!(error.to_string().contains("coffer:plugin/sql"), "{error}");
}

#[tokio::test]
async fn a_file_that_is_not_a_component_is_refused_clearly() {
    let runtime = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"definitely not wasm").unwrap();
    let (_db, mut spec) = common::hostile_spec(tight_limits()).await;
    spec.wasm_path = path;
    let error = StoragePlugin::load(&runtime, spec).await.err().unwrap();
    assert!(matches!(error, LoadError::Compile { .. }), "{error}");
}

/// A runtime compiling into (and loading from) the cache at `dir`.
fn runtime_cached_in(dir: &std::path::Path) -> coffer_runtime::Runtime {
    coffer_runtime::Runtime::new(coffer_runtime::RuntimeOptions {
        cache_dir: Some(dir.to_path_buf()),
    })
    .unwrap()
}

/// Loads the hostile guest through a runtime caching in `dir`, and checks
/// it is the hostile guest that answers.
async fn load_hostile_cached_in(dir: &std::path::Path) {
    let (_db, spec) = common::hostile_spec(tight_limits()).await;
    let plugin = StoragePlugin::load(&runtime_cached_in(dir), spec)
        .await
        .unwrap();
    still_serves(&plugin).await;
}

#[tokio::test]
async fn compiled_components_are_cached_and_a_corrupt_entry_is_recompiled() {
    let cache = tempfile::tempdir().unwrap();
    let load = || load_hostile_cached_in(cache.path());
    load().await;
    let entries = artifacts(cache.path());
    assert_eq!(entries.len(), 1, "one compiled artifact: {entries:?}");

    std::fs::write(&entries[0], b"not a compiled component").unwrap();
    load().await;
    assert!(
        std::fs::metadata(&entries[0]).unwrap().len() > 1000,
        "the corrupt entry was replaced"
    );
}

/// The compiled artifacts in a cache directory.
fn artifacts(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".cwasm"))
        .collect()
}

#[tokio::test]
async fn a_cached_artifact_of_another_component_is_never_run_in_its_place() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = || runtime_cached_in(cache.path());
    // Cache storage-sql, then the hostile guest; remember which is which.
    let (_db, hostile_spec) = common::hostile_spec(tight_limits()).await;
    let pool = hostile_spec.grants.sql.clone().unwrap();
    let honest_spec = || common::storage_spec("storage-sql", &[], tight_limits(), pool.clone());
    let first = runtime();
    StoragePlugin::load(&first, honest_spec()).await.unwrap();
    let honest = artifacts(cache.path()).pop().unwrap();
    StoragePlugin::load(&first, hostile_spec).await.unwrap();
    let hostile = artifacts(cache.path())
        .into_iter()
        .find(|p| *p != honest)
        .unwrap();
    drop(first);
    // Whoever can write the cache plants the hostile native code under the
    // honest component's name: the pin on the .wasm must still hold.
    std::fs::copy(&hostile, &honest).unwrap();
    let plugin = StoragePlugin::load(&runtime(), honest_spec())
        .await
        .unwrap();
    // The hostile guest echoes keys without a slash; storage-sql has no
    // such key.
    assert_eq!(
        plugin.get("hello").await.unwrap(),
        None,
        "the planted artifact ran instead of the pinned component"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_cache_directory_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().unwrap();
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    load_hostile_cached_in(cache.path()).await;
    assert!(
        std::fs::read_dir(cache.path()).unwrap().next().is_none(),
        "nothing may be cached, or trusted, in a directory others can write"
    );
}

/// Everything written to the log while `work` runs on this thread.
async fn logged_while<F: std::future::Future>(work: F) -> (F::Output, usize) {
    use std::sync::Mutex;
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<usize>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            *self.0.lock().unwrap() += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let output = work.await;
    let bytes = *sink.0.lock().unwrap();
    (output, bytes)
}

#[tokio::test]
async fn a_log_flood_is_cut_to_the_plugins_budget() {
    // CPU enough for 20,000 host calls; the budget is about bytes logged.
    let (_db, plugin) = hostile(Limits {
        cpu_time: Duration::from_secs(10),
        call_timeout: Duration::from_secs(20),
        ..tight_limits()
    })
    .await;
    // 20,000 lines of 4 KiB: 80 MB if the host wrote them all.
    let (result, bytes) = logged_while(plugin.get("log-flood")).await;
    assert_eq!(result.unwrap().unwrap().value, b"flooded");
    assert!(
        bytes < 1 << 20,
        "the host wrote {bytes} bytes of plugin log"
    );
    assert!(
        bytes > 64 << 10,
        "some of it still reaches the log: {bytes}"
    );
}

fn keyring_spec(dir: &std::path::Path, writable: bool, probe: &str) -> coffer_runtime::PluginSpec {
    let mut spec = common::spec(
        "hostile-keyring",
        &[("probe", probe), ("other_grant", "config")],
        tight_limits(),
    );
    spec.grants.files = vec![coffer_runtime::FileGrant {
        name: "keyset".to_owned(),
        path: dir.join("keyset.bin"),
        writable,
    }];
    spec
}

#[tokio::test]
async fn a_keyring_reaches_its_granted_file_and_nothing_beside_it() {
    use coffer_crypto::tink::{KeyStatus, TinkKey, TinkKeyset};
    use coffer_crypto::{Algorithm, KeyMaterial, OutputPrefix};
    use coffer_runtime::Keyring;

    let dir = tempfile::tempdir().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    std::fs::write(dir.path().join("coffer.toml"), "password = \"hunter2\"").unwrap();
    let beside = dir.path().join("coffer.toml");
    let probe = format!(
        "{},/keyring/coffer.toml,coffer.toml,/etc/passwd,/keyring/planted",
        beside.display()
    );
    let runtime = common::runtime();
    let keyring = KeyringPlugin::load(&runtime, keyring_spec(dir.path(), true, &probe))
        .await
        .unwrap();
    assert!(keyring.load().await.unwrap().is_none());
    let keyset = TinkKeyset {
        primary_key_id: 7,
        keys: vec![TinkKey {
            id: 7,
            algorithm: Algorithm::Aes256Gcm,
            status: KeyStatus::Enabled,
            output_prefix: OutputPrefix::Tink,
            material: KeyMaterial::new(Algorithm::Aes256Gcm, vec![9; 32]).unwrap(),
        }],
    };
    keyring.store(&keyset).await.unwrap();
    assert_eq!(keyring.load().await.unwrap().unwrap(), keyset);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("keyset.bin"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "key files are private whatever the directory"
        );
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["coffer.toml", "keyset.bin"],
        "nothing planted beside it"
    );

    // Granted read-only, the file cannot be replaced.
    let read_only = KeyringPlugin::load(&runtime, keyring_spec(dir.path(), false, ""))
        .await
        .unwrap();
    let error = read_only.store(&keyset).await.unwrap_err();
    assert!(
        matches!(error.guest(), Some(GuestError::Denied(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn plugins_see_the_real_time_only_when_granted() {
    let runtime = common::runtime();
    let seconds = |plugin: StoragePlugin| async move {
        let entry = plugin.get("time").await.unwrap().unwrap();
        String::from_utf8(entry.value)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let (_db, spec) = common::hostile_spec(tight_limits()).await;
    let stopped = StoragePlugin::load(&runtime, spec).await.unwrap();
    assert_eq!(seconds(stopped).await, 0);
    let (_db, mut spec) = common::hostile_spec(tight_limits()).await;
    spec.grants.clock = true;
    let granted = StoragePlugin::load(&runtime, spec).await.unwrap();
    assert!(seconds(granted).await > 1_700_000_000);
}

#[tokio::test]
async fn plugins_see_only_the_environment_variables_granted_to_them() {
    let runtime = common::runtime();
    let (_db, mut spec) = common::hostile_spec(tight_limits()).await;
    spec.grants.env = vec![(
        "COFFER_SANDBOX_GRANTED".to_owned(),
        "visible".to_owned().into(),
    )];
    let plugin = StoragePlugin::load(&runtime, spec).await.unwrap();
    let granted = plugin.get("env:COFFER_SANDBOX_GRANTED").await.unwrap();
    assert_eq!(granted.unwrap().value, b"visible");
    // A variable the host has but did not grant stays invisible.
    let (host_only, _) = std::env::vars().next().unwrap();
    let error = plugin.get(&format!("env:{host_only}")).await.unwrap_err();
    assert!(
        matches!(error.guest(), Some(GuestError::Denied(_))),
        "{host_only}: {error:?}"
    );
    // It is the first variable the plugin lists, not one of the host's.
    let first = plugin.get("read-env").await.unwrap().unwrap();
    assert_eq!(
        first.value,
        b"escaped: environment variable COFFER_SANDBOX_GRANTED"
    );
}
