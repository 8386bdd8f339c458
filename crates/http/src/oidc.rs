//! The per-tenant OpenID Connect provider under `/t/<tenant>`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::json;
use stormproof_identity::{
    AuthorizeError, AuthorizeRequest, CodeExchange, LoginOutcome, OAuthError, RequestInfo,
    TokenResponse, ValidatedAuthorize,
};
use stormproof_store::UserRecord;
use stormproof_types::TenantName;
use stormproof_verifier::{AuthScheme, RequestContext, VerifyMode};

use crate::extract::{Authenticated, ClientInfo, header_str};
use crate::params::Params;
use crate::{AppState, pages};

/// How long a sign-in form stays usable.
const LOGIN_TTL: Duration = Duration::from_secs(600);
/// Wrong passwords allowed per sign-in form before it is discarded.
const ATTEMPTS_PER_FORM: u32 = 5;
/// Failed sign-ins per address in [`FAILURE_WINDOW`] before the address is
/// refused for the rest of the window: slows password guessing without
/// letting an attacker lock an account out for long.
const FAILURES_PER_ADDRESS: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(900);
/// Sign-ins in progress kept at most; the oldest are dropped past this.
const MAX_PENDING: usize = 10_000;

/// Runs a handler's work on the blocking pool. The OAuth and sign-in
/// endpoints hash passwords and client secrets (argon2, tens of
/// milliseconds each) and write the store: on the runtime's few threads, a
/// burst of sign-in attempts would stall every other request.
async fn blocking(work: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks.json", get(jwks))
        .route("/authorize", get(authorize_page).post(authorize_submit))
        .route("/token", post(token))
        .route("/device_authorization", post(device_authorization))
        .route("/device", get(device_page).post(device_submit))
        .route("/introspect", post(introspect))
        .route("/revoke", post(revoke))
        .route("/userinfo", get(userinfo).post(userinfo))
}

enum Purpose {
    Authorize(Box<ValidatedAuthorize>),
    Device { user_code: String },
}

struct Pending {
    tenant: TenantName,
    purpose: Purpose,
    /// Set once the password step passed and a TOTP code is awaited.
    user: Option<UserRecord>,
    attempts: u32,
    created: Instant,
}

/// Sign-ins in progress, and recent failures per address.
#[derive(Default)]
pub struct PendingLogins {
    pending: Mutex<HashMap<String, Pending>>,
    failures: Mutex<HashMap<(TenantName, String), (u32, Instant)>>,
}

impl std::fmt::Debug for PendingLogins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingLogins")
    }
}

impl PendingLogins {
    fn insert(&self, pending: Pending) -> String {
        let id = stormproof_types::random_id(24);
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, p| p.created.elapsed() < LOGIN_TTL);
        if map.len() >= MAX_PENDING
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, p)| p.created)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(id.clone(), pending);
        id
    }

    fn take(&self, id: &str, tenant: &TenantName) -> Option<Pending> {
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let pending = map.remove(id)?;
        (pending.created.elapsed() < LOGIN_TTL && &pending.tenant == tenant).then_some(pending)
    }

    fn put_back(&self, id: String, pending: Pending) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, pending);
    }

    fn locked_out(&self, tenant: &TenantName, email: &str) -> bool {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(tenant.clone(), email.to_ascii_lowercase()))
            .is_some_and(|(count, since)| {
                *count >= FAILURES_PER_ADDRESS && since.elapsed() < FAILURE_WINDOW
            })
    }

    fn record_failure(&self, tenant: &TenantName, email: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        let entry = map
            .entry((tenant.clone(), email.to_ascii_lowercase()))
            .or_insert((0, Instant::now()));
        entry.0 += 1;
    }
}

fn oauth_error(status: StatusCode, error: &OAuthError) -> Response {
    let mut response = (status, axum::Json(error)).into_response();
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn bad_request(description: impl Into<String>) -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        &OAuthError {
            error: "invalid_request",
            error_description: description.into(),
        },
    )
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "not_found"})),
    )
        .into_response()
}

