//! The SMTP fronts: inbound delivery to local users (port 25) and
//! submission by authenticated users (port 587), driving the sans-IO
//! `stormproof-smtp-session` over TCP and, after STARTTLS, TLS.
//!
//! This crate owns the sockets and the decisions an SMTP server makes about
//! envelopes: which recipients are local, who a submitting client is (the
//! verifier decides for tokens, the issuer for app passwords), and when a
//! message may be acknowledged: only after `Delivery::deliver` made it
//! durable. It never parses SMTP itself, and never validates a token itself.
//!
//! Inbound mail is checked for SPF, DKIM and DMARC (`auth.rs`, through
//! mail-auth and a configurable [`Authenticator`]) and the outcome is
//! recorded in an `Authentication-Results:` field; nothing is refused on
//! the strength of it yet.
//!
//! ```no_run
//! # async fn run(ctx: std::sync::Arc<stormproof_smtp::SmtpContext>) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:2525").await?;
//! stormproof_smtp::serve(listener, ctx, stormproof_smtp::Listener::Inbound).await
//! # }
//! ```
#![deny(missing_docs)]

mod auth;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use stormproof_audit::{
    AccessKind, Actor, AuditEvent, AuditLog, Outcome, Target as AuditTarget, now_ms,
};
use stormproof_identity::Issuer;
pub use stormproof_mail::rfc5322_date;
use stormproof_mail::{Delivery, Target};
use stormproof_smtp_session::{Config, Credentials, Decision, Event, Mode, Session};
use stormproof_store::Store;
use stormproof_types::{Clock, Email, TenantName};
use stormproof_verifier::{AuthScheme, RequestContext, Verifier, VerifyMode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub use auth::{AUTH_TIMEOUT, Authenticator, authenticator, authenticator_from_system};
pub use mail_auth::MessageAuthenticator;
pub use tls::{TLS_DIR, load, load_or_generate};

/// How long a client may stay silent before the connection is dropped
/// (RFC 5321 section 4.5.3.2 suggests at least 5 minutes).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Connections served at once per listener; more wait in the accept queue.
pub const MAX_CONNECTIONS: usize = 512;

/// The SMTP front failed to start.
#[derive(Debug, thiserror::Error)]
#[error("smtp: {kind}")]
pub struct Error {
    /// What failed.
    pub kind: ErrorKind,
}

/// What failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The TLS certificate could not be loaded or generated.
    #[error("TLS: {0}")]
    Tls(String),
    /// The DNS resolver for sender authentication could not be set up.
    #[error("DNS resolver: {0}")]
    Resolver(String),
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self { kind }
    }
}

/// Which listener a connection arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Port 25: mail for local users from anywhere.
    Inbound,
    /// Port 587: mail from authenticated users.
    Submission,
}

/// What the SMTP fronts share.
#[derive(Debug)]
pub struct SmtpContext {
    /// The store: tenants, users, accounts.
    pub store: Arc<dyn Store>,
    /// Where accepted messages go.
    pub delivery: Delivery,
    /// App-password checks for `AUTH PLAIN`.
    pub issuer: Arc<Issuer>,
    /// Token checks for `AUTH OAUTHBEARER` and `XOAUTH2`.
    pub verifier: Arc<Verifier>,
    /// The server's name in greetings and `Received:` fields.
    pub hostname: String,
    /// STARTTLS configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The clock for `Received:` fields.
    pub clock: Arc<dyn Clock>,
    /// SPF, DKIM and DMARC checks of inbound mail, recorded in an
    /// `Authentication-Results:` field. `None` checks nothing and records
    /// `none`.
    pub authenticator: Option<Authenticator>,
    /// Where sign-ins and submissions are recorded.
    pub audit: AuditLog,
}

/// Accepts connections on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<SmtpContext>,
    kind: Listener,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = listener.accept().await?;
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return Ok(());
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(error) = connection(ctx, stream, peer, kind).await {
                tracing::debug!(message = "smtp connection ended", %peer, %error);
            }
            drop(permit);
        });
    }
}

