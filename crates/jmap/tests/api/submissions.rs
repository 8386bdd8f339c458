//! EmailSubmission/get, /changes, /query, /set: delivery to users of this
//! server in any tenant, refusal of everything else, and the implicit
//! Email/set of onSuccessUpdateEmail.

use serde_json::{Value, json};
use stormproof_jmap::{Access, Caller};

use crate::kit::*;

/// A draft from Alice, in her Drafts with `$draft`.
fn draft(w: &World, headers: &str, message_id: &str) -> String {
    let raw = format!(
        "From: Alice <alice@acme.test>\r\n{headers}Subject: Plans\r\n\
Message-ID: <{message_id}>\r\nDate: Tue, 1 Dec 2026 09:00:00 +0000\r\n\r\nSee you at noon.\r\n"
    );
    w.deliver(&raw, "drafts", &["$draft", "$seen"], T0)
}

fn default_identity(w: &World) -> String {
    w.call("Identity/get", json!({"accountId": w.account()}))["list"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn inbox_ids(w: &World, caller: &Caller) -> Vec<String> {
    let inbox = w.mailbox_of(caller, "inbox");
    w.store
        .mailbox_email_ids(&caller.tenant, &caller.account_id, &inbox)
        .unwrap()
}

/// One call as `caller`, returning its response arguments.
fn call_as(w: &World, caller: &Caller, method: &str, args: Value) -> Value {
    let calls = w.calls(caller, json!([[method, args, "c"]]));
    assert_eq!(calls[0][0], method, "{}", calls[0]);
    calls[0][1].clone()
}

#[test]
fn a_submission_to_users_of_another_tenant_lands_in_their_inboxes() {
    let w = world();
    let bob = w.user(&w.alice.tenant, "u-bob", "bob@acme.test");
    let identity = default_identity(&w);
    let email = draft(
        &w,
        "To: Mallory <mallory@globex.test>\r\nBcc: bob@acme.test\r\n",
        "plans@acme.test",
    );
    let (drafts, sent) = (w.mailbox("drafts"), w.mailbox("sent"));
    let before = w.state();
    let response = w.request(
        &w.alice,
        json!([["EmailSubmission/set", {
            "accountId": w.account(),
            "create": {"send": {"identityId": identity, "emailId": email}},
            "onSuccessUpdateEmail": {"#send": {
                format!("mailboxIds/{drafts}"): null,
                format!("mailboxIds/{sent}"): true,
                "keywords/$draft": null
            }}
        }, "c"]]),
    );
    let calls = responses(&response);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0][0], "EmailSubmission/set");
    let created = &calls[0][1]["created"]["send"];
    assert_eq!(calls[0][1]["notCreated"], Value::Null, "{}", calls[0][1]);
    let submission = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["undoStatus"], "final");
    assert_eq!(created["sendAt"], "2026-12-01T11:00:00Z");
    assert_eq!(
        created["envelope"],
        json!({
            "mailFrom": {"email": "alice@acme.test", "parameters": null},
            "rcptTo": [
                {"email": "mallory@globex.test", "parameters": null},
                {"email": "bob@acme.test", "parameters": null}
            ]
        }),
        "derived from To, Cc and Bcc"
    );
    for rcpt in ["mallory@globex.test", "bob@acme.test"] {
        assert_eq!(
            created["deliveryStatus"][rcpt]["delivered"], "yes",
            "{rcpt}"
        );
    }
    assert_eq!(
        calls[1],
        json!(["Email/set", calls[1][1], "c"]),
        "the implicit Email/set follows under the same call id"
    );
    assert_eq!(calls[1][1]["updated"], json!({ email.clone(): null }));

    // Alice's copy moved to Sent and is no longer a draft.
    let mine = w.call(
        "Email/get",
        json!({"accountId": w.account(), "ids": [email.clone()],
               "properties": ["mailboxIds", "keywords"]}),
    );
    assert_eq!(mine["list"][0]["mailboxIds"], json!({ sent: true }));
    assert_eq!(mine["list"][0]["keywords"], json!({"$seen": true}));

    // Mallory, in tenant globex, has it in her inbox, without the Bcc.
    let delivered = inbox_ids(&w, &w.mallory);
    assert_eq!(delivered.len(), 1);
    let theirs = call_as(
        &w,
        &w.mallory,
        "Email/get",
        json!({"accountId": w.mallory.account_id, "ids": delivered,
               "properties": ["subject", "from", "bcc", "keywords", "messageId",
                              "header:Received:asText", "header:Return-Path:asText"]}),
    );
    let theirs = &theirs["list"][0];
    assert_eq!(theirs["subject"], "Plans");
    assert_eq!(theirs["from"][0]["email"], "alice@acme.test");
    assert_eq!(theirs["bcc"], Value::Null, "Bcc is removed before delivery");
    assert_eq!(theirs["keywords"], json!({}));
    assert_eq!(theirs["messageId"], json!(["plans@acme.test"]));
    assert_eq!(
        theirs["header:Received:asText"],
        "by mail.acme.test with JMAP; Tue, 1 Dec 2026 11:00:00 +0000"
    );
    assert_eq!(theirs["header:Return-Path:asText"], "<alice@acme.test>");
    assert_eq!(inbox_ids(&w, &bob).len(), 1, "the Bcc recipient got it too");
    assert!(inbox_ids(&w, &w.alice).is_empty());

    // The submission read the email's content: it is in the audit trail.
    assert_eq!(
        response.accessed,
        vec![Access {
            operation: "EmailSubmission/set".into(),
            account_id: w.account().into(),
            email_ids: vec![email.clone()],
            message_ids: vec!["plans@acme.test".into()],
            mailbox_ids: vec![drafts],
            blob_ids: vec![],
            content: true,
        }]
    );

    // And it can be read back, listed and followed.
    let got = w.request(
        &w.alice,
        json!([["EmailSubmission/get", {"accountId": w.account(), "ids": [submission.clone(), "nope"]}, "c"]]),
    );
    let list = &responses(&got)[0][1];
    let thread = w.call(
        "Email/get",
        json!({"accountId": w.account(), "ids": [email.clone()], "properties": ["threadId"]}),
    )["list"][0]["threadId"]
        .clone();
    assert_eq!(
        list["list"],
        json!([{
            "id": submission,
            "identityId": identity,
            "emailId": email,
            "threadId": thread,
            "envelope": created["envelope"],
            "sendAt": "2026-12-01T11:00:00Z",
            "undoStatus": "final",
            "deliveryStatus": created["deliveryStatus"],
            "dsnBlobIds": [],
            "mdnBlobIds": [],
        }])
    );
    assert_eq!(list["notFound"], json!(["nope"]));
    assert_eq!(got.accessed[0].operation, "EmailSubmission/get");
    assert!(got.accessed[0].content, "it returned recipients");

    let changes = w.call(
        "EmailSubmission/changes",
        json!({"accountId": w.account(), "sinceState": before}),
    );
    assert_eq!(changes["created"], json!([submission]));
    let query = |filter: Value| {
        w.call(
            "EmailSubmission/query",
            json!({"accountId": w.account(), "filter": filter, "sort": [{"property": "sentAt"}]}),
        )["ids"]
            .clone()
    };
    assert_eq!(query(json!({"emailIds": [email]})), json!([submission]));
    assert_eq!(query(json!({"undoStatus": "final"})), json!([submission]));
    assert_eq!(query(json!({"identityIds": ["other"]})), json!([]));
    assert_eq!(query(json!({"before": "2026-12-01T11:00:00Z"})), json!([]));

    // Sent is sent.
    let set = w.call(
        "EmailSubmission/set",
        json!({"accountId": w.account(), "update": {submission.clone(): {"undoStatus": "canceled"}}}),
    );
    assert_eq!(set["notUpdated"][&submission]["type"], "cannotUnsend");
    let set = w.call(
        "EmailSubmission/set",
        json!({"accountId": w.account(), "destroy": [submission.clone()]}),
    );
    assert_eq!(set["destroyed"], json!([submission]));
    assert_eq!(
        inbox_ids(&w, &w.mallory).len(),
        1,
        "destroying unsends nothing"
    );
}