/// The tenant named in the path, if it exists.
fn tenant(state: &AppState, name: &str) -> Result<TenantName, Response> {
    let tenant = TenantName::parse(name).map_err(|_| not_found())?;
    match state.issuer.store().tenant(&tenant) {
        Ok(Some(_)) => Ok(tenant),
        Ok(None) => Err(not_found()),
        Err(error) => {
            tracing::error!(message = "tenant lookup failed", %error);
            Err(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

async fn discovery(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let tenant = match tenant(&state, &name) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let issuer = state.issuer.issuer_url(&tenant);
    let mut response = axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "device_authorization_endpoint": format!("{issuer}/device_authorization"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
            "client_credentials"
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": stormproof_identity::SUPPORTED_SCOPES,
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "email", "email_verified", "amr", "at_hash"],
        "dpop_signing_alg_values_supported": ["EdDSA", "ES256"],
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

async fn jwks(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let tenant = match tenant(&state, &name) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match state.issuer.jwks(&tenant) {
        Ok(jwks) => {
            let mut response = axum::Json(jwks).into_response();
            // Keys are published a whole rotation period before they sign,
            // so relying parties may cache the set.
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jwk-set+json"),
            );
            response
        }
        Err(error) => {
            tracing::error!(message = "jwks failed", %error);
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(url) => url,
        Err(_) => {
            return pages::message(
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                "The redirect URI is invalid.",
            );
        }
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    Redirect::to(url.as_str()).into_response()
}

fn authorize_error(error: AuthorizeError, issuer: &str) -> Response {
    match error {
        AuthorizeError::Fatal(message) => {
            pages::message(StatusCode::BAD_REQUEST, "Sign-in request refused", &message)
        }
        AuthorizeError::Redirect {
            redirect_uri,
            error,
            state,
        } => {
            let mut params = vec![
                ("error", error.error),
                ("error_description", error.error_description.as_str()),
                ("iss", issuer),
            ];
            if let Some(state) = state.as_deref() {
                params.push(("state", state));
            }
            redirect_with(&redirect_uri, &params)
        }
    }
}

async fn authorize_page(
    State(state): State<AppState>,
    Path(name): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let tenant = match tenant(&state, &name) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let issuer = state.issuer.issuer_url(&tenant);
    let request: AuthorizeRequest = match Params::parse(uri.query().unwrap_or_default().as_bytes())
    {
        Ok(p) => AuthorizeRequest {
            response_type: p.get("response_type").map(str::to_owned),
            client_id: p.get("client_id").map(str::to_owned),
            redirect_uri: p.get("redirect_uri").map(str::to_owned),
            scope: p.get("scope").map(str::to_owned),
            state: p.get("state").map(str::to_owned),
            nonce: p.get("nonce").map(str::to_owned),
            code_challenge: p.get("code_challenge").map(str::to_owned),
            code_challenge_method: p.get("code_challenge_method").map(str::to_owned),
        },
        Err(message) => {
            return pages::message(StatusCode::BAD_REQUEST, "Sign-in request refused", &message);
        }
    };
    let validated = match state.issuer.validate_authorize(&tenant, &request) {
        Ok(v) => v,
        Err(error) => return authorize_error(error, &issuer),
    };
    let client_name = validated.client.name.clone();
    let login_id = state.logins.insert(Pending {
        tenant: tenant.clone(),
        purpose: Purpose::Authorize(Box::new(validated)),
        user: None,
        attempts: 0,
        created: Instant::now(),
    });
    pages::login(
        &format!("{issuer}/authorize"),
        &login_id,
        &client_name,
        None,
    )
}

/// Where the sign-in form posts, and whom it names.
#[derive(Clone, Copy)]
struct SignInPage<'a> {
    action: &'a str,
    client_name: &'a str,
}

/// The sign-in steps shared by the authorize and device pages: returns the
/// user and methods once both factors passed, or the page to show next.
fn sign_in_step(
    state: &AppState,
    tenant: &TenantName,
    login_id: String,
    mut pending: Pending,
    form: &Params,
    info: &RequestInfo,
    page: SignInPage<'_>,
) -> Result<(Pending, UserRecord, Vec<&'static str>), Response> {
    let SignInPage {
        action,
        client_name,
    } = page;
    if let Some(user) = pending.user.clone() {
        let code = form.get("totp").unwrap_or_default();
        if state.issuer.check_totp(&user, code) {
            return Ok((pending, user, vec!["pwd", "otp"]));
        }
        state.issuer.record_refusal(
            tenant,
            "sign_in_failed",
            "bad_totp",
            json!({"user": user.id}),
            info,
        );
        pending.attempts += 1;
        if pending.attempts >= ATTEMPTS_PER_FORM {
            return Err(pages::message(
                StatusCode::UNAUTHORIZED,
                "Sign-in failed",
                "Too many attempts. Start again.",
            ));
        }
        state.logins.put_back(login_id.clone(), pending);
        return Err(pages::totp(
            action,
            &login_id,
            Some("That code is not right."),
        ));
    }
    let email = form.get("email").unwrap_or_default();
    let password = form.get("password").unwrap_or_default();
    if state.logins.locked_out(tenant, email) {
        state.issuer.record_refusal(
            tenant,
            "sign_in_failed",
            "locked_out",
            json!({"email": email}),
            info,
        );
        return Err(pages::message(
            StatusCode::TOO_MANY_REQUESTS,
            "Sign-in paused",
            "Too many failed sign-ins for this address. Try again later.",
        ));
    }
    match state.issuer.login(tenant, email, password, info) {
        LoginOutcome::Done(user, amr) => Ok((pending, user, amr)),
        LoginOutcome::NeedsTotp(user) => {
            pending.user = Some(user);
            state.logins.put_back(login_id.clone(), pending);
            Err(pages::totp(action, &login_id, None))
        }
        LoginOutcome::Failed => {
            state.logins.record_failure(tenant, email);
            pending.attempts += 1;
            if pending.attempts >= ATTEMPTS_PER_FORM {
                return Err(pages::message(
                    StatusCode::UNAUTHORIZED,
                    "Sign-in failed",
                    "Too many attempts. Start again.",
                ));
            }
            state.logins.put_back(login_id.clone(), pending);
            Err(pages::login(
                action,
                &login_id,
                client_name,
                Some("Incorrect email address or password."),
            ))
        }
    }
}

async fn authorize_submit(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ClientInfo(info): ClientInfo,
    body: Bytes,
) -> Response {
    blocking(move || authorize_submit_blocking(state, name, info, body)).await
}

fn authorize_submit_blocking(
    state: AppState,
    name: String,
    info: RequestInfo,
    body: Bytes,
) -> Response {
    let tenant = match tenant(&state, &name) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let issuer = state.issuer.issuer_url(&tenant);
    let form = match Params::parse(&body) {
        Ok(form) => form,
        Err(message) => return pages::message(StatusCode::BAD_REQUEST, "Sign-in failed", &message),
    };
    let login_id = form.get("login_id").unwrap_or_default().to_owned();
    let Some(pending) = state.logins.take(&login_id, &tenant) else {
        return pages::message(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in form has expired. Go back to the application and start again.",
        );
    };
    let client_name = match &pending.purpose {
        Purpose::Authorize(v) => v.client.name.clone(),
        Purpose::Device { .. } => {
            return pages::message(StatusCode::BAD_REQUEST, "Sign-in failed", "Wrong form.");
        }
    };
    let action = format!("{issuer}/authorize");
    let (pending, user, amr) = match sign_in_step(
        &state,
        &tenant,
        login_id,
        pending,
        &form,
        &info,
        SignInPage {
            action: &action,
            client_name: &client_name,
        },
    ) {
        Ok(done) => done,
        Err(page) => return page,
    };
    let Purpose::Authorize(validated) = pending.purpose else {
        return pages::message(StatusCode::BAD_REQUEST, "Sign-in failed", "Wrong form.");
    };
    match state
        .issuer
        .complete_authorize(&tenant, &validated, &user, &amr, &info)
    {
        Ok(code) => {
            let mut params = vec![("code", code.as_str()), ("iss", issuer.as_str())];
            if let Some(s) = validated.state.as_deref() {
                params.push(("state", s));
            }
            redirect_with(&validated.redirect_uri, &params)
        }
        Err(error) => {
            tracing::error!(message = "authorization failed", %error);
            pages::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in failed",
                "The server could not complete the sign-in.",
            )
        }
    }
}

/// Client authentication: HTTP Basic (RFC 6749 section 2.3.1, with the
/// form-encoding it requires) or body parameters, never both.
fn client_credentials(
    headers: &HeaderMap,
    form: &Params,
) -> Result<(String, Option<String>, bool), OAuthError> {
    let basic = header_str(headers, header::AUTHORIZATION.as_str())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, encoded)| encoded.trim());
    let invalid = |d: &str| OAuthError {
        error: "invalid_request",
        error_description: d.to_owned(),
    };
    match basic {
        Some(encoded) => {
            if form.get("client_secret").is_some() {
                return Err(invalid("use one client authentication method"));
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| invalid("malformed Basic credentials"))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| invalid("malformed Basic credentials"))?;
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            let (id, secret) = (decode(id), decode(secret));
            if form.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(invalid("client_id differs from the Basic credentials"));
            }
            Ok((id, (!secret.is_empty()).then_some(secret), true))
        }
        None => {
            let id = form
                .get("client_id")
                .ok_or_else(|| invalid("client authentication is required"))?;
            Ok((
                id.to_owned(),
                form.get("client_secret").map(str::to_owned),
                false,
            ))
        }
    }
}

