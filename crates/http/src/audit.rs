//! The audit log over HTTP: writing the record of every mail read before
//! the response leaves, the tenant-scoped admin search, and a user's own
//! access history.

use std::path::PathBuf;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use stormproof_audit::search::{Filter, search};
use stormproof_audit::{
    AccessKind, Actor, AuditEvent, AuditLog, LogReader, Outcome, Target, now_ms, ocsf,
};
use stormproof_identity::RequestInfo;
use stormproof_jmap::{Access, Caller};
use stormproof_verifier::Principal;

use crate::extract::ClientInfo;
use crate::{AppState, Authenticated};

/// The scope a token needs to search its tenant's audit log. OAuth grants
/// never hand it out; only an operator mints it (`stormproof token issue
/// --scope audit`).
pub const AUDIT_SCOPE: &str = "audit";

/// The most events one page returns.
pub const MAX_PAGE: usize = 1000;

/// The log and where it lives, for the handlers that read it back.
#[derive(Clone, Debug)]
pub struct AuditState {
    /// The log, owned by this process.
    pub log: AuditLog,
    /// Its directory, for readers.
    pub dir: PathBuf,
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/audit", get(admin_search))
        .route("/api/audit/proof", get(inclusion))
        .route("/api/audit/consistency", get(consistency))
        .route("/api/me/mail-access", get(my_mail_access))
}

/// The actor a verified HTTP request names.
pub(crate) fn actor(
    principal: &Principal,
    user: Option<&str>,
    info: &RequestInfo,
    protocol: &str,
) -> Actor {
    Actor {
        user: user.map(str::to_owned),
        user_id: Some(principal.subject().to_owned()),
        client_id: Some(principal.client_id().to_owned()),
        session: Some(principal.session_id().to_owned()),
        token: Some(principal.token_id().to_owned()),
        ip: info.ip.clone(),
        user_agent: info.user_agent.clone(),
        protocol: protocol.to_owned(),
    }
}

/// One audit event per JMAP access: a bulk read stays one event with its
/// item list. `actor` is the verified caller's.
pub fn mail_access_events(
    actor: &Actor,
    tenant: &str,
    caller: &Caller,
    accessed: &[Access],
) -> Vec<AuditEvent> {
    let now = now_ms();
    accessed
        .iter()
        .map(|access| {
            let mut event =
                AuditEvent::new(now, &access.operation, Outcome::Success, actor.clone());
            let items: Vec<String> = access
                .email_ids
                .iter()
                .chain(&access.blob_ids)
                .cloned()
                .collect();
            event.tenant = Some(tenant.to_owned());
            event.access = if access.content {
                AccessKind::Content
            } else {
                AccessKind::Metadata
            };
            event.count = items.len() as u64;
            event.target = Target {
                account: Some(access.account_id.clone()),
                owner: Some(caller.username.clone()),
                mailbox: match access.mailbox_ids.as_slice() {
                    [only] => Some(only.clone()),
                    _ => None,
                },
                mailboxes: access.mailbox_ids.clone(),
                items,
                message_ids: access.message_ids.clone(),
            };
            event
        })
        .collect()
}

/// [`mail_access_events`] for a verified request.
pub(crate) fn request_events(
    principal: &Principal,
    caller: &Caller,
    info: &RequestInfo,
    accessed: &[Access],
) -> Vec<AuditEvent> {
    if accessed.is_empty() {
        return Vec::new();
    }
    let actor = actor(principal, Some(&caller.username), info, "jmap");
    mail_access_events(&actor, principal.tenant().as_str(), caller, accessed)
}

/// Makes `events` durable. Until this returns `Ok`, nothing they describe
/// may be sent.
pub(crate) async fn record(state: &AppState, events: Vec<AuditEvent>) -> Result<(), Response> {
    if events.is_empty() {
        return Ok(());
    }
    settled(state.audit.log.append(events).durable().await)
}

/// Audit records on their way to disk: queued as each access becomes
/// known, while the request goes on, and waited for before it answers.
#[must_use = "nothing may be sent before the records are durable"]
#[derive(Default)]
pub(crate) struct Pending(Vec<stormproof_audit::Receipt>);

impl Pending {
    /// Queues `events`; the writer starts on them at once.
    pub(crate) fn start(&mut self, log: &AuditLog, events: Vec<AuditEvent>) {
        if !events.is_empty() {
            self.0.push(log.append(events));
        }
    }