/// A local recipient, resolved at `RCPT` time.
#[derive(Debug, Clone)]
struct Recipient {
    tenant: TenantName,
    account_id: String,
}

/// Who the submitting client is, once authenticated.
#[derive(Debug, Clone)]
struct Submitter {
    email: Email,
    tenant: TenantName,
    user_id: String,
    /// The OAuth client, session and token, for bearer sign-ins.
    client_id: Option<String>,
    session: Option<String>,
    token: Option<String>,
}

impl Submitter {
    fn actor(&self, state: &Connection) -> Actor {
        Actor {
            user: Some(self.email.to_string()),
            user_id: Some(self.user_id.clone()),
            client_id: self.client_id.clone(),
            session: self.session.clone(),
            token: self.token.clone(),
            ip: Some(state.peer.ip().to_string()),
            user_agent: None,
            protocol: "smtp".into(),
        }
    }
}

#[derive(Debug)]
struct Connection {
    kind: Listener,
    peer: SocketAddr,
    tls: bool,
    submitter: Option<Submitter>,
    recipients: Vec<Recipient>,
}

enum Next {
    Close,
    StartTls,
}

async fn connection(
    ctx: Arc<SmtpContext>,
    mut stream: TcpStream,
    peer: SocketAddr,
    kind: Listener,
) -> std::io::Result<()> {
    let mode = match kind {
        Listener::Inbound => Mode::Inbound,
        Listener::Submission => Mode::Submission,
    };
    let mut config = Config::new(ctx.hostname.clone(), mode);
    config.max_message_size = stormproof_mail::MAX_MESSAGE_SIZE;
    config.tls_available = ctx.tls.is_some();
    let mut session = Session::new(config).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut state = Connection {
        kind,
        peer,
        tls: false,
        submitter: None,
        recipients: Vec::new(),
    };
    stream.write_all(&session.greeting()).await?;
    match drive(&ctx, &mut stream, &mut session, &mut state).await? {
        Next::Close => Ok(()),
        Next::StartTls => {
            let Some(tls) = ctx.tls.clone() else {
                return Ok(());
            };
            let mut stream = tokio_rustls::TlsAcceptor::from(tls).accept(stream).await?;
            session
                .tls_started()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            state.tls = true;
            state.submitter = None;
            drive(&ctx, &mut stream, &mut session, &mut state)
                .await
                .map(|_| ())
        }
    }
}

async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Arc<SmtpContext>,
    stream: &mut S,
    session: &mut Session,
    state: &mut Connection,
) -> std::io::Result<Next> {
    let mut buffer = vec![0u8; 16 * 1024];
    // Bytes read but not yet taken by the session: it takes input only as
    // fast as it can process it, so pipelined commands wait behind a
    // pending decision. Reading resumes only once this is empty.
    let mut pending: Vec<u8> = Vec::new();
    loop {
        loop {
            while let Some(event) = session.next_event() {
                match event {
                    Event::Reply(bytes) => stream.write_all(&bytes).await?,
                    Event::StartTls => {
                        stream.flush().await?;
                        return Ok(Next::StartTls);
                    }
                    Event::Close => {
                        stream.flush().await?;
                        return Ok(Next::Close);
                    }
                    event => {
                        let decision = decide(ctx, state, &*session, event).await;
                        if session.respond(decision).is_err() {
                            // Only a malformed reply is refused; answer safely.
                            let _ = session.respond(Decision::try_later());
                        }
                    }
                }
            }
            if pending.is_empty() {
                break;
            }
            let taken = session.feed(&pending);
            pending.drain(..taken);
            if taken == 0 {
                // Nothing to say and nothing taken: a state the session
                // never reaches when well-behaved. Close rather than spin.
                return Err(std::io::Error::other("smtp session stopped taking input"));
            }
        }
        stream.flush().await?;
        let read = match tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut buffer)).await {
            Ok(read) => read?,
            Err(_) => {
                stream
                    .write_all(b"421 4.4.2 Idle too long, closing connection\r\n")
                    .await?;
                return Ok(Next::Close);
            }
        };
        if read == 0 {
            // The client went away; a half-received message is dropped by
            // the session and never stored.
            return Ok(Next::Close);
        }
        pending.extend_from_slice(&buffer[..read]);
    }
}

