//! JMAP over HTTP (RFC 8620 sections 2, 3, 6 and 7): the session resource,
//! the API endpoint, blob upload and download, and the event source. Every
//! route takes [`Authenticated`], so no request reaches mail unverified.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use stormproof_jmap::{Access, Caller, ErrorKind};
use stormproof_verifier::Principal;

use crate::extract::ClientInfo;
use crate::{AppState, Authenticated, audit};

/// The scope a token needs to reach mail.
pub const MAIL_SCOPE: &str = "mail";

pub(crate) fn routes(max_request: usize, max_upload: usize) -> Router<AppState> {
    Router::new()
        .route("/.well-known/jmap", get(session))
        .route(
            "/jmap/api",
            post(api).layer(DefaultBodyLimit::max(max_request)),
        )
        .route(
            "/jmap/api/",
            post(api).layer(DefaultBodyLimit::max(max_request)),
        )
        .route(
            "/jmap/upload/{account_id}",
            post(upload).layer(DefaultBodyLimit::max(max_upload)),
        )
        .route(
            "/jmap/upload/{account_id}/",
            post(upload).layer(DefaultBodyLimit::max(max_upload)),
        )
        .route(
            "/jmap/download/{account_id}/{blob_id}/{name}",
            get(download),
        )
        .route("/jmap/eventsource", get(event_source))
}

