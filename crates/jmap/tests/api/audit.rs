//! `ApiResponse::accessed`: what the HTTP front writes to the audit log
//! before sending a response.

use serde_json::json;
use stormproof_jmap::Access;

use crate::kit::*;

#[test]
fn content_reads_and_metadata_reads_are_told_apart() {
    let w = world();
    let first = w.deliver(MULTIPART, "inbox", &[], T0);
    let second = w.deliver(
        &simple("Plans", "b@x", "plans@x", "tangerine"),
        "archive",
        &[],
        T0 + 1,
    );
    let upload = w
        .jmap
        .upload(
            &w.alice,
            w.account(),
            "message/rfc822",
            MULTIPART.as_bytes(),
        )
        .unwrap();
    let response = w.request(
        &w.alice,
        json!([
            ["Mailbox/get", {"accountId": w.account()}, "0"],
            ["Email/get", {"accountId": w.account(), "ids": [first.clone(), second.clone(), "missing"],
                "properties": ["subject", "textBody"]}, "1"],
            ["Email/get", {"accountId": w.account(), "ids": [first.clone()],
                "properties": ["id", "keywords", "mailboxIds", "threadId"]}, "2"],
            ["Email/query", {"accountId": w.account(), "filter": {"text": "tangerine"}}, "3"],
            ["SearchSnippet/get", {"accountId": w.account(), "filter": {"text": "tangerine"}, "emailIds": [second.clone()]}, "4"],
            ["Email/parse", {"accountId": w.account(), "blobIds": [upload["blobId"]]}, "5"],
            ["Thread/get", {"accountId": w.account(), "ids": []}, "6"],
            ["Email/get", {"accountId": "someone-else", "ids": [first.clone()]}, "7"],
            ["Email/changes", {"accountId": w.account(), "sinceState": "0"}, "8"]
        ]),
    );
    let accessed = &response.accessed;
    let summary: Vec<(&str, bool, usize)> = accessed
        .iter()
        .map(|a| (a.operation.as_str(), a.content, a.email_ids.len()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("Email/get", true, 2),
            ("Email/get", false, 1),
            ("Email/query", false, 1),
            ("SearchSnippet/get", true, 1),
            ("Email/parse", true, 0),
            ("Thread/get", false, 0),
        ],
        "one entry per reading call, none for mailbox metadata, errors or change lists"
    );
    let content = &accessed[0];
    assert_eq!(content.account_id, w.account());
    assert_eq!(
        content.email_ids,
        vec![first.clone(), second.clone()],
        "found ids only"
    );
    assert_eq!(
        content.message_ids,
        vec!["q4@globex.test".to_owned(), "plans@x".to_owned()]
    );
    assert_eq!(
        content.mailbox_ids,
        vec![w.mailbox("inbox"), w.mailbox("archive")]
    );
    assert_eq!(accessed[1].email_ids, vec![first]);
    assert_eq!(accessed[2].email_ids, vec![second]);
    assert_eq!(
        accessed[4].blob_ids,
        vec![upload["blobId"].as_str().unwrap().to_owned()]
    );
    assert_eq!(accessed[4].message_ids, vec!["q4@globex.test".to_owned()]);

    let download = Access::download(w.account(), "b1");
    assert_eq!(
        (download.operation.as_str(), download.content),
        ("download", true)
    );
    assert_eq!(download.blob_ids, vec!["b1".to_owned()]);
}

#[test]
fn each_access_is_handed_over_before_the_mail_it_reads_is_loaded() {
    let w = world();
    let first = w.deliver(MULTIPART, "inbox", &[], T0);
    let second = w.deliver(
        &simple("Plans", "b@x", "plans@x", "tangerine"),
        "inbox",
        &[],
        T0 + 1,
    );
    let (response, handed) = w.request_recording(
        &w.alice,
        json!([
            ["Email/get", {"accountId": w.account(), "ids": [first.clone()], "properties": ["subject", "textBody"]}, "0"],
            ["Email/query", {"accountId": w.account(), "filter": {"text": "tangerine"}}, "1"]
        ]),
    );
    assert_eq!(handed, response.accessed, "every access, in call order");
    assert_eq!(handed.len(), 2);

    // A message whose stored bytes no longer match their hash cannot be
    // loaded: the call fails, and the access was handed over before that.
    let blob = w.call(
        "Email/get",
        json!({"accountId": w.account(), "ids": [second.clone()], "properties": ["blobId"]}),
    )["list"][0]["blobId"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = w
        .data_dir()
        .join("blobs")
        .join(&blob[..2])
        .join(&blob[2..4])
        .join(&blob);
    std::fs::write(&path, b"not the message").unwrap();
    let (response, handed) = w.request_recording(
        &w.alice,
        json!([["Email/get", {"accountId": w.account(), "ids": [second.clone()],
            "properties": ["subject", "textBody"]}, "0"]]),
    );
    assert_eq!(responses(&response)[0][0], "error", "{:?}", response.body);
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].operation, "Email/get");
    assert_eq!(handed[0].email_ids, vec![second]);
    assert_eq!(handed[0].message_ids, vec!["plans@x".to_owned()]);
}
