//! `coffer server`: load the configuration, start the engine, serve the API
//! until SIGINT or SIGTERM; SIGHUP reloads the plugins. Logs go to stderr,
//! as text or JSON lines, filtered by `COFFER_LOG` (else `RUST_LOG`, else
//! `info`); a request's lines carry its id (the audit trail's).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tracing_subscriber::EnvFilter;

use crate::api;
use crate::service::{Coffer, ConfigSource};

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub async fn run(
    config_file: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    log_format: LogFormat,
) -> ExitCode {
    init_logging(log_format);
    let config = match super::load_config(config_file.as_deref(), data_dir.as_deref()) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let coffer = match Coffer::open(&config).await {
        Ok(coffer) => Arc::new(coffer),
        Err(error) => {
            eprintln!("coffer: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    coffer.set_config_source(ConfigSource {
        file: config_file.clone(),
        data_dir: data_dir.clone(),
    });
    let token_file = config.data_dir.join("root-token");
    match coffer.auth.bootstrap_root(&token_file).await {
        Ok(Some(token)) => {
            println!(
                "Root token (shown once; also saved to {} with mode 0600):\n\n    {}\n",
                token_file.display(),
                token.as_str()
            );
        }
        Ok(None) => {}
        Err(error) => {
            eprintln!("coffer: cannot create the root token: {error}");
            return ExitCode::FAILURE;
        }
    }
    let tls = match &config.tls {
        None => None,
        Some(section) => match api::tls::Tls::load(section) {
            Ok(tls) => Some(tls),
            Err(error) => {
                eprintln!("coffer: [tls]: {error}");
                return ExitCode::FAILURE;
            }
        },
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("coffer: cannot listen on {}: {error}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let address = listener
        .local_addr()
        .map_or_else(|_| config.listen.to_string(), |a| a.to_string());
    tracing::info!(%address, data_dir = %config.data_dir.display(), "coffer is serving");
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("coffer listening on {scheme}://{address}");
    let mut background = coffer.start_background();
    background.push(tokio::spawn(reload_on_hangup(coffer.clone())));
    if let (Some(tls), Some(section)) = (&tls, &config.tls) {
        background.push(tokio::spawn(tls.clone().watch(section.clone())));
    }
    let app = api::app(
        coffer.clone(),
        config.max_value_bytes,
        std::time::Duration::from_millis(config.http.request_timeout_ms),
    );
    api::serve::serve(listener, app, config.http_limits(), tls, shutdown_signal()).await;
    for task in background {
        task.abort();
    }
    coffer.close().await;
    ExitCode::SUCCESS
}

pub(super) fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("COFFER_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let logger = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => logger.json().with_current_span(true).try_init(),
        // Colours only for a terminal: in a file, escape sequences are
        // noise, and would hide any a plugin slipped in.
        LogFormat::Text => logger
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

/// Reloads the plugins on every SIGHUP; the outcome goes to the log.
async fn reload_on_hangup(coffer: Arc<Coffer>) {
    #[cfg(unix)]
    {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP: reload plugins through the API");
            return;
        };
        while hangups.recv().await.is_some() {
            match coffer.reload_config().await {
                Ok(reloaded) => {
                    for plugin in reloaded {
                        tracing::info!(
                            kind = plugin.kind,
                            plugin = %plugin.name,
                            sha256 = %plugin.sha256,
                            "SIGHUP: plugin reloaded"
                        );
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "SIGHUP: reload refused; the running plugins keep serving");
                }
            }
        }
    }
    #[cfg(not(unix))]
    drop(coffer);
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down");
}
