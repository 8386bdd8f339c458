//! The mail store on SQLite: the same database file and transactions as the
//! identity records, so a message and its change-log entries commit together.

use rusqlite::{OptionalExtension, Row, params};
use stormproof_types::{TenantName, random_id};

use crate::sqlite::{backend, corrupt, json_list, list_json};
use crate::{
    ChangeType, Changes, DEFAULT_MAILBOXES, EmailAddress, EmailRecord, EmailSubmissionRecord,
    EmailUpdate, ErrorKind, IdentityRecord, IdentityUpdate, MailAccount, MailStore, Mailbox,
    MailboxMembership, MailboxUpdate, NewEmail, NewEmailSubmission, NewIdentity, NewMailbox,
    Result, SqliteStore, StoredEmail, VacationResponse,
};

fn addresses_json(list: &[EmailAddress]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

fn addresses(text: String) -> rusqlite::Result<Vec<EmailAddress>> {
    serde_json::from_str(&text).map_err(|_| corrupt("addresses"))
}

fn account_row(row: &Row) -> rusqlite::Result<MailAccount> {
    Ok(MailAccount {
        tenant: TenantName::parse(&row.get::<_, String>(0)?).map_err(|_| corrupt("tenant"))?,
        account_id: row.get(1)?,
        user_id: row.get(2)?,
        quota_bytes: row.get(3)?,
        used_bytes: row.get(4)?,
        modseq: row.get(5)?,
    })
}

const ACCOUNT_COLS: &str = "tenant, account_id, user_id, quota_bytes, used_bytes, modseq";

/// Quotes user text as FTS5 string tokens, so search input is never parsed
/// as FTS5 query syntax.
fn fts_query(text: &str) -> String {
    text.split_whitespace()
        .take(32)
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn log_change(
    tx: &rusqlite::Transaction,
    tenant: &str,
    account: &str,
    modseq: i64,
    kind: ChangeType,
    id: &str,
    what: &str,
) -> Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO changes (tenant, account_id, modseq, type, object_id, kind) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![tenant, account, modseq, kind.as_str(), id, what],
    )
    .map_err(backend)?;
    Ok(())
}

/// Takes the account's next MODSEQ, or fails if the account does not exist.
fn next_modseq(tx: &rusqlite::Transaction, tenant: &str, account: &str) -> Result<i64> {
    tx.query_row(
        "UPDATE mail_accounts SET modseq = modseq + 1 WHERE tenant = ?1 AND account_id = ?2 RETURNING modseq",
        params![tenant, account],
        |r| r.get(0),
    )
    .optional()
    .map_err(backend)?
    .ok_or_else(|| ErrorKind::NotFound(format!("mail account {account}")).into())
}

fn mailbox_exists(
    tx: &rusqlite::Transaction,
    tenant: &str,
    account: &str,
    mailbox: &str,
) -> Result<bool> {
    tx.prepare_cached(
        "SELECT 1 FROM mailboxes WHERE tenant = ?1 AND account_id = ?2 AND mailbox_id = ?3",
    )
    .and_then(|mut s| {
        s.query_row(params![tenant, account, mailbox], |_| Ok(()))
            .optional()
    })
    .map(|found| found.is_some())
    .map_err(backend)
}

/// Longest mailbox name accepted, in bytes.
const MAX_MAILBOX_NAME: usize = 255;

fn check_mailbox_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > MAX_MAILBOX_NAME || name.chars().any(char::is_control)
    {
        return Err(ErrorKind::Invalid(
            "mailbox names are 1 to 255 bytes without control characters".into(),
        )
        .into());
    }
    Ok(())
}

fn sibling_named(
    tx: &rusqlite::Transaction,
    tenant: &str,
    account: &str,
    parent: Option<&str>,
    name: &str,
    except: &str,
) -> Result<bool> {
    tx.prepare_cached(
        "SELECT 1 FROM mailboxes WHERE tenant = ?1 AND account_id = ?2 AND parent_id IS ?3 AND name = ?4 AND mailbox_id != ?5",
    )
    .and_then(|mut s| s.query_row(params![tenant, account, parent, name, except], |_| Ok(())).optional())
    .map(|found| found.is_some())
    .map_err(backend)
}

