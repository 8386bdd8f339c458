//! The mail store on a real SQLite file: UIDs, MODSEQs, threads, search,
//! quotas, the change log, and tenant isolation.

// Tests fail by panicking; clippy's in-test exemptions do not reach the
// helper functions of an integration test crate.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use stormproof_store::{
    BlobStore, ChangeType, DEFAULT_MAILBOXES, EmailAddress, ErrorKind, MailStore, NewEmail,
    SqliteStore, Store,
};
use stormproof_types::TenantName;

struct World {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    blobs: BlobStore,
    acme: TenantName,
    globex: TenantName,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let blobs = BlobStore::open(dir.path()).unwrap();
    let (acme, globex) = (
        TenantName::parse("acme").unwrap(),
        TenantName::parse("globex").unwrap(),
    );
    store
        .create_tenant(&acme, &["acme.test".into()], 0)
        .unwrap();
    store
        .create_tenant(&globex, &["globex.test".into()], 0)
        .unwrap();
    World {
        _dir: dir,
        store,
        blobs,
        acme,
        globex,
    }
}

fn message(
    w: &World,
    subject: &str,
    message_id: &str,
    in_reply_to: &[&str],
    body: &str,
    mailbox: &str,
) -> NewEmail {
    let raw = format!("Subject: {subject}\r\nMessage-ID: <{message_id}>\r\n\r\n{body}\r\n");
    let blob_id = w.blobs.put(raw.as_bytes()).unwrap();
    NewEmail {
        blob_id,
        size: raw.len() as i64,
        received_at: 1_800_000_000,
        sent_at: None,
        message_id: Some(message_id.into()),
        in_reply_to: in_reply_to.iter().map(|s| s.to_string()).collect(),
        references: Vec::new(),
        subject: Some(subject.into()),
        base_subject: subject.trim_start_matches("Re: ").to_lowercase(),
        from: vec![EmailAddress {
            name: None,
            email: "sender@example.org".into(),
        }],
        to: Vec::new(),
        cc: Vec::new(),
        preview: body.chars().take(20).collect(),
        has_attachment: false,
        search_text: format!("{subject}\n{body}"),
        mailbox_ids: vec![mailbox.into()],
        keywords: Vec::new(),
    }
}

fn inbox(w: &World, tenant: &TenantName, account: &str) -> String {
    w.store
        .mailboxes(tenant, account)
        .unwrap()
        .into_iter()
        .find(|m| m.role.as_deref() == Some("inbox"))
        .unwrap()
        .id
}

#[test]
fn accounts_start_with_the_standard_mailboxes_and_uids_count_up() {
    let w = world();
    let account = w
        .store
        .create_mail_account(&w.acme, "alice", 1 << 20)
        .unwrap();
    assert_eq!(
        w.store
            .create_mail_account(&w.acme, "alice", 1 << 20)
            .unwrap(),
        account,
        "idempotent"
    );
    let mailboxes = w.store.mailboxes(&w.acme, &account.account_id).unwrap();
    let roles: Vec<_> = mailboxes.iter().filter_map(|m| m.role.as_deref()).collect();
    assert_eq!(
        roles,
        DEFAULT_MAILBOXES
            .iter()
            .map(|(_, r)| *r)
            .collect::<Vec<_>>()
    );
    assert!(
        mailboxes
            .iter()
            .all(|m| m.uid_next == 1 && m.uid_validity > 0)
    );

    let inbox = inbox(&w, &w.acme, &account.account_id);
    let first = w
        .store
        .insert_email(
            &w.acme,
            &account.account_id,
            &message(&w, "Hello", "1@x", &[], "one", &inbox),
        )
        .unwrap();
    let second = w
        .store
        .insert_email(
            &w.acme,
            &account.account_id,
            &message(&w, "Other", "2@x", &[], "two", &inbox),
        )
        .unwrap();
    assert_eq!((first.mailboxes[0].uid, first.mailboxes[0].modseq), (1, 1));
    assert_eq!(
        (second.mailboxes[0].uid, second.mailboxes[0].modseq),
        (2, 2)
    );
    let after = w.store.mailboxes(&w.acme, &account.account_id).unwrap();
    let inbox_after = after.iter().find(|m| m.id == inbox).unwrap();
    assert_eq!(
        (
            inbox_after.uid_next,
            inbox_after.highest_modseq,
            inbox_after.total_emails,
            inbox_after.unread_emails
        ),
        (3, 2, 2, 2)
    );
    assert_eq!(
        w.store
            .mail_account(&w.acme, &account.account_id)
            .unwrap()
            .unwrap()
            .modseq,
        2
    );
}

