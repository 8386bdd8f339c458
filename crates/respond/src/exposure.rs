//! The exposure report: every item a session, token, client, address or
//! user read, with its account, mailbox, Message-ID, subject, time and
//! operation. The answer to "what was taken".

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use stormproof_audit::search::{Filter, Prefilter};
use stormproof_audit::{AccessKind, AuditEvent, LogReader, Outcome};
use stormproof_store::Store;
use stormproof_types::TenantName;

use crate::{Error, ErrorKind};

/// Whose reads to report. At least one of `session`, `token`, `client`,
/// `ip` and `user` must be set; all that are set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExposureQuery {
    /// Only this tenant.
    pub tenant: Option<String>,
    /// A sign-in session (`sid`).
    pub session: Option<String>,
    /// An access token (`jti`).
    pub token: Option<String>,
    /// An OAuth client.
    pub client: Option<String>,
    /// A source address.
    pub ip: Option<String>,
    /// The reader: email address or user id.
    pub user: Option<String>,
    /// At or after (the log's time format).
    pub since: Option<String>,
    /// Before (the log's time format).
    pub until: Option<String>,
}

/// One item read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExposedItem {
    /// When.
    pub time: String,
    /// By which operation: `Email/get`, `download`, ...
    pub operation: String,
    /// `content` or `metadata`.
    pub access: AccessKind,
    /// The tenant.
    pub tenant: Option<String>,
    /// The mail account.
    pub account: Option<String>,
    /// Its owner's address.
    pub owner: Option<String>,
    /// The mailboxes holding it, as ids.
    pub mailboxes: Vec<String>,
    /// The email or blob id.
    pub item: String,
    /// Its Message-ID, where known.
    pub message_id: Option<String>,
    /// Its subject, where it is still in the store.
    pub subject: Option<String>,
    /// The audit record.
    pub seq: u64,
    /// Who read it, and how.
    pub client_id: Option<String>,
    /// The session.
    pub session: Option<String>,
    /// The source address.
    pub ip: Option<String>,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ExposureReport {
    /// Every item read, in log order.
    pub items: Vec<ExposedItem>,
    /// The Message-IDs whose content was read, sorted, each once.
    pub message_ids: Vec<String>,
    /// The Message-IDs seen only as metadata (ids, flags): listed, not read.
    pub metadata_only_message_ids: Vec<String>,
    /// The owners whose mail was read.
    pub owners: Vec<String>,
    /// The audit records the report is built from.
    pub evidence: Vec<u64>,
}

impl ExposureQuery {
    fn filter(&self) -> Result<Filter, Error> {
        if self.session.is_none()
            && self.token.is_none()
            && self.client.is_none()
            && self.ip.is_none()
            && self.user.is_none()
        {
            return Err(ErrorKind::Invalid(
                "name a session, token, client, address or user".into(),
            )
            .into());
        }
        Ok(Filter {
            tenant: self.tenant.clone(),
            user: self.user.clone(),
            session: self.session.clone(),
            client: self.client.clone(),
            ip: self.ip.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            mail_access_only: true,
            ..Filter::default()
        })
    }

    fn matches(&self, filter: &Filter, event: &AuditEvent) -> bool {
        filter.matches(event)
            && event.outcome == Outcome::Success
            && self
                .token
                .as_ref()
                .is_none_or(|jti| event.actor.token.as_deref() == Some(jti))
    }
}

/// (tenant, account, email id).
type EmailKey = (String, String, String);

/// An email's subject and Message-ID, as the store has them.
type StoredFacts = (String, Option<String>);

/// Builds the report from the whole log.
pub fn exposure(
    reader: &LogReader,
    store: &dyn Store,
    query: &ExposureQuery,
) -> Result<ExposureReport, Error> {
    let filter = query.filter()?;
    let mut report = ExposureReport::default();
    let (mut read, mut listed, mut owners) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    // Subjects, looked up once per (tenant, account, email).
    let mut subjects: HashMap<EmailKey, Option<StoredFacts>> = HashMap::new();
    let mut prefilter = Prefilter::new(&filter);
    if let Some(jti) = &query.token {
        prefilter = prefilter.require(jti);
    }
    for record in reader.records(0) {
        let record = record?;
        if !prefilter.may_match(&record.bytes) {
            continue;
        }
        let event = record.event()?;
        if !query.matches(&filter, &event) {
            continue;
        }
        report.evidence.push(event.seq);
        owners.extend(event.target.owner.clone());
        let content = event.access == AccessKind::Content;
        let message_ids = &event.target.message_ids;
        for (index, item) in event.target.items.iter().enumerate() {
            let key = (
                event.tenant.clone().unwrap_or_default(),
                event.target.account.clone().unwrap_or_default(),
                item.clone(),
            );
            let found = subjects
                .entry(key.clone())
                .or_insert_with(|| lookup(store, &key.0, &key.1, &key.2))
                .clone();
            // Items and Message-IDs line up only when each item had one;
            // otherwise take the id from the store.
            let message_id = found.as_ref().and_then(|(_, id)| id.clone()).or_else(|| {
                (message_ids.len() == event.target.items.len()).then(|| message_ids[index].clone())
            });
            if let Some(id) = &message_id {
                if content {
                    read.insert(id.clone());
                } else {
                    listed.insert(id.clone());
                }
            }
            report.items.push(ExposedItem {
                time: event.time.clone(),
                operation: event.operation.clone(),
                access: event.access,
                tenant: event.tenant.clone(),
                account: event.target.account.clone(),
                owner: event.target.owner.clone(),
                mailboxes: event.target.mailboxes.clone(),
                item: item.clone(),
                message_id,
                subject: found.map(|(subject, _)| subject),
                seq: event.seq,
                client_id: event.actor.client_id.clone(),
                session: event.actor.session.clone(),
                ip: event.actor.ip.clone(),
            });
        }
        // Message-IDs recorded without a matching item (a blob parsed).
        if content && event.target.items.len() != message_ids.len() {
            read.extend(message_ids.iter().cloned());
        }
    }
    report.message_ids = read.iter().cloned().collect();
    report.metadata_only_message_ids = listed.difference(&read).cloned().collect();
    report.owners = owners.into_iter().collect();
    Ok(report)
}

/// The subject and Message-ID of an email still in the store.
fn lookup(store: &dyn Store, tenant: &str, account: &str, email_id: &str) -> Option<StoredFacts> {
    let tenant = TenantName::parse(tenant).ok()?;
    let found = store
        .emails(&tenant, account, &[email_id.to_owned()])
        .ok()?
        .into_iter()
        .next()?;
    Some((found.subject.unwrap_or_default(), found.message_id))
}
