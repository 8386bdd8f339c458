//! Notices: a plain-text message, delivered straight into the mailboxes of
//! the people affected and the tenant's security contacts, saying what
//! happened, what was read and what was done. Delivered locally, through
//! the same durable path as any other mail, so it arrives even when the
//! outside world is unreachable.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use stormproof_mail::{Delivery, Target, rfc5322_date};
use stormproof_store::Store;
use stormproof_types::{Email, TenantName, UnixTime, random_id};

use crate::exposure::ExposureReport;
use crate::{Error, ErrorKind};

/// The most items listed in one notice; the rest are counted.
pub const MAX_LISTED: usize = 200;

/// One notice to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The tenant whose users receive it.
    pub tenant: TenantName,
    /// The recipients, all users of `tenant`.
    pub recipients: Vec<Email>,
    /// The subject line.
    pub subject: String,
    /// The text.
    pub body: String,
}

/// The notices for an exposure: one to each owner whose mail was read,
/// listing their own items only, and one to each security contact, listing
/// everything. `what_happened` and `what_was_done` are sentences.
pub fn exposure_notices(
    report: &ExposureReport,
    what_happened: &str,
    what_was_done: &[String],
    contacts: &BTreeMap<String, Vec<Email>>,
) -> Vec<Notice> {
    let mut by_owner: BTreeMap<(String, String), Vec<&crate::ExposedItem>> = BTreeMap::new();
    for item in &report.items {
        if let (Some(tenant), Some(owner)) = (&item.tenant, &item.owner) {
            by_owner
                .entry((tenant.clone(), owner.clone()))
                .or_default()
                .push(item);
        }
    }
    let mut notices = Vec::new();
    let mut tenants = BTreeSet::new();
    for ((tenant, owner), items) in &by_owner {
        let (Ok(tenant), Ok(owner)) = (TenantName::parse(tenant), Email::parse(owner)) else {
            continue;
        };
        tenants.insert(tenant.clone());
        notices.push(Notice {
            tenant,
            recipients: vec![owner],
            subject: "Security notice: someone read your mail without your authority".into(),
            body: body(what_happened, items, what_was_done),
        });
    }
    for tenant in tenants {
        let Some(recipients) = contacts.get(tenant.as_str()) else {
            continue;
        };
        let items: Vec<&crate::ExposedItem> = report
            .items
            .iter()
            .filter(|i| i.tenant.as_deref() == Some(tenant.as_str()))
            .collect();
        notices.push(Notice {
            tenant,
            recipients: recipients.clone(),
            subject: format!(
                "Security notice: {} mail items in {} mailboxes were read",
                items.len(),
                items
                    .iter()
                    .filter_map(|i| i.owner.as_deref())
                    .collect::<BTreeSet<_>>()
                    .len()
            ),
            body: body(what_happened, &items, what_was_done),
        });
    }
    notices
}

fn body(what_happened: &str, items: &[&crate::ExposedItem], done: &[String]) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "What happened\r\n\r\n{what_happened}\r\n");
    let _ = writeln!(text, "What was read ({} items)\r\n", items.len());
    for item in items.iter().take(MAX_LISTED) {
        let _ = writeln!(
            text,
            "- {time}  {op} ({access:?})  mailbox of {owner}  Message-ID <{mid}>  \"{subject}\"  from {ip}\r",
            time = item.time,
            op = item.operation,
            access = item.access,
            owner = item.owner.as_deref().unwrap_or("?"),
            mid = item.message_id.as_deref().unwrap_or("unknown"),
            subject = item
                .subject
                .as_deref()
                .unwrap_or("")
                .replace(['\r', '\n'], " "),
            ip = item.ip.as_deref().unwrap_or("unknown address"),
        );
    }
    if items.len() > MAX_LISTED {
        let _ = writeln!(text, "- and {} more\r", items.len() - MAX_LISTED);
    }
    let _ = writeln!(text, "\r\nWhat was done\r\n");
    if done.is_empty() {
        let _ = writeln!(text, "- Nothing yet; your security team has been told.\r");
    }
    for line in done {
        let _ = writeln!(text, "- {line}\r");
    }
    let _ = writeln!(
        text,
        "\r\nThis notice was written by Stormproof from its audit log, which records every read of mail.\r"
    );
    text
}

/// Delivers `notice` into each recipient's Inbox. Returns how many
/// mailboxes received it; recipients without a mailbox are skipped.
pub fn deliver_notice(
    store: &dyn Store,
    delivery: &Delivery,
    notice: &Notice,
    now: UnixTime,
) -> Result<usize, Error> {
    let mut delivered = 0;
    for recipient in &notice.recipients {
        let Some(user) = store.user_by_email(&notice.tenant, recipient)? else {
            continue;
        };
        let Some(account) = store.mail_account_for_user(&notice.tenant, &user.id)? else {
            continue;
        };
        let raw = message(recipient, notice, now)?;
        delivery.deliver(
            &notice.tenant,
            &account.account_id,
            raw.as_bytes(),
            Target::Role("inbox"),
            &[],
            now,
        )?;
        delivered += 1;
    }
    Ok(delivered)
}

fn message(to: &Email, notice: &Notice, now: UnixTime) -> Result<String, Error> {
    if notice.subject.contains(['\r', '\n']) {
        return Err(ErrorKind::Invalid("a subject is one line".into()).into());
    }
    let domain = to.domain();
    Ok(format!(
        "From: Stormproof security <security-notices@{domain}>\r\n\
         To: <{to}>\r\n\
         Subject: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <notice-{id}@{domain}>\r\n\
         Auto-Submitted: auto-generated\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n{body}",
        subject = notice.subject,
        date = rfc5322_date(now),
        id = random_id(12),
        body = notice.body.replace("\r\n", "\n").replace('\n', "\r\n"),
    ))
}