#[test]
fn replies_join_their_thread_only_when_the_subject_agrees() {
    let w = world();
    let account = w
        .store
        .create_mail_account(&w.acme, "alice", 1 << 20)
        .unwrap()
        .account_id;
    let inbox = inbox(&w, &w.acme, &account);
    let root = w
        .store
        .insert_email(
            &w.acme,
            &account,
            &message(&w, "Plans", "root@x", &[], "a", &inbox),
        )
        .unwrap();
    let reply = w
        .store
        .insert_email(
            &w.acme,
            &account,
            &message(&w, "Re: Plans", "reply@x", &["root@x"], "b", &inbox),
        )
        .unwrap();
    let hijack = w
        .store
        .insert_email(
            &w.acme,
            &account,
            &message(&w, "Unrelated", "h@x", &["root@x"], "c", &inbox),
        )
        .unwrap();
    assert_eq!(reply.thread_id, root.thread_id);
    assert_ne!(hijack.thread_id, root.thread_id);
}

#[test]
fn search_finds_body_words_and_treats_query_syntax_as_text() {
    let w = world();
    let account = w
        .store
        .create_mail_account(&w.acme, "alice", 1 << 20)
        .unwrap()
        .account_id;
    let inbox = inbox(&w, &w.acme, &account);
    let hit = w
        .store
        .insert_email(
            &w.acme,
            &account,
            &message(
                &w,
                "Budget",
                "b@x",
                &[],
                "the quarterly réport is attached",
                &inbox,
            ),
        )
        .unwrap();
    w.store
        .insert_email(
            &w.acme,
            &account,
            &message(&w, "Lunch", "l@x", &[], "pizza on friday", &inbox),
        )
        .unwrap();
    assert_eq!(
        w.store
            .search_emails(&w.acme, &account, "quarterly", 10)
            .unwrap(),
        vec![hit.email_id.clone()]
    );
    assert_eq!(
        w.store
            .search_emails(&w.acme, &account, "report", 10)
            .unwrap(),
        vec![hit.email_id],
        "diacritics folded"
    );
    for hostile in ["\"", "OR", "a* NOT", "NEAR(", "col:val", ""] {
        assert!(
            w.store
                .search_emails(&w.acme, &account, hostile, 10)
                .is_ok(),
            "{hostile}"
        );
    }
}

