//! Microsoft 365 unified audit log records, written after Microsoft's
//! published schema (MailItemsAccessed, Azure AD sign-ins).

use serde_json::json;
use stormproof_audit::{AccessKind, Outcome};
use stormproof_detect::{Format, m365, read_events};

use crate::support::*;

const ORG: &str = "4A2B3C4D-1111-2222-3333-444455556666";

fn mail_items_accessed(
    id: &str,
    time: &str,
    app: &str,
    access: &str,
    user: &str,
    owner: &str,
) -> serde_json::Value {
    json!({
        "CreationTime": time,
        "Id": id,
        "Operation": "MailItemsAccessed",
        "OrganizationId": ORG,
        "RecordType": 50,
        "ResultStatus": "Succeeded",
        "UserKey": "10032001A2B3C4D5",
        "UserType": 0,
        "Version": 1,
        "Workload": "Exchange",
        "UserId": user,
        "AppId": app,
        "ClientAppId": "",
        "ClientIPAddress": "[2001:db8:5::9]:52134",
        "ClientInfoString": "Client=REST;Client=RESTSystem;;",
        "ExternalAccess": false,
        "InternalLogonType": 0,
        "LogonType": 0,
        "LogonUserSid": "S-1-5-21-1111111111-2222222222-3333333333-4444",
        "MailboxGuid": "8f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        "MailboxOwnerSid": "S-1-5-21-1111111111-2222222222-3333333333-4444",
        "MailboxOwnerUPN": owner,
        "OperationProperties": [
            {"Name": "MailAccessType", "Value": access},
            {"Name": "IsThrottled", "Value": "False"}
        ],
        "OrganizationName": "contoso.onmicrosoft.com",
        "OriginatingServer": "BN8PR12MB3345 (15.20.6500.000)",
        "SessionId": "9b0e2c1a-7f6d-4e5c-b3a2-918273645f00",
        "OperationCount": 3,
        "Folders": [
            {
                "FolderItems": [
                    {"InternetMessageId": "<BN8PR12MB1234.A@contoso.com>", "SizeInBytes": 50231},
                    {"InternetMessageId": "<BN8PR12MB1234.B@contoso.com>", "SizeInBytes": 10922}
                ],
                "Id": "LgAAAAB1zAMPLEfolder1AAAA",
                "Path": "\\Inbox"
            },
            {
                "FolderItems": [
                    {"InternetMessageId": "<BN8PR12MB1234.C@contoso.com>", "SizeInBytes": 801}
                ],
                "Id": "LgAAAAB1zAMPLEfolder2AAAA",
                "Path": "\\Sent Items"
            }
        ],
        "AppAccessContext": {
            "AADSessionId": "00aa11bb-22cc-33dd-44ee-55ff66aa77bb",
            "IssuedAtTime": "2023-06-15T10:20:01",
            "UniqueTokenId": "Q2x1ZUJ5VG9rZW5JZA"
        }
    })
}

