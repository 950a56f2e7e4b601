//! The `coffer` command: the server and its client.

fn main() -> std::process::ExitCode {
    coffer::cli::main()
}