/// A form request from an authenticated client to one of the token
/// endpoints: the tenant, the parameters, and the client they came from.
struct ClientRequest {
    tenant: TenantName,
    form: Params,
    client: stormproof_store::ClientRecord,
    /// Whether the client authenticated with HTTP Basic, which decides
    /// the challenge of an `invalid_client` answer.
    basic: bool,
}

/// Parses the form and authenticates the client, or answers with the
/// RFC 6749 error response.
fn client_request(
    state: &AppState,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ClientRequest, Response> {
    let tenant = tenant(state, name)?;
    let form = Params::parse(body).map_err(bad_request)?;
    let (client_id, secret, basic) =
        client_credentials(headers, &form).map_err(|e| client_error(e, false))?;
    let client = state
        .issuer
        .authenticate_client(&tenant, &client_id, secret.as_deref())
        .map_err(|e| client_error(e, basic))?;
    Ok(ClientRequest {
        tenant,
        form,
        client,
        basic,
    })
}

fn token_success(response: TokenResponse) -> Response {
    let mut response = axum::Json(response).into_response();
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn client_error(error: OAuthError, basic: bool) -> Response {
    if error.error == "invalid_client" {
        let mut response = oauth_error(StatusCode::UNAUTHORIZED, &error);
        if basic {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"stormproof\""),
            );
        }
        return response;
    }
    oauth_error(StatusCode::BAD_REQUEST, &error)
}

