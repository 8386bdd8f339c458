//! Request-level errors, method-level errors, limits and the Session.

use serde_json::{Value, json};

use crate::kit::*;

#[test]
fn request_level_errors_are_problem_documents() {
    let w = world();
    let too_many: Vec<Value> = (0..33)
        .map(|i| json!(["Core/echo", {}, format!("c{i}")]))
        .collect();
    let too_many = json!({ "using": [CORE], "methodCalls": too_many }).to_string();
    let cases: Vec<(&[u8], &str, Option<&str>)> = vec![
        (b"not json", "notJSON", None),
        (b"{\"using\": [", "notJSON", None),
        (b"", "notJSON", None),
        (b"[]", "notRequest", None),
        (b"{\"methodCalls\": []}", "notRequest", None),
        (
            b"{\"using\": \"core\", \"methodCalls\": []}",
            "notRequest",
            None,
        ),
        (b"{\"using\": [], \"methodCalls\": {}}", "notRequest", None),
        (
            b"{\"using\": [], \"methodCalls\": [[\"Core/echo\", {}, 1]]}",
            "notRequest",
            None,
        ),
        (
            b"{\"using\": [], \"methodCalls\": [[\"Core/echo\", [], \"c\"]]}",
            "notRequest",
            None,
        ),
        (
            b"{\"using\": [], \"methodCalls\": [[\"Core/echo\", {}]]}",
            "notRequest",
            None,
        ),
        (
            b"{\"using\": [], \"methodCalls\": [], \"extra\": 1}",
            "notRequest",
            None,
        ),
        (
            b"{\"using\": [], \"methodCalls\": [], \"createdIds\": {\"a\": 1}}",
            "notRequest",
            None,
        ),
        (
            b"{\"using\": [\"urn:example:unknown\"], \"methodCalls\": []}",
            "unknownCapability",
            None,
        ),
        (too_many.as_bytes(), "limit", Some("maxCallsInRequest")),
    ];
    for (body, kind, limit) in cases {
        let response = w.raw(&w.alice, body);
        let name = String::from_utf8_lossy(body);
        assert_eq!(response.status, 400, "{name}");
        assert_eq!(response.content_type, "application/problem+json", "{name}");
        assert_eq!(
            response.body["type"],
            format!("urn:ietf:params:jmap:error:{kind}"),
            "{name}"
        );
        assert_eq!(response.body["status"], 400, "{name}");
        assert_eq!(response.body["limit"].as_str(), limit, "{name}");
        assert!(response.accessed.is_empty());
    }
}

#[test]
fn an_oversized_request_is_refused_before_parsing() {
    let w = world_with(|c| c.max_size_request = 256);
    let padding = "x".repeat(300);
    let body = json!({ "using": [CORE], "methodCalls": [["Core/echo", {"pad": padding}, "c"]] });
    let response = w.raw(&w.alice, body.to_string().as_bytes());
    assert_eq!(response.status, 400);
    assert_eq!(response.body["type"], "urn:ietf:params:jmap:error:limit");
    assert_eq!(response.body["limit"], "maxSizeRequest");
    let small = json!({ "using": [CORE], "methodCalls": [["Core/echo", {"a": 1}, "c"]] });
    assert_eq!(w.raw(&w.alice, small.to_string().as_bytes()).status, 200);
}

