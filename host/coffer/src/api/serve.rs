//! Serving the API on a listener within limits: at most `max_connections`
//! connections at once (further ones wait in the listen backlog), request
//! headers within `header_timeout` — which is also how long an idle
//! keep-alive connection stays open — and a bounded header section. (The
//! request timeout is a layer of the router itself, inside the audit
//! layer, so a request cut off is still recorded.) With [`Tls`], each
//! connection's handshake happens in its own task, bounded like the
//! headers, so a slow handshake holds up no one else.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::tls::Tls;

/// Largest header section (request line included) a client may send.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long shutdown waits for connections to finish their requests.
const DRAIN: Duration = Duration::from_secs(10);

/// The `[http]` limits of connections.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown`
/// completes, then lets open connections finish (for a while).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service =
            tower::ServiceExt::map_request(app.clone(), move |mut request: Request<_>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                request
            });
        let watcher = graceful.watcher();
        let acceptor = tls.as_ref().map(Tls::acceptor);
        tokio::spawn(async move {
            let _permit = permit;
            let Some(acceptor) = acceptor else {
                return connection(stream, service, limits, watcher, remote).await;
            };
            match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => connection(stream, service, limits, watcher, remote).await,
                Ok(Err(error)) => tracing::debug!(%error, %remote, "TLS handshake failed"),
                Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN:?}; closing them");
    }
}

/// Serves HTTP/1.1 on one connection, plain or TLS.
async fn connection<S, T>(
    stream: S,
    service: T,
    limits: HttpLimits,
    watcher: Watcher,
    remote: SocketAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: tower::Service<
            Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    T::Future: Send + 'static,
{
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%error, %remote, "connection ended with an error");
    }
}
