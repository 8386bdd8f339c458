//! Email/get, /changes, /query, /queryChanges, /set, /import, /copy,
//! /parse; Thread/get, /changes; SearchSnippet/get.

use serde_json::{Value, json};

use crate::kit::*;

fn ids(value: &Value) -> Vec<String> {
    serde_json::from_value(value.clone()).unwrap()
}

#[test]
fn get_returns_metadata_headers_and_bodies() {
    let w = world();
    let id = w.deliver(MULTIPART, "inbox", &["$seen"], T0);
    let got = w.call(
        "Email/get",
        json!({
            "accountId": w.account(),
            "ids": [id.clone(), "missing"],
            "properties": [
                "id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt",
                "messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc",
                "replyTo", "subject", "sentAt", "hasAttachment", "preview", "bodyValues",
                "textBody", "htmlBody", "attachments", "bodyStructure", "headers",
                "header:X-Classification:asText", "header:Subject"
            ],
            "fetchTextBodyValues": true,
            "fetchHTMLBodyValues": true
        }),
    );
    assert_eq!(got["notFound"], json!(["missing"]));
    assert_eq!(got["state"], w.state());
    let e = &got["list"][0];
    assert_eq!(e["id"], id);
    assert_eq!(e["blobId"].as_str().unwrap().len(), 64);
    assert!(e["threadId"].is_string());
    assert_eq!(e["mailboxIds"], json!({ w.mailbox("inbox"): true }));
    assert_eq!(e["keywords"], json!({"$seen": true}));
    assert_eq!(e["size"], MULTIPART.len());
    assert_eq!(e["receivedAt"], "2026-12-01T10:00:00Z");
    assert_eq!(e["messageId"], json!(["q4@globex.test"]));
    assert_eq!(e["inReplyTo"], Value::Null);
    assert_eq!(e["sender"], Value::Null);
    assert_eq!(
        e["from"],
        json!([{"name": "Carol", "email": "carol@globex.test"}])
    );
    assert_eq!(e["to"], json!([{"name": null, "email": "alice@acme.test"}]));
    assert_eq!(
        e["cc"],
        json!([{"name": "Dave", "email": "dave@acme.test"}])
    );
    assert_eq!(e["bcc"], json!([{"name": null, "email": "eve@acme.test"}]));
    assert_eq!(
        e["replyTo"],
        json!([{"name": null, "email": "replies@globex.test"}])
    );
    assert_eq!(e["subject"], "Quarterly numbers");
    assert_eq!(e["sentAt"], "2026-12-01T10:00:00+01:00");
    assert_eq!(e["hasAttachment"], true);
    assert!(
        e["preview"]
            .as_str()
            .unwrap()
            .starts_with("The quarterly numbers")
    );
    assert_eq!(e["header:X-Classification:asText"], "internal");
    assert_eq!(e["header:Subject"], " Quarterly numbers");
    assert!(
        e["headers"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "X-Classification", "value": " internal"}))
    );

    let text = &e["textBody"][0];
    assert_eq!(text["type"], "text/plain");
    assert_eq!(text["charset"], "utf-8");
    let text_part = text["partId"].as_str().unwrap();
    assert!(
        e["bodyValues"][text_part]["value"]
            .as_str()
            .unwrap()
            .contains("Revenue is up.")
    );
    assert_eq!(e["bodyValues"][text_part]["isTruncated"], false);
    let html = &e["htmlBody"][0];
    assert_eq!(html["type"], "text/html");
    assert!(
        e["bodyValues"][html["partId"].as_str().unwrap()]["value"]
            .as_str()
            .unwrap()
            .contains("<b>quarterly</b>")
    );
    let attachment = &e["attachments"][0];
    assert_eq!(attachment["name"], "q4.pdf");
    assert_eq!(attachment["type"], "application/pdf");
    assert_eq!(attachment["disposition"], "attachment");
    assert_eq!(attachment["charset"], Value::Null);
    assert_eq!(attachment["size"], 15);
    assert!(
        attachment["blobId"]
            .as_str()
            .unwrap()
            .starts_with(e["blobId"].as_str().unwrap())
    );
    let structure = &e["bodyStructure"];
    assert_eq!(structure["type"], "multipart/mixed");
    assert_eq!(structure["partId"], Value::Null);
    assert_eq!(structure["subParts"][0]["type"], "multipart/alternative");
    assert_eq!(
        structure["subParts"][0]["subParts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(structure["subParts"][1]["name"], "q4.pdf");

    let truncated = w.call(
        "Email/get",
        json!({
            "accountId": w.account(), "ids": [id], "properties": ["bodyValues", "textBody"],
            "fetchAllBodyValues": true, "maxBodyValueBytes": 10,
            "bodyProperties": ["partId", "type", "header:Content-Type:asText"]
        }),
    );
    let values = truncated["list"][0]["bodyValues"].as_object().unwrap();
    assert_eq!(values.len(), 2, "text and html parts");
    for value in values.values() {
        assert_eq!(value["isTruncated"], true);
        assert!(value["value"].as_str().unwrap().len() <= 10);
    }
    let part = &truncated["list"][0]["textBody"][0];
    assert_eq!(
        part.as_object().unwrap().len(),
        3,
        "only the body properties asked for"
    );
    assert_eq!(
        part["header:Content-Type:asText"],
        "text/plain; charset=utf-8"
    );
}

#[test]
fn a_plain_message_gets_one_text_part_and_defaults() {
    let w = world();
    let id = w.deliver(
        &simple("Hi", "Bob <bob@globex.test>", "p@x", "Just text."),
        "inbox",
        &[],
        T0,
    );
    let got = w.call(
        "Email/get",
        json!({"accountId": w.account(), "ids": [id], "fetchTextBodyValues": true}),
    );
    let e = &got["list"][0];
    for property in [
        "id",
        "blobId",
        "threadId",
        "mailboxIds",
        "keywords",
        "textBody",
        "htmlBody",
        "attachments",
        "bodyValues",
        "preview",
    ] {
        assert!(e.get(property).is_some(), "default property {property}");
    }
    assert!(e.get("headers").is_none() && e.get("bodyStructure").is_none());
    assert_eq!(e["keywords"], json!({}));
    assert_eq!(e["attachments"], json!([]));
    assert_eq!(e["textBody"][0]["type"], "text/plain");
    assert_eq!(e["textBody"][0]["charset"], "us-ascii");
    let part = e["textBody"][0]["partId"].as_str().unwrap();
    assert_eq!(e["bodyValues"][part]["value"], "Just text.\r\n");
}

#[test]
fn changes_track_new_updated_and_destroyed_emails() {
    let w = world();
    let kept = w.deliver(&simple("a", "b@x", "a@x", "a"), "inbox", &[], T0);
    let since = w.state();
    let gone = w.deliver(&simple("b", "b@x", "b@x", "b"), "inbox", &[], T0);
    let flagged = w.deliver(&simple("c", "b@x", "c@x", "c"), "inbox", &[], T0);
    let middle = w.state();
    w.call("Email/set", json!({"accountId": w.account(), "update": {kept.clone(): {"keywords/$flagged": true}}, "destroy": [gone.clone()]}));

    let all = w.call(
        "Email/changes",
        json!({"accountId": w.account(), "sinceState": since}),
    );
    assert_eq!(
        all["created"],
        json!([flagged.clone()]),
        "created then destroyed cancels out"
    );
    assert_eq!(all["updated"], json!([kept.clone()]));
    assert_eq!(all["destroyed"], json!([]));
    assert_eq!(all["newState"], w.state());
    let later = w.call(
        "Email/changes",
        json!({"accountId": w.account(), "sinceState": middle}),
    );
    assert_eq!(later["created"], json!([]));
    assert_eq!(later["updated"], json!([kept]));
    assert_eq!(later["destroyed"], json!([gone]));
    let paged = w.call(
        "Email/changes",
        json!({"accountId": w.account(), "sinceState": since, "maxChanges": 1}),
    );
    assert_eq!(paged["hasMoreChanges"], true);
    let next = w.call(
        "Email/changes",
        json!({"accountId": w.account(), "sinceState": paged["newState"]}),
    );
    assert_eq!(next["oldState"], paged["newState"]);
}

struct Mail {
    root: String,
    reply: String,
    lunch: String,
    report: String,
    junk: String,
}

fn mail(w: &World) -> Mail {
    Mail {
        root: w.deliver(
            &simple(
                "Plans",
                "Carol <carol@globex.test>",
                "root@x",
                "the tangerine protocol",
            ),
            "inbox",
            &["$seen"],
            T0,
        ),
        reply: w.deliver(
            &reply("Re: Plans", "reply@x", "root@x", "agreed, tangerine it is"),
            "inbox",
            &[],
            T0 + 60,
        ),
        lunch: w.deliver(
            &simple("Lunch", "dave@acme.test", "lunch@x", "pizza on friday"),
            "inbox",
            &["$flagged"],
            T0 + 120,
        ),
        report: w.deliver(MULTIPART, "archive", &["$seen"], T0 + 180),
        junk: w.deliver(
            &simple("WIN NOW", "spam@spam.test", "spam@x", "free money"),
            "junk",
            &[],
            T0 - 86_400,
        ),
    }
}

#[test]
fn query_filters_sort_and_collapse() {
    let w = world();
    let m = mail(&w);
    let inbox = w.mailbox("inbox");
    let query = |args: Value| {
        let mut args = args;
        args["accountId"] = json!(w.account());
        w.call("Email/query", args)
    };
    let cases: Vec<(Value, Vec<&String>)> = vec![
        (
            json!({}),
            vec![&m.report, &m.lunch, &m.reply, &m.root, &m.junk],
        ),
        (
            json!({"filter": {"inMailbox": inbox}}),
            vec![&m.lunch, &m.reply, &m.root],
        ),
        (
            json!({"filter": {"inMailboxOtherThan": [inbox, w.mailbox("junk")]}}),
            vec![&m.report],
        ),
        (
            json!({"filter": {"text": "tangerine"}}),
            vec![&m.reply, &m.root],
        ),
        (json!({"filter": {"body": "pizza"}}), vec![&m.lunch]),
        (
            json!({"filter": {"from": "CAROL"}}),
            vec![&m.report, &m.root],
        ),
        (
            json!({"filter": {"to": "alice@acme"}}),
            vec![&m.report, &m.lunch, &m.reply, &m.root, &m.junk],
        ),
        (json!({"filter": {"cc": "dave"}}), vec![&m.report]),
        (
            json!({"filter": {"subject": "plans"}}),
            vec![&m.reply, &m.root],
        ),
        (
            json!({"filter": {"after": "2026-12-01T10:01:00Z"}}),
            vec![&m.report, &m.lunch, &m.reply],
        ),
        (
            json!({"filter": {"before": "2026-12-01T10:00:00Z"}}),
            vec![&m.junk],
        ),
        (
            json!({"filter": {"hasKeyword": "$flagged"}}),
            vec![&m.lunch],
        ),
        (
            json!({"filter": {"notKeyword": "$seen", "inMailbox": inbox}}),
            vec![&m.lunch, &m.reply],
        ),
        (json!({"filter": {"hasAttachment": true}}), vec![&m.report]),
        (json!({"filter": {"minSize": 500}}), vec![&m.report]),
        (
            json!({"filter": {"someInThreadHaveKeyword": "$seen", "inMailbox": inbox}}),
            vec![&m.reply, &m.root],
        ),
        (
            json!({"filter": {"allInThreadHaveKeyword": "$seen"}}),
            vec![&m.report],
        ),
        (
            json!({"filter": {"noneInThreadHaveKeyword": "$seen"}}),
            vec![&m.lunch, &m.junk],
        ),
        (
            json!({"filter": {"operator": "OR", "conditions": [{"subject": "lunch"}, {"text": "money"}]}}),
            vec![&m.lunch, &m.junk],
        ),
        (
            json!({"filter": {"operator": "AND", "conditions": [
                {"inMailbox": inbox},
                {"operator": "NOT", "conditions": [{"hasKeyword": "$seen"}, {"from": "dave"}]}
            ]}}),
            vec![&m.reply],
        ),
        (
            json!({"sort": [{"property": "receivedAt", "isAscending": true}]}),
            vec![&m.junk, &m.root, &m.reply, &m.lunch, &m.report],
        ),
        (
            json!({"sort": [{"property": "subject"}], "filter": {"inMailbox": inbox}}),
            vec![&m.lunch, &m.root, &m.reply],
        ),
        (
            json!({"sort": [{"property": "size", "isAscending": false}], "limit": 1}),
            vec![&m.report],
        ),
        (
            json!({"sort": [{"property": "hasKeyword", "keyword": "$flagged", "isAscending": false}], "limit": 1}),
            vec![&m.lunch],
        ),
        (
            json!({"collapseThreads": true, "filter": {"inMailbox": inbox}}),
            vec![&m.lunch, &m.reply],
        ),
        (json!({"position": 1, "limit": 2}), vec![&m.lunch, &m.reply]),
        (json!({"position": -1}), vec![&m.junk]),
        (
            json!({"anchor": m.reply, "anchorOffset": -1, "limit": 2}),
            vec![&m.lunch, &m.reply],
        ),
    ];
    for (args, expect) in cases {
        let got = query(args.clone());
        assert_eq!(
            ids(&got["ids"]),
            expect.into_iter().cloned().collect::<Vec<_>>(),
            "{args}"
        );
        assert_eq!(got["queryState"], w.state());
        assert_eq!(got["canCalculateChanges"], false);
    }
    let total = query(json!({"calculateTotal": true, "limit": 2, "position": 1}));
    assert_eq!(
        (total["total"].clone(), total["position"].clone()),
        (json!(5), json!(1))
    );

    let unchanged = w.call(
        "Email/queryChanges",
        json!({"accountId": w.account(), "sinceQueryState": w.state(), "filter": {"inMailbox": inbox}, "calculateTotal": true}),
    );
    assert_eq!(unchanged["added"], json!([]));
    assert_eq!(unchanged["total"], 3);
    let old = w.call_error(
        "Email/queryChanges",
        json!({"accountId": w.account(), "sinceQueryState": "1"}),
    );
    assert_eq!(old, "cannotCalculateChanges");
}

#[test]
fn query_results_are_capped_at_the_get_limit() {
    let w = world_with(|c| c.max_objects_in_get = 2);
    mail(&w);
    let got = w.call(
        "Email/query",
        json!({"accountId": w.account(), "calculateTotal": true}),
    );
    assert_eq!(got["ids"].as_array().unwrap().len(), 2);
    assert_eq!(got["limit"], 2);
    assert_eq!(got["total"], 5);
}

#[test]
fn set_changes_keywords_and_mailboxes_and_destroys() {
    let w = world();
    let m = mail(&w);
    let (inbox, archive, trash) = (w.mailbox("inbox"), w.mailbox("archive"), w.mailbox("trash"));
    let before = w.state();
    let set = w.call(
        "Email/set",
        json!({
            "accountId": w.account(),
            "ifInState": before,
            "create": {"draft": {"subject": "new"}},
            "update": {
                m.root.clone(): {"keywords/$flagged": true, "keywords/$seen": null, "mailboxIds/".to_owned() + &archive: true},
                m.reply.clone(): {"keywords": {"$seen": true, "$Answered": true}, "mailboxIds": {archive.clone(): true}},
                m.lunch.clone(): {"mailboxIds": {}},
                m.report.clone(): {"subject": "edited"},
                m.junk.clone(): {"keywords": {"bad word": true}},
                "nope": {"keywords/$seen": true},
                m.reply.clone() + "x": {"keywords": {}}
            },
            "destroy": [m.junk.clone(), "nope"]
        }),
    );
    assert_eq!(set["oldState"], before);
    assert_eq!(set["notCreated"]["draft"]["type"], "forbidden");
    assert_eq!(set["created"], Value::Null);
    assert!(set["updated"].as_object().unwrap().contains_key(&m.root));
    assert!(set["updated"].as_object().unwrap().contains_key(&m.reply));
    assert_eq!(
        set["notUpdated"][&m.lunch]["properties"],
        json!(["mailboxIds"])
    );
    assert_eq!(
        set["notUpdated"][&m.report]["properties"],
        json!(["subject"])
    );
    assert_eq!(
        set["notUpdated"][&m.junk]["properties"],
        json!(["keywords"])
    );
    assert_eq!(set["notUpdated"]["nope"]["type"], "notFound");
    assert_eq!(set["destroyed"], json!([m.junk.clone()]));
    assert_eq!(set["notDestroyed"]["nope"]["type"], "notFound");

    let got = w.call(
        "Email/get",
        json!({"accountId": w.account(), "ids": [m.root.clone(), m.reply.clone(), m.junk.clone()], "properties": ["keywords", "mailboxIds"]}),
    );
    assert_eq!(got["list"][0]["keywords"], json!({"$flagged": true}));
    assert_eq!(
        got["list"][0]["mailboxIds"],
        json!({inbox.clone(): true, archive.clone(): true})
    );
    assert_eq!(
        got["list"][1]["keywords"],
        json!({"$answered": true, "$seen": true})
    );
    assert_eq!(got["list"][1]["mailboxIds"], json!({archive.clone(): true}));
    assert_eq!(got["notFound"], json!([m.junk]));

    let conflict = w.call(
        "Email/set",
        json!({"accountId": w.account(), "update": {
            m.root.clone(): {"keywords": {}, "keywords/$seen": true},
            m.reply.clone(): {"mailboxIds/nope": true},
            m.lunch.clone(): {("mailboxIds/".to_owned() + &trash): true, ("mailboxIds/".to_owned() + &inbox): null}
        }}),
    );
    assert_eq!(conflict["notUpdated"][&m.root]["type"], "invalidPatch");
    assert_eq!(
        conflict["notUpdated"][&m.reply]["properties"],
        json!(["mailboxIds"])
    );
    assert!(
        conflict["updated"]
            .as_object()
            .unwrap()
            .contains_key(&m.lunch),
        "moved to trash"
    );
}

#[test]
fn import_files_uploaded_blobs_through_delivery() {
    let w = world();
    let raw = simple(
        "Imported",
        "Bob <bob@globex.test>",
        "imp@x",
        "from the archive",
    );
    let upload = w
        .jmap
        .upload(&w.alice, w.account(), "message/rfc822", raw.as_bytes())
        .unwrap();
    assert_eq!(upload["accountId"], w.account());
    assert_eq!(upload["type"], "message/rfc822");
    assert_eq!(upload["size"], raw.len());
    let blob = upload["blobId"].as_str().unwrap().to_owned();
    let garbage = w
        .jmap
        .upload(
            &w.alice,
            w.account(),
            "application/octet-stream",
            b"\r\n\r\n",
        )
        .unwrap();
    let before = w.state();
    let import = w.call(
        "Email/import",
        json!({
            "accountId": w.account(),
            "ifInState": before,
            "emails": {
                "ok": {"blobId": blob, "mailboxIds": {w.mailbox("archive"): true}, "keywords": {"$seen": true}, "receivedAt": "2026-01-02T03:04:05Z"},
                "noBlob": {"blobId": "0".repeat(64), "mailboxIds": {w.mailbox("inbox"): true}},
                "badMailbox": {"blobId": blob, "mailboxIds": {"nope": true}},
                "noMailbox": {"blobId": blob, "mailboxIds": {}},
                "badKeyword": {"blobId": blob, "mailboxIds": {w.mailbox("inbox"): true}, "keywords": {"a b": true}},
                "badDate": {"blobId": blob, "mailboxIds": {w.mailbox("inbox"): true}, "receivedAt": "yesterday"},
                "extra": {"blobId": blob, "mailboxIds": {w.mailbox("inbox"): true}, "subject": "x"},
                "garbage": {"blobId": garbage["blobId"], "mailboxIds": {w.mailbox("inbox"): true}}
            }
        }),
    );
    assert_eq!(import["oldState"], before);
    assert_ne!(import["newState"], before);
    let created = &import["created"]["ok"];
    assert_eq!(created["blobId"], blob);
    assert_eq!(created["size"], raw.len());
    assert!(created["threadId"].is_string());
    let not_created = &import["notCreated"];
    assert_eq!(not_created["noBlob"]["type"], "blobNotFound");
    assert_eq!(not_created["noBlob"]["notFound"], json!(["0".repeat(64)]));
    assert_eq!(
        not_created["badMailbox"]["properties"],
        json!(["mailboxIds"])
    );
    assert_eq!(
        not_created["noMailbox"]["properties"],
        json!(["mailboxIds"])
    );
    assert_eq!(not_created["badKeyword"]["properties"], json!(["keywords"]));
    assert_eq!(not_created["badDate"]["properties"], json!(["receivedAt"]));
    assert_eq!(not_created["extra"]["properties"], json!(["subject"]));
    assert_eq!(not_created["garbage"]["type"], "invalidEmail");

    let got = w.call(
        "Email/get",
        json!({"accountId": w.account(), "ids": [created["id"]], "properties": ["subject", "receivedAt", "keywords", "mailboxIds"]}),
    );
    let e = &got["list"][0];
    assert_eq!(e["subject"], "Imported");
    assert_eq!(e["receivedAt"], "2026-01-02T03:04:05Z");
    assert_eq!(e["keywords"], json!({"$seen": true}));
    assert_eq!(e["mailboxIds"], json!({w.mailbox("archive"): true}));

    // Without receivedAt the injected clock decides.
    let again = w.call(
        "Email/import",
        json!({"accountId": w.account(), "emails": {"x": {"blobId": blob, "mailboxIds": {w.mailbox("inbox"): true}}}}),
    );
    let got = w.call(
        "Email/get",
        json!({"accountId": w.account(), "ids": [again["created"]["x"]["id"]], "properties": ["receivedAt"]}),
    );
    assert_eq!(got["list"][0]["receivedAt"], "2026-12-01T11:00:00Z");
}

#[test]
fn copy_has_no_second_account_to_copy_between() {
    let w = world();
    let id = w.deliver(&simple("a", "b@x", "a@x", "a"), "inbox", &[], T0);
    let create = json!({"c": {"id": id, "mailboxIds": {w.mailbox("inbox"): true}}});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"fromAccountId": w.account(), "accountId": w.account(), "create": create}),
            "invalidArguments",
        ),
        (
            json!({"fromAccountId": w.mallory.account_id, "accountId": w.account(), "create": create}),
            "fromAccountNotFound",
        ),
        (
            json!({"fromAccountId": w.account(), "accountId": w.mallory.account_id, "create": create}),
            "accountNotFound",
        ),
        (
            json!({"fromAccountId": w.account(), "accountId": w.account()}),
            "invalidArguments",
        ),
    ];
    for (args, expect) in cases {
        assert_eq!(w.call_error("Email/copy", args.clone()), expect, "{args}");
    }
}

