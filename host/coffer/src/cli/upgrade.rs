//! `coffer upgrade`: seals the records of a store an older coffer wrote,
//! once, with every node stopped. It vouches for what storage holds at
//! that moment, so run it only on data you trust.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::service::Foundation;
use crate::store::format;

pub async fn run(config_file: Option<PathBuf>, data_dir: Option<PathBuf>) -> ExitCode {
    super::server::init_logging(super::server::LogFormat::Text);
    let config = match super::load_config(config_file.as_deref(), data_dir.as_deref()) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let foundation = match Foundation::open(&config).await {
        Ok(foundation) => foundation,
        Err(error) => {
            eprintln!("coffer: cannot open the engine: {error}");
            return ExitCode::FAILURE;
        }
    };
    match format::upgrade(&foundation.store).await {
        Ok(report) => {
            println!(
                "sealed {} secret record(s), {} data key set(s) and {} token record(s); \
                 dropped {} lease and pass record(s); {} already sealed",
                report.secrets,
                report.data_key_sets,
                report.tokens,
                report.dropped,
                report.already_sealed
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("coffer: upgrade failed: {error}");
            ExitCode::FAILURE
        }
    }
}