async fn decide(
    ctx: &Arc<SmtpContext>,
    state: &mut Connection,
    session: &Session,
    event: Event,
) -> Decision {
    match event {
        Event::MailFrom { reverse_path, .. } => {
            state.recipients.clear();
            mail_from(state, &reverse_path)
        }
        Event::Recipient { forward_path } => recipient(ctx, state, &forward_path),
        Event::Authenticate(credentials) => authenticate(ctx, state, credentials).await,
        Event::Message {
            reverse_path, data, ..
        } => {
            let recipients = std::mem::take(&mut state.recipients);
            let helo = session.helo_name().unwrap_or_default().to_owned();
            deliver(ctx, state, &helo, &reverse_path, recipients, data).await
        }
        _ => Decision::try_later(),
    }
}

fn mail_from(state: &Connection, reverse_path: &str) -> Decision {
    if state.kind == Listener::Inbound {
        return Decision::Accept;
    }
    // A submitting user may send only as themselves: no forged senders.
    let owns = state
        .submitter
        .as_ref()
        .is_some_and(|s| Email::parse(reverse_path).is_ok_and(|from| from == s.email));
    if owns {
        Decision::Accept
    } else {
        Decision::reject(
            553,
            "5.7.1",
            "Sender address is not an identity of the authenticated user",
        )
    }
}

fn recipient(ctx: &Arc<SmtpContext>, state: &mut Connection, forward_path: &str) -> Decision {
    let Ok(address) = Email::parse(forward_path) else {
        return Decision::reject(501, "5.1.3", "Bad recipient address syntax");
    };
    let tenant = match ctx.store.tenant_for_domain(address.domain()) {
        Ok(Some(tenant)) => tenant,
        Ok(None) if state.kind == Listener::Submission => {
            return Decision::reject(
                550,
                "5.7.1",
                "Delivery to other domains is not available on this server",
            );
        }
        Ok(None) => return Decision::reject(550, "5.7.1", "Relay access denied"),
        Err(error) => {
            tracing::error!(message = "recipient lookup failed", %error);
            return Decision::try_later();
        }
    };
    let account = ctx
        .store
        .user_by_email(&tenant, &address)
        .ok()
        .flatten()
        .filter(|user| user.enabled)
        .and_then(|user| {
            ctx.store
                .mail_account_for_user(&tenant, &user.id)
                .ok()
                .flatten()
        });
    match account {
        Some(account) if account.used_bytes >= account.quota_bytes => {
            Decision::reject(452, "4.2.2", "Mailbox full")
        }
        Some(account) => {
            state.recipients.push(Recipient {
                tenant,
                account_id: account.account_id,
            });
            Decision::Accept
        }
        None => Decision::reject(550, "5.1.1", "No such user here"),
    }
}

