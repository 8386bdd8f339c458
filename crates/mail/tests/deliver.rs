//! Delivery into a real store: the raw bytes come back intact and the
//! message is filed, threaded and searchable.

// Tests fail by panicking; clippy's in-test exemptions do not reach the
// helper functions of an integration test crate.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use stormproof_mail::{Delivery, ErrorKind, Target};
use stormproof_store::{SqliteStore, Store};
use stormproof_types::TenantName;

#[test]
fn delivered_messages_read_back_byte_for_byte_and_are_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let acme = TenantName::parse("acme").unwrap();
    store
        .create_tenant(&acme, &["acme.test".into()], 0)
        .unwrap();
    let account = store
        .create_mail_account(&acme, "alice", 10_000)
        .unwrap()
        .account_id;
    let delivery = Delivery::open(store.clone(), dir.path()).unwrap();

    let raw = b"From: bob@globex.test\r\nSubject: Launch codes\r\nMessage-ID: <m1@globex.test>\r\n\r\nThe tangerine protocol.\r\n";
    let stored = delivery
        .deliver(
            &acme,
            &account,
            raw,
            Target::Role("inbox"),
            &["$seen".into()],
            100,
        )
        .unwrap();
    let record = store
        .emails(&acme, &account, std::slice::from_ref(&stored.email_id))
        .unwrap()
        .remove(0);
    assert_eq!(delivery.blobs().get(&record.blob_id).unwrap(), raw);
    assert_eq!(record.keywords, vec!["$seen".to_owned()]);
    assert_eq!(
        store
            .search_emails(&acme, &account, "tangerine", 10)
            .unwrap(),
        vec![stored.email_id]
    );

    let missing = delivery.deliver(&acme, &account, raw, Target::Role("no-such-role"), &[], 100);
    assert!(matches!(
        missing.map_err(|e| e.kind),
        Err(ErrorKind::NoMailbox(_))
    ));
    let big = vec![b'x'; 20_000];
    let mut over_quota = b"Subject: big\r\n\r\n".to_vec();
    over_quota.extend_from_slice(&big);
    let refused = delivery.deliver(
        &acme,
        &account,
        &over_quota,
        Target::Role("inbox"),
        &[],
        100,
    );
    assert!(matches!(
        refused.map_err(|e| e.kind),
        Err(ErrorKind::Store(_))
    ));
    assert_eq!(
        store
            .mail_account(&acme, &account)
            .unwrap()
            .unwrap()
            .used_bytes,
        raw.len() as i64
    );
}
