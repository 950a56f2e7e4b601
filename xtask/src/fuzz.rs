//! `cargo xtask fuzz`: runs each fuzz target in `fuzz/` for a bounded time,
//! growing the corpora kept in `fuzz/corpus/<target>`, and prints how many
//! inputs each executed. Fuzzing needs the nightly toolchain and
//! `cargo-fuzz`, which this installs under the target directory; it stays
//! out of `cargo xtask test`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{root, status, target_dir};

/// Every target, in the order they run.
pub const TARGETS: &[&str] = &[
    "records",
    "tink_json",
    "tink_key_proto",
    "prefix",
    "config",
    "audit_line",
    "http_api",
];

/// One target's run.
struct Outcome {
    target: String,
    executed: Option<u64>,
    crashed: bool,
}

pub fn run(args: &[String]) -> Result<()> {
    let mut seconds = 60u64;
    let mut targets: Vec<String> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .context("--seconds needs a number")?
                    .parse()
                    .context("--seconds needs a number")?;
            }
            name if TARGETS.contains(&name) => targets.push(name.to_owned()),
            other => bail!(
                "unknown fuzz argument {other}; targets are {}",
                TARGETS.join(", ")
            ),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    let cargo_fuzz = install_cargo_fuzz()?;
    let mut outcomes = Vec::new();
    for target in &targets {
        outcomes.push(run_target(&cargo_fuzz, target, seconds)?);
    }
    println!("\n{:<16} {:>14}  result", "target", "inputs run");
    for outcome in &outcomes {
        println!(
            "{:<16} {:>14}  {}",
            outcome.target,
            outcome
                .executed
                .map_or_else(|| "?".to_owned(), |n| n.to_string()),
            if outcome.crashed {
                "CRASHED (see fuzz/artifacts)"
            } else {
                "no crash"
            }
        );
    }
    if outcomes.iter().any(|o| o.crashed) {
        bail!("a fuzz target crashed");
    }
    Ok(())
}

/// The `cargo-fuzz` binary, installed under the target directory if needed.
fn install_cargo_fuzz() -> Result<PathBuf> {
    let tools = target_dir().join("tools");
    let binary = tools.join("bin").join("cargo-fuzz");
    if !binary.is_file() {
        status(
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
                .args(["install", "cargo-fuzz", "--locked", "--root"])
                .arg(&tools),
        )?;
    }
    Ok(binary)
}

fn run_target(cargo_fuzz: &PathBuf, target: &str, seconds: u64) -> Result<Outcome> {
    let corpus = root().join("fuzz").join("corpus").join(target);
    std::fs::create_dir_all(&corpus)?;
    let log = target_dir().join(format!("fuzz-{target}.log"));
    let stderr = std::fs::File::create(&log)?;
    println!("fuzzing {target} for {seconds} s (log: {})", log.display());
    let ran = Command::new(cargo_fuzz)
        .current_dir(root())
        .args(["fuzz", "run", target, "--sanitizer", "none"])
        .arg(&corpus)
        .args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-print_final_stats=1",
        ])
        // cargo-fuzz needs nightly: drop what the stable cargo running this
        // set for its children, and build apart from the project.
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env("RUSTUP_TOOLCHAIN", "nightly")
        .env("CARGO_TARGET_DIR", target_dir().join("fuzz"))
        .stderr(stderr)
        .status()
        .with_context(|| format!("cannot run {}", cargo_fuzz.display()))?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let executed = text
        .lines()
        .filter_map(|line| line.strip_prefix("stat::number_of_executed_units:"))
        .filter_map(|n| n.trim().parse().ok())
        .next_back();
    Ok(Outcome {
        target: target.to_owned(),
        executed,
        crashed: !ran.success(),
    })
}