pub(crate) fn problem(status: StatusCode, kind: &str, detail: &str) -> Response {
    let mut response = (
        status,
        axum::Json(json!({"type": kind, "status": status.as_u16(), "detail": detail})),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

fn forbidden() -> Response {
    let mut response = problem(
        StatusCode::FORBIDDEN,
        "about:blank",
        "this token does not grant access to mail",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer error="insufficient_scope", scope="mail""#),
    );
    response
}

/// The caller's mail identity, from a verified principal only.
fn caller(state: &AppState, principal: &Principal) -> Result<Caller, Response> {
    if !principal.has_scope(MAIL_SCOPE) {
        return Err(forbidden());
    }
    let store = state.issuer.store();
    let user = store
        .user_by_id(principal.tenant(), principal.subject())
        .ok()
        .flatten()
        .ok_or_else(forbidden)?;
    let account = store
        .mail_account_for_user(principal.tenant(), &user.id)
        .ok()
        .flatten()
        .ok_or_else(forbidden)?;
    Ok(Caller {
        tenant: principal.tenant().clone(),
        account_id: account.account_id,
        username: user.email.to_string(),
    })
}

fn jmap(state: &AppState) -> Result<&stormproof_jmap::Jmap, Response> {
    state
        .jmap
        .as_deref()
        .ok_or_else(|| StatusCode::NOT_FOUND.into_response())
}

async fn session(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Response {
    let (jmap, caller) = match jmap(&state).and_then(|j| Ok((j, caller(&state, &principal)?))) {
        Ok(found) => found,
        Err(response) => return response,
    };
    axum::Json(jmap.session(&caller)).into_response()
}

async fn api(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ClientInfo(info): ClientInfo,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let caller = match caller(&state, &principal) {
        Ok(c) => c,
        Err(response) => return response,
    };
    let body = match body {
        Ok(body) => body,
        Err(_) => {
            let mut response = problem(
                StatusCode::BAD_REQUEST,
                "urn:ietf:params:jmap:error:limit",
                "the request is larger than maxSizeRequest",
            );
            if let Ok(body) = serde_json::to_vec(&json!({
                "type": "urn:ietf:params:jmap:error:limit",
                "status": 400,
                "limit": "maxSizeRequest",
                "detail": "the request is larger than maxSizeRequest",
            })) {
                *response.body_mut() = axum::body::Body::from(body);
            }
            return response;
        }
    };
    let Some(jmap) = state.jmap.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Method calls read and write the store and may sync to disk: they run
    // on the blocking pool, and so does rendering the answer.
    let log = state.audit.log.clone();
    let served = tokio::task::spawn_blocking(move || {
        // Write-ahead: each access's record is queued as soon as the items
        // it reads are known, syncs while they are loaded and rendered,
        // and is durable before any of the body leaves.
        let mut pending = audit::Pending::default();
        let response = jmap.api_recording(&caller, &body, &mut |access| {
            let events =
                audit::request_events(&principal, &caller, &info, std::slice::from_ref(access));
            pending.start(&log, events);
        });
        let rendered = serde_json::to_vec(&response.body);
        (response.status, response.content_type, rendered, pending)
    })
    .await;
    let (status, content_type, rendered, pending) = match served {
        Ok(served) => served,
        Err(_) => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "about:blank",
                "the request failed",
            );
        }
    };
    if let Err(refusal) = pending.settle().await {
        return refusal;
    }
    let Ok(rendered) = rendered else {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "about:blank",
            "the response could not be rendered",
        );
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut http = (status, rendered).into_response();
    http.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    http
}

async fn upload(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match caller(&state, &principal) {
        Ok(c) => c,
        Err(response) => return response,
    };
    let Some(jmap) = state.jmap.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let result = tokio::task::spawn_blocking(move || {
        jmap.upload(&caller, &account_id, &content_type, &body)
    })
    .await;
    match result {
        Ok(Ok(info)) => (StatusCode::CREATED, axum::Json(info)).into_response(),
        Ok(Err(error)) => blob_error(error.kind),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn blob_error(kind: ErrorKind) -> Response {
    match kind {
        ErrorKind::AccountNotFound | ErrorKind::NotFound => problem(
            StatusCode::NOT_FOUND,
            "about:blank",
            "no such blob in this account",
        ),
        ErrorKind::TooLarge { .. } => problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "urn:ietf:params:jmap:error:limit",
            "upload too large",
        ),
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct DownloadQuery {
    accept: Option<String>,
}

async fn download(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ClientInfo(info): ClientInfo,
    Path((account_id, blob_id, name)): Path<(String, String, String)>,
    Query(query): Query<DownloadQuery>,
) -> Response {
    let caller = match caller(&state, &principal) {
        Ok(c) => c,
        Err(response) => return response,
    };
    let Some(jmap) = state.jmap.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (account, blob, for_call) = (account_id.clone(), blob_id.clone(), caller.clone());
    let result =
        tokio::task::spawn_blocking(move || jmap.download(&for_call, &account, &blob)).await;
    let bytes = match result {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(error)) => return blob_error(error.kind),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let events = audit::request_events(
        &principal,
        &caller,
        &info,
        &[Access::download(&account_id, &blob_id)],
    );
    if let Err(refusal) = audit::record(&state, events).await {
        return refusal;
    }
    // The client names the type it wants; anything not a plain media type
    // falls back to octet-stream rather than reaching the header verbatim.
    let content_type = query
        .accept
        .filter(|t| {
            t.len() < 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/+-.".contains(&b))
        })
        .unwrap_or_else(|| "application/octet-stream".into());
    let file_name: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._- ".contains(*c))
        .take(128)
        .collect();
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, immutable, max-age=31536000"),
    );
    response
}

#[derive(Debug, Deserialize)]
struct EventSourceQuery {
    types: Option<String>,
    closeafter: Option<String>,
    ping: Option<u64>,
}

/// How often the event source looks for new changes.
const PUSH_POLL: Duration = Duration::from_millis(500);

async fn event_source(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(query): Query<EventSourceQuery>,
) -> Response {
    let caller = match caller(&state, &principal) {
        Ok(c) => c,
        Err(response) => return response,
    };
    // Only the types this server tracks; unknown names are ignored.
    const TYPES: &[&str] = &[
        "Mailbox",
        "Email",
        "Thread",
        "Identity",
        "EmailSubmission",
        "VacationResponse",
    ];
    let types: Vec<String> = match query.types.as_deref() {
        None | Some("*") | Some("") => TYPES.iter().map(|t| (*t).to_owned()).collect(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|t| TYPES.contains(t))
            .map(str::to_owned)
            .collect(),
    };
    let push = Push {
        store: state.issuer.store().clone(),
        principal,
        caller,
        types,
        close_after_state: query.closeafter.as_deref() == Some("state"),
        ping: Duration::from_secs(query.ping.unwrap_or(0).min(MAX_PING)),
        last: None,
        done: false,
    };
    let stream = futures_util::stream::unfold(push, |mut push| async move {
        let event = push.next().await?;
        Some((Ok::<_, Infallible>(event), push))
    });
    Sse::new(stream).into_response()
}

/// The longest ping interval honoured, in seconds.
const MAX_PING: u64 = 3600;

/// One event-source connection: polls the account's change counter and
/// emits a `StateChange` whenever it moves.
struct Push {
    store: std::sync::Arc<dyn stormproof_store::Store>,
    principal: Principal,
    caller: Caller,
    types: Vec<String>,
    close_after_state: bool,
    /// Zero for no pings.
    ping: Duration,
    last: Option<i64>,
    done: bool,
}

impl Push {
    /// Whether the token that opened the stream would still verify: not
    /// expired, not revoked, its session alive.
    fn token_alive(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(i64::MAX);
        let tenant = self.principal.tenant();
        let token_live = self
            .store
            .token(tenant, self.principal.token_id())
            .ok()
            .flatten()
            .is_some_and(|t| t.revoked_at.is_none());
        let session_live = self
            .store
            .session_state(tenant, self.principal.session_id())
            .ok()
            .flatten()
            .is_some_and(|s| !s.session_revoked && !s.user_disabled && !s.client_blocked);
        now < self.principal.expires_at() && token_live && session_live
    }

    async fn next(&mut self) -> Option<SseEvent> {
        let mut idle = Duration::ZERO;
        loop {
            if self.done || !self.token_alive() {
                return None;
            }
            let modseq = self
                .store
                .mail_account(&self.caller.tenant, &self.caller.account_id)
                .ok()
                .flatten()
                .map(|a| a.modseq)
                .unwrap_or(0);
            let changed = self.last.is_some_and(|last| last != modseq);
            let first = self.last.is_none();
            self.last = Some(modseq);
            // The first poll only sets the baseline when the client asked
            // to close after a state event: that event must be a change.
            if changed || (first && !self.close_after_state) {
                self.done = self.close_after_state;
                let state_string = modseq.to_string();
                let changed: serde_json::Map<String, serde_json::Value> = self
                    .types
                    .iter()
                    .map(|t| (t.clone(), json!(state_string)))
                    .collect();
                let data = json!({"@type": "StateChange", "changed": {self.caller.account_id.clone(): changed}});
                return Some(SseEvent::default().event("state").data(data.to_string()));
            }
            if !self.ping.is_zero() && idle >= self.ping {
                // RFC 8620 section 7.3: an event called ping, with the interval.
                return Some(
                    SseEvent::default()
                        .event("ping")
                        .data(json!({"interval": self.ping.as_secs()}).to_string()),
                );
            }
            tokio::time::sleep(PUSH_POLL).await;
            idle += PUSH_POLL;
        }
    }
}