#[test]
fn a_remote_recipient_refuses_the_whole_submission_and_delivers_nothing() {
    let w = world();
    let identity = default_identity(&w);
    let email = draft(
        &w,
        "To: mallory@globex.test\r\nCc: Carol <carol@example.org>\r\n",
        "remote@acme.test",
    );
    let drafts = w.mailbox("drafts");
    let state = w.state();
    let calls = w.calls(
        &w.alice,
        json!([["EmailSubmission/set", {
            "accountId": w.account(),
            "create": {
                "derived": {"identityId": identity, "emailId": email},
                "explicit": {"identityId": identity, "emailId": email, "envelope": {
                    "mailFrom": {"email": "alice@acme.test"},
                    "rcptTo": [{"email": "someone@example.net"}]
                }}
            },
            "onSuccessUpdateEmail": {"#derived": {"keywords/$draft": null}},
            "onSuccessDestroyEmail": ["#explicit"]
        }, "c"]]),
    );
    assert_eq!(calls.len(), 1, "no implicit Email/set: nothing succeeded");
    for (cid, who) in [
        ("derived", "carol@example.org"),
        ("explicit", "someone@example.net"),
    ] {
        let error = &calls[0][1]["notCreated"][cid];
        assert_eq!(error["type"], "forbiddenToSend", "{cid}");
        let description = error["description"].as_str().unwrap();
        assert!(
            description.contains("remote delivery is not available") && description.contains(who),
            "{description}"
        );
    }
    assert!(
        inbox_ids(&w, &w.mallory).is_empty(),
        "not even the local one"
    );
    assert_eq!(w.state(), state, "nothing recorded");
    let got = w.call("EmailSubmission/get", json!({"accountId": w.account()}));
    assert_eq!(got["list"], json!([]));
    let mine = w.call(
        "Email/get",
        json!({"accountId": w.account(), "ids": [email], "properties": ["mailboxIds", "keywords"]}),
    );
    assert_eq!(mine["list"][0]["mailboxIds"], json!({ drafts: true }));
    assert_eq!(mine["list"][0]["keywords"]["$draft"], true);
}