/// Destroys one message inside a transaction at `modseq`.
fn destroy_email_in(
    tx: &rusqlite::Transaction,
    t: &str,
    account: &str,
    email_id: &str,
    modseq: i64,
) -> Result<()> {
    let (rowid, blob_id, size, thread_id): (i64, String, i64, String) = tx
        .query_row(
            "SELECT rowid, blob_id, size, thread_id FROM emails WHERE tenant = ?1 AND account_id = ?2 AND email_id = ?3",
            params![t, account, email_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .map_err(backend)?
        .ok_or_else(|| ErrorKind::NotFound(format!("email {email_id}")))?;
    let mailboxes: Vec<String> = tx
        .prepare_cached("SELECT mailbox_id FROM email_mailboxes WHERE tenant = ?1 AND account_id = ?2 AND email_id = ?3")
        .and_then(|mut s| s.query_map(params![t, account, email_id], |r| r.get(0))?.collect())
        .map_err(backend)?;
    for mailbox in &mailboxes {
        tx.execute(
            "UPDATE mailboxes SET highest_modseq = ?4 WHERE tenant = ?1 AND account_id = ?2 AND mailbox_id = ?3",
            params![t, account, mailbox, modseq],
        )
        .map_err(backend)?;
        log_change(
            tx,
            t,
            account,
            modseq,
            ChangeType::Mailbox,
            mailbox,
            "updated",
        )?;
    }
    for sql in [
        "DELETE FROM email_mailboxes WHERE tenant = ?1 AND account_id = ?2 AND email_id = ?3",
        "DELETE FROM email_keywords WHERE tenant = ?1 AND account_id = ?2 AND email_id = ?3",
        "DELETE FROM emails WHERE tenant = ?1 AND account_id = ?2 AND email_id = ?3",
    ] {
        tx.execute(sql, params![t, account, email_id])
            .map_err(backend)?;
    }
    tx.execute("DELETE FROM email_search WHERE rowid = ?1", [rowid])
        .map_err(backend)?;
    tx.execute(
        "DELETE FROM account_blobs WHERE tenant = ?1 AND account_id = ?2 AND blob_id = ?3
           AND NOT EXISTS (SELECT 1 FROM emails WHERE tenant = ?1 AND account_id = ?2 AND blob_id = ?3)",
        params![t, account, blob_id],
    )
    .map_err(backend)?;
    tx.execute(
        "UPDATE mail_accounts SET used_bytes = MAX(0, used_bytes - ?3) WHERE tenant = ?1 AND account_id = ?2",
        params![t, account, size],
    )
    .map_err(backend)?;
    let thread_left: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM emails WHERE tenant = ?1 AND account_id = ?2 AND thread_id = ?3)",
            params![t, account, thread_id],
            |r| r.get(0),
        )
        .map_err(backend)?;
    log_change(
        tx,
        t,
        account,
        modseq,
        ChangeType::Thread,
        &thread_id,
        if thread_left { "updated" } else { "destroyed" },
    )?;
    log_change(
        tx,
        t,
        account,
        modseq,
        ChangeType::Email,
        email_id,
        "destroyed",
    )
}