#[test]
fn parse_reads_uploads_and_attached_messages_without_storing_them() {
    let w = world();
    let inner = simple(
        "Forwarded plans",
        "Carol <carol@globex.test>",
        "inner@x",
        "the inner body",
    );
    let outer = format!(
        "From: bob@globex.test\r\nTo: alice@acme.test\r\nSubject: Fwd: plans\r\nMessage-ID: <outer@x>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--b--\r\n"
    );
    let upload = w
        .jmap
        .upload(&w.alice, w.account(), "message/rfc822", outer.as_bytes())
        .unwrap();
    let blob = upload["blobId"].as_str().unwrap().to_owned();
    let garbage = w
        .jmap
        .upload(&w.alice, w.account(), "text/plain", b"")
        .unwrap_or_else(|_| upload.clone());
    let before = w.state();
    let parsed = w.call(
        "Email/parse",
        json!({"accountId": w.account(), "blobIds": [blob.clone(), "f".repeat(64)], "fetchTextBodyValues": true}),
    );
    let e = &parsed["parsed"][&blob];
    assert_eq!(e["subject"], "Fwd: plans");
    assert!(e.get("id").is_none() && e.get("mailboxIds").is_none());
    assert_eq!(e["messageId"], json!(["outer@x"]));
    assert_eq!(parsed["notFound"], json!(["f".repeat(64)]));
    let attached = e["attachments"][0]["blobId"].as_str().unwrap().to_owned();
    assert_eq!(e["attachments"][0]["type"], "message/rfc822");

    let inner_parsed = w.call(
        "Email/parse",
        json!({"accountId": w.account(), "blobIds": [attached.clone()], "properties": ["id", "subject", "from", "preview", "receivedAt"]}),
    );
    let e = &inner_parsed["parsed"][&attached];
    assert_eq!(e["subject"], "Forwarded plans");
    assert_eq!(
        e["from"],
        json!([{"name": "Carol", "email": "carol@globex.test"}])
    );
    assert_eq!(e["preview"], "the inner body");
    assert_eq!(e["id"], Value::Null);
    assert_eq!(e["receivedAt"], Value::Null);
    assert_eq!(w.state(), before, "parsing stores nothing");
    if garbage["blobId"] != upload["blobId"] {
        let bad = w.call(
            "Email/parse",
            json!({"accountId": w.account(), "blobIds": [garbage["blobId"]]}),
        );
        assert_eq!(bad["notParsable"], json!([garbage["blobId"]]));
    }
}

