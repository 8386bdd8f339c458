//! Tenant isolation: a caller of another tenant, holding every id of
//! Alice's it could have guessed, learns nothing.

use serde_json::{Value, json};
use stormproof_jmap::{Caller, ErrorKind};

use crate::kit::*;

#[test]
fn another_tenant_using_alices_account_id_gets_account_not_found() {
    let w = world();
    let email = w.deliver(
        &simple("Launch codes", "b@x", "secret@x", "tangerine"),
        "inbox",
        &[],
        T0,
    );
    let alice = w.account().to_owned();
    // Same account id, other tenant: the HTTP layer could only build this
    // from a token of globex, yet it must still find nothing.
    let spoof = Caller {
        account_id: alice.clone(),
        ..w.mallory.clone()
    };
    let methods: Vec<(&str, Value)> = vec![
        ("Mailbox/get", json!({"accountId": alice})),
        (
            "Mailbox/changes",
            json!({"accountId": alice, "sinceState": "0"}),
        ),
        ("Mailbox/query", json!({"accountId": alice})),
        (
            "Mailbox/queryChanges",
            json!({"accountId": alice, "sinceQueryState": "0"}),
        ),
        (
            "Mailbox/set",
            json!({"accountId": alice, "destroy": [w.mailbox("archive")]}),
        ),
        ("Email/get", json!({"accountId": alice, "ids": [email]})),
        (
            "Email/changes",
            json!({"accountId": alice, "sinceState": "0"}),
        ),
        (
            "Email/query",
            json!({"accountId": alice, "filter": {"text": "tangerine"}}),
        ),
        (
            "Email/queryChanges",
            json!({"accountId": alice, "sinceQueryState": "0"}),
        ),
        ("Email/set", json!({"accountId": alice, "destroy": [email]})),
        ("Email/import", json!({"accountId": alice, "emails": {}})),
        ("Email/parse", json!({"accountId": alice, "blobIds": []})),
        (
            "Email/copy",
            json!({"fromAccountId": alice, "accountId": alice, "create": {}}),
        ),
        ("Thread/get", json!({"accountId": alice})),
        (
            "Thread/changes",
            json!({"accountId": alice, "sinceState": "0"}),
        ),
        (
            "SearchSnippet/get",
            json!({"accountId": alice, "emailIds": [email]}),
        ),
        ("Identity/get", json!({"accountId": alice})),
        (
            "Identity/changes",
            json!({"accountId": alice, "sinceState": "0"}),
        ),
        (
            "Identity/set",
            json!({"accountId": alice, "create": {"i": {"email": "alice@acme.test"}}}),
        ),
        ("EmailSubmission/get", json!({"accountId": alice})),
        (
            "EmailSubmission/changes",
            json!({"accountId": alice, "sinceState": "0"}),
        ),
        ("EmailSubmission/query", json!({"accountId": alice})),
        (
            "EmailSubmission/set",
            json!({"accountId": alice, "create": {"s": {"identityId": "i", "emailId": email}}}),
        ),
        ("VacationResponse/get", json!({"accountId": alice})),
        (
            "VacationResponse/set",
            json!({"accountId": alice, "update": {"singleton": {"isEnabled": true}}}),
        ),
    ];
    for caller in [&w.mallory, &spoof] {
        for (method, args) in &methods {
            let response = w.request(caller, json!([[method, args, "c"]]));
            let calls = responses(&response);
            assert_eq!(
                calls[0][1]["type"], "accountNotFound",
                "{method} as {}",
                caller.account_id
            );
            assert!(!response.body.to_string().contains("Launch"), "{method}");
            assert!(response.accessed.is_empty(), "{method}");
        }
    }
    assert_eq!(
        w.call(
            "Email/get",
            json!({"accountId": alice, "ids": [email], "properties": ["subject"]})
        )["list"][0]["subject"],
        "Launch codes",
        "untouched"
    );
    let t = &w.alice.tenant;
    assert!(w.store.identities(t, &alice).unwrap().is_empty());
    assert!(w.store.email_submissions(t, &alice).unwrap().is_empty());
    assert_eq!(w.store.vacation_response(t, &alice).unwrap(), None);
}