async fn token(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ClientInfo(info): ClientInfo,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    blocking(move || token_blocking(state, name, info, uri, headers, body)).await
}

fn token_blocking(
    state: AppState,
    name: String,
    info: RequestInfo,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ClientRequest {
        tenant,
        form,
        client,
        basic,
    } = match client_request(&state, &name, &headers, &body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    // A DPoP proof here binds the issued tokens to the proof's key.
    let jkt = match header_str(&headers, "dpop") {
        None if headers.contains_key("dpop") => return bad_request("DPoP must appear once"),
        None => None,
        Some(proof) => {
            let url = format!("{}{}", state.public_url(), uri.path());
            match state.verifier.verify_dpop_proof(proof, "POST", &url, None) {
                Ok(jkt) => Some(jkt),
                Err(rejection) => {
                    state.issuer.record_refusal(
                        &tenant,
                        "dpop_rejected",
                        rejection.reason.as_str(),
                        json!({"client_id": client.client_id}),
                        &info,
                    );
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        &OAuthError {
                            error: "invalid_dpop_proof",
                            error_description: "the DPoP proof is invalid".into(),
                        },
                    );
                }
            }
        }
    };
    let result = match form.get("grant_type") {
        Some("authorization_code") => {
            let Some(code) = form.get("code") else {
                return bad_request("code is required");
            };
            let exchange = CodeExchange {
                code,
                redirect_uri: form.get("redirect_uri"),
                code_verifier: form.get("code_verifier"),
            };
            state
                .issuer
                .exchange_code(&tenant, &client, exchange, jkt, &info)
        }
        Some("refresh_token") => {
            let Some(refresh) = form.get("refresh_token") else {
                return bad_request("refresh_token is required");
            };
            state
                .issuer
                .refresh(&tenant, &client, refresh, form.get("scope"), jkt, &info)
        }
        Some("urn:ietf:params:oauth:grant-type:device_code") => {
            let Some(device_code) = form.get("device_code") else {
                return bad_request("device_code is required");
            };
            state
                .issuer
                .device_token(&tenant, &client, device_code, jkt, &info)
        }
        Some("client_credentials") => {
            state
                .issuer
                .client_credentials(&tenant, &client, form.get("scope"), jkt, &info)
        }
        Some(_) => Err(OAuthError {
            error: "unsupported_grant_type",
            error_description: "unsupported grant_type".into(),
        }),
        None => return bad_request("grant_type is required"),
    };
    match result {
        Ok(response) => token_success(response),
        Err(error) => {
            if error.error == "invalid_grant" {
                // A replayed refresh token just revoked a session.
                state.verifier.invalidate();
            }
            client_error(error, basic)
        }
    }
}

