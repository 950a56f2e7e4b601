//! The HTTP API in-process: any method, path, token and body reaches the
//! router of a real engine (in-memory storage and keyring) and gets an
//! answer — never a panic, and never a 500 `internal` error, which would
//! mean a request broke an invariant.

#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use coffer::auth::Role;
use coffer::config::Config;
use coffer::service::Coffer;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    coffer: Arc<Coffer>,
    token: String,
    _dir: tempfile::TempDir,
}

const METHODS: [Method; 6] = [
    Method::GET,
    Method::PUT,
    Method::POST,
    Method::DELETE,
    Method::PATCH,
    Method::HEAD,
];

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = Config::parse(
            &format!(
                "data_dir = {:?}\n[audit]\nrotate_bytes = 1048576\nkeep_files = 1\n",
                dir.path().display().to_string()
            ),
            "fuzz",
            Vec::new(),
            None,
        )
        .expect("the fuzz configuration loads");
        let (coffer, token) = runtime.block_on(async {
            let coffer = Arc::new(
                coffer::memory::engine(&config)
                    .await
                    .expect("the engine starts"),
            );
            let root = coffer
                .auth
                .create("root", Role::Admin.policy(), None, None)
                .await
                .expect("a root token");
            for name in ["db/password", "a/b/c"] {
                coffer
                    .secrets
                    .put("app", name, b"seed", None)
                    .await
                    .expect("a seeded secret");
            }
            (coffer, root.token.to_string())
        });
        let router = coffer::api::app(coffer.clone(), 64 * 1024, Duration::from_secs(5));
        Harness {
            runtime,
            router,
            coffer,
            token,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let harness = harness();
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(selector & 0x0f) % METHODS.len()].clone();
    let (path, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let uri = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/v1/{path}")
    };
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if selector & 0x80 != 0 {
        builder = builder.header("authorization", format!("Bearer {}", harness.token));
    }
    let Ok(request) = builder.body(Body::from(body.to_vec())) else {
        return;
    };
    let response = harness
        .runtime
        .block_on(harness.router.clone().oneshot(request))
        .expect("the router always answers");
    assert_ne!(
        response.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "a request ended in an internal error"
    );
    if RUNS.fetch_add(1, Ordering::Relaxed) % 2000 == 0 {
        // Keep the audit trail the requests write within its retention.
        let _ = harness
            .runtime
            .block_on(harness.coffer.audit.apply_retention());
    }
});
