//! JMAP core and mail (RFC 8620, RFC 8621) as a plain function of a request
//! body, an already-verified caller, and the store.
//!
//! This crate owns the JMAP wire format and semantics: the Session object,
//! strict Request parsing with its request-level errors and limits, result
//! references and creation ids, the `Core`, `Mailbox`, `Email`, `Thread`,
//! `SearchSnippet`, `Identity`, `EmailSubmission` and `VacationResponse`
//! methods, and blob upload and download. Every answer also says which mail
//! it read ([`ApiResponse::accessed`]), so the HTTP front can write the
//! audit record before it sends a byte. [`Jmap::api_recording`] also hands
//! each access over as soon as the items it reads are known, before their
//! content is loaded, so the record can sync while the answer is built.
//!
//! `EmailSubmission/set` delivers only to users of this server (any
//! tenant's), through the same delivery path as SMTP; a submission naming
//! any other recipient is refused whole with `forbiddenToSend`, since the
//! server has no outbound relay yet.
//!
//! It never touches a socket and never checks a token: the HTTP front builds
//! a [`Caller`] only from a token the verifier accepted, and this crate
//! serves that caller's one account in that caller's tenant. An account id
//! that is not the caller's is `accountNotFound`, whoever owns it, so no
//! answer tells one tenant anything about another.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use stormproof_jmap::{Caller, Jmap, JmapConfig};
//! use stormproof_mail::Delivery;
//! use stormproof_store::{SqliteStore, Store};
//! use stormproof_types::TenantName;
//! let dir = std::path::Path::new("/var/lib/stormproof");
//! let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir)?);
//! let jmap = Jmap::new(store.clone(), Delivery::open(store, dir)?, JmapConfig::for_base_url("https://mail.acme.test"));
//! let caller = Caller { tenant: TenantName::parse("acme")?, account_id: "a1".into(), username: "alice@acme.test".into() };
//! let response = jmap.api(&caller, br#"{"using": ["urn:ietf:params:jmap:core"],
//!     "methodCalls": [["Core/echo", {"hello": true}, "c0"]]}"#);
//! assert_eq!(response.status, 200);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod args;
mod blob;
mod body;
mod date;
mod email;
mod identity;
mod mailbox;
mod query;
mod request;
mod snippet;
mod submission;
mod thread;
mod vacation;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use stormproof_mail::Delivery;
use stormproof_store::{EmailRecord, MailAccount, Store};
use stormproof_types::{Clock, Email, SystemClock, TenantName};

use args::{Args, MethodError};

/// The JMAP core capability.
pub const CAPABILITY_CORE: &str = "urn:ietf:params:jmap:core";
/// The JMAP mail capability.
pub const CAPABILITY_MAIL: &str = "urn:ietf:params:jmap:mail";
/// The JMAP submission capability: `Identity` and `EmailSubmission`.
pub const CAPABILITY_SUBMISSION: &str = "urn:ietf:params:jmap:submission";
/// The JMAP vacation response capability.
pub const CAPABILITY_VACATION: &str = "urn:ietf:params:jmap:vacationresponse";
/// Concurrent API requests advertised in the Session; the HTTP front enforces it.
pub const MAX_CONCURRENT_REQUESTS: usize = 4;
/// Concurrent uploads advertised in the Session; the HTTP front enforces it.
pub const MAX_CONCURRENT_UPLOAD: usize = 4;
/// Changes returned by one `/changes` call when the client sets no `maxChanges`.
pub const DEFAULT_MAX_CHANGES: usize = 1000;
/// Longest mailbox name, in bytes (the store's limit).
pub const MAX_MAILBOX_NAME: usize = 255;
/// Most distinct recipients of one `EmailSubmission`, as many as SMTP
/// accepts in one transaction (RFC 5321 section 4.5.3.1.8).
pub const MAX_SUBMISSION_RECIPIENTS: usize = 100;