async fn authenticate(
    ctx: &Arc<SmtpContext>,
    state: &mut Connection,
    credentials: Credentials,
) -> Decision {
    let for_check = ctx.clone();
    let peer = state.peer.ip().to_string();
    // Password hashing and token checks hit the store: off the reactor.
    let outcome = tokio::task::spawn_blocking(move || -> Result<Submitter, Option<String>> {
        let ctx = for_check;
        match credentials {
            Credentials::Plain {
                authzid,
                authcid,
                password,
            } => {
                let Some((user, _)) = ctx
                    .issuer
                    .check_app_password(&authcid, &password)
                    .ok()
                    .flatten()
                else {
                    return Err(Some(authcid));
                };
                if authzid.is_some_and(|z| Email::parse(&z).ok().as_ref() != Some(&user.email)) {
                    return Err(Some(authcid));
                }
                Ok(Submitter {
                    email: user.email,
                    tenant: user.tenant,
                    user_id: user.id,
                    client_id: None,
                    session: None,
                    token: None,
                })
            }
            Credentials::Bearer { user, token, .. } => {
                let context = RequestContext {
                    method: "AUTH",
                    url: "",
                    dpop: None,
                    scheme: AuthScheme::Bearer,
                    ip: Some(&peer),
                    user_agent: Some("smtp-submission"),
                    mode: VerifyMode::Resource,
                };
                // A refused token is already recorded by the verifier.
                let principal = ctx.verifier.verify(&token, &context).map_err(|_| None)?;
                if !principal.has_scope("mail") {
                    return Err(user);
                }
                let record = ctx
                    .store
                    .user_by_id(principal.tenant(), principal.subject())
                    .ok()
                    .flatten()
                    .ok_or(None)?;
                if user.is_some_and(|hint| Email::parse(&hint).ok().as_ref() != Some(&record.email))
                {
                    return Err(Some(record.email.to_string()));
                }
                Ok(Submitter {
                    email: record.email,
                    tenant: record.tenant,
                    user_id: record.id,
                    client_id: Some(principal.client_id().to_owned()),
                    session: Some(principal.session_id().to_owned()),
                    token: Some(principal.token_id().to_owned()),
                })
            }
        }
    })
    .await
    .unwrap_or(Err(None));
    match outcome {
        Ok(submitter) => {
            tracing::info!(message = "smtp submission authenticated", email = %submitter.email, peer = %state.peer);
            let mut event = AuditEvent::new(
                now_ms(),
                "smtp.auth",
                Outcome::Success,
                submitter.actor(state),
            );
            event.tenant = Some(submitter.tenant.to_string());
            if let Err(error) = ctx.audit.append(vec![event]).durable().await {
                tracing::error!(message = "could not record an SMTP sign-in", %error);
            }
            state.submitter = Some(submitter);
            Decision::Accept
        }
        Err(claimed) => {
            let actor = Actor {
                user: claimed,
                ip: Some(state.peer.ip().to_string()),
                protocol: "smtp".into(),
                ..Actor::default()
            };
            let mut event = AuditEvent::new(now_ms(), "smtp.auth_failed", Outcome::Failure, actor);
            event.reason = Some("bad_credentials".into());
            // The tenant of the address tried, so a tenant sees attempts on
            // its own users.
            event.tenant = event
                .actor
                .user
                .as_deref()
                .and_then(|user| Email::parse(user).ok())
                .and_then(|email| ctx.issuer.tenant_of(&email).ok())
                .map(|tenant| tenant.to_string());
            if let Err(error) = ctx.audit.append(vec![event]).durable().await {
                tracing::error!(message = "could not record an SMTP sign-in", %error);
            }
            Decision::auth_failed()
        }
    }
}

