//! `cargo xtask build | run | test | lint | load | keybench | fuzz | fuzz-api`: the project's commands,
//! so a fresh clone needs nothing but Rust and Python to build, run and test.

mod fuzz;
mod fuzz_api;
mod postgres;
mod python;
mod wasm;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build") => build().map(|_| ()),
        Some("components") => wasm::build_components(&wasm::all_components()),
        Some("run") => run(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("lint") => lint(),
        Some("load") => load(&args[1..]),
        Some("keybench") => keybench(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("fuzz-api") => fuzz_api::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 build   build the coffer binary (release) and every plugin component\n\
                 components  build the plugin components and the test guests only\n\
                 run     build, then start `coffer server` on the embedded default (extra args go to the server)\n\
                 test    install what the tests need and run every test (extra args go to the test runner)\n\
                 lint    cargo fmt --check and cargo clippy -D warnings\n\
                 load    load-test the HTTP API against OpenBao (extra args: --seconds N --concurrency N --keys N)\n\
                 keybench  janitor throughput and KEK rotation time on SQLite and PostgreSQL (extra args: --secrets N)\n\
                 fuzz    run the fuzz targets for a bounded time each (extra args: --seconds N, target names)\n\
                 fuzz-api  run schemathesis against a live server with its OpenAPI document (extra args: --examples N)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.current_dir(root());
    command
}

fn status(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// Builds the release binary and the plugins; returns the binary's path.
fn build() -> Result<PathBuf> {
    wasm::build_components(wasm::PLUGINS)?;
    status(cargo().args([
        "build",
        "--release",
        "--package",
        "coffer",
        "--bin",
        "coffer",
    ]))?;
    Ok(target_dir().join("release").join("coffer"))
}

fn run(server_args: &[String]) -> Result<()> {
    let binary = build()?;
    let mut command = Command::new(binary);
    command.arg("server").args(server_args);
    command.env("COFFER_PLUGIN_DIR", wasm::plugin_dir());
    status(&mut command)
}

fn test(runner_args: &[String]) -> Result<()> {
    wasm::build_components(&wasm::all_components())?;
    let python = python::venv("requirements.txt")?.join("python");
    // The end-to-end tests run the real binary, which nextest does not build.
    status(cargo().args(["build", "--package", "coffer", "--bin", "coffer"]))?;
    let database = postgres::Cluster::start_unless_given(&python)?;

    let mut command = if has_nextest() {
        let mut c = cargo();
        c.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
        c
    } else {
        let mut c = cargo();
        c.args(["test", "--workspace", "--no-fail-fast"]);
        c
    };
    command
        .args(runner_args)
        .env("COFFER_TEST_PYTHON", &python)
        .env("COFFER_PLUGIN_DIR", wasm::plugin_dir())
        .env(
            "COFFER_TEST_CACHE_DIR",
            target_dir().join("coffer-test-cache"),
        )
        .env("COFFER_TEST_DATABASE_URL", database.url());
    let outcome = status(&mut command);
    drop(database);
    outcome
}

fn load(load_args: &[String]) -> Result<()> {
    let coffer = build()?;
    let bin = python::venv("load-requirements.txt")?;
    let mut command = Command::new(bench_binary("coffer-load")?);
    command
        .arg("--coffer")
        .arg(coffer)
        .arg("--plugins")
        .arg(wasm::plugin_dir())
        .arg("--bao")
        .arg(bin.join("bao"))
        .env("COFFER_TEST_PYTHON", bin.join("python"))
        .args(load_args);
    status(&mut command)
}

/// Builds one of coffer-e2e's benchmark binaries in release; returns its path.
fn bench_binary(name: &str) -> Result<PathBuf> {
    status(cargo().args([
        "build",
        "--release",
        "--package",
        "coffer-e2e",
        "--bin",
        name,
    ]))?;
    Ok(target_dir().join("release").join(name))
}

fn keybench(bench_args: &[String]) -> Result<()> {
    let coffer = build()?;
    let python = python::venv("requirements.txt")?.join("python");
    let database = postgres::Cluster::start_unless_given(&python)?;
    let mut command = Command::new(bench_binary("coffer-keybench")?);
    command
        .arg("--database-url")
        .arg(database.url())
        .args(bench_args)
        .env("COFFER_BINARY", coffer)
        .env("COFFER_PLUGIN_DIR", wasm::plugin_dir())
        .env(
            "COFFER_TEST_CACHE_DIR",
            target_dir().join("coffer-test-cache"),
        );
    let outcome = status(&mut command);
    drop(database);
    outcome
}

fn lint() -> Result<()> {
    status(cargo().args(["fmt", "--all", "--", "--check"]))?;
    status(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    wasm::ensure_target()?;
    let mut clippy = cargo();
    clippy.args(["clippy", "--target", wasm::TARGET]);
    for component in wasm::all_components() {
        clippy.args(["--package", component.package]);
    }
    status(clippy.args(["--", "-D", "warnings"]))?;
    // The SDK's examples are plugins too, and the SDK must package on its
    // own (its WIT copy and manifest, without the workspace).
    status(cargo().args([
        "clippy",
        "--package",
        "coffer-sdk",
        "--features",
        "examples",
        "--examples",
        "--target",
        wasm::TARGET,
        "--",
        "-D",
        "warnings",
    ]))?;
    status(cargo().args([
        "package",
        "--package",
        "coffer-sdk",
        "--allow-dirty",
        "--quiet",
    ]))
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}
