//! `coffer config check [FILE]`: validates a configuration without
//! starting anything, and prints it as the server would run it (defaults
//! filled in, `COFFER_…` overrides applied) with secrets redacted.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration and print the effective one, secrets redacted.
    Check {
        /// The configuration file (default: the embedded default).
        #[arg(env = "COFFER_CONFIG")]
        file: Option<PathBuf>,
        /// The data directory (overrides `data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

pub fn run(command: ConfigCommand) -> ExitCode {
    match command {
        ConfigCommand::Check { file, data_dir } => {
            let config = match super::load_config(file.as_deref(), data_dir.as_deref()) {
                Ok(config) => config,
                Err(exit) => return exit,
            };
            match toml::to_string_pretty(&config) {
                Ok(text) => {
                    println!("# the configuration is valid; as it takes effect:\n\n{text}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("coffer: cannot show the configuration: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