const PROBLEM_JSON: &str = "application/problem+json";
const JSON: &str = "application/json";

/// Where the server is reached and how much it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JmapConfig {
    /// The API endpoint (`{base}/jmap/api`).
    pub api_url: String,
    /// The RFC 8620 download template, e.g.
    /// `{base}/jmap/download/{accountId}/{blobId}/{name}?accept={type}`.
    pub download_url: String,
    /// The upload template, e.g. `{base}/jmap/upload/{accountId}/`.
    pub upload_url: String,
    /// The event source endpoint.
    pub event_source_url: String,
    /// Largest upload, in bytes.
    pub max_size_upload: usize,
    /// Largest API request body, in bytes.
    pub max_size_request: usize,
    /// Most method calls in one request.
    pub max_calls_in_request: usize,
    /// Most objects one `/get` (or `Email/parse`, `SearchSnippet/get`) may name.
    pub max_objects_in_get: usize,
    /// Most create, update and destroy operations in one `/set` or `/import`.
    pub max_objects_in_set: usize,
    /// The server's name in the `Received:` field of submitted mail.
    pub hostname: String,
}

impl JmapConfig {
    /// The standard endpoints under `base` (no trailing slash) with
    /// conservative limits.
    pub fn for_base_url(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            api_url: format!("{base}/jmap/api"),
            download_url: format!(
                "{base}/jmap/download/{{accountId}}/{{blobId}}/{{name}}?accept={{type}}"
            ),
            upload_url: format!("{base}/jmap/upload/{{accountId}}/"),
            event_source_url: format!(
                "{base}/jmap/eventsource?types={{types}}&closeafter={{closeafter}}&ping={{ping}}"
            ),
            max_size_upload: stormproof_mail::MAX_MESSAGE_SIZE,
            max_size_request: 10 * 1024 * 1024,
            max_calls_in_request: 32,
            max_objects_in_get: 500,
            max_objects_in_set: 500,
            hostname: host_of(base),
        }
    }
}

/// The host of a URL such as `https://mail.acme.test:8443/x`, without its
/// port; `localhost` when there is none.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or(v6, |(host, _)| host),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        "localhost".into()
    } else {
        host.to_ascii_lowercase()
    }
}

/// Who is calling. Only the HTTP front builds one, and only from a token
/// the verifier accepted; this crate trusts it and checks nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's tenant; every store call is scoped to it.
    pub tenant: TenantName,
    /// The caller's mail account, the only one it may name.
    pub account_id: String,
    /// The name shown in the Session.
    pub username: String,
}

/// One read of mail, for the audit log: one per successful `Email/get`,
/// `Email/parse`, `Email/query`, `Thread/get`, `SearchSnippet/get` and
/// `EmailSubmission/get` call, listing everything it returned; one per
/// `EmailSubmission/set` that read emails to send them, listing those
/// emails; one per `Email/import`, listing the emails it created from
/// uploaded blobs; and one per download. Mailbox metadata and `/changes` id lists
/// are not recorded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Access {
    /// `Email/get`, `Email/parse`, `Email/query`, `Thread/get`, `download`, ...
    pub operation: String,
    /// The account read.
    pub account_id: String,
    /// Emails whose data was returned.
    pub email_ids: Vec<String>,
    /// Their `Message-ID`s, where known, to correlate with other logs.
    pub message_ids: Vec<String>,
    /// Mailboxes returned, or holding the emails returned.
    pub mailbox_ids: Vec<String>,
    /// Blobs read (`Email/parse`, `download`).
    pub blob_ids: Vec<String>,
    /// True when headers, bodies, subjects, previews or snippets were
    /// returned; false for metadata (ids, keywords, mailboxes, sizes, dates).
    pub content: bool,
}

impl Access {
    /// The record for a successful [`Jmap::download`] of `blob_id`.
    pub fn download(account_id: &str, blob_id: &str) -> Self {
        Self {
            operation: "download".into(),
            account_id: account_id.into(),
            blob_ids: vec![blob_id.into()],
            content: true,
            ..Self::default()
        }
    }