async fn device_authorization(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    blocking(move || device_authorization_blocking(state, name, headers, body)).await
}

fn device_authorization_blocking(
    state: AppState,
    name: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ClientRequest {
        tenant,
        form,
        client,
        basic,
    } = match client_request(&state, &name, &headers, &body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    match state
        .issuer
        .device_authorize(&tenant, &client, form.get("scope"))
    {
        Ok(authorization) => {
            let mut response = axum::Json(authorization).into_response();
            response
                .headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(error) => client_error(error, basic),
    }
}

async fn device_page(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let tenant = match tenant(&state, &name) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let action = format!("{}/device", state.issuer.issuer_url(&tenant));
    pages::device(
        &action,
        query
            .get("user_code")
            .map(String::as_str)
            .unwrap_or_default(),
        None,
    )
}

async fn device_submit(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ClientInfo(info): ClientInfo,
    body: Bytes,
) -> Response {
    blocking(move || device_submit_blocking(state, name, info, body)).await
}

fn device_submit_blocking(
    state: AppState,
    name: String,
    info: RequestInfo,
    body: Bytes,
) -> Response {
    let tenant = match tenant(&state, &name) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let action = format!("{}/device", state.issuer.issuer_url(&tenant));
    let form = match Params::parse(&body) {
        Ok(form) => form,
        Err(message) => return pages::device(&action, "", Some(&message)),
    };
    // Either the TOTP step of an earlier submission, or a new one.
    let (login_id, pending) = match form.get("login_id") {
        Some(id) => match state.logins.take(id, &tenant) {
            Some(p) => (id.to_owned(), p),
            None => return pages::device(&action, "", Some("This form has expired. Start again.")),
        },
        None => {
            let user_code =
                stormproof_identity::normalize_user_code(form.get("user_code").unwrap_or_default());
            if state.issuer.pending_device(&tenant, &user_code).is_none() {
                return pages::device(&action, "", Some("That code is unknown or has expired."));
            }
            if form.get("decision") == Some("deny") {
                let _ = state.issuer.decide_device(&tenant, &user_code, None, &info);
                return pages::message(
                    StatusCode::OK,
                    "Request denied",
                    "The device was not connected.",
                );
            }
            let pending = Pending {
                tenant: tenant.clone(),
                purpose: Purpose::Device { user_code },
                user: None,
                attempts: 0,
                created: Instant::now(),
            };
            (stormproof_types::random_id(24), pending)
        }
    };
    let (pending, user, amr) = match sign_in_step(
        &state,
        &tenant,
        login_id,
        pending,
        &form,
        &info,
        SignInPage {
            action: &action,
            client_name: "your device",
        },
    ) {
        Ok(done) => done,
        Err(page) => return page,
    };
    let Purpose::Device { user_code } = pending.purpose else {
        return pages::device(&action, "", Some("Wrong form."));
    };
    match state
        .issuer
        .decide_device(&tenant, &user_code, Some((&user, &amr)), &info)
    {
        Ok(()) => pages::message(
            StatusCode::OK,
            "Device connected",
            "You can return to your device.",
        ),
        Err(_) => pages::device(&action, "", Some("That code is unknown or has expired.")),
    }
}

async fn introspect(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    ClientInfo(info): ClientInfo,
    body: Bytes,
) -> Response {
    blocking(move || introspect_blocking(state, name, headers, info, body)).await
}

fn introspect_blocking(
    state: AppState,
    name: String,
    headers: HeaderMap,
    info: RequestInfo,
    body: Bytes,
) -> Response {
    let ClientRequest {
        tenant,
        form,
        client: caller,
        basic,
    } = match client_request(&state, &name, &headers, &body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    // Only confidential clients (resource servers) may introspect.
    if caller.kind != stormproof_store::ClientKind::Confidential {
        return client_error(
            OAuthError {
                error: "invalid_client",
                error_description: "introspection needs a confidential client".into(),
            },
            basic,
        );
    }
    let Some(token) = form.get("token") else {
        return bad_request("token is required");
    };
    let inactive = || axum::Json(json!({"active": false})).into_response();
    if let Some(record) = state.issuer.live_refresh_token(&tenant, token) {
        return axum::Json(json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": record.scope,
            "client_id": record.client_id,
            "sub": record.sub,
            "exp": record.exp,
            "iat": record.iat,
            "sid": record.sid,
            "iss": state.issuer.issuer_url(&tenant),
        }))
        .into_response();
    }
    let context = RequestContext {
        method: "POST",
        url: "",
        dpop: None,
        scheme: AuthScheme::Bearer,
        ip: info.ip.as_deref(),
        user_agent: info.user_agent.as_deref(),
        mode: VerifyMode::Introspection,
    };
    let Ok(principal) = state.verifier.verify(token, &context) else {
        return inactive();
    };
    if principal.tenant() != &tenant {
        return inactive();
    }
    let username = state
        .issuer
        .user_by_id(&tenant, principal.subject())
        .ok()
        .flatten()
        .map(|u| u.email.to_string());
    let mut body = json!({
        "active": true,
        "token_type": if principal.jkt().is_some() { "DPoP" } else { "Bearer" },
        "scope": principal.scope(),
        "client_id": principal.client_id(),
        "sub": principal.subject(),
        "exp": principal.expires_at(),
        "iat": principal.issued_at(),
        "iss": state.issuer.issuer_url(&tenant),
        "aud": state.public_url(),
        "jti": principal.token_id(),
        "sid": principal.session_id(),
    });
    if let Some(username) = username {
        body["username"] = username.into();
    }
    if let Some(jkt) = principal.jkt() {
        body["cnf"] = json!({"jkt": jkt});
    }
    tracing::debug!(message = "token introspected", caller = %caller.client_id);
    axum::Json(body).into_response()
}

async fn revoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    blocking(move || revoke_blocking(state, name, headers, body)).await
}

