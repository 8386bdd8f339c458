//! The HTTP front: the per-tenant OpenID Connect provider, the token check
//! endpoint, and the one axum extractor through which every HTTP request
//! that carries a token reaches the verifier.
//!
//! This crate translates HTTP to calls on the issuer and the verifier and
//! back. It validates no token itself and holds no policy: a handler that
//! needs a caller's identity takes an [`Authenticated`] argument, which can
//! only be produced by the verifier.
//!
//! ```no_run
//! # async fn run(state: stormproof_http::AppState) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! stormproof_http::serve(listener, state, std::future::pending()).await
//! # }
//! ```
#![deny(missing_docs)]

mod audit;
mod extract;
mod jmap;
mod oidc;
mod pages;
mod params;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use stormproof_identity::Issuer;
use stormproof_verifier::Verifier;
use tower_service::Service;

pub use audit::{AUDIT_SCOPE, AuditState, mail_access_events};
pub use extract::{Authenticated, ClientInfo};

/// The largest request body any endpoint accepts. OAuth forms are small; a
/// larger body is refused before it is buffered.
pub const MAX_BODY: usize = 64 * 1024;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The issuer.
    pub issuer: Arc<Issuer>,
    /// The verifier.
    pub verifier: Arc<Verifier>,
    /// Sign-ins in progress and failed-attempt counters.
    pub logins: Arc<oidc::PendingLogins>,
    /// JMAP, when mail is served.
    pub jmap: Option<Arc<stormproof_jmap::Jmap>>,
    /// The audit log. Not optional: no handler can run without it.
    pub audit: AuditState,
    /// More counters for `/metrics`, from the stages behind the fronts.
    pub metrics: Vec<Arc<dyn MetricsSource>>,
}

/// Something with Prometheus counters to show at `/metrics`.
pub trait MetricsSource: Send + Sync + std::fmt::Debug {
    /// Appends its text exposition to `out`.
    fn render(&self, out: &mut String);
}

impl AppState {
    /// Wires the issuer, verifier and audit log into handler state.
    pub fn new(issuer: Arc<Issuer>, verifier: Arc<Verifier>, audit: AuditState) -> Self {
        Self {
            issuer,
            verifier,
            logins: Arc::default(),
            jmap: None,
            audit,
            metrics: Vec::new(),
        }
    }

    /// Serves JMAP too.
    pub fn with_jmap(mut self, jmap: stormproof_jmap::Jmap) -> Self {
        self.jmap = Some(Arc::new(jmap));
        self
    }

    pub(crate) fn public_url(&self) -> &str {
        &self.issuer.config().public_url
    }
}

/// The application's routes.
pub fn router(state: AppState) -> Router {
    let (max_request, max_upload) = state
        .jmap
        .as_ref()
        .map(|j| (j.config().max_size_request, j.config().max_size_upload))
        .unwrap_or((MAX_BODY, MAX_BODY));
    Router::new()
        .merge(jmap::routes(max_request, max_upload))
        .merge(audit::routes())
        .route("/api/whoami", get(whoami))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .nest("/t/{tenant}", oidc::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// How long a client may take to send a request's headers. Without a
/// bound, a client that sends them a byte at a time holds a connection
/// (and its memory) for ever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long shutdown waits for requests in flight (event streams never
/// end on their own) before closing their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `router(state)` on `listener` until `shutdown` completes, with
/// the default [`HEADER_READ_TIMEOUT`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, HEADER_READ_TIMEOUT, shutdown).await
}

/// [`serve`] with another header read timeout. HTTP/1.1 only; each
/// request sees its peer's address as [`ConnectInfo`].
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, or a connection reset before it
                    // was accepted: keep serving the others.
                    tracing::warn!(message = "accepting an HTTP connection failed", %error);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move { app.call(request.map(axum::body::Body::new)).await }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(message = "HTTP connection ended with an error", %peer, %error);
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!(message = "HTTP requests still in flight at shutdown were cut off");
    }
    Ok(())
}

async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// `GET /metrics`: Prometheus text exposition of the verifier's rejection
/// counters, so every refused token is counted by reason.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    use std::fmt::Write;
    let mut body = String::from(
        "# HELP stormproof_token_rejections_total Tokens refused by the verifier, by reason.\n\
         # TYPE stormproof_token_rejections_total counter\n",
    );
    for (reason, count) in state.verifier.rejection_counts() {
        let _ = writeln!(
            body,
            "stormproof_token_rejections_total{{reason=\"{}\"}} {count}",
            reason.as_str()
        );
    }
    for source in &state.metrics {
        source.render(&mut body);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// `GET /api/whoami`: the verified caller, or 401.
async fn whoami(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> impl IntoResponse {
    let user = match state
        .issuer
        .user_by_id(principal.tenant(), principal.subject())
    {
        Ok(Some(user)) => user.email.to_string(),
        // Client-credentials tokens have the client as their subject.
        _ => principal.subject().to_owned(),
    };
    axum::Json(json!({
        "tenant": principal.tenant().as_str(),
        "user": user,
        "sub": principal.subject(),
        "client_id": principal.client_id(),
        "sid": principal.session_id(),
        "jti": principal.token_id(),
        "scope": principal.scope(),
        "exp": principal.expires_at(),
    }))
}
