//! Running the test suite's Python helpers (real Google Tink, botocore)
//! and the servers the venv holds.

use std::path::PathBuf;
use std::process::Command;

/// The venv python `cargo xtask test` prepared.
pub fn python() -> PathBuf {
    let python = std::env::var_os("COFFER_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/test-venv/bin/python"
            ))
        });
    assert!(
        python.is_file(),
        "{} is missing: run `cargo xtask test`, which installs Tink into a venv",
        python.display()
    );
    python
}

/// The path of `tests/support/<name>`.
pub fn support_script(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/support")).join(name)
}

/// Runs `tests/support/<script>` with `env` added and `args`; asserts it
/// succeeded and returns its stdout, trimmed.
pub fn support_tool(script: &str, env: &[(&str, &str)], args: &[&str]) -> String {
    let output = Command::new(python())
        .arg(support_script(script))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{script} {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Runs `tests/support/tink_tool.py` with `args`; returns its stdout.
pub fn tink_tool(args: &[&str]) -> String {
    support_tool("tink_tool.py", &[], args)
}
