//! Result references (RFC 8620 section 3.7) and creation ids.

use serde_json::{Value, json};

use crate::kit::*;

#[test]
fn query_then_get_then_threads_by_reference() {
    let w = world();
    let root = w.deliver(
        &simple("Plans", "carol@globex.test", "root@x", "a"),
        "inbox",
        &[],
        T0,
    );
    let answer = w.deliver(
        &reply("Re: Plans", "r@x", "root@x", "b"),
        "archive",
        &[],
        T0 + 1,
    );
    let other = w.deliver(
        &simple("Lunch", "dave@acme.test", "l@x", "c"),
        "inbox",
        &[],
        T0 + 2,
    );
    let calls = w.calls(
        &w.alice,
        json!([
            ["Email/query", {"accountId": w.account(), "filter": {"inMailbox": w.mailbox("inbox")},
                "sort": [{"property": "receivedAt", "isAscending": false}], "limit": 10}, "q"],
            ["Email/get", {"accountId": w.account(), "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                "properties": ["threadId"]}, "g"],
            ["Thread/get", {"accountId": w.account(), "#ids": {"resultOf": "g", "name": "Email/get", "path": "/list/*/threadId"}}, "t"],
            ["Email/get", {"accountId": w.account(), "#ids": {"resultOf": "t", "name": "Thread/get", "path": "/list/*/emailIds"},
                "properties": ["subject"]}, "e"]
        ]),
    );
    assert_eq!(calls[0][1]["ids"], json!([other.clone(), root.clone()]));
    assert_eq!(calls[1][0], "Email/get");
    assert_eq!(calls[1][1]["list"].as_array().unwrap().len(), 2);
    assert_eq!(
        calls[2][1]["list"][1]["emailIds"],
        json!([root.clone(), answer.clone()])
    );
    let subjects: Vec<&Value> = calls[3][1]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["subject"])
        .collect();
    assert_eq!(
        subjects,
        vec![&json!("Lunch"), &json!("Plans"), &json!("Re: Plans")]
    );
    assert_eq!(calls[3][2], "e");
}

#[test]
fn bad_references_are_invalid_result_references() {
    let w = world();
    w.deliver(&simple("a", "b@x", "a@x", "a"), "inbox", &[], T0);
    let query = json!(["Email/query", {"accountId": w.account()}, "q"]);
    let failing = json!(["Foo/bar", {}, "f"]);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"resultOf": "nope", "name": "Email/query", "path": "/ids"}),
            "invalidResultReference",
        ),
        (
            json!({"resultOf": "q", "name": "Email/get", "path": "/ids"}),
            "invalidResultReference",
        ),
        (
            json!({"resultOf": "q", "name": "Email/query", "path": "/nope"}),
            "invalidResultReference",
        ),
        (
            json!({"resultOf": "q", "name": "Email/query", "path": "ids"}),
            "invalidResultReference",
        ),
        (
            json!({"resultOf": "q", "name": "Email/query"}),
            "invalidResultReference",
        ),
        (
            json!({"resultOf": "q", "name": "Email/query", "path": "/ids", "extra": 1}),
            "invalidResultReference",
        ),
        (json!("q/ids"), "invalidResultReference"),
        (
            json!({"resultOf": "f", "name": "Foo/bar", "path": "/ids"}),
            "invalidResultReference",
        ),
        (
            json!({"resultOf": "q", "name": "Email/query", "path": "/queryState"}),
            "invalidArguments",
        ),
    ];
    for (reference, expect) in cases {
        let calls = w.calls(
            &w.alice,
            json!([query, failing, ["Email/get", {"accountId": w.account(), "#ids": reference}, "g"]]),
        );
        assert_eq!(calls[2][0], "error", "{reference}");
        assert_eq!(calls[2][1]["type"], expect, "{reference}");
    }
    let both = w.calls(
        &w.alice,
        json!([query, ["Email/get", {"accountId": w.account(), "ids": [],
            "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}}, "g"]]),
    );
    assert_eq!(both[1][1]["type"], "invalidArguments");
}

#[test]
fn creation_ids_flow_from_mailbox_set_into_import_and_get() {
    let w = world();
    let raw = simple("Filed", "bob@globex.test", "f@x", "file me");
    let blob = w
        .jmap
        .upload(&w.alice, w.account(), "message/rfc822", raw.as_bytes())
        .unwrap()["blobId"]
        .clone();
    let body = json!({
        "using": [CORE, MAIL],
        "createdIds": {"existing": w.mailbox("archive")},
        "methodCalls": [
            ["Mailbox/set", {"accountId": w.account(), "create": {"box": {"name": "Receipts", "parentId": "#existing"}}}, "m"],
            ["Email/import", {"accountId": w.account(), "emails": {
                "msg": {"blobId": blob, "mailboxIds": {"#box": true, "#existing": true}}
            }}, "i"],
            ["Email/get", {"accountId": w.account(), "ids": ["#msg", "#unknown"], "properties": ["mailboxIds"]}, "g"],
            ["Email/set", {"accountId": w.account(), "update": {"#msg": {"mailboxIds/#existing": null}}}, "s"],
            ["Email/query", {"accountId": w.account(), "filter": {"inMailbox": "#box"}}, "q"],
            ["Mailbox/get", {"accountId": w.account(), "ids": ["#box"], "properties": ["parentId", "totalEmails"]}, "b"]
        ]
    });
    let response = w.raw(&w.alice, body.to_string().as_bytes());
    let calls = responses(&response);
    let mailbox = calls[0][1]["created"]["box"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let email = calls[1][1]["created"]["msg"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        calls[2][1]["list"][0]["mailboxIds"],
        json!({mailbox.clone(): true, w.mailbox("archive"): true})
    );
    assert_eq!(calls[2][1]["notFound"], json!(["#unknown"]));
    assert!(
        calls[3][1]["updated"]
            .as_object()
            .unwrap()
            .contains_key("#msg"),
        "{}",
        calls[3][1]
    );
    assert_eq!(calls[4][1]["ids"], json!([email.clone()]));
    assert_eq!(calls[5][1]["list"][0]["parentId"], w.mailbox("archive"));
    assert_eq!(calls[5][1]["list"][0]["totalEmails"], 1);
    assert_eq!(
        response.body["createdIds"],
        json!({"existing": w.mailbox("archive"), "box": mailbox, "msg": email})
    );
}