    fn new(operation: &str, account_id: &str, content: bool) -> Self {
        Self {
            operation: operation.into(),
            account_id: account_id.into(),
            content,
            ..Self::default()
        }
    }

    fn with_emails<'a>(mut self, records: impl IntoIterator<Item = &'a EmailRecord>) -> Self {
        let mut mailboxes = HashSet::new();
        for record in records {
            self.email_ids.push(record.id.clone());
            self.message_ids.extend(record.message_id.clone());
            for membership in &record.mailboxes {
                if mailboxes.insert(membership.mailbox_id.clone()) {
                    self.mailbox_ids.push(membership.mailbox_id.clone());
                }
            }
        }
        self
    }
}

/// The answer to an API request.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    /// HTTP status: 200, or 400 for a request-level error.
    pub status: u16,
    /// `application/json`, or `application/problem+json` for a request-level error.
    pub content_type: &'static str,
    /// The Response object or the problem document.
    pub body: Value,
    /// Every read of mailbox data this request made, in call order. Write
    /// the audit record from it before sending `body`.
    pub accessed: Vec<Access>,
}

/// An upload or download failed.
#[derive(Debug, thiserror::Error)]
#[error("jmap: {kind}")]
pub struct Error {
    /// What failed.
    pub kind: ErrorKind,
}

/// What failed in an upload or download. The HTTP front answers
/// `AccountNotFound` and `NotFound` alike with 404.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The account id is not the caller's.
    #[error("account not found")]
    AccountNotFound,
    /// No such blob in the caller's account.
    #[error("blob not found")]
    NotFound,
    /// The upload is larger than `max_size_upload`.
    #[error("upload larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The store failed.
    #[error(transparent)]
    Store(stormproof_store::Error),
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self { kind }
    }
}

impl From<stormproof_store::Error> for Error {
    fn from(e: stormproof_store::Error) -> Self {
        match e.kind {
            stormproof_store::ErrorKind::NotFound(_) => ErrorKind::NotFound.into(),
            _ => ErrorKind::Store(e).into(),
        }
    }
}

/// The JMAP service over one store.
#[derive(Debug, Clone)]
pub struct Jmap {
    store: Arc<dyn Store>,
    delivery: Delivery,
    config: JmapConfig,
    clock: Arc<dyn Clock>,
}

/// Per-request state shared by the method calls of one request.
pub(crate) struct Ctx<'a> {
    pub jmap: &'a Jmap,
    pub caller: &'a Caller,
    /// Creation id (without `#`) to server id, across the whole request.
    pub created_ids: HashMap<String, String>,
    pub accessed: Vec<Access>,
    /// Told of each access as it is recorded.
    pub on_access: &'a mut dyn FnMut(&Access),
    /// Responses a call adds after its own, under the same call id (the
    /// implicit `Email/set` of `EmailSubmission/set`).
    pub follow_ups: Vec<(String, Map<String, Value>)>,
}

/// The account, the ids (`None` for all) and the properties of a `/get`.
pub(crate) type GetArgs = (MailAccount, Option<Vec<String>>, Vec<String>);