    /// Waits until every record is durable; `Err` is the response to send
    /// instead.
    pub(crate) async fn settle(self) -> Result<(), Response> {
        for receipt in self.0 {
            settled(receipt.durable().await)?;
        }
        Ok(())
    }
}

fn settled(durable: Result<std::ops::Range<u64>, stormproof_audit::Error>) -> Result<(), Response> {
    match durable {
        Ok(_) => Ok(()),
        Err(error) => {
            tracing::error!(message = "audit record not durable; withholding the response", %error);
            Err(crate::jmap::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "about:blank",
                "the access could not be recorded",
            ))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    user: Option<String>,
    owner: Option<String>,
    session: Option<String>,
    client: Option<String>,
    ip: Option<String>,
    operation: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<u64>,
    limit: Option<usize>,
    format: Option<String>,
}

fn bad_request(detail: &str) -> Response {
    crate::jmap::problem(StatusCode::BAD_REQUEST, "about:blank", detail)
}

async fn page(
    state: &AppState,
    filter: Filter,
    cursor: u64,
    limit: usize,
) -> Result<stormproof_audit::search::Page, Response> {
    let dir = state.audit.dir.clone();
    tokio::task::spawn_blocking(move || {
        let reader = LogReader::open(&dir)?;
        search(&reader, &filter, cursor, limit)
    })
    .await
    .ok()
    .and_then(Result::ok)
    .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `GET /api/audit`: the caller's tenant's records, filtered and paged by
/// `cursor` (the `next` of the previous page). Needs the `audit` scope. The
/// search is itself recorded.
async fn admin_search(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ClientInfo(info): ClientInfo,
    Query(query): Query<SearchQuery>,
) -> Response {
    if let Some(refusal) = needs_audit_scope(&principal) {
        return refusal;
    }
    let mut filter = Filter {
        tenant: Some(principal.tenant().as_str().to_owned()),
        user: query.user,
        owner: query.owner,
        session: query.session,
        client: query.client,
        ip: query.ip,
        operation: query.operation,
        ..Filter::default()
    };
    for (text, slot) in [
        (&query.since, &mut filter.since),
        (&query.until, &mut filter.until),
    ] {
        if let Some(text) = text {
            match stormproof_audit::parse_time(text) {
                Some(time) => *slot = Some(time),
                None => return bad_request("since and until take RFC 3339 or Unix seconds"),
            }
        }
    }
    let ocsf_output = match query.format.as_deref() {
        None | Some("json") => false,
        Some("ocsf") => true,
        Some(_) => return bad_request("format is json or ocsf"),
    };
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let found = match page(&state, filter.clone(), query.cursor.unwrap_or(0), limit).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let admin = state
        .issuer
        .user_by_id(principal.tenant(), principal.subject())
        .ok()
        .flatten()
        .map(|u| u.email.to_string());
    let mut event = AuditEvent::new(
        now_ms(),
        "audit.search",
        Outcome::Success,
        actor(&principal, admin.as_deref(), &info, "http"),
    );
    event.tenant = Some(principal.tenant().as_str().to_owned());
    event.count = found.events.len() as u64;
    event.detail = json!({"filter": format!("{filter:?}")});
    if let Err(response) = record(&state, vec![event]).await {
        return response;
    }
    let events: Vec<Value> = found
        .events
        .iter()
        .map(|e| {
            if ocsf_output {
                ocsf::to_ocsf(e)
            } else {
                serde_json::to_value(e).unwrap_or(Value::Null)
            }
        })
        .collect();
    axum::Json(json!({"events": events, "next": found.next})).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    cursor: Option<u64>,
    limit: Option<usize>,
}

/// `GET /api/me/mail-access`: who and what read the caller's mail — app,
/// address, time and items.
async fn my_mail_access(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(query): Query<HistoryQuery>,
) -> Response {
    let Some(user) = state
        .issuer
        .user_by_id(principal.tenant(), principal.subject())
        .ok()
        .flatten()
    else {
        return crate::jmap::problem(
            StatusCode::FORBIDDEN,
            "about:blank",
            "only a user has a mail access history",
        );
    };
    let filter = Filter {
        tenant: Some(principal.tenant().as_str().to_owned()),
        owner: Some(user.email.to_string()),
        mail_access_only: true,
        ..Filter::default()
    };
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let found = match page(&state, filter, query.cursor.unwrap_or(0), limit).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let accesses: Vec<Value> = found
        .events
        .iter()
        .map(|e| {
            json!({
                "time": e.time,
                "operation": e.operation,
                "access": e.access,
                "app": e.actor.client_id,
                "ip": e.actor.ip,
                "user_agent": e.actor.user_agent,
                "protocol": e.actor.protocol,
                "by": e.actor.user,
                "session": e.actor.session,
                "items": e.target.items,
                "message_ids": e.target.message_ids,
            })
        })
        .collect();
    axum::Json(json!({"accesses": accesses, "next": found.next})).into_response()
}

fn base64(hash: &[u8; 32]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(hash)
}

fn needs_audit_scope(principal: &Principal) -> Option<Response> {
    (!principal.has_scope(AUDIT_SCOPE)).then(|| {
        crate::jmap::problem(
            StatusCode::FORBIDDEN,
            "about:blank",
            "this token does not grant access to the audit log",
        )
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofQuery {
    seq: u64,
}

/// `GET /api/audit/proof?seq=N`: the record (of the caller's tenant), its
/// RFC 6962 leaf hash, and its inclusion proof in the tree of the latest
/// signed checkpoint, with that checkpoint, so anyone holding the
/// checkpoint can check the record is in the log.
async fn inclusion(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(query): Query<ProofQuery>,
) -> Response {
    if let Some(refusal) = needs_audit_scope(&principal) {
        return refusal;
    }
    let log = state.audit.log.clone();
    let dir = state.audit.dir.clone();
    let tenant = principal.tenant().as_str().to_owned();
    let answer =
        tokio::task::spawn_blocking(move || -> Result<Option<Value>, stormproof_audit::Error> {
            let checkpoint = log.checkpoint()?;
            if query.seq >= checkpoint.size {
                return Ok(None);
            }
            let reader = LogReader::open(&dir)?;
            let Some(record) = reader.records(query.seq).next().transpose()? else {
                return Ok(None);
            };
            if record.event()?.tenant.as_deref() != Some(tenant.as_str()) {
                return Ok(None);
            }
            let proof = log.inclusion_proof(query.seq, checkpoint.size)?;
            Ok(Some(json!({
                "seq": query.seq,
                "record": String::from_utf8_lossy(&record.bytes),
                "leaf_hash": base64(&stormproof_audit::merkle::leaf_hash(&record.bytes)),
                "tree_size": checkpoint.size,
                "proof": proof.iter().map(base64).collect::<Vec<_>>(),
                "checkpoint": checkpoint.note,
            })))
        })
        .await;
    match answer {
        Ok(Ok(Some(body))) => axum::Json(body).into_response(),
        Ok(Ok(None)) => crate::jmap::problem(
            StatusCode::NOT_FOUND,
            "about:blank",
            "no such record of this tenant under the latest checkpoint",
        ),
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    old: u64,
    new: Option<u64>,
}

/// `GET /api/audit/consistency?old=M[&new=N]`: the RFC 6962 consistency
/// proof between the tree of `old` records (a checkpoint the caller kept)
/// and that of `new` (default: the latest checkpoint).
async fn consistency(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(query): Query<ConsistencyQuery>,
) -> Response {
    if let Some(refusal) = needs_audit_scope(&principal) {
        return refusal;
    }
    let log = state.audit.log.clone();
    let answer = tokio::task::spawn_blocking(move || -> Result<Value, stormproof_audit::Error> {
        let checkpoint = log.checkpoint()?;
        let new = query.new.unwrap_or(checkpoint.size);
        let proof = log.consistency_proof(query.old, new)?;
        Ok(json!({
            "old": query.old,
            "new": new,
            "proof": proof.iter().map(base64).collect::<Vec<_>>(),
            "checkpoint": (new == checkpoint.size).then_some(checkpoint.note),
        }))
    })
    .await;
    match answer {
        Ok(Ok(body)) => axum::Json(body).into_response(),
        Ok(Err(error)) if matches!(error.kind, stormproof_audit::ErrorKind::BadRequest(_)) => {
            bad_request(&error.to_string())
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