#[test]
fn guessed_ids_in_ones_own_account_are_not_found() {
    let w = world();
    let email = w.deliver(
        &simple("Launch codes", "b@x", "secret@x", "tangerine"),
        "inbox",
        &[],
        T0,
    );
    let record = w.call(
        "Email/get",
        json!({"accountId": w.account(), "ids": [email], "properties": ["blobId", "threadId"]}),
    );
    let blob = record["list"][0]["blobId"].as_str().unwrap().to_owned();
    let thread = record["list"][0]["threadId"].as_str().unwrap().to_owned();
    let inbox = w.mailbox("inbox");
    let own = w.mallory.account_id.clone();
    let m = &w.mallory;
    let call = |method: &str, args: Value| {
        let response = w.request(m, json!([[method, args, "c"]]));
        assert!(
            !response.body.to_string().contains("Launch"),
            "{method}: {}",
            response.body
        );
        assert!(
            response
                .accessed
                .iter()
                .all(|a| a.email_ids.is_empty() && a.blob_ids.is_empty()),
            "{method}"
        );
        responses(&response).remove(0)[1].clone()
    };
    assert_eq!(
        call("Email/get", json!({"accountId": own, "ids": [email]}))["notFound"],
        json!([email])
    );
    assert_eq!(
        call(
            "Email/query",
            json!({"accountId": own, "filter": {"text": "tangerine"}})
        )["ids"],
        json!([])
    );
    assert_eq!(
        call(
            "Email/query",
            json!({"accountId": own, "filter": {"inMailbox": inbox}})
        )["ids"],
        json!([])
    );
    assert_eq!(
        call("Thread/get", json!({"accountId": own, "ids": [thread]}))["notFound"],
        json!([thread])
    );
    assert_eq!(
        call(
            "SearchSnippet/get",
            json!({"accountId": own, "emailIds": [email]})
        )["notFound"],
        json!([email])
    );
    assert_eq!(
        call("Mailbox/get", json!({"accountId": own, "ids": [inbox]}))["notFound"],
        json!([inbox])
    );
    assert_eq!(
        call("Email/parse", json!({"accountId": own, "blobIds": [blob]}))["notFound"],
        json!([blob])
    );
    let set = call(
        "Email/set",
        json!({"accountId": own, "update": {email.clone(): {"keywords/$seen": true}}, "destroy": [email]}),
    );
    assert_eq!(set["notUpdated"][&email]["type"], "notFound");
    assert_eq!(set["notDestroyed"][&email]["type"], "notFound");
    let boxes = call(
        "Mailbox/set",
        json!({"accountId": own, "update": {inbox.clone(): {"name": "Pwned"}}, "destroy": [inbox]}),
    );
    assert_eq!(boxes["notUpdated"][&inbox]["type"], "notFound");
    assert_eq!(boxes["notDestroyed"][&inbox]["type"], "notFound");
    let import = call(
        "Email/import",
        json!({"accountId": own, "emails": {
            "steal": {"blobId": blob, "mailboxIds": {m.account_id.clone(): true}},
            "plant": {"blobId": blob, "mailboxIds": {inbox.clone(): true}}
        }}),
    );
    assert_eq!(import["notCreated"]["steal"]["type"], "invalidProperties");
    assert_eq!(
        import["notCreated"]["plant"]["properties"],
        json!(["mailboxIds"])
    );
    let mallory_inbox = w
        .store
        .mailboxes(&m.tenant, &m.account_id)
        .unwrap()
        .into_iter()
        .find(|b| b.role.as_deref() == Some("inbox"))
        .unwrap()
        .id;
    let import = call(
        "Email/import",
        json!({"accountId": own, "emails": {
            "steal": {"blobId": blob, "mailboxIds": {mallory_inbox: true}}
        }}),
    );
    assert_eq!(import["notCreated"]["steal"]["type"], "blobNotFound");

    assert!(matches!(
        w.jmap.download(m, &own, &blob).map_err(|e| e.kind),
        Err(ErrorKind::NotFound)
    ));
    assert!(matches!(
        w.jmap.download(m, w.account(), &blob).map_err(|e| e.kind),
        Err(ErrorKind::AccountNotFound)
    ));
    assert!(matches!(
        w.jmap
            .download(m, &own, &format!("{blob}_0"))
            .map_err(|e| e.kind),
        Err(ErrorKind::NotFound)
    ));
    assert!(matches!(
        w.jmap
            .upload(m, w.account(), "text/plain", b"x")
            .map_err(|e| e.kind),
        Err(ErrorKind::AccountNotFound)
    ));
    // Alice still reads her own.
    assert!(w.jmap.download(&w.alice, w.account(), &blob).is_ok());
}

#[test]
fn another_user_of_the_same_tenant_cannot_name_alices_account() {
    let w = world();
    let bob_account = w
        .store
        .create_mail_account(&w.alice.tenant, "u-bob", 1 << 20)
        .unwrap();
    let bob = Caller {
        tenant: w.alice.tenant.clone(),
        account_id: bob_account.account_id,
        username: "bob@acme.test".into(),
    };
    assert_eq!(
        w.call_error_as(&bob, "Mailbox/get", json!({"accountId": w.account()})),
        "accountNotFound"
    );
    let session = w.jmap.session(&bob);
    assert!(session["accounts"].get(w.account()).is_none());
}