impl Ctx<'_> {
    /// The arguments of a `/get` that takes no others (RFC 8620 section
    /// 5.1): the caller's account, the ids (`None` for all) within
    /// `maxObjectsInGet`, and the properties to return (`properties`
    /// lists every valid one and is the default).
    pub fn standard_get(
        &self,
        mut args: Args,
        properties: &[&str],
    ) -> Result<GetArgs, MethodError> {
        let account = self.account(&args.required_string("accountId")?)?;
        let ids = args.strings("ids")?;
        let wanted = args::properties(args.strings("properties")?, properties, |p| {
            properties.contains(&p)
        })?;
        args.finish()?;
        let max = self.config().max_objects_in_get;
        if ids.as_ref().is_some_and(|ids| ids.len() > max) {
            return Err(MethodError::too_large(max));
        }
        Ok((account, ids, wanted))
    }

    pub fn store(&self) -> &dyn Store {
        self.jmap.store.as_ref()
    }

    pub fn tenant(&self) -> &TenantName {
        &self.caller.tenant
    }

    pub fn config(&self) -> &JmapConfig {
        &self.jmap.config
    }

    pub fn delivery(&self) -> &Delivery {
        &self.jmap.delivery
    }

    pub fn now(&self) -> i64 {
        self.jmap.clock.now()
    }

    /// The caller's account, if `id` names it.
    pub fn account(&self, id: &str) -> Result<MailAccount, MethodError> {
        self.jmap
            .caller_account(self.caller, id)?
            .ok_or_else(MethodError::account_not_found)
    }

    /// A server id for `id`, following `#creationId` references.
    pub fn resolve_id(&self, id: &str) -> Option<String> {
        match id.strip_prefix('#') {
            Some(creation) => self.created_ids.get(creation).cloned(),
            None => Some(id.to_owned()),
        }
    }

    /// Every email of the account. The store has no "list all" call, so
    /// this unions the mailboxes (every email is in at least one).
    pub fn all_emails(&self, account: &MailAccount) -> Result<Vec<EmailRecord>, MethodError> {
        let ids = self.all_email_ids(account)?;
        Ok(self
            .store()
            .emails(self.tenant(), &account.account_id, &ids)?)
    }

    pub fn all_email_ids(&self, account: &MailAccount) -> Result<Vec<String>, MethodError> {
        let mut seen = HashSet::new();
        let mut ids = Vec::new();
        for mailbox in self.store().mailboxes(self.tenant(), &account.account_id)? {
            for id in
                self.store()
                    .mailbox_email_ids(self.tenant(), &account.account_id, &mailbox.id)?
            {
                if seen.insert(id.clone()) {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }

    /// The account owner's own address, the only one it may send from;
    /// `None` when the account has no user record.
    pub fn owner_email(&self, account: &MailAccount) -> Result<Option<Email>, MethodError> {
        Ok(self
            .store()
            .user_by_id(self.tenant(), &account.user_id)?
            .map(|user| user.email))
    }

    pub fn record(&mut self, access: Access) {
        (self.on_access)(&access);
        self.accessed.push(access);
    }
}

/// The state string of an account: its change counter.
pub(crate) fn state(account: &MailAccount) -> String {
    account.modseq.to_string()
}

/// Parses a client's state string: `None` for anything this server never
/// issued, including states from the future.
pub(crate) fn parse_state(text: &str, account: &MailAccount) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.len() > 18 {
        return None;
    }
    text.parse()
        .ok()
        .filter(|state: &i64| *state <= account.modseq)
}

fn fnv1a(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

impl Jmap {
    /// Serves JMAP over `store`, delivering imports through `delivery` and
    /// reading blobs from its blob store.
    pub fn new(store: Arc<dyn Store>, delivery: Delivery, config: JmapConfig) -> Self {
        Self {
            store,
            delivery,
            config,
            clock: Arc::new(SystemClock),
        }
    }

    /// Replaces the clock used for `receivedAt` when an import names none.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &JmapConfig {
        &self.config
    }

    fn caller_account(
        &self,
        caller: &Caller,
        account_id: &str,
    ) -> Result<Option<MailAccount>, stormproof_store::Error> {
        if account_id != caller.account_id {
            return Ok(None);
        }
        self.store.mail_account(&caller.tenant, account_id)
    }

    fn core_capability(&self) -> Value {
        let c = &self.config;
        json!({
            "maxSizeUpload": c.max_size_upload,
            "maxConcurrentUpload": MAX_CONCURRENT_UPLOAD,
            "maxSizeRequest": c.max_size_request,
            "maxConcurrentRequests": MAX_CONCURRENT_REQUESTS,
            "maxCallsInRequest": c.max_calls_in_request,
            "maxObjectsInGet": c.max_objects_in_get,
            "maxObjectsInSet": c.max_objects_in_set,
            "collationAlgorithms": ["i;unicode-casemap"],
        })
    }

    fn session_body(&self, caller: &Caller) -> Value {
        let c = &self.config;
        json!({
            "capabilities": {
                CAPABILITY_CORE: self.core_capability(),
                CAPABILITY_MAIL: {},
                CAPABILITY_SUBMISSION: {},
                CAPABILITY_VACATION: {},
            },
            "accounts": {
                caller.account_id.clone(): {
                    "name": caller.username,
                    "isPersonal": true,
                    "isReadOnly": false,
                    "accountCapabilities": {
                        CAPABILITY_MAIL: {
                            "maxMailboxesPerEmail": null,
                            "maxMailboxDepth": null,
                            "maxSizeMailboxName": MAX_MAILBOX_NAME,
                            "maxSizeAttachmentsPerEmail": stormproof_mail::MAX_MESSAGE_SIZE,
                            "emailQuerySortOptions": query::EMAIL_SORT_OPTIONS,
                            "mayCreateTopLevelMailbox": true,
                        },
                        CAPABILITY_SUBMISSION: {
                            // Sent at once: no delayed sending, no undo.
                            "maxDelayedSend": 0,
                            "submissionExtensions": {},
                        },
                        CAPABILITY_VACATION: {},
                    },
                },
            },
            "primaryAccounts": {
                CAPABILITY_MAIL: caller.account_id,
                CAPABILITY_SUBMISSION: caller.account_id,
                CAPABILITY_VACATION: caller.account_id,
            },
            "username": caller.username,
            "apiUrl": c.api_url,
            "downloadUrl": c.download_url,
            "uploadUrl": c.upload_url,
            "eventSourceUrl": c.event_source_url,
        })
    }

    fn session_state(&self, caller: &Caller) -> String {
        fnv1a(&self.session_body(caller).to_string())
    }

    /// The Session object (RFC 8620 section 2) for `caller`.
    pub fn session(&self, caller: &Caller) -> Value {
        let mut session = self.session_body(caller);
        session["state"] = json!(self.session_state(caller));
        session
    }

    /// Runs one API request (RFC 8620 section 3).
    pub fn api(&self, caller: &Caller, body: &[u8]) -> ApiResponse {
        self.api_recording(caller, body, &mut |_| {})
    }

    /// [`Jmap::api`], calling `on_access` with each [`Access`] as soon as
    /// the items it reads are known. `Email/get` calls it before it loads a
    /// single message, so the caller can start writing the audit record
    /// while the content is read and rendered; it must still hold the
    /// response until the record is durable. Every access it is given is
    /// also in [`ApiResponse::accessed`]. If a call fails after its access
    /// was given, the access stands: it is what the call was about to read.
    #[tracing::instrument(skip_all, fields(tenant = %caller.tenant, account_id = %caller.account_id))]
    pub fn api_recording(
        &self,
        caller: &Caller,
        body: &[u8],
        on_access: &mut dyn FnMut(&Access),
    ) -> ApiResponse {
        let request = match request::parse(body, &self.config) {
            Ok(request) => request,
            Err(error) => {
                tracing::info!(message = "JMAP request refused", ?error);
                return ApiResponse {
                    status: 400,
                    content_type: PROBLEM_JSON,
                    body: error.problem(),
                    accessed: Vec::new(),
                };
            }
        };
        let echo_created = request.created_ids.is_some();
        let mut ctx = Ctx {
            jmap: self,
            caller,
            created_ids: request.created_ids.unwrap_or_default(),
            accessed: Vec::new(),
            on_access,
            follow_ups: Vec::new(),
        };
        let mut responses: Vec<request::Invocation> = Vec::new();
        for (name, args, call_id) in request.calls {
            let outcome = request::resolve_references(args, &responses).and_then(|args| {
                check_capability(&name, &request.using)?;
                dispatch(&mut ctx, &name, Args::new(args))
            });
            match outcome {
                Ok(Value::Object(result)) => responses.push((name, result, call_id.clone())),
                Ok(_) => responses.push((name, Map::new(), call_id.clone())),
                Err(error) => {
                    tracing::debug!(message = "JMAP method error", method = %name, kind = error.kind);
                    responses.push(("error".into(), error.to_map(), call_id.clone()));
                }
            }
            for (name, result) in ctx.follow_ups.drain(..) {
                responses.push((name, result, call_id.clone()));
            }
        }
        let mut body = json!({
            "methodResponses": responses
                .into_iter()
                .map(|(name, args, id)| json!([name, args, id]))
                .collect::<Vec<_>>(),
            "sessionState": self.session_state(caller),
        });
        if echo_created {
            body["createdIds"] = json!(ctx.created_ids);
        }
        ApiResponse {
            status: 200,
            content_type: JSON,
            body,
            accessed: ctx.accessed,
        }
    }

    /// Stores an upload durably and gives it to the caller's account
    /// (RFC 8620 section 6.1). Returns `{accountId, blobId, type, size}`.
    #[tracing::instrument(skip_all, fields(tenant = %caller.tenant, account_id = %account_id, size = bytes.len()))]
    pub fn upload(
        &self,
        caller: &Caller,
        account_id: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Result<Value, Error> {
        self.caller_account(caller, account_id)?
            .ok_or(ErrorKind::AccountNotFound)?;
        if bytes.len() > self.config.max_size_upload {
            return Err(ErrorKind::TooLarge {
                limit: self.config.max_size_upload,
            }
            .into());
        }
        let blob_id = self.delivery.blobs().put(bytes)?;
        self.store
            .add_blob(&caller.tenant, account_id, &blob_id, bytes.len() as i64)
            .map_err(ErrorKind::Store)?;
        Ok(json!({
            "accountId": account_id,
            "blobId": blob_id,
            "type": content_type,
            "size": bytes.len(),
        }))
    }

    /// The bytes of a blob the caller's account owns (RFC 8620 section
    /// 6.2), or of one part of such a message (`<blobId>_<partId>`). Any
    /// other blob, whoever owns it, is `NotFound`. Record
    /// [`Access::download`] before sending the bytes.
    #[tracing::instrument(skip_all, fields(tenant = %caller.tenant, account_id = %account_id, blob_id = %blob_id))]
    pub fn download(
        &self,
        caller: &Caller,
        account_id: &str,
        blob_id: &str,
    ) -> Result<Vec<u8>, Error> {
        self.caller_account(caller, account_id)?
            .ok_or(ErrorKind::AccountNotFound)?;
        blob::read(
            self.store.as_ref(),
            self.delivery.blobs(),
            &caller.tenant,
            account_id,
            blob_id,
        )?
        .ok_or_else(|| ErrorKind::NotFound.into())
    }
}

/// Methods are available only with their capability in `using`.
fn check_capability(method: &str, using: &[String]) -> Result<(), MethodError> {
    let needed = match method.split_once('/').map_or(method, |(kind, _)| kind) {
        "Core" => CAPABILITY_CORE,
        "Identity" | "EmailSubmission" => CAPABILITY_SUBMISSION,
        "VacationResponse" => CAPABILITY_VACATION,
        _ => CAPABILITY_MAIL,
    };
    // Identity belongs to the submission capability (RFC 8621 section 6),
    // but identities are also what a mail client shows as "From" choices,
    // and clients (jmap-client among them) ask for them under mail alone.
    let identity_under_mail =
        method.starts_with("Identity/") && using.iter().any(|c| c == CAPABILITY_MAIL);
    if identity_under_mail || using.iter().any(|c| c == needed) {
        Ok(())
    } else {
        Err(MethodError::new(
            "unknownMethod",
            format!("'{method}' needs '{needed}' in 'using'"),
        ))
    }
}

fn dispatch(ctx: &mut Ctx<'_>, method: &str, args: Args) -> Result<Value, MethodError> {
    match method {
        "Core/echo" => Ok(Value::Object(args.into_map())),
        "Mailbox/get" => mailbox::get(ctx, args),
        "Mailbox/changes" => mailbox::changes(ctx, args),
        "Mailbox/query" => mailbox::query(ctx, args),
        "Mailbox/queryChanges" => mailbox::query_changes(ctx, args),
        "Mailbox/set" => mailbox::set(ctx, args),
        "Email/get" => email::get(ctx, args),
        "Email/changes" => email::changes(ctx, args),
        "Email/query" => query::email_query(ctx, args),
        "Email/queryChanges" => query::email_query_changes(ctx, args),
        "Email/set" => email::set(ctx, args),
        "Email/import" => email::import(ctx, args),
        "Email/copy" => email::copy(ctx, args),
        "Email/parse" => email::parse(ctx, args),
        "Thread/get" => thread::get(ctx, args),
        "Thread/changes" => thread::changes(ctx, args),
        "SearchSnippet/get" => snippet::get(ctx, args),
        "Identity/get" => identity::get(ctx, args),
        "Identity/changes" => identity::changes(ctx, args),
        "Identity/set" => identity::set(ctx, args),
        "EmailSubmission/get" => submission::get(ctx, args),
        "EmailSubmission/changes" => submission::changes(ctx, args),
        "EmailSubmission/query" => submission::query(ctx, args),
        "EmailSubmission/queryChanges" => submission::query_changes(ctx, args),
        "EmailSubmission/set" => submission::set(ctx, args),
        "VacationResponse/get" => vacation::get(ctx, args),
        "VacationResponse/set" => vacation::set(ctx, args),
        _ => Err(MethodError::new(
            "unknownMethod",
            format!("no method '{method}'"),
        )),
    }
}

/// Shared `/changes` (RFC 8620 section 5.2) over the store's change log.
/// Change lists are ids only and are not recorded as reads.
pub(crate) fn changes_response(
    ctx: &Ctx<'_>,
    mut args: Args,
    kind: stormproof_store::ChangeType,
) -> Result<Value, MethodError> {
    let account = ctx.account(&args.required_string("accountId")?)?;
    let since = args.required_string("sinceState")?;
    let max_changes = match args.uint("maxChanges")? {
        Some(0) => {
            return Err(MethodError::invalid_arguments(
                "'maxChanges' must be positive",
            ));
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None => DEFAULT_MAX_CHANGES,
    };
    args.finish()?;
    let since_state =
        parse_state(&since, &account).ok_or_else(MethodError::cannot_calculate_changes)?;
    let changes = ctx.store().changes(
        ctx.tenant(),
        &account.account_id,
        kind,
        since_state,
        max_changes,
    )?;
    Ok(json!({
        "accountId": account.account_id,
        "oldState": since,
        "newState": changes.new_state.to_string(),
        "hasMoreChanges": changes.has_more,
        "created": changes.created,
        "updated": changes.updated,
        "destroyed": changes.destroyed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_come_from_the_base_url() {
        let cases = [
            ("https://mail.acme.test", "mail.acme.test"),
            ("https://Mail.Acme.test:8443/", "mail.acme.test"),
            ("http://127.0.0.1:8080/base", "127.0.0.1"),
            ("https://[::1]:8443", "::1"),
            ("https://user@mail.acme.test", "mail.acme.test"),
            ("mail.acme.test", "mail.acme.test"),
            ("https://", "localhost"),
        ];
        for (url, expect) in cases {
            assert_eq!(host_of(url), expect, "{url}");
        }
    }
}
