//! The guard every route runs behind, built from what the route declares
//! ([`Resolve`]): it finds the request's [`Target`], checks the token and
//! the right the action takes, admits the request's sealed transport
//! ([`transport`]), records a change before it is made, and bounds the
//! handler's time.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{ConnectInfo, RawPathParams, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use zeroize::Zeroizing;

use super::action::{Action, Requirement, Resolve, Target};
use super::audit::{AuditNote, RequestContext, unavailable};
use super::transport;
use super::{ApiError, AppState, bearer};
use crate::auth::Actor;
use crate::error::Error;

/// What a route's guard knows: the server, how the route finds its action
/// and how long a request may take.
#[derive(Clone)]
pub struct Guard {
    pub state: AppState,
    pub resolve: Resolve,
    pub timeout: Duration,
}

/// Runs the request when its token holds the right its action takes; the
/// target and the actor go into the response for the audit layer.
pub async fn guard(
    State(guard): State<Guard>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    mut request: Request,
    next: Next,
) -> Response {
    let state = &guard.state;
    let method = request.method();
    let query = request.uri().query().unwrap_or_default();
    let (target, malformed) = match &params {
        Ok(params) => (
            Target::of(guard.resolve, method, query, params.iter()),
            None,
        ),
        Err(rejection) => (
            Target::of(guard.resolve, method, query, []),
            Some(ApiError::bad_request(rejection.body_text())),
        ),
    };
    request.extensions_mut().insert(target.clone());
    let credentials = Credentials::of(&request);
    let mut actor = None;
    let authorized = match malformed {
        Some(error) => Err(error.into_response()),
        None => authorize(state, &target, credentials).await,
    };
    let mut response = match authorized {
        Err(refused) => refused,
        Ok(authorized) => {
            if let Some(authorized) = &authorized {
                request.extensions_mut().insert(authorized.clone());
            }
            actor = authorized;
            let admitted = admit_and_run(&guard, &target, actor.as_ref(), request, next);
            within(guard.timeout, admitted).await
        }
    };
    response.extensions_mut().insert(target);
    if let Some(actor) = actor {
        response.extensions_mut().insert(actor);
    }
    response
}

/// The actor, when the action takes a token and the token holds the
/// right; the answer to send otherwise.
async fn authorize(
    state: &AppState,
    target: &Target,
    credentials: Credentials,
) -> Result<Option<Actor>, Response> {
    let requirement = match target.action {
        Action::SysMetrics if state.metrics.unauthenticated() => Requirement::Open,
        action => action.requirement(),
    };
    if requirement == Requirement::Open {
        return Ok(None);
    }
    let actor = authenticate(state, credentials).await?;
    let allowed = match requirement {
        Requirement::Open | Requirement::Authenticated => Ok(()),
        Requirement::Namespace(capability) => actor.require(capability, target.namespace()),
        Requirement::Admin(admin) => actor.require_admin(admin),
    };
    match allowed {
        Ok(()) => Ok(Some(actor)),
        Err(error) => {
            let mut response = ApiError::from(error).into_response();
            response.extensions_mut().insert(actor);
            Err(response)
        }
    }
}

/// What a request brings to authenticate with.
struct Credentials {
    token: Option<Zeroizing<String>>,
    address: Option<IpAddr>,
}

impl Credentials {
    fn of(request: &Request) -> Credentials {
        Credentials {
            token: bearer(request.headers()).map(|t| Zeroizing::new(t.to_owned())),
            address: request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        }
    }
}

/// Checks the bearer token. A failed authentication counts against the
/// client's address; a token record refused as tampered is a failed
/// authentication, noted in the audit trail.
async fn authenticate(state: &AppState, credentials: Credentials) -> Result<Actor, Response> {
    let Credentials { token, address } = credentials;
    let failed = |note: Option<String>| {
        if let Some(address) = address {
            state.auth.throttle.failed(address);
        }
        let mut response = ApiError::unauthorized().into_response();
        if let Some(note) = note {
            response.extensions_mut().insert(AuditNote(note));
        }
        response
    };
    let verified = match token {
        None => Ok(None),
        Some(token) => state.auth.verify(&token).await,
    };
    match verified {
        Ok(Some(actor)) => Ok(actor),
        Ok(None) => Err(failed(None)),
        Err(Error::Integrity(detail)) => {
            Err(failed(Some(format!("token record refused: {detail}"))))
        }
        Err(error) => Err(ApiError::from(error).into_response()),
    }
}

/// A change is recorded before it is made: when that record cannot be
/// written (or the trail is failing), nothing runs.
fn record_change(
    state: &AppState,
    target: &Target,
    actor: Option<&Actor>,
    request: &Request,
    sealed: bool,
) -> Result<(), ApiError> {
    let audit = &state.audit;
    if !audit.records(target.action.name()) {
        return Ok(());
    }
    if !audit.healthy() {
        return Err(unavailable());
    }
    if !target.action.changes_state() {
        return Ok(());
    }
    let Some(context) = request.extensions().get::<RequestContext>() else {
        return Err(unavailable());
    };
    let mut entry = context.entry(
        audit,
        target,
        StatusCode::ACCEPTED,
        actor,
        "requested",
        None,
    );
    entry.sealed = sealed;
    audit.write(entry).map_err(|_| unavailable())
}

/// Admits the request's transport ([`transport::admit`]: a sealed body is
/// opened), records a change before it is made, then runs the handler.
async fn admit_and_run(
    guard: &Guard,
    target: &Target,
    actor: Option<&Actor>,
    request: Request,
    next: Next,
) -> Response {
    let state = &guard.state;
    let admitted = transport::admit(state, guard.resolve, target, actor, request).await;
    let (request, sealed) = match admitted.and_then(|(request, sealed)| {
        record_change(state, target, actor, &request, sealed)?;
        Ok((request, sealed))
    }) {
        Ok(admitted) => admitted,
        Err(refused) => return refused.into_response(),
    };
    let mut response = next.run(request).await;
    if sealed {
        response.extensions_mut().insert(transport::Sealed);
    }
    response
}

/// Answers 503 when a request is not done within `limit`, body included.
/// Work cut off is only ever work a retry redoes: every change is one
/// compare-and-set, and key maintenance resumes where it stopped (a sealed
/// body cut off after it was opened is sealed afresh, as any retry is).
async fn within(limit: Duration, request: impl Future<Output = Response>) -> Response {
    match tokio::time::timeout(limit, request).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {} ms", limit.as_millis()),
        )
        .into_response(),
    }
}
