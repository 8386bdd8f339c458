//! VacationResponse/get and /set, and what the Session advertises.

use serde_json::json;

use crate::kit::*;

#[test]
fn the_vacation_response_round_trips_as_a_singleton() {
    let w = world();
    let got = w.call(
        "VacationResponse/get",
        json!({"accountId": w.account(), "ids": ["singleton", "other"]}),
    );
    assert_eq!(
        got["list"],
        json!([{
            "id": "singleton", "isEnabled": false, "fromDate": null, "toDate": null,
            "subject": null, "textBody": null, "htmlBody": null,
        }])
    );
    assert_eq!(got["notFound"], json!(["other"]));

    let set = w.call(
        "VacationResponse/set",
        json!({"accountId": w.account(), "update": {"singleton": {
            "isEnabled": true,
            "fromDate": "2026-12-24T00:00:00Z",
            "toDate": "2027-01-04T08:00:00Z",
            "subject": "Away",
            "textBody": "Back in January."
        }}}),
    );
    assert_eq!(set["updated"], json!({"singleton": null}));
    assert_ne!(set["newState"], set["oldState"]);
    assert_eq!(set["newState"], w.state());

    let set = w.call(
        "VacationResponse/set",
        json!({"accountId": w.account(),
               "create": {"another": {"isEnabled": true}},
               "update": {"singleton": {"htmlBody": "<p>Back in January.</p>"},
                          "other": {"isEnabled": false}},
               "destroy": ["singleton"]}),
    );
    assert_eq!(set["notCreated"]["another"]["type"], "singleton");
    assert_eq!(set["notDestroyed"]["singleton"]["type"], "singleton");
    assert_eq!(set["notUpdated"]["other"]["type"], "notFound");
    assert_eq!(set["updated"], json!({"singleton": null}));

    let set = w.call(
        "VacationResponse/set",
        json!({"accountId": w.account(), "update": {"singleton": {
            "fromDate": "24 December", "isEnabled": "yes", "subject": null
        }}}),
    );
    let mut bad: Vec<String> =
        serde_json::from_value(set["notUpdated"]["singleton"]["properties"].clone()).unwrap();
    bad.sort();
    assert_eq!(bad, vec!["fromDate", "isEnabled"]);

    let got = w.call("VacationResponse/get", json!({"accountId": w.account()}));
    assert_eq!(
        got["list"],
        json!([{
            "id": "singleton", "isEnabled": true,
            "fromDate": "2026-12-24T00:00:00Z", "toDate": "2027-01-04T08:00:00Z",
            "subject": "Away", "textBody": "Back in January.",
            "htmlBody": "<p>Back in January.</p>",
        }]),
        "a refused patch changes nothing"
    );
    let other = w.call_error_as(
        &w.mallory,
        "VacationResponse/get",
        json!({"accountId": w.account()}),
    );
    assert_eq!(other, "accountNotFound");
    let mallorys = w.calls(
        &w.mallory,
        json!([["VacationResponse/get", {"accountId": w.mallory.account_id}, "c"]]),
    );
    assert_eq!(mallorys[0][1]["list"][0]["isEnabled"], false, "per account");
}

#[test]
fn vacation_methods_need_their_capability() {
    let w = world();
    let body = json!({
        "using": [CORE, MAIL, SUBMISSION],
        "methodCalls": [["VacationResponse/get", {"accountId": w.account()}, "c"]]
    });
    let response = w.raw(&w.alice, body.to_string().as_bytes());
    assert_eq!(responses(&response)[0][1]["type"], "unknownMethod");
}

#[test]
fn the_session_advertises_submission_and_vacation_response() {
    let w = world();
    let session = w.jmap.session(&w.alice);
    let account = w.account();
    for capability in [SUBMISSION, VACATION] {
        assert_eq!(
            session["capabilities"][capability],
            json!({}),
            "{capability}"
        );
        assert_eq!(session["primaryAccounts"][capability], account);
    }
    let capabilities = &session["accounts"][account]["accountCapabilities"];
    assert_eq!(
        capabilities[SUBMISSION],
        json!({"maxDelayedSend": 0, "submissionExtensions": {}})
    );
    assert_eq!(capabilities[VACATION], json!({}));
    assert_eq!(capabilities.as_object().map(|c| c.len()), Some(3));
    assert!(
        session["capabilities"]
            .get("urn:ietf:params:jmap:contacts")
            .is_none()
    );
}