#[test]
fn threads_group_replies_in_arrival_order() {
    let w = world();
    let m = mail(&w);
    let got = w.call(
        "Email/get",
        json!({"accountId": w.account(), "ids": [m.root.clone(), m.lunch.clone()], "properties": ["threadId"]}),
    );
    let plans = got["list"][0]["threadId"].as_str().unwrap().to_owned();
    let lunch = got["list"][1]["threadId"].as_str().unwrap().to_owned();
    let since = w.state();
    let later = w.deliver(
        &reply("Re: Plans", "r2@x", "reply@x", "third"),
        "inbox",
        &[],
        T0 + 999,
    );
    let threads = w.call(
        "Thread/get",
        json!({"accountId": w.account(), "ids": [plans.clone(), lunch.clone(), "nope"]}),
    );
    assert_eq!(
        threads["list"][0],
        json!({"id": plans, "emailIds": [m.root, m.reply, later]})
    );
    assert_eq!(
        threads["list"][1],
        json!({"id": lunch, "emailIds": [m.lunch]})
    );
    assert_eq!(threads["notFound"], json!(["nope"]));
    assert_eq!(threads["state"], w.state());
    let all = w.call("Thread/get", json!({"accountId": w.account()}));
    assert_eq!(all["list"].as_array().unwrap().len(), 4);

    let changes = w.call(
        "Thread/changes",
        json!({"accountId": w.account(), "sinceState": since}),
    );
    assert_eq!(changes["updated"], json!([plans]));
    assert_eq!(changes["created"], json!([]));
}