async fn deliver(
    ctx: &Arc<SmtpContext>,
    state: &Connection,
    helo: &str,
    reverse_path: &str,
    recipients: Vec<Recipient>,
    data: Vec<u8>,
) -> Decision {
    let now = ctx.clock.now();
    let protocol = match (state.kind, state.tls) {
        (Listener::Submission, true) => "ESMTPSA",
        (Listener::Submission, false) => "ESMTPA",
        (Listener::Inbound, true) => "ESMTPS",
        (Listener::Inbound, false) => "ESMTP",
    };
    let mut message = format!(
        "Return-Path: <{reverse_path}>\r\nReceived: from {helo} ({ip}) by {host} with {protocol}; {date}\r\n",
        helo = sanitize(helo),
        ip = state.peer.ip(),
        host = ctx.hostname,
        date = rfc5322_date(now),
    )
    .into_bytes();
    if state.kind == Listener::Inbound {
        // Recorded only, never enforced, not even a DMARC p=reject: a
        // refusal must be a reply here, and until the server has an
        // outbound path for reports and bounces, a wrong verdict (a
        // forwarder breaking DKIM, a resolver outage) would lose mail
        // silently. A DNS failure is recorded as temperror and the message
        // is delivered all the same.
        let results = match &ctx.authenticator {
            Some(authenticator) => {
                let envelope = auth::Envelope {
                    hostname: &ctx.hostname,
                    ip: state.peer.ip(),
                    helo,
                    mail_from: reverse_path,
                };
                auth::check(authenticator, &envelope, &data).await
            }
            None => format!("{}; none", ctx.hostname),
        };
        tracing::debug!(message = "sender authentication", peer = %state.peer, %results);
        message.extend_from_slice(b"Authentication-Results: ");
        message.extend_from_slice(results.as_bytes());
        message.extend_from_slice(b"\r\n");
    }
    // Results claiming our name that came with the message are forgeries;
    // only the field above speaks for this server.
    message.extend_from_slice(&auth::strip_own_results(&data, &ctx.hostname));
    let message_id = stormproof_mail::parse(&message, now)
        .ok()
        .and_then(|parsed| parsed.message_id);
    let for_delivery = ctx.clone();
    // Delivery syncs to disk; it runs on the blocking pool, and the reply
    // waits for it: 250 is sent only for a durable message.
    let result = tokio::task::spawn_blocking(move || {
        let ctx = for_delivery;
        let mut stored = Vec::with_capacity(recipients.len());
        for recipient in &recipients {
            let email = ctx.delivery.deliver(
                &recipient.tenant,
                &recipient.account_id,
                &message,
                Target::Role("inbox"),
                &[],
                now,
            )?;
            stored.push((recipient.account_id.clone(), email.email_id));
        }
        Ok::<_, stormproof_mail::Error>(stored)
    })
    .await;
    match result {
        Ok(Ok(stored)) => {
            tracing::info!(message = "smtp message delivered", recipients = stored.len(), peer = %state.peer);
            if let Some(submitter) = &state.submitter {
                record_submission(ctx, state, submitter, message_id, &stored).await;
            }
            Decision::Accept
        }
        Ok(Err(error)) => {
            tracing::warn!(message = "smtp delivery failed", %error);
            match error.kind {
                stormproof_mail::ErrorKind::TooLarge => {
                    Decision::reject(552, "5.3.4", "Message too big")
                }
                stormproof_mail::ErrorKind::NotAMessage => {
                    Decision::reject(554, "5.6.0", "Message has no header section")
                }
                _ => Decision::try_later(),
            }
        }
        Err(_) => Decision::try_later(),
    }
}

/// Records a submission: who sent which message to which accounts. The
/// message is already durable, so a failure to record is logged and the
/// message still acknowledged: answering 451 now would have the client send
/// it twice.
async fn record_submission(
    ctx: &Arc<SmtpContext>,
    state: &Connection,
    submitter: &Submitter,
    message_id: Option<String>,
    stored: &[(String, String)],
) {
    let mut event = AuditEvent::new(
        now_ms(),
        "smtp.submission",
        Outcome::Success,
        submitter.actor(state),
    );
    event.tenant = Some(submitter.tenant.to_string());
    event.access = AccessKind::Content;
    event.count = stored.len() as u64;
    event.target = AuditTarget {
        items: stored.iter().map(|(_, email)| email.clone()).collect(),
        mailboxes: Vec::new(),
        message_ids: message_id.into_iter().collect(),
        ..AuditTarget::default()
    };
    event.detail = serde_json::json!({
        "recipient_accounts": stored.iter().map(|(account, _)| account).collect::<Vec<_>>(),
    });
    if let Err(error) = ctx.audit.append(vec![event]).durable().await {
        tracing::error!(message = "could not record a submission", %error);
    }
}

/// Keeps a client-chosen name printable in a header field.
fn sanitize(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if clean.is_empty() {
        "unknown".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let cases = [
            (0, "Thu, 1 Jan 1970 00:00:00 +0000"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 +0000"),
            (1_795_959_069, "Sun, 29 Nov 2026 13:31:09 +0000"),
        ];
        for (unix, expect) in cases {
            assert_eq!(rfc5322_date(unix), expect, "{unix}");
        }
    }

    #[test]
    fn client_names_are_sanitized() {
        assert_eq!(
            sanitize("mx.example\r\nX-Injected: 1"),
            "mx.exampleX-Injected:1"
        );
        assert_eq!(sanitize(""), "unknown");
    }
}