#[test]
fn quotas_refuse_without_storing_anything() {
    let w = world();
    let account = w
        .store
        .create_mail_account(&w.acme, "alice", 60)
        .unwrap()
        .account_id;
    let inbox = inbox(&w, &w.acme, &account);
    w.store
        .insert_email(
            &w.acme,
            &account,
            &message(&w, "a", "1@x", &[], "small", &inbox),
        )
        .unwrap();
    let refused = w.store.insert_email(
        &w.acme,
        &account,
        &message(&w, "b", "2@x", &[], &"x".repeat(100), &inbox),
    );
    assert!(matches!(
        refused.map_err(|e| e.kind),
        Err(ErrorKind::QuotaExceeded { .. })
    ));
    assert_eq!(
        w.store
            .mailbox_email_ids(&w.acme, &account, &inbox)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn changes_list_what_happened_since_a_state() {
    let w = world();
    let account = w
        .store
        .create_mail_account(&w.acme, "alice", 1 << 20)
        .unwrap()
        .account_id;
    let inbox = inbox(&w, &w.acme, &account);
    let first = w
        .store
        .insert_email(
            &w.acme,
            &account,
            &message(&w, "a", "1@x", &[], "a", &inbox),
        )
        .unwrap();
    let state = w
        .store
        .mail_account(&w.acme, &account)
        .unwrap()
        .unwrap()
        .modseq;
    let second = w
        .store
        .insert_email(
            &w.acme,
            &account,
            &message(&w, "b", "2@x", &[], "b", &inbox),
        )
        .unwrap();
    let all = w
        .store
        .changes(&w.acme, &account, ChangeType::Email, 0, 100)
        .unwrap();
    assert_eq!(
        all.created,
        vec![first.email_id.clone(), second.email_id.clone()]
    );
    let since = w
        .store
        .changes(&w.acme, &account, ChangeType::Email, state, 100)
        .unwrap();
    assert_eq!(
        (since.created, since.new_state),
        (vec![second.email_id], state + 1)
    );
    let limited = w
        .store
        .changes(&w.acme, &account, ChangeType::Email, 0, 1)
        .unwrap();
    assert_eq!(
        (limited.created, limited.has_more, limited.new_state),
        (vec![first.email_id], true, 1)
    );
    let mailboxes = w
        .store
        .changes(&w.acme, &account, ChangeType::Mailbox, state, 100)
        .unwrap();
    assert_eq!(mailboxes.updated, vec![inbox]);
}

#[test]
fn another_tenant_cannot_reach_an_account_even_with_its_ids() {
    let w = world();
    let account = w
        .store
        .create_mail_account(&w.acme, "alice", 1 << 20)
        .unwrap()
        .account_id;
    let inbox = inbox(&w, &w.acme, &account);
    let email = message(&w, "Secret", "s@x", &[], "classified", &inbox);
    let stored = w.store.insert_email(&w.acme, &account, &email).unwrap();
    let g = &w.globex;
    assert!(w.store.mail_account(g, &account).unwrap().is_none());
    assert!(w.store.mailboxes(g, &account).unwrap().is_empty());
    assert!(
        w.store
            .emails(g, &account, std::slice::from_ref(&stored.email_id))
            .unwrap()
            .is_empty()
    );
    assert!(
        w.store
            .mailbox_email_ids(g, &account, &inbox)
            .unwrap()
            .is_empty()
    );
    assert!(
        w.store
            .search_emails(g, &account, "classified", 10)
            .unwrap()
            .is_empty()
    );
    assert!(!w.store.owns_blob(g, &account, &email.blob_id).unwrap());
    assert!(w.store.insert_email(g, &account, &email).is_err());
    assert!(
        w.store
            .owns_blob(&w.acme, &account, &email.blob_id)
            .unwrap()
    );
    assert_eq!(
        w.store
            .emails(&w.acme, &account, &[stored.email_id])
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn mailboxes_are_created_renamed_moved_and_destroyed_with_their_rules() {
    use stormproof_store::{MailboxUpdate, NewMailbox};
    let w = world();
    let account = w
        .store
        .create_mail_account(&w.acme, "alice", 1 << 20)
        .unwrap()
        .account_id;
    let new = |name: &str, parent: Option<&str>| NewMailbox {
        name: name.into(),
        parent_id: parent.map(str::to_owned),
        ..NewMailbox::default()
    };
    let projects = w
        .store
        .create_mailbox(&w.acme, &account, &new("Projects", None))
        .unwrap();
    let storm = w
        .store
        .create_mailbox(&w.acme, &account, &new("Storm", Some(&projects)))
        .unwrap();
    let conflict = w
        .store
        .create_mailbox(&w.acme, &account, &new("Storm", Some(&projects)));
    assert!(matches!(
        conflict.map_err(|e| e.kind),
        Err(ErrorKind::Conflict(_))
    ));
    assert!(matches!(
        w.store
            .create_mailbox(&w.acme, &account, &new("", None))
            .map_err(|e| e.kind),
        Err(ErrorKind::Invalid(_))
    ));
    let cycle = w.store.update_mailbox(
        &w.acme,
        &account,
        &projects,
        &MailboxUpdate {
            parent_id: Some(Some(storm.clone())),
            ..MailboxUpdate::default()
        },
    );
    assert!(matches!(
        cycle.map_err(|e| e.kind),
        Err(ErrorKind::Invalid(_))
    ));
    w.store
        .update_mailbox(
            &w.acme,
            &account,
            &storm,
            &MailboxUpdate {
                name: Some("Storm-0558".into()),
                parent_id: Some(None),
                ..MailboxUpdate::default()
            },
        )
        .unwrap();
    let renamed = w
        .store
        .mailboxes(&w.acme, &account)
        .unwrap()
        .into_iter()
        .find(|m| m.id == storm)
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.parent_id),
        ("Storm-0558", None)
    );

    let stored = w
        .store
        .insert_email(
            &w.acme,
            &account,
            &message(&w, "x", "x@x", &[], "x", &storm),
        )
        .unwrap();
    let has_email = w.store.destroy_mailbox(&w.acme, &account, &storm, false);
    assert!(
        matches!(has_email.map_err(|e| e.kind), Err(ErrorKind::Conflict(m)) if m == "mailboxHasEmail")
    );
    w.store
        .destroy_mailbox(&w.acme, &account, &storm, true)
        .unwrap();
    assert!(
        w.store
            .emails(&w.acme, &account, &[stored.email_id])
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        w.store
            .mail_account(&w.acme, &account)
            .unwrap()
            .unwrap()
            .used_bytes,
        0,
        "quota released"
    );
    let inbox = inbox(&w, &w.acme, &account);
    assert!(
        w.store
            .destroy_mailbox(&w.acme, &account, &inbox, true)
            .is_err(),
        "the inbox stays"
    );
    let destroyed = w
        .store
        .changes(&w.acme, &account, ChangeType::Mailbox, 0, 100)
        .unwrap();
    assert!(
        !destroyed.created.contains(&storm) && !destroyed.destroyed.contains(&storm),
        "created and destroyed since 0 cancel out"
    );
}

#[test]
fn moving_and_flagging_a_message_keeps_uids_where_it_stays_and_bumps_modseq() {
    use stormproof_store::EmailUpdate;
    let w = world();
    let account = w
        .store
        .create_mail_account(&w.acme, "alice", 1 << 20)
        .unwrap()
        .account_id;
    let mailboxes = w.store.mailboxes(&w.acme, &account).unwrap();
    let id_of = |role: &str| {
        mailboxes
            .iter()
            .find(|m| m.role.as_deref() == Some(role))
            .unwrap()
            .id
            .clone()
    };
    let (inbox, archive) = (id_of("inbox"), id_of("archive"));
    let stored = w
        .store
        .insert_email(
            &w.acme,
            &account,
            &message(&w, "a", "a@x", &[], "a", &inbox),
        )
        .unwrap();
    let state = w
        .store
        .mail_account(&w.acme, &account)
        .unwrap()
        .unwrap()
        .modseq;

    w.store
        .update_email(
            &w.acme,
            &account,
            &stored.email_id,
            &EmailUpdate {
                keywords: Some(vec!["$Seen".into(), "$flagged".into()]),
                mailbox_ids: Some(vec![inbox.clone(), archive.clone()]),
            },
        )
        .unwrap();
    let record = w
        .store
        .emails(&w.acme, &account, std::slice::from_ref(&stored.email_id))
        .unwrap()
        .remove(0);
    assert_eq!(
        record.keywords,
        vec!["$flagged".to_owned(), "$seen".to_owned()]
    );
    let in_inbox = record
        .mailboxes
        .iter()
        .find(|m| m.mailbox_id == inbox)
        .unwrap();
    let in_archive = record
        .mailboxes
        .iter()
        .find(|m| m.mailbox_id == archive)
        .unwrap();
    assert_eq!(
        (in_inbox.uid, in_inbox.modseq),
        (1, state + 1),
        "same UID, new MODSEQ"
    );
    assert_eq!(in_archive.uid, 1);
    let unread = w
        .store
        .mailboxes(&w.acme, &account)
        .unwrap()
        .into_iter()
        .find(|m| m.id == inbox)
        .unwrap()
        .unread_emails;
    assert_eq!(unread, 0);

    assert!(
        w.store
            .update_email(
                &w.acme,
                &account,
                &stored.email_id,
                &EmailUpdate {
                    mailbox_ids: Some(vec![]),
                    ..EmailUpdate::default()
                }
            )
            .is_err()
    );
    assert!(
        w.store
            .update_email(
                &w.globex,
                &account,
                &stored.email_id,
                &EmailUpdate::default()
            )
            .is_err(),
        "other tenant"
    );
    w.store
        .destroy_email(&w.acme, &account, &stored.email_id)
        .unwrap();
    let changes = w
        .store
        .changes(&w.acme, &account, ChangeType::Email, state, 100)
        .unwrap();
    assert_eq!(changes.destroyed, vec![stored.email_id.clone()]);
    let threads = w
        .store
        .changes(&w.acme, &account, ChangeType::Thread, state, 100)
        .unwrap();
    assert_eq!(threads.destroyed, vec![stored.thread_id]);
}

fn account(w: &World, tenant: &TenantName, user: &str) -> String {
    w.store
        .create_mail_account(tenant, user, 1 << 20)
        .unwrap()
        .account_id
}

fn modseq(w: &World, tenant: &TenantName, account: &str) -> i64 {
    w.store
        .mail_account(tenant, account)
        .unwrap()
        .unwrap()
        .modseq
}

#[test]
fn identities_keep_one_default_and_log_their_changes() {
    use stormproof_store::{IdentityUpdate, NewIdentity};
    let w = world();
    let account = account(&w, &w.acme, "u-alice");
    let state = modseq(&w, &w.acme, &account);
    let default = NewIdentity {
        email: "alice@acme.test".into(),
        may_delete: false,
        ..NewIdentity::default()
    };
    let first = w
        .store
        .create_identity(&w.acme, &account, &default)
        .unwrap();
    assert!(
        matches!(
            w.store
                .create_identity(&w.acme, &account, &default)
                .map_err(|e| e.kind),
            Err(ErrorKind::Conflict(_))
        ),
        "one default per account"
    );
    let work = NewIdentity {
        name: "Alice at work".into(),
        reply_to: Some(vec![EmailAddress {
            name: Some("Desk".into()),
            email: "alice@acme.test".into(),
        }]),
        text_signature: "-- A".into(),
        may_delete: true,
        ..default.clone()
    };
    let second = w.store.create_identity(&w.acme, &account, &work).unwrap();
    w.store
        .update_identity(
            &w.acme,
            &account,
            &second,
            &IdentityUpdate {
                name: Some("Alice (work)".into()),
                reply_to: Some(None),
                bcc: Some(Some(vec![])),
                ..IdentityUpdate::default()
            },
        )
        .unwrap();
    let list = w.store.identities(&w.acme, &account).unwrap();
    assert_eq!(
        list.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        vec![first.as_str(), second.as_str()],
        "oldest first"
    );
    assert!(!list[0].may_delete);
    assert_eq!(list[1].name, "Alice (work)");
    assert_eq!(list[1].reply_to, None);
    assert_eq!(list[1].bcc, Some(vec![]));
    assert_eq!(list[1].text_signature, "-- A", "untouched");
    w.store
        .destroy_identity(&w.acme, &account, &second)
        .unwrap();
    assert!(matches!(
        w.store
            .destroy_identity(&w.acme, &account, &second)
            .map_err(|e| e.kind),
        Err(ErrorKind::NotFound(_))
    ));
    let changes = w
        .store
        .changes(&w.acme, &account, ChangeType::Identity, state, 100)
        .unwrap();
    assert_eq!(changes.created, vec![first.clone()]);
    assert!(changes.updated.is_empty() && changes.destroyed.is_empty());
    let mailboxes = w
        .store
        .changes(&w.acme, &account, ChangeType::Mailbox, state, 100)
        .unwrap();
    assert!(mailboxes.created.is_empty() && mailboxes.updated.is_empty());

    // Another tenant reaches none of it, even with the ids.
    let other = account_in_globex(&w);
    assert!(w.store.identities(&w.globex, &account).unwrap().is_empty());
    assert!(w.store.identities(&w.globex, &other).unwrap().is_empty());
    assert!(matches!(
        w.store
            .destroy_identity(&w.globex, &other, &first)
            .map_err(|e| e.kind),
        Err(ErrorKind::NotFound(_))
    ));
    assert!(matches!(
        w.store
            .create_identity(&w.globex, &account, &work)
            .map_err(|e| e.kind),
        Err(ErrorKind::NotFound(_))
    ));
    assert_eq!(w.store.identities(&w.acme, &account).unwrap().len(), 1);
}

fn account_in_globex(w: &World) -> String {
    account(w, &w.globex, "u-mallory")
}

#[test]
fn submissions_and_vacation_responses_are_kept_per_account() {
    use stormproof_store::{NewEmailSubmission, VacationResponse};
    let w = world();
    let account = account(&w, &w.acme, "u-alice");
    let other = account_in_globex(&w);
    let state = modseq(&w, &w.acme, &account);
    let new = NewEmailSubmission {
        identity_id: "i1".into(),
        email_id: "e1".into(),
        thread_id: "t1".into(),
        envelope: r#"{"mailFrom":{"email":"alice@acme.test"}}"#.into(),
        send_at: 1_800_000_000,
        undo_status: "final".into(),
        delivery_status: "{}".into(),
    };
    let id = w
        .store
        .create_email_submission(&w.acme, &account, &new)
        .unwrap();
    let list = w.store.email_submissions(&w.acme, &account).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (
            list[0].id.as_str(),
            list[0].envelope.as_str(),
            list[0].send_at
        ),
        (id.as_str(), new.envelope.as_str(), new.send_at)
    );
    assert!(
        w.store
            .email_submissions(&w.globex, &other)
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        w.store
            .destroy_email_submission(&w.globex, &other, &id)
            .map_err(|e| e.kind),
        Err(ErrorKind::NotFound(_))
    ));
    w.store
        .destroy_email_submission(&w.acme, &account, &id)
        .unwrap();
    let changes = w
        .store
        .changes(&w.acme, &account, ChangeType::EmailSubmission, state, 100)
        .unwrap();
    assert_eq!(changes.created, Vec::<String>::new(), "created and gone");
    assert!(changes.destroyed.is_empty());
    assert_eq!(changes.new_state, state + 2);

    assert_eq!(w.store.vacation_response(&w.acme, &account).unwrap(), None);
    let away = VacationResponse {
        is_enabled: true,
        from_date: Some(1_800_000_000),
        to_date: None,
        subject: Some("Away".into()),
        text_body: Some("Back soon.".into()),
        html_body: None,
    };
    w.store
        .set_vacation_response(&w.acme, &account, &away)
        .unwrap();
    let back = VacationResponse {
        is_enabled: false,
        ..away.clone()
    };
    w.store
        .set_vacation_response(&w.acme, &account, &back)
        .unwrap();
    assert_eq!(
        w.store.vacation_response(&w.acme, &account).unwrap(),
        Some(back)
    );
    assert_eq!(w.store.vacation_response(&w.globex, &other).unwrap(), None);
    assert_eq!(
        w.store.vacation_response(&w.globex, &account).unwrap(),
        None
    );
    assert!(matches!(
        w.store
            .set_vacation_response(&w.globex, &account, &away)
            .map_err(|e| e.kind),
        Err(ErrorKind::NotFound(_))
    ));
    let changes = w
        .store
        .changes(&w.acme, &account, ChangeType::VacationResponse, state, 100)
        .unwrap();
    assert_eq!(changes.updated, vec!["singleton".to_owned()]);
}
