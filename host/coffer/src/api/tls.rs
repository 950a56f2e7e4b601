//! HTTPS: the `[tls]` certificate and key (and, for mutual TLS, the CAs of
//! client certificates) as a rustls server configuration, read again when
//! the files change so a renewed certificate is served without a restart.
//! A change that does not load (a half-written file, a key that does not
//! match) is logged and the previous configuration kept.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsSection;

/// How often the files are looked at for a change.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// The acceptor new connections use; replaced when the files change.
#[derive(Clone)]
pub struct Tls {
    current: Arc<RwLock<TlsAcceptor>>,
}

impl Tls {
    /// Loads `section`'s files, refusing what does not make a configuration.
    pub fn load(section: &TlsSection) -> Result<Tls, String> {
        let acceptor = acceptor(section)?;
        Ok(Tls {
            current: Arc::new(RwLock::new(acceptor)),
        })
    }

    /// The acceptor for a connection accepted now.
    pub fn acceptor(&self) -> TlsAcceptor {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Watches `section`'s files and loads them again when one changes.
    pub async fn watch(self, section: TlsSection) {
        let mut seen = stamps(&section);
        let mut reported = None;
        loop {
            tokio::time::sleep(WATCH_INTERVAL).await;
            let now = stamps(&section);
            if now == seen {
                continue;
            }
            match acceptor(&section) {
                Ok(acceptor) => {
                    // Only a load that worked is settled: a half-written
                    // file is tried again until it loads.
                    seen = now;
                    match self.current.write() {
                        Ok(mut current) => *current = acceptor,
                        Err(poisoned) => *poisoned.into_inner() = acceptor,
                    }
                    tracing::info!("TLS certificate files changed; new connections use them");
                }
                // Reported once per change of the files, tried every time.
                Err(error) if reported.as_ref() != Some(&now) => {
                    tracing::error!(
                        %error,
                        "TLS certificate files changed but do not load; still serving the previous ones"
                    );
                    reported = Some(now);
                }
                Err(_) => {}
            }
        }
    }
}

/// When each file last changed (none when it cannot be read).
fn stamps(section: &TlsSection) -> Vec<Option<SystemTime>> {
    [
        Some(&section.cert_file),
        Some(&section.key_file),
        section.client_ca_file.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|file| std::fs::metadata(file).and_then(|m| m.modified()).ok())
    .collect()
}

fn acceptor(section: &TlsSection) -> Result<TlsAcceptor, String> {
    let chain = certificates(&section.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&section.key_file)
        .map_err(|e| format!("no private key in {}: {e}", section.key_file.display()))?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = match &section.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(file) => {
            let mut roots = RootCertStore::empty();
            for certificate in certificates(file)? {
                roots
                    .add(certificate)
                    .map_err(|e| format!("{}: {e}", file.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| format!("client CAs in {}: {e}", file.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and key do not make a TLS configuration: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates: Vec<_> = CertificateDer::pem_file_iter(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", file.display()))?;
    if certificates.is_empty() {
        return Err(format!("no certificate in {}", file.display()));
    }
    Ok(certificates)
}