fn revoke_blocking(state: AppState, name: String, headers: HeaderMap, body: Bytes) -> Response {
    let ClientRequest {
        tenant,
        form,
        client,
        basic: _,
    } = match client_request(&state, &name, &headers, &body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let Some(token) = form.get("token") else {
        return bad_request("token is required");
    };
    if let Err(error) = state.issuer.revoke_presented(&tenant, &client, token) {
        tracing::error!(message = "revocation failed", %error);
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &OAuthError {
                error: "server_error",
                error_description: "try again".into(),
            },
        );
    }
    // Revocation takes effect at once, also for cached verifications.
    state.verifier.invalidate();
    StatusCode::OK.into_response()
}

async fn userinfo(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Authenticated(principal): Authenticated,
) -> Response {
    let tenant = match tenant(&state, &name) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let forbidden = || {
        let mut response = (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"error": "insufficient_scope"})),
        )
            .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer error="insufficient_scope", scope="openid""#),
        );
        response
    };
    if principal.tenant() != &tenant || !principal.has_scope("openid") {
        return forbidden();
    }
    match state.issuer.user_by_id(&tenant, principal.subject()) {
        Ok(Some(user)) => {
            let mut claims = json!({"sub": user.id});
            if principal.has_scope("email") {
                claims["email"] = user.email.to_string().into();
                claims["email_verified"] = true.into();
            }
            axum::Json(claims).into_response()
        }
        _ => forbidden(),
    }
}