#[test]
fn senders_and_recipients_are_checked_before_anything_is_sent() {
    let w = world();
    let identity = default_identity(&w);
    let good = draft(&w, "To: mallory@globex.test\r\n", "good@acme.test");
    let forged = w.deliver(
        "From: Bob <bob@acme.test>\r\nTo: mallory@globex.test\r\nSubject: Forged\r\n\r\nHi\r\n",
        "drafts",
        &["$draft"],
        T0,
    );
    let nobody = draft(&w, "", "nobody@acme.test");
    let envelope = |from: &str, to: &[&str]| {
        json!({
            "mailFrom": {"email": from},
            "rcptTo": to.iter().map(|t| json!({"email": t})).collect::<Vec<_>>()
        })
    };
    let set = w.call(
        "EmailSubmission/set",
        json!({"accountId": w.account(), "create": {
            "forged_from": {"identityId": identity, "emailId": forged},
            "forged_mail_from": {"identityId": identity, "emailId": good,
                                 "envelope": envelope("bob@acme.test", &["mallory@globex.test"])},
            "unknown_user": {"identityId": identity, "emailId": good,
                             "envelope": envelope("alice@acme.test", &["ghost@globex.test"])},
            "not_an_address": {"identityId": identity, "emailId": good,
                               "envelope": envelope("alice@acme.test", &["ghost"])},
            "no_recipients": {"identityId": identity, "emailId": nobody},
            "parameters": {"identityId": identity, "emailId": good, "envelope": {
                "mailFrom": {"email": "alice@acme.test", "parameters": {"HOLDFOR": "60"}},
                "rcptTo": [{"email": "mallory@globex.test"}]}},
            "no_identity": {"identityId": "nope", "emailId": good},
            "no_email": {"identityId": identity, "emailId": "nope"},
            "mallorys_email": {"identityId": identity, "emailId": "#elsewhere"},
            "server_set": {"identityId": identity, "emailId": good, "undoStatus": "pending"}
        }}),
    );
    assert_eq!(set["created"], Value::Null, "{set}");
    let kinds: Vec<(&str, &str)> = vec![
        ("forged_from", "forbiddenFrom"),
        ("forged_mail_from", "forbiddenMailFrom"),
        ("unknown_user", "invalidRecipients"),
        ("not_an_address", "invalidRecipients"),
        ("no_recipients", "noRecipients"),
        ("parameters", "invalidProperties"),
        ("no_identity", "invalidProperties"),
        ("no_email", "invalidProperties"),
        ("mallorys_email", "invalidProperties"),
        ("server_set", "invalidProperties"),
    ];
    for (cid, kind) in kinds {
        assert_eq!(
            set["notCreated"][cid]["type"], kind,
            "{cid}: {}",
            set["notCreated"][cid]
        );
    }
    assert_eq!(
        set["notCreated"]["unknown_user"]["invalidRecipients"],
        json!(["ghost@globex.test"])
    );
    assert!(inbox_ids(&w, &w.mallory).is_empty());

    // Mallory cannot send Alice's email, nor as Alice.
    let mallory_identity = call_as(
        &w,
        &w.mallory,
        "Identity/get",
        json!({"accountId": w.mallory.account_id}),
    )["list"][0]["id"]
        .clone();
    assert_eq!(
        call_as(
            &w,
            &w.mallory,
            "EmailSubmission/set",
            json!({"accountId": w.mallory.account_id, "create": {
                "steal": {"identityId": mallory_identity, "emailId": good},
                "impersonate": {"identityId": identity, "emailId": good}
            }}),
        )["notCreated"],
        json!({
            "steal": {"type": "invalidProperties", "description": "no such email", "properties": ["emailId"]},
            "impersonate": {"type": "invalidProperties", "description": "no such identity", "properties": ["identityId"]}
        })
    );
    assert!(inbox_ids(&w, &w.alice).is_empty());
}