impl MailStore for SqliteStore {
    fn create_mail_account(
        &self,
        tenant: &TenantName,
        user_id: &str,
        quota_bytes: i64,
    ) -> Result<MailAccount> {
        if let Some(existing) = self.mail_account_for_user(tenant, user_id)? {
            return Ok(existing);
        }
        let account_id = random_id(9);
        // UIDVALIDITY only has to differ from earlier incarnations of the
        // mailbox; the creation time does that (RFC 3501 section 2.3.1.1).
        let uid_validity = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(1)
            & 0xffff_ffff;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO mail_accounts (tenant, account_id, user_id, quota_bytes, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![tenant.as_str(), account_id, user_id, quota_bytes, uid_validity],
            )
            .map_err(backend)?;
            for (order, (name, role)) in DEFAULT_MAILBOXES.iter().enumerate() {
                let mailbox_id = random_id(9);
                tx.execute(
                    "INSERT INTO mailboxes (tenant, account_id, mailbox_id, parent_id, name, role, sort_order,
                                            uid_validity, uid_next, highest_modseq, subscribed)
                     VALUES (?1, ?2, ?3, NULL, ?4, ?5, ?6, ?7, 1, 0, 1)",
                    params![tenant.as_str(), account_id, mailbox_id, name, role, order as i64, uid_validity.max(1)],
                )
                .map_err(backend)?;
                log_change(tx, tenant.as_str(), &account_id, 0, ChangeType::Mailbox, &mailbox_id, "created")?;
            }
            Ok(())
        })?;
        self.mail_account(tenant, &account_id)?
            .ok_or_else(|| ErrorKind::NotFound("mail account".into()).into())
    }

    fn mail_account_for_user(
        &self,
        tenant: &TenantName,
        user_id: &str,
    ) -> Result<Option<MailAccount>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {ACCOUNT_COLS} FROM mail_accounts WHERE tenant = ?1 AND user_id = ?2"
            ))?
            .query_row(params![tenant.as_str(), user_id], account_row)
            .optional()
        })
    }

    fn mail_account(&self, tenant: &TenantName, account_id: &str) -> Result<Option<MailAccount>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {ACCOUNT_COLS} FROM mail_accounts WHERE tenant = ?1 AND account_id = ?2"
            ))?
            .query_row(params![tenant.as_str(), account_id], account_row)
            .optional()
        })
    }

    fn mailbox_id_by_role(
        &self,
        tenant: &TenantName,
        account_id: &str,
        role: &str,
    ) -> Result<Option<String>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT mailbox_id FROM mailboxes WHERE tenant = ?1 AND account_id = ?2 AND role = ?3",
            )?
            .query_row(params![tenant.as_str(), account_id, role], |r| r.get(0))
            .optional()
        })
    }

    fn mailboxes(&self, tenant: &TenantName, account_id: &str) -> Result<Vec<Mailbox>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT m.mailbox_id, m.parent_id, m.name, m.role, m.sort_order, m.uid_validity, m.uid_next,
                        m.highest_modseq, m.subscribed,
                        (SELECT COUNT(*) FROM email_mailboxes em
                          WHERE em.tenant = m.tenant AND em.account_id = m.account_id AND em.mailbox_id = m.mailbox_id),
                        (SELECT COUNT(*) FROM email_mailboxes em
                          WHERE em.tenant = m.tenant AND em.account_id = m.account_id AND em.mailbox_id = m.mailbox_id
                            AND NOT EXISTS (SELECT 1 FROM email_keywords k
                                             WHERE k.tenant = em.tenant AND k.account_id = em.account_id
                                               AND k.email_id = em.email_id AND k.keyword = '$seen'))
                 FROM mailboxes m WHERE m.tenant = ?1 AND m.account_id = ?2
                 ORDER BY m.sort_order, m.name",
            )?
            .query_map(params![tenant.as_str(), account_id], |row| {
                Ok(Mailbox {
                    id: row.get(0)?,
                    parent_id: row.get(1)?,
                    name: row.get(2)?,
                    role: row.get(3)?,
                    sort_order: row.get(4)?,
                    uid_validity: row.get(5)?,
                    uid_next: row.get(6)?,
                    highest_modseq: row.get(7)?,
                    subscribed: row.get(8)?,
                    total_emails: row.get(9)?,
                    unread_emails: row.get(10)?,
                })
            })?
            .collect()
        })
    }

    fn insert_email(
        &self,
        tenant: &TenantName,
        account_id: &str,
        email: &NewEmail,
    ) -> Result<StoredEmail> {
        if email.mailbox_ids.is_empty() {
            return Err(
                ErrorKind::NotFound("a message must be in at least one mailbox".into()).into(),
            );
        }
        let t = tenant.as_str();
        self.write(|tx| {
            let (quota, used, modseq): (i64, i64, i64) = tx
                .query_row(
                    "SELECT quota_bytes, used_bytes, modseq FROM mail_accounts WHERE tenant = ?1 AND account_id = ?2",
                    params![t, account_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(backend)?
                .ok_or_else(|| ErrorKind::NotFound(format!("mail account {account_id}")))?;
            if used + email.size > quota {
                return Err(ErrorKind::QuotaExceeded { used, quota, size: email.size }.into());
            }
            let modseq = modseq + 1;

            // Thread: a message joins the thread of any message it names or
            // that names it, when the base subjects agree (RFC 8621 leaves the
            // rule to the server; this is the common one).
            let mut related: Vec<&String> = email.references.iter().chain(email.in_reply_to.iter()).collect();
            if let Some(id) = &email.message_id {
                related.push(id);
            }
            let mut thread_id = None;
            for id in &related {
                thread_id = tx
                    .prepare_cached(
                        "SELECT thread_id FROM thread_index
                         WHERE tenant = ?1 AND account_id = ?2 AND message_id = ?3 AND base_subject = ?4",
                    )
                    .and_then(|mut s| s.query_row(params![t, account_id, id, email.base_subject], |r| r.get::<_, String>(0)).optional())
                    .map_err(backend)?;
                if thread_id.is_some() {
                    break;
                }
            }
            let new_thread = thread_id.is_none();
            let thread_id = thread_id.unwrap_or_else(|| random_id(9));
            for id in &related {
                tx.execute(
                    "INSERT OR IGNORE INTO thread_index (tenant, account_id, message_id, base_subject, thread_id)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![t, account_id, id, email.base_subject, thread_id],
                )
                .map_err(backend)?;
            }

            let email_id = random_id(12);
            tx.execute(
                "INSERT INTO emails (tenant, account_id, email_id, blob_id, thread_id, size, received_at, sent_at,
                                     message_id, in_reply_to, refs, subject, from_addr, to_addr, cc_addr, preview,
                                     has_attachment)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                params![
                    t,
                    account_id,
                    email_id,
                    email.blob_id,
                    thread_id,
                    email.size,
                    email.received_at,
                    email.sent_at,
                    email.message_id,
                    list_json(&email.in_reply_to),
                    list_json(&email.references),
                    email.subject,
                    addresses_json(&email.from),
                    addresses_json(&email.to),
                    addresses_json(&email.cc),
                    email.preview,
                    email.has_attachment
                ],
            )
            .map_err(backend)?;
            let rowid = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO email_search (rowid, text) VALUES (?1, ?2)",
                params![rowid, email.search_text],
            )
            .map_err(backend)?;
            tx.execute(
                "INSERT OR IGNORE INTO account_blobs (tenant, account_id, blob_id, size) VALUES (?1, ?2, ?3, ?4)",
                params![t, account_id, email.blob_id, email.size],
            )
            .map_err(backend)?;

            let mut memberships = Vec::new();
            for mailbox_id in &email.mailbox_ids {
                let uid: i64 = tx
                    .query_row(
                        "UPDATE mailboxes SET uid_next = uid_next + 1, highest_modseq = ?4
                         WHERE tenant = ?1 AND account_id = ?2 AND mailbox_id = ?3
                         RETURNING uid_next - 1",
                        params![t, account_id, mailbox_id, modseq],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(backend)?
                    .ok_or_else(|| ErrorKind::NotFound(format!("mailbox {mailbox_id}")))?;
                tx.execute(
                    "INSERT INTO email_mailboxes (tenant, account_id, mailbox_id, uid, email_id, modseq)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![t, account_id, mailbox_id, uid, email_id, modseq],
                )
                .map_err(backend)?;
                log_change(tx, t, account_id, modseq, ChangeType::Mailbox, mailbox_id, "updated")?;
                memberships.push(MailboxMembership { mailbox_id: mailbox_id.clone(), uid, modseq });
            }
            for keyword in &email.keywords {
                tx.execute(
                    "INSERT OR IGNORE INTO email_keywords (tenant, account_id, email_id, keyword) VALUES (?1, ?2, ?3, ?4)",
                    params![t, account_id, email_id, keyword.to_ascii_lowercase()],
                )
                .map_err(backend)?;
            }
            log_change(tx, t, account_id, modseq, ChangeType::Email, &email_id, "created")?;
            log_change(tx, t, account_id, modseq, ChangeType::Thread, &thread_id, if new_thread { "created" } else { "updated" })?;
            tx.execute(
                "UPDATE mail_accounts SET modseq = ?3, used_bytes = used_bytes + ?4 WHERE tenant = ?1 AND account_id = ?2",
                params![t, account_id, modseq, email.size],
            )
            .map_err(backend)?;
            Ok(StoredEmail { email_id, thread_id, mailboxes: memberships })
        })
    }

    fn emails(
        &self,
        tenant: &TenantName,
        account_id: &str,
        ids: &[String],
    ) -> Result<Vec<EmailRecord>> {
        let t = tenant.as_str();
        self.read(|conn| {
            let mut out = Vec::with_capacity(ids.len());
            let mut by_id = conn.prepare_cached(
                "SELECT email_id, blob_id, thread_id, size, received_at, sent_at, message_id, in_reply_to, refs,
                        subject, from_addr, to_addr, cc_addr, preview, has_attachment
                 FROM emails WHERE tenant = ?1 AND account_id = ?2 AND email_id = ?3",
            )?;
            let mut memberships = conn.prepare_cached(
                "SELECT mailbox_id, uid, modseq FROM email_mailboxes
                 WHERE tenant = ?1 AND account_id = ?2 AND email_id = ?3 ORDER BY mailbox_id",
            )?;
            let mut keywords = conn.prepare_cached(
                "SELECT keyword FROM email_keywords WHERE tenant = ?1 AND account_id = ?2 AND email_id = ?3 ORDER BY keyword",
            )?;
            for id in ids {
                let Some(mut record) = by_id
                    .query_row(params![t, account_id, id], |row| {
                        Ok(EmailRecord {
                            id: row.get(0)?,
                            blob_id: row.get(1)?,
                            thread_id: row.get(2)?,
                            size: row.get(3)?,
                            received_at: row.get(4)?,
                            sent_at: row.get(5)?,
                            message_id: row.get(6)?,
                            in_reply_to: json_list(row.get(7)?)?,
                            references: json_list(row.get(8)?)?,
                            subject: row.get(9)?,
                            from: addresses(row.get(10)?)?,
                            to: addresses(row.get(11)?)?,
                            cc: addresses(row.get(12)?)?,
                            preview: row.get(13)?,
                            has_attachment: row.get(14)?,
                            mailboxes: Vec::new(),
                            keywords: Vec::new(),
                        })
                    })
                    .optional()?
                else {
                    continue;
                };
                record.mailboxes = memberships
                    .query_map(params![t, account_id, id], |r| {
                        Ok(MailboxMembership { mailbox_id: r.get(0)?, uid: r.get(1)?, modseq: r.get(2)? })
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                record.keywords = keywords.query_map(params![t, account_id, id], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
                out.push(record);
            }
            Ok(out)
        })
    }

    fn mailbox_email_ids(
        &self,
        tenant: &TenantName,
        account_id: &str,
        mailbox_id: &str,
    ) -> Result<Vec<String>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT em.email_id FROM email_mailboxes em
                 JOIN emails e ON e.tenant = em.tenant AND e.account_id = em.account_id AND e.email_id = em.email_id
                 WHERE em.tenant = ?1 AND em.account_id = ?2 AND em.mailbox_id = ?3
                 ORDER BY e.received_at DESC, em.uid DESC",
            )?
            .query_map(params![tenant.as_str(), account_id, mailbox_id], |r| r.get(0))?
            .collect()
        })
    }

    fn search_emails(
        &self,
        tenant: &TenantName,
        account_id: &str,
        text: &str,
        limit: usize,
    ) -> Result<Vec<String>> {
        let query = fts_query(text);
        if query.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT e.email_id FROM email_search s JOIN emails e ON e.rowid = s.rowid
                 WHERE email_search MATCH ?1 AND e.tenant = ?2 AND e.account_id = ?3
                 ORDER BY e.received_at DESC LIMIT ?4",
            )?
            .query_map(
                params![query, tenant.as_str(), account_id, limit as i64],
                |r| r.get(0),
            )?
            .collect()
        })
    }

    fn add_blob(
        &self,
        tenant: &TenantName,
        account_id: &str,
        blob_id: &str,
        size: i64,
    ) -> Result<()> {
        self.write(|tx| {
            if tx
                .query_row(
                    "SELECT 1 FROM mail_accounts WHERE tenant = ?1 AND account_id = ?2",
                    params![tenant.as_str(), account_id],
                    |_| Ok(()),
                )
                .optional()
                .map_err(backend)?
                .is_none()
            {
                return Err(ErrorKind::NotFound(format!("mail account {account_id}")).into());
            }
            tx.execute(
                "INSERT OR IGNORE INTO account_blobs (tenant, account_id, blob_id, size) VALUES (?1, ?2, ?3, ?4)",
                params![tenant.as_str(), account_id, blob_id, size],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn owns_blob(&self, tenant: &TenantName, account_id: &str, blob_id: &str) -> Result<bool> {
        self.read(|conn| {
            conn.prepare_cached("SELECT 1 FROM account_blobs WHERE tenant = ?1 AND account_id = ?2 AND blob_id = ?3")?
                .query_row(params![tenant.as_str(), account_id, blob_id], |_| Ok(()))
                .optional()
                .map(|found| found.is_some())
        })
    }

    fn changes(
        &self,
        tenant: &TenantName,
        account_id: &str,
        kind: ChangeType,
        since_state: i64,
        max_changes: usize,
    ) -> Result<Changes> {
        let t = tenant.as_str();
        self.read(|conn| {
            let current: i64 = conn
                .prepare_cached(
                    "SELECT modseq FROM mail_accounts WHERE tenant = ?1 AND account_id = ?2",
                )?
                .query_row(params![t, account_id], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            let rows: Vec<(i64, String, String)> = conn
                .prepare_cached(
                    "SELECT modseq, object_id, kind FROM changes
                     WHERE tenant = ?1 AND account_id = ?2 AND type = ?3 AND modseq > ?4
                     ORDER BY modseq, object_id",
                )?
                .query_map(params![t, account_id, kind.as_str(), since_state], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut changes = Changes {
                new_state: current,
                ..Changes::default()
            };
            for (seen, (modseq, id, what)) in rows.into_iter().enumerate() {
                // Stop at a modseq boundary so a state never splits one change.
                if seen >= max_changes && changes.new_state != modseq {
                    changes.has_more = true;
                    break;
                }
                let created = changes.created.contains(&id);
                match what.as_str() {
                    "created" => changes.created.push(id),
                    "destroyed" => {
                        changes.updated.retain(|u| u != &id);
                        if created {
                            changes.created.retain(|c| c != &id);
                        } else {
                            changes.destroyed.push(id);
                        }
                    }
                    _ if created || changes.updated.contains(&id) => {}
                    _ => changes.updated.push(id),
                }
                changes.new_state = modseq;
            }
            if !changes.has_more {
                changes.new_state = current;
            }
            Ok(changes)
        })
    }

    fn create_mailbox(
        &self,
        tenant: &TenantName,
        account_id: &str,
        mailbox: &NewMailbox,
    ) -> Result<String> {
        check_mailbox_name(&mailbox.name)?;
        let t = tenant.as_str();
        self.write(|tx| {
            let modseq = next_modseq(tx, t, account_id)?;
            if let Some(parent) = &mailbox.parent_id
                && !mailbox_exists(tx, t, account_id, parent)?
            {
                return Err(ErrorKind::NotFound(format!("parent mailbox {parent}")).into());
            }
            if sibling_named(tx, t, account_id, mailbox.parent_id.as_deref(), &mailbox.name, "")? {
                return Err(ErrorKind::Conflict(format!("a mailbox named {} exists there", mailbox.name)).into());
            }
            let mailbox_id = random_id(9);
            let uid_validity = (modseq & 0x7fff_ffff).max(1);
            tx.execute(
                "INSERT INTO mailboxes (tenant, account_id, mailbox_id, parent_id, name, role, sort_order,
                                        uid_validity, uid_next, highest_modseq, subscribed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?10)",
                params![
                    t,
                    account_id,
                    mailbox_id,
                    mailbox.parent_id,
                    mailbox.name,
                    mailbox.role,
                    mailbox.sort_order,
                    uid_validity,
                    modseq,
                    mailbox.subscribed
                ],
            )
            .map_err(backend)?;
            log_change(tx, t, account_id, modseq, ChangeType::Mailbox, &mailbox_id, "created")?;
            Ok(mailbox_id)
        })
    }

    fn update_mailbox(
        &self,
        tenant: &TenantName,
        account_id: &str,
        mailbox_id: &str,
        update: &MailboxUpdate,
    ) -> Result<()> {
        if let Some(name) = &update.name {
            check_mailbox_name(name)?;
        }
        let t = tenant.as_str();
        self.write(|tx| {
            let (name, parent): (String, Option<String>) = tx
                .query_row(
                    "SELECT name, parent_id FROM mailboxes WHERE tenant = ?1 AND account_id = ?2 AND mailbox_id = ?3",
                    params![t, account_id, mailbox_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?
                .ok_or_else(|| ErrorKind::NotFound(format!("mailbox {mailbox_id}")))?;
            let modseq = next_modseq(tx, t, account_id)?;
            let new_parent = update.parent_id.clone().unwrap_or(parent);
            // Walk up from the new parent: reaching this mailbox would make a cycle.
            let mut cursor = new_parent.clone();
            while let Some(current) = cursor {
                if current == mailbox_id {
                    return Err(ErrorKind::Invalid("a mailbox cannot be moved under itself".into()).into());
                }
                cursor = tx
                    .query_row(
                        "SELECT parent_id FROM mailboxes WHERE tenant = ?1 AND account_id = ?2 AND mailbox_id = ?3",
                        params![t, account_id, current],
                        |r| r.get::<_, Option<String>>(0),
                    )
                    .optional()
                    .map_err(backend)?
                    .ok_or_else(|| ErrorKind::NotFound(format!("parent mailbox {current}")))?;
            }
            let new_name = update.name.clone().unwrap_or(name);
            if sibling_named(tx, t, account_id, new_parent.as_deref(), &new_name, mailbox_id)? {
                return Err(ErrorKind::Conflict(format!("a mailbox named {new_name} exists there")).into());
            }
            tx.execute(
                "UPDATE mailboxes SET name = ?4, parent_id = ?5, sort_order = COALESCE(?6, sort_order),
                        subscribed = COALESCE(?7, subscribed)
                 WHERE tenant = ?1 AND account_id = ?2 AND mailbox_id = ?3",
                params![t, account_id, mailbox_id, new_name, new_parent, update.sort_order, update.subscribed],
            )
            .map_err(backend)?;
            log_change(tx, t, account_id, modseq, ChangeType::Mailbox, mailbox_id, "updated")
        })
    }

    fn destroy_mailbox(
        &self,
        tenant: &TenantName,
        account_id: &str,
        mailbox_id: &str,
        remove_emails: bool,
    ) -> Result<()> {
        let t = tenant.as_str();
        self.write(|tx| {
            let role: Option<String> = tx
                .query_row(
                    "SELECT role FROM mailboxes WHERE tenant = ?1 AND account_id = ?2 AND mailbox_id = ?3",
                    params![t, account_id, mailbox_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?
                .ok_or_else(|| ErrorKind::NotFound(format!("mailbox {mailbox_id}")))?;
            if role.as_deref() == Some("inbox") {
                return Err(ErrorKind::Invalid("the inbox cannot be destroyed".into()).into());
            }
            let has_child: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM mailboxes WHERE tenant = ?1 AND account_id = ?2 AND parent_id = ?3)",
                    params![t, account_id, mailbox_id],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if has_child {
                return Err(ErrorKind::Conflict("mailboxHasChild".into()).into());
            }
            let emails: Vec<(String, i64)> = tx
                .prepare_cached(
                    "SELECT em.email_id, (SELECT COUNT(*) FROM email_mailboxes o
                                           WHERE o.tenant = em.tenant AND o.account_id = em.account_id AND o.email_id = em.email_id)
                     FROM email_mailboxes em WHERE em.tenant = ?1 AND em.account_id = ?2 AND em.mailbox_id = ?3",
                )
                .and_then(|mut s| s.query_map(params![t, account_id, mailbox_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(backend)?;
            if !emails.is_empty() && !remove_emails {
                return Err(ErrorKind::Conflict("mailboxHasEmail".into()).into());
            }
            let modseq = next_modseq(tx, t, account_id)?;
            for (email_id, memberships) in emails {
                if memberships <= 1 {
                    destroy_email_in(tx, t, account_id, &email_id, modseq)?;
                } else {
                    tx.execute(
                        "DELETE FROM email_mailboxes WHERE tenant = ?1 AND account_id = ?2 AND email_id = ?3 AND mailbox_id = ?4",
                        params![t, account_id, email_id, mailbox_id],
                    )
                    .map_err(backend)?;
                    log_change(tx, t, account_id, modseq, ChangeType::Email, &email_id, "updated")?;
                }
            }
            tx.execute(
                "DELETE FROM mailboxes WHERE tenant = ?1 AND account_id = ?2 AND mailbox_id = ?3",
                params![t, account_id, mailbox_id],
            )
            .map_err(backend)?;
            log_change(tx, t, account_id, modseq, ChangeType::Mailbox, mailbox_id, "destroyed")
        })
    }

    fn update_email(
        &self,
        tenant: &TenantName,
        account_id: &str,
        email_id: &str,
        update: &EmailUpdate,
    ) -> Result<()> {
        if update.mailbox_ids.as_ref().is_some_and(Vec::is_empty) {
            return Err(
                ErrorKind::Invalid("a message must stay in at least one mailbox".into()).into(),
            );
        }
        let t = tenant.as_str();
        self.write(|tx| {
            let current: Vec<String> = tx
                .prepare_cached("SELECT mailbox_id FROM email_mailboxes WHERE tenant = ?1 AND account_id = ?2 AND email_id = ?3")
                .and_then(|mut s| s.query_map(params![t, account_id, email_id], |r| r.get(0))?.collect())
                .map_err(backend)?;
            if current.is_empty() {
                return Err(ErrorKind::NotFound(format!("email {email_id}")).into());
            }
            let modseq = next_modseq(tx, t, account_id)?;
            let mut touched: Vec<String> = current.clone();
            if let Some(keywords) = &update.keywords {
                tx.execute(
                    "DELETE FROM email_keywords WHERE tenant = ?1 AND account_id = ?2 AND email_id = ?3",
                    params![t, account_id, email_id],
                )
                .map_err(backend)?;
                for keyword in keywords {
                    tx.execute(
                        "INSERT OR IGNORE INTO email_keywords (tenant, account_id, email_id, keyword) VALUES (?1, ?2, ?3, ?4)",
                        params![t, account_id, email_id, keyword.to_ascii_lowercase()],
                    )
                    .map_err(backend)?;
                }
            }
            if let Some(wanted) = &update.mailbox_ids {
                for mailbox in wanted.iter().filter(|m| !current.contains(m)) {
                    let uid: i64 = tx
                        .query_row(
                            "UPDATE mailboxes SET uid_next = uid_next + 1
                             WHERE tenant = ?1 AND account_id = ?2 AND mailbox_id = ?3 RETURNING uid_next - 1",
                            params![t, account_id, mailbox],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(backend)?
                        .ok_or_else(|| ErrorKind::NotFound(format!("mailbox {mailbox}")))?;
                    tx.execute(
                        "INSERT INTO email_mailboxes (tenant, account_id, mailbox_id, uid, email_id, modseq)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![t, account_id, mailbox, uid, email_id, modseq],
                    )
                    .map_err(backend)?;
                    touched.push(mailbox.clone());
                }
                for mailbox in current.iter().filter(|m| !wanted.contains(m)) {
                    tx.execute(
                        "DELETE FROM email_mailboxes WHERE tenant = ?1 AND account_id = ?2 AND email_id = ?3 AND mailbox_id = ?4",
                        params![t, account_id, email_id, mailbox],
                    )
                    .map_err(backend)?;
                }
            }
            // CONDSTORE: every mailbox the change touched moves to this MODSEQ.
            tx.execute(
                "UPDATE email_mailboxes SET modseq = ?4 WHERE tenant = ?1 AND account_id = ?2 AND email_id = ?3",
                params![t, account_id, email_id, modseq],
            )
            .map_err(backend)?;
            for mailbox in &touched {
                tx.execute(
                    "UPDATE mailboxes SET highest_modseq = ?4 WHERE tenant = ?1 AND account_id = ?2 AND mailbox_id = ?3",
                    params![t, account_id, mailbox, modseq],
                )
                .map_err(backend)?;
                log_change(tx, t, account_id, modseq, ChangeType::Mailbox, mailbox, "updated")?;
            }
            log_change(tx, t, account_id, modseq, ChangeType::Email, email_id, "updated")
        })
    }

    fn destroy_email(&self, tenant: &TenantName, account_id: &str, email_id: &str) -> Result<()> {
        let t = tenant.as_str();
        self.write(|tx| {
            let modseq = next_modseq(tx, t, account_id)?;
            destroy_email_in(tx, t, account_id, email_id, modseq)
        })
    }

    fn identities(&self, tenant: &TenantName, account_id: &str) -> Result<Vec<IdentityRecord>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT identity_id, name, email, reply_to, bcc, text_signature, html_signature, may_delete
                 FROM identities WHERE tenant = ?1 AND account_id = ?2 ORDER BY rowid",
            )?
            .query_map(params![tenant.as_str(), account_id], |row| {
                Ok(IdentityRecord {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    email: row.get(2)?,
                    reply_to: optional_addresses(row.get(3)?)?,
                    bcc: optional_addresses(row.get(4)?)?,
                    text_signature: row.get(5)?,
                    html_signature: row.get(6)?,
                    may_delete: row.get(7)?,
                })
            })?
            .collect()
        })
    }

    fn create_identity(
        &self,
        tenant: &TenantName,
        account_id: &str,
        identity: &NewIdentity,
    ) -> Result<String> {
        let t = tenant.as_str();
        self.write(|tx| {
            let modseq = next_modseq(tx, t, account_id)?;
            let identity_id = random_id(9);
            tx.execute(
                "INSERT INTO identities (tenant, account_id, identity_id, name, email, reply_to, bcc,
                                         text_signature, html_signature, may_delete)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    t,
                    account_id,
                    identity_id,
                    identity.name,
                    identity.email,
                    identity.reply_to.as_deref().map(addresses_json),
                    identity.bcc.as_deref().map(addresses_json),
                    identity.text_signature,
                    identity.html_signature,
                    identity.may_delete
                ],
            )
            .map_err(backend)?;
            log_change(tx, t, account_id, modseq, ChangeType::Identity, &identity_id, "created")?;
            Ok(identity_id)
        })
    }

    fn update_identity(
        &self,
        tenant: &TenantName,
        account_id: &str,
        identity_id: &str,
        update: &IdentityUpdate,
    ) -> Result<()> {
        let t = tenant.as_str();
        let list = |value: &Option<Option<Vec<EmailAddress>>>| {
            value
                .as_ref()
                .map(|inner| inner.as_deref().map(addresses_json))
        };
        let (reply_to, bcc) = (list(&update.reply_to), list(&update.bcc));
        self.write(|tx| {
            let modseq = next_modseq(tx, t, account_id)?;
            let changed = tx
                .execute(
                    "UPDATE identities SET name = COALESCE(?4, name),
                            reply_to = CASE WHEN ?5 THEN ?6 ELSE reply_to END,
                            bcc = CASE WHEN ?7 THEN ?8 ELSE bcc END,
                            text_signature = COALESCE(?9, text_signature),
                            html_signature = COALESCE(?10, html_signature)
                     WHERE tenant = ?1 AND account_id = ?2 AND identity_id = ?3",
                    params![
                        t,
                        account_id,
                        identity_id,
                        update.name,
                        reply_to.is_some(),
                        reply_to.flatten(),
                        bcc.is_some(),
                        bcc.flatten(),
                        update.text_signature,
                        update.html_signature
                    ],
                )
                .map_err(backend)?;
            if changed == 0 {
                return Err(ErrorKind::NotFound(format!("identity {identity_id}")).into());
            }
            log_change(
                tx,
                t,
                account_id,
                modseq,
                ChangeType::Identity,
                identity_id,
                "updated",
            )
        })
    }

    fn destroy_identity(
        &self,
        tenant: &TenantName,
        account_id: &str,
        identity_id: &str,
    ) -> Result<()> {
        let t = tenant.as_str();
        self.write(|tx| {
            let modseq = next_modseq(tx, t, account_id)?;
            let changed = tx
                .execute(
                    "DELETE FROM identities WHERE tenant = ?1 AND account_id = ?2 AND identity_id = ?3",
                    params![t, account_id, identity_id],
                )
                .map_err(backend)?;
            if changed == 0 {
                return Err(ErrorKind::NotFound(format!("identity {identity_id}")).into());
            }
            log_change(tx, t, account_id, modseq, ChangeType::Identity, identity_id, "destroyed")
        })
    }

    fn email_submissions(
        &self,
        tenant: &TenantName,
        account_id: &str,
    ) -> Result<Vec<EmailSubmissionRecord>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT submission_id, identity_id, email_id, thread_id, envelope, send_at, undo_status,
                        delivery_status
                 FROM email_submissions WHERE tenant = ?1 AND account_id = ?2 ORDER BY send_at, rowid",
            )?
            .query_map(params![tenant.as_str(), account_id], |row| {
                Ok(EmailSubmissionRecord {
                    id: row.get(0)?,
                    identity_id: row.get(1)?,
                    email_id: row.get(2)?,
                    thread_id: row.get(3)?,
                    envelope: row.get(4)?,
                    send_at: row.get(5)?,
                    undo_status: row.get(6)?,
                    delivery_status: row.get(7)?,
                })
            })?
            .collect()
        })
    }

    fn create_email_submission(
        &self,
        tenant: &TenantName,
        account_id: &str,
        submission: &NewEmailSubmission,
    ) -> Result<String> {
        let t = tenant.as_str();
        self.write(|tx| {
            let modseq = next_modseq(tx, t, account_id)?;
            let submission_id = random_id(9);
            tx.execute(
                "INSERT INTO email_submissions (tenant, account_id, submission_id, identity_id, email_id,
                                                thread_id, envelope, send_at, undo_status, delivery_status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    t,
                    account_id,
                    submission_id,
                    submission.identity_id,
                    submission.email_id,
                    submission.thread_id,
                    submission.envelope,
                    submission.send_at,
                    submission.undo_status,
                    submission.delivery_status
                ],
            )
            .map_err(backend)?;
            log_change(tx, t, account_id, modseq, ChangeType::EmailSubmission, &submission_id, "created")?;
            Ok(submission_id)
        })
    }

    fn destroy_email_submission(
        &self,
        tenant: &TenantName,
        account_id: &str,
        submission_id: &str,
    ) -> Result<()> {
        let t = tenant.as_str();
        self.write(|tx| {
            let modseq = next_modseq(tx, t, account_id)?;
            let changed = tx
                .execute(
                    "DELETE FROM email_submissions WHERE tenant = ?1 AND account_id = ?2 AND submission_id = ?3",
                    params![t, account_id, submission_id],
                )
                .map_err(backend)?;
            if changed == 0 {
                return Err(ErrorKind::NotFound(format!("email submission {submission_id}")).into());
            }
            log_change(tx, t, account_id, modseq, ChangeType::EmailSubmission, submission_id, "destroyed")
        })
    }

    fn vacation_response(
        &self,
        tenant: &TenantName,
        account_id: &str,
    ) -> Result<Option<VacationResponse>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT is_enabled, from_date, to_date, subject, text_body, html_body
                 FROM vacation_responses WHERE tenant = ?1 AND account_id = ?2",
            )?
            .query_row(params![tenant.as_str(), account_id], |row| {
                Ok(VacationResponse {
                    is_enabled: row.get(0)?,
                    from_date: row.get(1)?,
                    to_date: row.get(2)?,
                    subject: row.get(3)?,
                    text_body: row.get(4)?,
                    html_body: row.get(5)?,
                })
            })
            .optional()
        })
    }

    fn set_vacation_response(
        &self,
        tenant: &TenantName,
        account_id: &str,
        vacation: &VacationResponse,
    ) -> Result<()> {
        let t = tenant.as_str();
        self.write(|tx| {
            let modseq = next_modseq(tx, t, account_id)?;
            tx.execute(
                "INSERT INTO vacation_responses (tenant, account_id, is_enabled, from_date, to_date, subject,
                                                 text_body, html_body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (tenant, account_id) DO UPDATE SET
                    is_enabled = excluded.is_enabled, from_date = excluded.from_date,
                    to_date = excluded.to_date, subject = excluded.subject,
                    text_body = excluded.text_body, html_body = excluded.html_body",
                params![
                    t,
                    account_id,
                    vacation.is_enabled,
                    vacation.from_date,
                    vacation.to_date,
                    vacation.subject,
                    vacation.text_body,
                    vacation.html_body
                ],
            )
            .map_err(backend)?;
            log_change(tx, t, account_id, modseq, ChangeType::VacationResponse, "singleton", "updated")
        })
    }
}

fn optional_addresses(text: Option<String>) -> rusqlite::Result<Option<Vec<EmailAddress>>> {
    text.map(addresses).transpose()
}
