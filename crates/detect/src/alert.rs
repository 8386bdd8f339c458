//! What the engine raises: an [`Alert`], its [`Severity`] and an optional
//! [`Response`] hint.

use serde::{Deserialize, Serialize};

use crate::view::View;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical: act now (a signing key is likely in someone else's hands).
    Critical,
}

impl Severity {
    /// The name as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What the server could do about an alert. A hint only: the engine never
/// acts, and the server acts on it only when [`Alert::auto_response`] is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Response {
    /// Mark the signing key compromised, which revokes every token it signed.
    RevokeKey {
        /// The key's id, within the alert's tenant.
        kid: String,
    },
    /// Revoke a sign-in session and every token derived from it.
    RevokeSession {
        /// The session id (`sid`), within the alert's tenant.
        session: String,
    },
    /// Block an OAuth client, which stops its tokens verifying.
    BlockClient {
        /// The client id, within the alert's tenant.
        client_id: String,
    },
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique and stable: derived from the tenant, the deduplication key and
    /// the first evidence, so replaying the same log gives the same ids.
    pub id: String,
    /// When it fired: the time of the event that completed it.
    pub time: String,
    /// The tenant concerned, when known (for rejected tokens: the one claimed).
    pub tenant: Option<String>,
    /// How urgent.
    pub severity: Severity,
    /// Which detector raised it: a built-in's name, or `sigma`.
    pub detector: String,
    /// For Sigma alerts: the rule's id, or its title when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// One sentence for a human.
    pub summary: String,
    /// The audit events (`seq`) that show it, oldest first.
    pub evidence: Vec<u64>,
    /// The user involved (email, or the claimed subject).
    pub user: Option<String>,
    /// The OAuth client involved.
    pub client_id: Option<String>,
    /// The sign-in session involved.
    pub session: Option<String>,
    /// The source address.
    pub ip: Option<String>,
    /// The access tokens (`jti`) involved.
    pub token_ids: Vec<String>,
    /// Alerts with this key (in this tenant) within the deduplication window
    /// are one alert, stored once with a count.
    pub dedup_key: String,
    /// What could be done about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Response>,
    /// Whether the operator allowed the server to carry out `response`
    /// without asking (the detector's `auto_response` setting).
    #[serde(default)]
    pub auto_response: bool,
}

impl Alert {
    /// An alert about one event, with the actor's fields filled in. The
    /// engine assigns the id, and applies severity overrides and the
    /// auto-response setting.
    pub(crate) fn about(
        view: &View<'_>,
        detector: &str,
        severity: Severity,
        summary: String,
        dedup_key: String,
    ) -> Self {
        let event = view.event;
        let actor = &event.actor;
        Self {
            id: String::new(),
            time: event.time.clone(),
            tenant: event.tenant.clone(),
            severity,
            detector: detector.to_owned(),
            rule: None,
            summary,
            evidence: vec![event.seq],
            user: actor
                .user
                .clone()
                .or_else(|| view.detail_str("sub").map(str::to_owned)),
            client_id: actor.client_id.clone(),
            session: actor.session.clone(),
            ip: actor.ip.clone(),
            token_ids: actor
                .token
                .as_deref()
                .or_else(|| view.detail_str("jti"))
                .map(|jti| vec![jti.to_owned()])
                .unwrap_or_default(),
            dedup_key,
            response: None,
            auto_response: false,
        }
    }

    pub(crate) fn with_response(mut self, response: Option<Response>) -> Self {
        self.response = response;
        self
    }

    pub(crate) fn with_evidence(mut self, evidence: Vec<u64>) -> Self {
        self.evidence = evidence;
        self
    }
}