fn user_logged_in(id: &str, time: &str, operation: &str, ip: &str) -> serde_json::Value {
    json!({
        "CreationTime": time,
        "Id": id,
        "Operation": operation,
        "OrganizationId": ORG,
        "RecordType": 15,
        "ResultStatus": if operation == "UserLoggedIn" { "Success" } else { "Failed" },
        "UserKey": "10032001A2B3C4D5",
        "UserType": 0,
        "Version": 1,
        "Workload": "AzureActiveDirectory",
        "ClientIP": ip,
        "ObjectId": "00000002-0000-0ff1-ce00-000000000000",
        "UserId": "Alice@Contoso.com",
        "AzureActiveDirectoryEventType": 1,
        "ExtendedProperties": [
            {"Name": "ResultStatusDetail", "Value": "Redirect"},
            {"Name": "UserAgent", "Value": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"},
            {"Name": "RequestType", "Value": "OAuth2:Authorize"}
        ],
        "ModifiedProperties": [],
        "Actor": [{"ID": "alice@contoso.com", "Type": 5}],
        "ActorContextId": ORG,
        "ActorIpAddress": ip,
        "InterSystemsId": "6c0c8a2b-0000-4000-8000-000000000001",
        "IntraSystemId": "3f9a8b7c-0000-4000-8000-000000000002",
        "SupportTicketId": "",
        "Target": [{"ID": "00000002-0000-0ff1-ce00-000000000000", "Type": 0}],
        "TargetContextId": ORG,
        "ApplicationId": "00000002-0000-0ff1-ce00-000000000000",
        "DeviceProperties": [
            {"Name": "OS", "Value": "Windows 10"},
            {"Name": "BrowserType", "Value": "Edge"},
            {"Name": "SessionId", "Value": "9b0e2c1a-7f6d-4e5c-b3a2-918273645f00"}
        ],
        "ErrorNumber": if operation == "UserLoggedIn" { "0" } else { "50126" },
        "LogonError": if operation == "UserLoggedIn" { "" } else { "InvalidUserNameOrPassword" }
    })
}

#[test]
fn mail_items_accessed_becomes_a_mail_read() {
    let record = mail_items_accessed(
        "a1",
        "2023-06-15T10:21:33",
        "bc59ab01-8403-45c6-8796-ac3ef710b3e3",
        "Bind",
        "Alice@Contoso.com",
        "alice@contoso.com",
    );
    let event = m365::to_event(&record, 4).unwrap();
    assert_eq!(event.seq, 4);
    assert_eq!(event.time, "2023-06-15T10:21:33.000Z");
    assert_eq!(
        event.tenant.as_deref(),
        Some("4a2b3c4d-1111-2222-3333-444455556666")
    );
    assert_eq!(event.operation, "Email/get");
    assert_eq!(event.access, AccessKind::Content);
    assert_eq!(event.outcome, Outcome::Success);
    assert_eq!(event.count, 3);
    assert_eq!(event.actor.user.as_deref(), Some("alice@contoso.com"));
    assert_eq!(
        event.actor.client_id.as_deref(),
        Some("bc59ab01-8403-45c6-8796-ac3ef710b3e3")
    );
    assert_eq!(
        event.actor.session.as_deref(),
        Some("9b0e2c1a-7f6d-4e5c-b3a2-918273645f00")
    );
    assert_eq!(event.actor.token.as_deref(), Some("Q2x1ZUJ5VG9rZW5JZA"));
    assert_eq!(event.actor.ip.as_deref(), Some("2001:db8:5::9"));
    assert_eq!(
        event.actor.user_agent.as_deref(),
        Some("Client=REST;Client=RESTSystem;;")
    );
    assert_eq!(event.actor.protocol, "m365");
    assert_eq!(event.target.owner.as_deref(), Some("alice@contoso.com"));
    assert_eq!(
        event.target.account.as_deref(),
        Some("8f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    );
    assert_eq!(event.target.mailboxes, ["\\Inbox", "\\Sent Items"]);
    assert_eq!(event.target.items.len(), 3);
    assert_eq!(event.target.message_ids[2], "<BN8PR12MB1234.C@contoso.com>");
    assert_eq!(event.detail["m365"]["id"], "a1");
    assert_eq!(event.detail["m365"]["record_type"], 50);

    let sync = mail_items_accessed(
        "a2",
        "2023-06-15T10:21:34",
        "app",
        "Sync",
        "alice@contoso.com",
        "alice@contoso.com",
    );
    let event = m365::to_event(&sync, 5).unwrap();
    assert_eq!(
        (event.operation.as_str(), event.access),
        ("Email/query", AccessKind::Metadata)
    );
}

#[test]
fn sign_ins() {
    // (operation, audit operation, outcome, reason)
    let cases = [
        ("UserLoggedIn", "sign_in", Outcome::Success, "success"),
        (
            "UserLoginFailed",
            "sign_in_failed",
            Outcome::Failure,
            "InvalidUserNameOrPassword",
        ),
    ];
    for (operation, expected, outcome, reason) in cases {
        let record = user_logged_in(
            "s1",
            "2023-06-15T10:20:00.1234567Z",
            operation,
            "203.0.113.40",
        );
        let event = m365::to_event(&record, 0).unwrap();
        assert_eq!(event.operation, expected);
        assert_eq!(event.outcome, outcome);
        assert_eq!(event.reason.as_deref(), Some(reason));
        assert_eq!(event.time, "2023-06-15T10:20:00.123Z");
        assert_eq!(event.actor.user.as_deref(), Some("alice@contoso.com"));
        assert_eq!(event.actor.ip.as_deref(), Some("203.0.113.40"));
        assert_eq!(
            event.actor.session.as_deref(),
            Some("9b0e2c1a-7f6d-4e5c-b3a2-918273645f00")
        );
        assert_eq!(
            event.actor.client_id.as_deref(),
            Some("00000002-0000-0ff1-ce00-000000000000")
        );
        assert_eq!(
            event.actor.user_agent.as_deref(),
            Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
        );
        assert_eq!(event.detail["sid"], "9b0e2c1a-7f6d-4e5c-b3a2-918273645f00");
    }
    let other = json!({"Operation": "FileAccessed", "CreationTime": "2023-06-15T10:20:00"});
    assert!(m365::to_event(&other, 0).is_none());
}

#[test]
fn exports_in_both_shapes_and_the_storm_0558_rule() {
    let store = TestStore::new();
    // A Purview search export: rows with AuditData as a string (and one as
    // an object), in a JSON array.
    let known = "bc59ab01-8403-45c6-8796-ac3ef710b3e3";
    let rogue = "e1f2a3b4-0000-4000-8000-00000000dead";
    let mut rows = Vec::new();
    rows.push(json!({
        "RecordId": "r0", "CreationDate": "2023-05-01T08:00:00", "RecordType": "AzureActiveDirectoryStsLogon",
        "Operation": "UserLoggedIn", "UserId": "alice@contoso.com",
        "AuditData": user_logged_in("s0", "2023-05-01T08:00:00", "UserLoggedIn", "203.0.113.40").to_string(),
    }));
    for day in 0..10 {
        let time = format!("2023-05-{:02}T09:00:00", day + 1);
        rows.push(json!({
            "RecordId": format!("r{}", day + 1), "CreationDate": time, "RecordType": "ExchangeItemAggregated",
            "Operation": "MailItemsAccessed", "UserId": "alice@contoso.com",
            "AuditData": mail_items_accessed(&format!("m{day}"), &time, known, "Bind", "alice@contoso.com", "alice@contoso.com").to_string(),
        }));
    }
    rows.push(json!({
        "RecordId": "r99", "Operation": "MailItemsAccessed",
        "AuditData": mail_items_accessed("m99", "2023-05-15T03:12:00", rogue, "Bind", "alice@contoso.com", "alice@contoso.com"),
    }));
    rows.push(json!({"RecordId": "r100", "Operation": "FileAccessed", "AuditData": {"Operation": "FileAccessed", "CreationTime": "2023-05-15T03:13:00"}}));
    let array = store.dir.path().join("purview.json");
    write(&array, &serde_json::to_string_pretty(&rows).unwrap());
    let events = read_events(&array, Format::M365).unwrap();
    assert_eq!(events.len(), 12, "the FileAccessed record is skipped");
    assert_eq!(events[11].seq, 11);

    // The same records flat, as JSON lines, read the same.
    let lines: Vec<String> = rows
        .iter()
        .map(|r| match &r["AuditData"] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    let jsonl = store.dir.path().join("records.jsonl");
    write(&jsonl, &lines.join("\n"));
    assert_eq!(read_events(&jsonl, Format::M365).unwrap(), events);

    // Ten days of the usual app, then an app that never read mail: the
    // detection the State Department made, made at once.
    let mut engine = store.engine(&config("learning_window = \"7d\""));
    let alerts = run(&mut engine, &events);
    let first_seen: Vec<_> = alerts
        .iter()
        .filter(|a| a.detector == "first_seen_app")
        .collect();
    assert_eq!(first_seen.len(), 1, "{alerts:#?}");
    assert_eq!(first_seen[0].client_id.as_deref(), Some(rogue));
    assert_eq!(first_seen[0].evidence, [11]);

    write(&jsonl, "{\"Operation\": \"MailItemsAccessed\"}\nnot json\n");
    let error = read_events(&jsonl, Format::M365).unwrap_err();
    assert!(error.to_string().contains("record 2"), "{error}");
}
