//! The router as the one description of the API: every route names its
//! path, its handler and its [`Action`] (or how it resolves one), and runs
//! behind a [`Guard`] built from that.

use std::time::Duration;

use axum::Router;
use axum::middleware;
use axum::routing::MethodRouter;

use super::AppState;
use super::action::{Action, Resolve};
use super::guard::{Guard, guard};

/// Routes being declared, each behind its guard.
pub struct Routes {
    router: Router<AppState>,
    state: AppState,
    timeout: Duration,
}

impl Routes {
    /// No routes yet; handlers get `timeout` to answer.
    pub fn new(state: AppState, timeout: Duration) -> Routes {
        Routes {
            router: Router::new(),
            state,
            timeout,
        }
    }

    /// `handler` (one method, or several with the same action) serves
    /// `action` at `path`.
    pub fn route(self, path: &str, action: Action, handler: MethodRouter<AppState>) -> Routes {
        self.add(path, Resolve::Fixed(action), handler, false)
    }

    /// `handler` serves every method at `path`, its action resolved per
    /// request; methods it does not take are answered behind the guard too.
    pub fn resolved(self, path: &str, resolve: Resolve, handler: MethodRouter<AppState>) -> Routes {
        self.add(path, resolve, handler, true)
    }

    fn add(
        mut self,
        path: &str,
        resolve: Resolve,
        handler: MethodRouter<AppState>,
        every_method: bool,
    ) -> Routes {
        let layer = middleware::from_fn_with_state(
            Guard {
                state: self.state.clone(),
                resolve,
                timeout: self.timeout,
            },
            guard,
        );
        let handler = if every_method {
            handler.layer(layer)
        } else {
            handler.route_layer(layer)
        };
        self.router = self.router.route(path, handler);
        self
    }

    /// The declared routes, with `wrap` applied to them alone.
    pub fn map(mut self, wrap: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Routes {
        self.router = wrap(self.router);
        self
    }

    /// Adds `other`'s routes.
    pub fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self
    }

    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}

/// The native API.
pub fn native(routes: Routes) -> Routes {
    use super::{audit_log, keys, secrets, sys, tokens, transport};
    use axum::routing::{delete, get, post};
    routes
        .route("/v1/sys/health", Action::SysHealth, get(sys::health))
        .route("/v1/sys/live", Action::SysHealth, get(sys::live))
        .route("/v1/sys/ready", Action::SysHealth, get(sys::ready))
        .route(
            "/v1/sys/openapi.json",
            Action::SysOpenApi,
            get(sys::openapi),
        )
        .route("/v1/sys/metrics", Action::SysMetrics, get(sys::metrics))
        .route("/v1/sys/plugins", Action::SysPlugins, get(sys::plugins))
        .route(
            "/v1/sys/plugins/reload",
            Action::SysPluginsReload,
            post(sys::reload_plugins),
        )
        .route(
            "/v1/sys/migrate",
            Action::SysMigrateStatus,
            get(sys::migration),
        )
        .route(
            "/v1/sys/migrate",
            Action::SysMigrate,
            post(sys::start_migration),
        )
        .route("/v1/audit", Action::AuditRead, get(audit_log::read))
        .route(
            "/v1/audit/verify",
            Action::AuditVerify,
            get(audit_log::verify),
        )
        .route("/v1/audit/hash", Action::AuditHash, post(audit_log::hash))
        .route("/v1/auth/tokens", Action::TokenList, get(tokens::list))
        .route("/v1/auth/tokens", Action::TokenCreate, post(tokens::create))
        .route(
            "/v1/auth/tokens/{id}",
            Action::TokenRevoke,
            delete(tokens::revoke),
        )
        .route("/v1/keys", Action::KeysList, get(keys::list))
        .route("/v1/keys/{namespace}", Action::KeysShow, get(keys::show))
        .route(
            "/v1/keys/{namespace}/rotate",
            Action::KeysRotate,
            post(keys::rotate),
        )
        .route(
            "/v1/keys/{namespace}/reencrypt",
            Action::KeysReencrypt,
            post(keys::reencrypt),
        )
        .route(
            "/v1/keys/{namespace}/import",
            Action::KeysImport,
            post(keys::import),
        )
        .route(
            "/v1/keys/{namespace}/{id}/deprecate",
            Action::KeysDeprecate,
            post(keys::deprecate),
        )
        .route(
            "/v1/keys/{namespace}/{id}/inactivate",
            Action::KeysInactivate,
            post(keys::inactivate),
        )
        .route(
            "/v1/keys/{namespace}/{id}/destroy",
            Action::KeysDestroy,
            post(keys::destroy),
        )
        .route(
            "/v1/keys/{namespace}/{id}/export",
            Action::KeysExport,
            post(keys::export),
        )
        .route("/v1/sys/kek", Action::KekStatus, get(keys::kek_status))
        .route(
            "/v1/sys/kek/rotate",
            Action::KekRotate,
            post(keys::kek_rotate),
        )
        .route(
            "/v1/sys/kek/rewrap",
            Action::KekRewrap,
            post(keys::kek_rewrap),
        )
        .route(
            "/v1/sys/kek/reload",
            Action::KekReload,
            post(keys::kek_reload),
        )
        .route(
            "/v1/sys/transport-key",
            Action::TransportKey,
            get(transport::transport_key),
        )
        .route(
            "/v1/sys/transport-key/rotate",
            Action::TransportRotate,
            post(transport::rotate),
        )
        .route(
            "/v1/sys/janitor/run",
            Action::JanitorRun,
            post(keys::run_janitor),
        )
        .route(
            "/v1/secrets/{namespace}",
            Action::SecretList,
            get(secrets::list),
        )
        .resolved(
            "/v1/secrets/{namespace}/{*name}",
            Resolve::NativeSecret,
            get(secrets::get)
                .put(secrets::put)
                .post(secrets::post)
                .delete(secrets::delete),
        )
}