#[test]
fn method_level_errors() {
    let w = world();
    let account = w.account().to_owned();
    w.deliver(
        &simple("Hi", "bob@globex.test", "m1@x", "hello"),
        "inbox",
        &[],
        T0,
    );
    let many_ids: Vec<String> = (0..501).map(|i| format!("e{i}")).collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("Foo/bar", json!({}), "unknownMethod"),
        ("Mailbox/get", json!({}), "invalidArguments"),
        (
            "Mailbox/get",
            json!({"accountId": account, "bogus": 1}),
            "invalidArguments",
        ),
        ("Mailbox/get", json!({"accountId": 7}), "invalidArguments"),
        (
            "Mailbox/get",
            json!({"accountId": "nope"}),
            "accountNotFound",
        ),
        (
            "Mailbox/get",
            json!({"accountId": account, "properties": ["nope"]}),
            "invalidArguments",
        ),
        (
            "Email/get",
            json!({"accountId": account, "ids": "x"}),
            "invalidArguments",
        ),
        (
            "Email/get",
            json!({"accountId": account, "ids": [], "properties": ["nope"]}),
            "invalidArguments",
        ),
        (
            "Email/get",
            json!({"accountId": account, "ids": [], "bodyProperties": ["nope"]}),
            "invalidArguments",
        ),
        (
            "Email/get",
            json!({"accountId": account, "ids": many_ids}),
            "requestTooLarge",
        ),
        (
            "Email/query",
            json!({"accountId": account, "filter": {"bcc": "x"}}),
            "unsupportedFilter",
        ),
        (
            "Email/query",
            json!({"accountId": account, "filter": {"nope": "x"}}),
            "unsupportedFilter",
        ),
        (
            "Email/query",
            json!({"accountId": account, "filter": {"before": "yesterday"}}),
            "invalidArguments",
        ),
        (
            "Email/query",
            json!({"accountId": account, "filter": {"operator": "XOR", "conditions": []}}),
            "invalidArguments",
        ),
        (
            "Email/query",
            json!({"accountId": account, "sort": [{"property": "nope"}]}),
            "unsupportedSort",
        ),
        (
            "Email/query",
            json!({"accountId": account, "sort": [{"property": "size", "collation": "i;octet"}]}),
            "unsupportedSort",
        ),
        (
            "Email/query",
            json!({"accountId": account, "anchor": "nope"}),
            "anchorNotFound",
        ),
        (
            "Email/query",
            json!({"accountId": account, "limit": -1}),
            "invalidArguments",
        ),
        (
            "Email/changes",
            json!({"accountId": account, "sinceState": "banana"}),
            "cannotCalculateChanges",
        ),
        (
            "Email/changes",
            json!({"accountId": account, "sinceState": "999999"}),
            "cannotCalculateChanges",
        ),
        (
            "Email/changes",
            json!({"accountId": account, "sinceState": "-1"}),
            "cannotCalculateChanges",
        ),
        (
            "Email/changes",
            json!({"accountId": account}),
            "invalidArguments",
        ),
        (
            "Email/changes",
            json!({"accountId": account, "sinceState": "0", "maxChanges": 0}),
            "invalidArguments",
        ),
        (
            "Email/queryChanges",
            json!({"accountId": account, "sinceQueryState": "0"}),
            "cannotCalculateChanges",
        ),
        (
            "Mailbox/queryChanges",
            json!({"accountId": account, "sinceQueryState": "x"}),
            "cannotCalculateChanges",
        ),
        (
            "Email/set",
            json!({"accountId": account, "ifInState": "0"}),
            "stateMismatch",
        ),
        (
            "Mailbox/set",
            json!({"accountId": account, "ifInState": "0"}),
            "stateMismatch",
        ),
        (
            "Email/import",
            json!({"accountId": account}),
            "invalidArguments",
        ),
        (
            "Email/parse",
            json!({"accountId": account}),
            "invalidArguments",
        ),
        (
            "SearchSnippet/get",
            json!({"accountId": account}),
            "invalidArguments",
        ),
        (
            "Thread/get",
            json!({"accountId": account, "properties": ["subject"]}),
            "invalidArguments",
        ),
    ];
    for (method, args, expect) in cases {
        assert_eq!(
            w.call_error(method, args.clone()),
            expect,
            "{method} {args}"
        );
    }
}

#[test]
fn methods_need_their_capability_and_calls_continue_after_an_error() {
    let w = world();
    let body = json!({
        "using": [CORE],
        "methodCalls": [
            ["Mailbox/get", {"accountId": w.account()}, "a"],
            ["Core/echo", {"hello": [1, 2]}, "b"]
        ]
    });
    let response = w.raw(&w.alice, body.to_string().as_bytes());
    let calls = responses(&response);
    assert_eq!(calls[0][0], "error");
    assert_eq!(calls[0][1]["type"], "unknownMethod");
    assert_eq!(calls[0][2], "a");
    assert_eq!(calls[1], json!(["Core/echo", {"hello": [1, 2]}, "b"]));
    assert_eq!(
        response.body["sessionState"],
        w.jmap.session(&w.alice)["state"]
    );
    assert!(response.body.get("createdIds").is_none());
}

#[test]
fn the_session_describes_the_callers_account_and_limits() {
    let w = world();
    let session = w.jmap.session(&w.alice);
    let account = w.account();
    let core = &session["capabilities"][CORE];
    assert_eq!(core["maxSizeRequest"], 10 * 1024 * 1024);
    assert_eq!(core["maxCallsInRequest"], 32);
    assert_eq!(core["maxObjectsInGet"], 500);
    assert!(core["maxSizeUpload"].as_u64().unwrap() > 0);
    assert!(session["capabilities"][MAIL].is_object());
    let entry = &session["accounts"][account];
    assert_eq!(entry["name"], "alice@acme.test");
    assert_eq!(entry["isPersonal"], true);
    assert_eq!(entry["isReadOnly"], false);
    assert!(
        entry["accountCapabilities"][MAIL]["emailQuerySortOptions"]
            .as_array()
            .unwrap()
            .contains(&json!("receivedAt"))
    );
    assert_eq!(session["accounts"].as_object().unwrap().len(), 1);
    assert_eq!(session["primaryAccounts"][MAIL], account);
    assert_eq!(session["username"], "alice@acme.test");
    assert_eq!(session["apiUrl"], "https://mail.acme.test/jmap/api");
    assert_eq!(
        session["downloadUrl"],
        "https://mail.acme.test/jmap/download/{accountId}/{blobId}/{name}?accept={type}"
    );
    assert_eq!(
        session["uploadUrl"],
        "https://mail.acme.test/jmap/upload/{accountId}/"
    );
    assert!(
        session["eventSourceUrl"]
            .as_str()
            .unwrap()
            .contains("/jmap/eventsource")
    );
    assert!(session["state"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(
        session["state"],
        w.jmap.session(&w.alice)["state"],
        "stable"
    );
    assert_ne!(session["state"], w.jmap.session(&w.mallory)["state"]);
}
