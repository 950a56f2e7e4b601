//! `coffer plugin check`: every in-repo plugin passes the contract of its
//! kind through the real binary (on scratch grants, or with a config
//! section's grants against OpenBao and moto), and a plugin that breaks
//! the contract fails it, saying which rule.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use coffer_e2e::aws::{Moto, REGION};
use coffer_e2e::openbao::OpenBao;
use coffer_e2e::server::{coffer_binary, plugin_dir};

/// Runs `coffer plugin check` on plugin `name` with `args` and `env`.
fn check(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(coffer_binary())
        .args(["plugin", "check"])
        .arg(plugin_dir().join(format!("{name}.wasm")))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Asserts the check passed; returns its report.
fn passes(name: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = check(name, args, env);
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name}: {report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!report.contains("FAIL"), "{report}");
    report
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("coffer.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn the_embedded_plugins_pass_on_scratch_grants() {
    let report = passes("storage-sql", &[], &[]);
    assert!(report.contains("19 checks, 19 passed"), "{report}");
    let report = passes("keyring-file", &[], &[]);
    assert!(
        report.contains("a stored keyset loads back exactly as stored"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vault_plugins_pass_with_their_sections_grants() {
    let bao = OpenBao::start();
    let token = bao.prepare(true, "1h").await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("kms-token");
    std::fs::write(&token_file, &token).unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[storage]\nplugin = \"storage-vault\"\n[storage.http]\norigin = {addr:?}\n\
             auth = \"vault-token\"\ntoken_env = \"CHECK_VAULT_TOKEN\"\npaths = [\"/v1/secret/\"]\n\
             [kms]\nplugin = \"kms-vault-transit\"\n[kms.config]\nkey = \"coffer\"\n[kms.http]\n\
             origin = {addr:?}\nauth = \"vault-token\"\ntoken_file = {:?}\npaths = [\"/v1/transit/\"]\n",
            token_file.display().to_string(),
            addr = bao.addr,
        ),
    );
    let env = [("CHECK_VAULT_TOKEN", token.as_str())];
    let report = passes(
        "storage-vault",
        &["--config", &config, "--section", "storage"],
        &env,
    );
    assert!(
        report.contains("pass  what the checks wrote can be deleted"),
        "a check on a shared store cleans up: {report}"
    );
    let report = passes(
        "kms-vault-transit",
        &["--config", &config, "--section", "kms", "--rotate"],
        &env,
    );
    assert!(
        report.contains("pass  rotate starts a newer version"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_plugins_pass_with_their_sections_grants() {
    let moto = Moto::start();
    moto.kms_key();
    let dir = tempfile::tempdir().unwrap();
    let http = |service: &str| {
        format!(
            "origin = {:?}\nauth = \"aws-sigv4\"\nservice = \"{service}\"\nregion = \"{REGION}\"\n",
            moto.endpoint
        )
    };
    let config = write_config(
        dir.path(),
        &format!(
            "[storage]\nplugin = \"storage-dynamodb\"\n[storage.config]\ntable = \"checks\"\n\
             create_table = true\n[storage.http]\n{}[kms]\nplugin = \"kms-aws\"\n[kms.config]\n\
             key_id = \"alias/coffer-test\"\n[kms.http]\n{}",
            http("dynamodb"),
            http("kms"),
        ),
    );
    passes(
        "storage-dynamodb",
        &["--config", &config, "--section", "storage"],
        &moto.env(),
    );
    passes(
        "kms-aws",
        &["--config", &config, "--section", "kms", "--rotate"],
        &moto.env(),
    );
}

#[test]
fn a_plugin_that_breaks_the_contract_fails_and_says_which_rule() {
    // The hostile guest's honest store numbers revisions from 1 again after
    // a delete, and checks them apart from its write. It imports `http`,
    // so its section grants an origin (where nothing listens).
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[storage]\nplugin = \"hostile-guest\"\n[storage.sql]\nurl = \"sqlite://{}\"\n\
             [storage.http]\norigin = \"http://127.0.0.1:9\"\n",
            dir.path().join("kv.db").display()
        ),
    );
    let output = check(
        "hostile-guest",
        &["--config", &config, "--section", "storage"],
        &[],
    );
    let report = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        report.contains("FAIL  a key deleted and created again never matches an old revision"),
        "{report}"
    );
    assert!(
        report.contains("pass  get of a missing key is none"),
        "{report}"
    );
}

#[test]
fn a_plugin_of_another_kind_than_the_section_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[storage]\nplugin = \"storage-sql\"\n");
    let output = check(
        "keyring-file",
        &["--config", &config, "--section", "storage"],
        &[],
    );
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(
        said.contains("is a keyring plugin, but [storage]"),
        "{said}"
    );
    let output = check("kms-aws", &[], &[]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("needs its KMS"), "{said}");
}