#[test]
fn search_snippets_mark_the_matched_words() {
    let w = world();
    let m = mail(&w);
    let snippets = w.call(
        "SearchSnippet/get",
        json!({
            "accountId": w.account(),
            "filter": {"operator": "OR", "conditions": [{"text": "tangerine"}, {"subject": "plans"}]},
            "emailIds": [m.root.clone(), m.lunch.clone(), "nope"]
        }),
    );
    assert_eq!(snippets["notFound"], json!(["nope"]));
    assert_eq!(
        snippets["list"][0],
        json!({"emailId": m.root, "subject": "<mark>Plans</mark>", "preview": "the <mark>tangerine</mark> protocol"})
    );
    assert_eq!(
        snippets["list"][1],
        json!({"emailId": m.lunch, "subject": null, "preview": null})
    );
    let escaped = w.call(
        "SearchSnippet/get",
        json!({"accountId": w.account(), "filter": {"body": "attached"}, "emailIds": [m.report]}),
    );
    assert_eq!(
        escaped["list"][0]["preview"],
        "The quarterly numbers are <mark>attached</mark>. Revenue is up."
    );
    let none = w.call(
        "SearchSnippet/get",
        json!({"accountId": w.account(), "emailIds": [m.reply]}),
    );
    assert_eq!(none["list"][0]["subject"], Value::Null);
}
