//! `coffer plugin new`: a crate made outside the workspace, with the SDK as
//! its only dependency, builds for wasm32-wasip2, passes `coffer plugin
//! check` as it is, and serves a real server — for each kind.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use coffer_e2e::openbao::OpenBao;
use coffer_e2e::server::{Server, coffer_binary};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Makes crate `name` of `kind` in `parent` and builds it; returns its
/// component.
fn make_and_build(parent: &Path, name: &str, kind: &str) -> PathBuf {
    let dir = parent.join(name);
    let output = Command::new(coffer_binary())
        .args(["plugin", "new", name, "--kind", kind, "--dir"])
        .arg(&dir)
        .arg("--sdk-path")
        .arg(repository().join("sdk"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in ["Cargo.toml", "src/lib.rs", "README.md"] {
        assert!(dir.join(file).is_file(), "{file} was not made");
    }
    // The workspace's lock file pins the same dependency versions (what is
    // not needed is pruned), so the build reuses what is compiled.
    std::fs::copy(repository().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = repository().join("target").join("scaffolds");
    let output = Command::new(cargo)
        .args(["build", "--target", "wasm32-wasip2", "--release", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "building the new {kind} plugin failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let wasm = target
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    assert!(wasm.is_file(), "{} was not built", wasm.display());
    wasm
}

/// Runs `coffer plugin check` on `wasm`; asserts every check passed.
fn passes_check(wasm: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = Command::new(coffer_binary())
        .args(["plugin", "check"])
        .arg(wasm)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_plugins_build_alone_pass_their_checks_and_serve() {
    let parent = tempfile::tempdir().unwrap();
    let storage = make_and_build(parent.path(), "my-store", "storage");
    let keyring = make_and_build(parent.path(), "my-keyring", "keyring");
    let kms = make_and_build(parent.path(), "my-kms", "kms");

    let report = passes_check(&storage, &[], &[]);
    assert!(report.contains("19 checks, 19 passed"), "{report}");
    passes_check(&keyring, &[], &[]);

    // A real server on the new storage and keyring.
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        "[storage]\nplugin = {:?}\n[storage.sql]\nurl = \"sqlite://{}\"\n\
         [keyring]\nplugin = {:?}\n[keyring.config]\ncreate_if_missing = true\n[keyring.files]\n\
         keyset = {{ path = {:?}, writable = true }}\n",
        storage.display().to_string(),
        data.path().join("kv.db").display(),
        keyring.display().to_string(),
        data.path().join("keyset.json").display().to_string(),
    );
    let mut server = Server::start(data.path(), &config);
    let (status, _) = server.put("app/db", "hunter2").await;
    assert_eq!(status, 200);
    server.stop();
    let server = Server::start(data.path(), &config);
    server.assert_reads("app/db", "hunter2").await;

    // The KMS one, against OpenBao's transit.
    let bao = OpenBao::start();
    let token = bao.prepare(true, "1h").await;
    let kms_config = parent.path().join("kms.toml");
    std::fs::write(
        &kms_config,
        format!(
            "[kms]\nplugin = \"unused\"\n[kms.config]\nkey = \"coffer\"\n[kms.http]\n\
             origin = {:?}\nauth = \"vault-token\"\ntoken_env = \"SCAFFOLD_VAULT_TOKEN\"\n\
             paths = [\"/v1/transit/\"]\n",
            bao.addr
        ),
    )
    .unwrap();
    let report = passes_check(
        &kms,
        &[
            "--config",
            &kms_config.display().to_string(),
            "--section",
            "kms",
            "--rotate",
        ],
        &[("SCAFFOLD_VAULT_TOKEN", &token)],
    );
    assert!(report.contains("6 checks, 6 passed"), "{report}");
}

#[test]
fn a_name_that_is_no_crate_name_or_a_used_directory_is_refused() {
    let parent = tempfile::tempdir().unwrap();
    let new = |name: &str, dir: &Path| {
        Command::new(coffer_binary())
            .args(["plugin", "new", name, "--kind", "storage", "--dir"])
            .arg(dir)
            .output()
            .unwrap()
    };
    let output = new("My Store", &parent.path().join("a"));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a crate name"));
    std::fs::write(parent.path().join("keep.txt"), "mine").unwrap();
    let output = new("store", parent.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not empty"));
    assert_eq!(
        std::fs::read_to_string(parent.path().join("keep.txt")).unwrap(),
        "mine"
    );
}
