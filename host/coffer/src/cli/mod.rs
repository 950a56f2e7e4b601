//! The `coffer` command line: `coffer server` runs the engine; `coffer
//! secret …`, `coffer token …`, `coffer keys …`, `coffer kek …`, `coffer
//! reencrypt` and `coffer audit` talk to a running server over the HTTP
//! API; `coffer keyset …` edits keyset files and `coffer upgrade` seals an
//! older store.
//!
//! Exit codes: 0 success, 1 failure, 2 bad usage or configuration,
//! 3 not found, 4 conflict.

mod audit;
mod client;
mod config;
mod keys;
mod keyset;
mod lifecycle;
mod migrate;
mod output;
mod plugin;
mod scaffold;
mod sealed;
mod server;
mod tokens;
mod upgrade;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "coffer",
    version,
    about = "A secrets engine with sandboxed WebAssembly backends"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (embedded SQLite and keyset when no config is given).
    Server {
        /// The configuration file (coffer.toml).
        #[arg(long, env = "COFFER_CONFIG")]
        config: Option<PathBuf>,
        /// The data directory (overrides `data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// How log lines look: `text`, or `json` (one object per line).
        #[arg(long, env = "COFFER_LOG_FORMAT", value_enum, default_value_t = server::LogFormat::Text)]
        log_format: server::LogFormat,
    },
    /// Read and write secrets on a running server.
    Secret {
        #[command(flatten)]
        connection: client::Connection,
        #[command(subcommand)]
        command: client::SecretCommand,
    },
    /// Verify an audit log, or look up what a name appears as in it.
    Audit {
        #[command(flatten)]
        connection: client::Connection,
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Data keys: list, show usage, rotate, retire, destroy, export, import.
    Keys {
        #[command(flatten)]
        connection: client::Connection,
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// The KEK (root key): status, rotate, re-wrap, reload.
    Kek {
        #[command(flatten)]
        connection: client::Connection,
        #[command(subcommand)]
        command: keys::KekCommand,
    },
    /// The sealed transport's key: show it, rotate it.
    Transport {
        #[command(flatten)]
        connection: client::Connection,
        #[command(subcommand)]
        command: sealed::TransportCommand,
    },
    /// Move secrets onto their namespace's Active data key (resumable).
    Reencrypt {
        #[command(flatten)]
        connection: client::Connection,
        /// Only this namespace (default: every namespace).
        #[arg(long)]
        namespace: Option<String>,
        /// Also re-encrypt values under fresh secret keys.
        #[arg(long)]
        full: bool,
        /// Start over instead of continuing an interrupted pass.
        #[arg(long)]
        restart: bool,
        /// Secrets per request (at most 1000).
        #[arg(long, default_value_t = 1000)]
        batch: u32,
    },
    /// Edit Google Tink JSON keysets offline (like tinkey).
    Keyset {
        #[command(subcommand)]
        command: keyset::KeysetCommand,
    },
    /// Seal the records of a store an older coffer wrote (once, with every
    /// node stopped, on data you trust).
    Upgrade {
        /// The configuration file (coffer.toml).
        #[arg(long, env = "COFFER_CONFIG")]
        config: Option<PathBuf>,
        /// The data directory (overrides `data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Move every record to another configured storage (`[storage_next]`)
    /// and switch the running server to it; resumable.
    Migrate {
        #[command(flatten)]
        connection: client::Connection,
        /// The storage section to move to.
        #[arg(long)]
        to: String,
    },
    /// Check a plugin against the contract of its kind.
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
    /// Validate a configuration file and show it as it takes effect.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
    /// Print a shell completion script: `coffer completions bash >
    /// /etc/bash_completion.d/coffer` (or zsh, fish).
    Completions { shell: clap_complete::Shell },
    /// Create, list and revoke tokens on a running server.
    Token {
        #[command(flatten)]
        connection: client::Connection,
        #[command(subcommand)]
        command: tokens::TokenCommand,
    },
}

/// The configuration of `file` (or the embedded default) with the
/// environment's overrides, or the exit of a command that cannot start.
fn load_config(
    file: Option<&std::path::Path>,
    data_dir: Option<&std::path::Path>,
) -> Result<crate::config::Config, ExitCode> {
    crate::config::Config::load(file, std::env::vars(), data_dir).map_err(|error| {
        eprintln!("coffer: configuration error: {error}");
        ExitCode::from(2)
    })
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        let mut command = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut command, "coffer", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("coffer: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Server {
                config,
                data_dir,
                log_format,
            } => server::run(config, data_dir, log_format).await,
            Command::Upgrade { config, data_dir } => upgrade::run(config, data_dir).await,
            Command::Secret {
                connection,
                command,
            } => client::run(connection, command).await,
            Command::Token {
                connection,
                command,
            } => tokens::run(connection, command).await,
            Command::Audit {
                connection,
                command,
            } => audit::run(connection, command).await,
            Command::Keyset { command } => keyset::run(command),
            Command::Completions { .. } => ExitCode::SUCCESS,
            Command::Config { command } => config::run(command),
            Command::Plugin { command } => plugin::run(command).await,
            Command::Migrate { connection, to } => migrate::run(connection, to).await,
            Command::Keys {
                connection,
                command,
            } => keys::run_keys(connection, command).await,
            Command::Kek {
                connection,
                command,
            } => keys::run_kek(connection, command).await,
            Command::Transport {
                connection,
                command,
            } => sealed::run(connection, command).await,
            Command::Reencrypt {
                connection,
                namespace,
                full,
                restart,
                batch,
            } => keys::run_reencrypt(connection, namespace, full, restart, batch).await,
        }
    })
}
