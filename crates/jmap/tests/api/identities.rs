//! Identity/get, /changes, /set: the owner's default identity, and new ones
//! only for the owner's own address.

use serde_json::{Value, json};

use crate::kit::*;

fn identities(w: &World) -> Value {
    w.call("Identity/get", json!({"accountId": w.account()}))
}

#[test]
fn the_default_identity_is_the_owners_address_created_once_and_kept() {
    let w = world();
    let before = w.state();
    let first = identities(&w);
    assert_eq!(
        first["list"],
        json!([{
            "id": first["list"][0]["id"],
            "name": "",
            "email": "alice@acme.test",
            "replyTo": null,
            "bcc": null,
            "textSignature": "",
            "htmlSignature": "",
            "mayDelete": false,
        }])
    );
    assert_eq!(first["state"], w.state(), "the state after creating it");
    let id = first["list"][0]["id"].as_str().unwrap().to_owned();
    let again = identities(&w);
    assert_eq!(again["list"].as_array().unwrap().len(), 1, "created once");
    assert_eq!(again["list"][0]["id"], id);
    assert_eq!(again["state"], first["state"]);

    let changes = w.call(
        "Identity/changes",
        json!({"accountId": w.account(), "sinceState": before}),
    );
    assert_eq!(changes["created"], json!([id]));
    assert_eq!(changes["newState"], w.state());

    let set = w.call(
        "Identity/set",
        json!({"accountId": w.account(), "destroy": [id.clone()]}),
    );
    assert_eq!(set["notDestroyed"][&id]["type"], "forbidden");
    assert_eq!(identities(&w)["list"][0]["id"], id);
}

#[test]
fn identities_are_created_only_for_the_owners_own_address() {
    let w = world();
    identities(&w);
    let set = w.call(
        "Identity/set",
        json!({"accountId": w.account(), "create": {
            "work": {"name": "Alice at work", "email": "Alice@ACME.test",
                     "replyTo": [{"name": "Desk", "email": "alice@acme.test"}],
                     "textSignature": "-- \nAlice"},
            "colleague": {"email": "bob@acme.test"},
            "elsewhere": {"email": "alice@globex.test"},
            "remote": {"email": "alice@example.org"},
            "server_set": {"email": "alice@acme.test", "mayDelete": false},
            "no_email": {"name": "Nobody"},
            "bad_reply_to": {"email": "alice@acme.test", "replyTo": "alice@acme.test"}
        }}),
    );
    let work = &set["created"]["work"];
    assert_eq!(work["mayDelete"], true);
    assert_eq!(work["email"], "alice@acme.test", "stored normalised");
    assert_eq!(work["bcc"], Value::Null, "defaults are returned");
    assert_eq!(work["htmlSignature"], "");
    for cid in ["colleague", "elsewhere", "remote"] {
        assert_eq!(set["notCreated"][cid]["type"], "forbiddenFrom", "{cid}");
    }
    assert_eq!(
        set["notCreated"]["server_set"]["properties"],
        json!(["mayDelete"])
    );
    assert_eq!(
        set["notCreated"]["no_email"]["properties"],
        json!(["email"])
    );
    assert_eq!(
        set["notCreated"]["bad_reply_to"]["properties"],
        json!(["replyTo"])
    );
    let id = work["id"].as_str().unwrap().to_owned();

    let state = w.state();
    let set = w.call(
        "Identity/set",
        json!({"accountId": w.account(), "update": {
            id.clone(): {"name": "Alice (work)", "bcc": [{"email": "alice@acme.test"}], "replyTo": null}
        }}),
    );
    assert_eq!(set["updated"], json!({ id.clone(): null }));
    let set = w.call(
        "Identity/set",
        json!({"accountId": w.account(), "update": {
            id.clone(): {"email": "bob@acme.test"},
            "missing": {"name": "x"}
        }}),
    );
    assert_eq!(set["notUpdated"][&id]["properties"], json!(["email"]));
    assert_eq!(set["notUpdated"]["missing"]["type"], "notFound");
    let got = w.call(
        "Identity/get",
        json!({"accountId": w.account(), "ids": [id.clone(), "missing"],
               "properties": ["name", "email", "replyTo", "bcc", "textSignature"]}),
    );
    assert_eq!(
        got["list"],
        json!([{
            "id": id,
            "name": "Alice (work)",
            "email": "alice@acme.test",
            "replyTo": null,
            "bcc": [{"name": null, "email": "alice@acme.test"}],
            "textSignature": "-- \nAlice",
        }])
    );
    assert_eq!(got["notFound"], json!(["missing"]));

    let set = w.call(
        "Identity/set",
        json!({"accountId": w.account(), "destroy": [id.clone()]}),
    );
    assert_eq!(set["destroyed"], json!([id]));
    let changes = w.call(
        "Identity/changes",
        json!({"accountId": w.account(), "sinceState": state}),
    );
    assert_eq!(changes["created"], json!([]));
    assert_eq!(changes["updated"], json!([]));
    assert_eq!(changes["destroyed"], json!([id]));
    assert_eq!(identities(&w)["list"].as_array().unwrap().len(), 1);
}

#[test]
fn submission_methods_need_the_submission_capability_and_identities_also_come_under_mail() {
    let w = world();
    let call = |using: Value, method: &str| {
        let body =
            json!({"using": using, "methodCalls": [[method, {"accountId": w.account()}, "c"]]});
        let response = w.raw(&w.alice, body.to_string().as_bytes());
        responses(&response)[0].clone()
    };
    let cases = [
        (
            json!([CORE, MAIL]),
            "EmailSubmission/get",
            Some("unknownMethod"),
        ),
        (json!([CORE]), "Identity/get", Some("unknownMethod")),
        (json!([CORE, MAIL]), "Identity/get", None),
    ];
    for (using, method, expect) in cases {
        let response = call(using.clone(), method);
        match expect {
            Some(error) => assert_eq!(response[1]["type"], error, "{method} with {using}"),
            None => assert_eq!(response[0], method, "{method} with {using}: {response}"),
        }
    }
}
