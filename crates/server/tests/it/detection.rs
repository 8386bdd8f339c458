//! Detection and response against the real server, its alerts POSTed to a
//! webhook receiver inside the test: forged tokens are refused and their
//! critical alerts arrive; a never-seen application, and a session used from
//! another network, are flagged; revocation by session, user, client and
//! address stops the tokens; the exposure report lists exactly what a
//! session read; notices reach the owner's mailbox; the engine runs over
//! files; and the Storm-0558 demo replays the whole intrusion.

use std::io::Read;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::jmap::{Smtp, account_id, message};
use crate::testkit::{
    BIN, PASSWORD, Server, claims, cli_ok_in, data_dir, ed25519_pem, sign_ed25519, tenants_data,
};
use crate::webhook_receiver::HookReceiver;

/// Bounds every wait on the server, so that a regression fails the test
/// rather than hanging it. Never a performance threshold: latency is the
/// alert-latency bench's business.
const BOUND: Duration = Duration::from_secs(30);

const ALICE: &str = "alice@acme.test";
const BOB: &str = "bob@globex.test";

/// Contract fields every alert POSTed to the webhook carries.
const ALERT_FIELDS: [&str; 11] = [
    "id",
    "time",
    "tenant",
    "severity",
    "detector",
    "summary",
    "evidence",
    "user",
    "client_id",
    "session",
    "ip",
];

/// A server with both tenants whose alerts go to a fresh receiver.
/// `config` is the `stormproof.toml` to start with; `extra` more `serve` flags.
fn watched(config: &str, extra: &[&str]) -> (Server, HookReceiver) {
    watched_in(tenants_data(), config, extra)
}

fn watched_in(data: tempfile::TempDir, config: &str, extra: &[&str]) -> (Server, HookReceiver) {
    let hook = HookReceiver::start().expect("webhook receiver");
    std::fs::write(data.path().join("stormproof.toml"), config).expect("config");
    let mut args = vec!["--alert-webhook", hook.url.as_str()];
    args.extend_from_slice(extra);
    (Server::start_with(data, &args), hook)
}

/// The first alert at the webhook that `matches`, waiting for it.
fn alert(hook: &HookReceiver, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
    match hook.wait_for(BOUND, matches) {
        Some(received) => received.body,
        None => panic!(
            "no {what} alert reached the webhook; it received {:#?}",
            hook.bodies()
        ),
    }
}

fn detector(name: &'static str) -> impl Fn(&Value) -> bool {
    move |alert| alert["detector"] == name
}

fn assert_contract_fields(alert: &Value) {
    for field in ALERT_FIELDS {
        assert!(alert.get(field).is_some(), "alert lacks {field}: {alert:#}");
    }
    let evidence = alert["evidence"].as_array().expect("evidence is a list");
    assert!(
        !evidence.is_empty() && evidence.iter().all(Value::is_u64),
        "evidence lists audit event ids: {alert:#}"
    );
}

/// The audit records an alert names as its evidence.
fn evidence_records(server: &Server, alert: &Value) -> Vec<Value> {
    let ids: Vec<u64> = alert["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    crate::audit::search(server, &[])
        .into_iter()
        .filter(|record| record["seq"].as_u64().is_some_and(|seq| ids.contains(&seq)))
        .collect()
}

/// Imports a fresh Ed25519 key into `tenant`, keeping the private half as
/// the attacker's copy: the key becomes the tenant's active signing key.
fn stolen_key(server: &Server, tenant: &str) -> (ed25519_dalek::SigningKey, String) {
    let (key, pem) = ed25519_pem(server.data.path());
    let kid = server.cli_ok(&[
        "keys",
        "import",
        "--tenant",
        tenant,
        "--pem",
        pem.to_str().expect("path"),
    ]);
    (key, kid.trim().to_owned())
}

/// A token for `user` shaped like a genuine one, with a `jti` no issuer
/// ever minted, signed by `key` under `kid`.
fn forge(
    server: &Server,
    key: &ed25519_dalek::SigningKey,
    kid: &str,
    user: &str,
    jti: &str,
) -> String {
    let mut forged = claims(&server.issue(user));
    forged["jti"] = json!(jti);
    sign_ed25519(
        key,
        &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid}),
        &forged,
    )
}

fn key_status(server: &Server, tenant: &str, kid: &str) -> String {
    let keys: Value =
        serde_json::from_str(&server.cli_ok(&["keys", "list", "--tenant", tenant, "--json"]))
            .expect("keys list --json");
    keys.as_array()
        .expect("array")
        .iter()
        .find(|k| k["kid"] == kid)
        .and_then(|k| k["status"].as_str())
        .unwrap_or_else(|| panic!("no key {kid} in {keys:#}"))
        .to_owned()
}

/// Polls `done` until it holds, failing the test after [`BOUND`].
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {BOUND:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn refused_eventually(server: &Server, token: &str, what: &str) {
    eventually(what, || server.whoami(token).0 == 401);
}

fn sid(token: &str) -> String {
    claims(token)["sid"].as_str().expect("sid").to_owned()
}

/// An HTTP client whose connections come from `source`, another loopback
/// address: another network, as far as the server can tell.
fn client_from(source: [u8; 4]) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(IpAddr::from(source))
        .build()
        .expect("http client")
}

/// A JMAP call through `http`; returns the method response's arguments.
fn jmap_call(
    server: &Server,
    http: &reqwest::blocking::Client,
    token: &str,
    calls: Value,
) -> Value {
    let response = http
        .post(format!("{}/jmap/api", server.url))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(
            json!({"using": [crate::jmap::CORE, crate::jmap::MAIL], "methodCalls": calls})
                .to_string(),
        )
        .send()
        .expect("POST /jmap/api");
    assert_eq!(response.status().as_u16(), 200);
    response.json().expect("JSON")
}

/// Lists `user`'s mail through `http` (Email/query): a read of metadata.
fn list_mail(
    server: &Server,
    http: &reqwest::blocking::Client,
    token: &str,
    user: &str,
) -> Vec<String> {
    let tenant = if user.ends_with("@acme.test") {
        "acme"
    } else {
        "globex"
    };
    let account = account_id(server, tenant, user);
    let body = jmap_call(
        server,
        http,
        token,
        json!([["Email/query", {"accountId": account}, "q"]]),
    );
    body["methodResponses"][0][1]["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(|id| id.as_str().map(str::to_owned))
        .collect()
}

fn deliver_to_alice(server: &Server, subject: &str) {
    Smtp::deliver(
        &server.smtp,
        BOB,
        ALICE,
        &message(subject, &format!("{subject}: the details.\r\n")),
    );
}

/// Alice's messages as (Message-ID, email id), read by the owner herself
/// through a session of her own.
fn alice_message_ids(server: &Server) -> Vec<(String, String)> {
    let token = server.issue(ALICE);
    let account = account_id(server, "acme", ALICE);
    let body = jmap_call(
        server,
        &server.http,
        &token,
        json!([
            ["Email/query", {"accountId": account}, "q"],
            ["Email/get", {"accountId": account, "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                           "properties": ["id", "messageId", "subject"]}, "g"]
        ]),
    );
    body["methodResponses"][1][1]["list"]
        .as_array()
        .expect("list")
        .iter()
        .map(|email| {
            (
                email["messageId"][0]
                    .as_str()
                    .expect("messageId")
                    .to_owned(),
                email["id"].as_str().expect("id").to_owned(),
            )
        })
        .collect()
}

/// Reads the bodies of `ids` in Alice's mailbox with `token`.
fn read_bodies(server: &Server, http: &reqwest::blocking::Client, token: &str, ids: &[&str]) {
    let account = account_id(server, "acme", ALICE);
    let body = jmap_call(
        server,
        http,
        token,
        json!([["Email/get", {"accountId": account, "ids": ids,
                              "properties": ["subject", "textBody", "bodyValues"], "fetchAllBodyValues": true}, "g"]]),
    );
    let list = body["methodResponses"][0][1]["list"]
        .as_array()
        .expect("list");
    assert_eq!(list.len(), ids.len(), "{body:#}");
}

// --- forged tokens -------------------------------------------------------

#[test]
fn a_never_issued_token_signed_with_the_tenants_own_imported_key_is_refused_with_a_critical_alert()
{
    let (server, hook) = watched("", &[]);
    let (key, kid) = stolen_key(&server, "acme");
    let forged = forge(&server, &key, &kid, ALICE, "never-issued-1");

    assert_eq!(server.whoami(&forged).0, 401);

    let alert = alert(&hook, "token_forgery", detector("token_forgery"));
    assert_contract_fields(&alert);
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["tenant"], "acme");
    assert_eq!(alert["user"], ALICE);
    assert_eq!(alert["ip"], "127.0.0.1");
    assert_eq!(alert["token_ids"], json!(["never-issued-1"]));
    assert!(
        alert["summary"].as_str().expect("summary").contains(&kid),
        "{alert:#}"
    );
    let evidence = evidence_records(&server, &alert);
    assert_eq!(evidence.len(), 1, "{evidence:#?}");
    assert_eq!(evidence[0]["operation"], "token_rejected");
    assert_eq!(evidence[0]["reason"], "never_issued");
}

#[test]
fn a_token_signed_with_another_tenants_key_is_refused_with_a_critical_alert() {
    let (server, hook) = watched("", &[]);
    // The attacker holds globex's signing key and forges for acme's user,
    // as in 2023 with a consumer key and enterprise mailboxes.
    let (key, globex_kid) = stolen_key(&server, "globex");
    let forged = forge(&server, &key, &globex_kid, ALICE, "cross-tenant-1");

    assert_eq!(server.whoami(&forged).0, 401);

    let alert = alert(&hook, "token_forgery", detector("token_forgery"));
    assert_contract_fields(&alert);
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["tenant"], "acme", "the tenant the token claimed");
    assert_eq!(alert["user"], ALICE);
    assert!(
        alert["summary"]
            .as_str()
            .expect("summary")
            .contains(&globex_kid),
        "{alert:#}"
    );
    let evidence = evidence_records(&server, &alert);
    assert_eq!(evidence.len(), 1, "{evidence:#?}");
    assert_eq!(evidence[0]["reason"], "cross_tenant_key");
}

#[test]
fn a_never_issued_token_makes_the_server_revoke_the_key_when_token_forgery_auto_response_is_on() {
    // Off by default (crates/detect: token_forgery auto_response = false).
    let (server, hook) = watched("[detect.token_forgery]\nauto_response = true\n", &[]);
    let (key, kid) = stolen_key(&server, "acme");
    let signed_by_the_key = server.issue(ALICE);
    assert_eq!(server.whoami(&signed_by_the_key).0, 200);

    assert_eq!(
        server
            .whoami(&forge(&server, &key, &kid, ALICE, "never-issued-2"))
            .0,
        401
    );

    let alert = alert(&hook, "token_forgery", detector("token_forgery"));
    assert_eq!(
        alert["response"],
        json!({"action": "revoke_key", "kid": kid})
    );
    assert_eq!(alert["auto_response"], true);
    eventually("the key is marked compromised", || {
        key_status(&server, "acme", &kid) == "compromised"
    });
    refused_eventually(
        &server,
        &signed_by_the_key,
        "every token the key signed is refused",
    );
    // A fresh key took over: new tokens work (once the server has it, for
    // the key list above may be read before the server reloads its ring).
    assert_ne!(server.active_kid("acme"), kid);
    let fresh = server.issue(ALICE);
    eventually("a token of the fresh key works", || {
        server.whoami(&fresh).0 == 200
    });
}

// --- alert delivery and storage -----------------------------------------

#[test]
fn alert_delivery_survives_a_webhook_that_fails_and_comes_back() {
    let (server, hook) = watched("", &[]);
    hook.set_failing(true);
    let (key, kid) = stolen_key(&server, "globex");
    assert_eq!(
        server
            .whoami(&forge(&server, &key, &kid, ALICE, "while-down"))
            .0,
        401
    );

    eventually("the server retries the failing webhook", || {
        hook.refused() >= 2
    });
    assert!(
        hook.bodies().is_empty(),
        "nothing was accepted while failing"
    );
    let back = Instant::now();
    hook.set_failing(false);

    let delivered = hook
        .wait_for(BOUND, detector("token_forgery"))
        .unwrap_or_else(|| panic!("no alert after the webhook came back: {:#?}", hook.bodies()));
    assert!(
        delivered.at >= back,
        "delivered by a retry, once the receiver was back"
    );
    assert_eq!(delivered.body["token_ids"], json!(["while-down"]));
    // The key import's persistence alert, queued first, arrives first.
    let order: Vec<Value> = hook
        .bodies()
        .iter()
        .map(|a| a["detector"].clone())
        .collect();
    assert_eq!(order, vec![json!("persistence"), json!("token_forgery")]);
}

fn alerts_list(server: &Server, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["alerts", "list", "--json"];
    all.extend_from_slice(args);
    server
        .cli_ok(&all)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON object per line"))
        .collect()
}

#[test]
fn alerts_list_json_shows_each_alert_once_with_its_count_including_those_below_critical() {
    let (server, hook) = watched("", &["--detect-learning", "0s"]);
    let (key, kid) = stolen_key(&server, "globex");
    for jti in ["forged-a", "forged-b"] {
        assert_eq!(
            server.whoami(&forge(&server, &key, &kid, ALICE, jti)).0,
            401
        );
    }
    // A high alert, not critical: the engine stores those in batches.
    list_mail(&server, &server.http, &server.issue(ALICE), ALICE);
    let forgery = alert(&hook, "token_forgery", detector("token_forgery"));
    let first_seen = alert(&hook, "first_seen_app", detector("first_seen_app"));

    // Regression: alerts below critical reached the store only once later
    // events moved event time on, so a quiet server never listed them.
    eventually("alerts list shows both, the forgery counted twice", || {
        let listed = alerts_list(&server, &[]);
        let by_id = |id: &Value| listed.iter().find(|a| a["id"] == *id).cloned();
        by_id(&forgery["id"]).is_some_and(|a| a["count"] == 2) && by_id(&first_seen["id"]).is_some()
    });
    let listed = alerts_list(&server, &[]);
    let stored = listed
        .iter()
        .find(|a| a["id"] == forgery["id"])
        .expect("listed");
    for field in ALERT_FIELDS {
        assert_eq!(stored[field], forgery[field], "{field}");
    }
    assert_eq!(
        listed
            .iter()
            .filter(|a| a["detector"] == "token_forgery")
            .count(),
        1,
        "deduplicated: {listed:#?}"
    );

    let globex_only = alerts_list(&server, &["--tenant", "globex"]);
    assert!(!globex_only.is_empty());
    assert!(
        globex_only.iter().all(|a| a["tenant"] == "globex"),
        "{globex_only:#?}"
    );
}

// --- first-seen application and token replay ------------------------------

#[test]
fn a_client_that_never_read_mail_in_the_tenant_raises_a_first_seen_alert_naming_it() {
    let (server, hook) = watched("", &["--detect-learning", "0s"]);
    deliver_to_alice(&server, "Quarterly figures");
    // The usual client reads twice; with no learning window its first read
    // is new too, and alerts once.
    for _ in 0..2 {
        list_mail(&server, &server.http, &server.issue(ALICE), ALICE);
    }
    let output = server.cli_ok(&[
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        "Mail sync",
    ]);
    let client_id = output
        .lines()
        .last()
        .expect("client_id line")
        .trim()
        .to_owned();
    let token = server.cli_ok(&["token", "issue", "--user", ALICE, "--client", &client_id]);

    list_mail(&server, &server.http, token.trim(), ALICE);

    let alert = alert(&hook, "first_seen_app for the new client", |a| {
        a["detector"] == "first_seen_app" && a["client_id"] == client_id.as_str()
    });
    assert_contract_fields(&alert);
    assert_eq!(alert["tenant"], "acme");
    assert_eq!(alert["user"], ALICE);
    assert_eq!(alert["session"], sid(token.trim()).as_str());
    let usual: Vec<Value> = hook
        .bodies()
        .into_iter()
        .filter(|a| a["detector"] == "first_seen_app" && a["client_id"] == "stormproof-cli")
        .collect();
    assert_eq!(
        usual.len(),
        1,
        "a known client does not alert again: {usual:#?}"
    );
}

#[test]
fn a_session_used_from_another_network_raises_a_token_replay_alert() {
    // Without a learning window: during a user's first one, every network
    // they use becomes familiar.
    let (server, hook) = watched("", &["--detect-learning", "0s"]);
    let home = client_from([127, 0, 0, 1]);
    // A session used from one network only is quiet.
    let quiet = server.issue(ALICE);
    for _ in 0..2 {
        list_mail(&server, &home, &quiet, ALICE);
    }
    let token = server.issue(ALICE);
    list_mail(&server, &home, &token, ALICE);

    list_mail(&server, &client_from([127, 1, 0, 1]), &token, ALICE);

    let alert = alert(&hook, "token_replay", detector("token_replay"));
    assert_contract_fields(&alert);
    assert_eq!(alert["session"], sid(&token).as_str());
    assert_eq!(alert["ip"], "127.1.0.1");
    assert_eq!(alert["user"], ALICE);
    // One move to a network nobody in the tenant uses is medium; going
    // back and forth (two places at once) would be high.
    assert_eq!(alert["severity"], "medium");
    let replays = hook
        .bodies()
        .into_iter()
        .filter(|a| a["detector"] == "token_replay")
        .count();
    assert_eq!(replays, 1, "the quiet session raised nothing");
}

// --- revocation ---------------------------------------------------------

#[test]
fn revoke_session_stops_that_sessions_tokens_and_no_others() {
    let server = Server::with_tenants();
    let (target, other) = (server.issue(ALICE), server.issue(ALICE));
    assert_eq!(server.whoami(&target).0, 200, "verified once, so cached");

    let out: Value =
        serde_json::from_str(&server.cli_ok(&["revoke", "--session", &sid(&target), "--json"]))
            .expect("JSON");

    assert_eq!(
        out["revoked_sessions"],
        json!([{"tenant": "acme", "session": sid(&target)}])
    );
    refused_eventually(&server, &target, "the revoked session's token is refused");
    assert_eq!(server.whoami(&other).0, 200);
}

#[test]
fn revoke_user_stops_every_token_of_the_user_and_no_others() {
    let server = Server::with_tenants();
    let bobs = [server.issue(BOB), server.issue(BOB)];
    let alices = server.issue(ALICE);

    server.cli_ok(&["revoke", "--user", BOB]);

    for token in &bobs {
        refused_eventually(&server, token, "bob's tokens are refused");
    }
    assert_eq!(server.whoami(&alices).0, 200);
}

#[test]
fn revoke_client_stops_the_clients_tokens_and_no_others() {
    let server = Server::with_tenants();
    let output = server.cli_ok(&[
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        "Suspicious app",
    ]);
    let client_id = output.lines().last().expect("client_id").trim().to_owned();
    let through_app = server.cli_ok(&["token", "issue", "--user", ALICE, "--client", &client_id]);
    let usual = server.issue(ALICE);

    server.cli_ok(&["revoke", "--client", &client_id, "--tenant", "acme"]);

    refused_eventually(&server, through_app.trim(), "the client's token is refused");
    assert_eq!(server.whoami(&usual).0, 200);
}

#[test]
fn revoke_ip_stops_the_sessions_used_from_that_address_and_no_others() {
    let server = Server::with_tenants();
    let (used_there, used_here) = (server.issue(ALICE), server.issue(ALICE));
    list_mail(&server, &client_from([127, 4, 0, 1]), &used_there, ALICE);
    list_mail(&server, &server.http, &used_here, ALICE);

    let out: Value =
        serde_json::from_str(&server.cli_ok(&["revoke", "--ip", "127.4.0.1", "--json"]))
            .expect("JSON");

    assert_eq!(
        out["revoked_sessions"],
        json!([{"tenant": "acme", "session": sid(&used_there)}])
    );
    refused_eventually(
        &server,
        &used_there,
        "the session used from 127.4.0.1 is refused",
    );
    assert_eq!(server.whoami(&used_here).0, 200);
}

// --- exposure and notices -----------------------------------------------

fn exposure(server: &Server, args: &[&str]) -> Value {
    let mut all = vec!["report", "exposure", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&server.cli_ok(&all)).expect("report exposure --json")
}

#[test]
fn exposure_report_lists_exactly_the_message_ids_the_session_read() {
    let server = Server::with_tenants();
    for subject in ["Budget draft", "Travel plans", "Board minutes"] {
        deliver_to_alice(&server, subject);
    }
    let ids = alice_message_ids(&server);
    let id_of = |message_id: &str| -> String {
        ids.iter()
            .find(|(m, _)| m == message_id)
            .expect("delivered")
            .1
            .clone()
    };
    let (budget, travel) = (
        id_of("budget-draft@globex.test"),
        id_of("travel-plans@globex.test"),
    );
    let token = server.issue(ALICE);

    // The session lists the mailbox (metadata), then reads two bodies.
    list_mail(&server, &server.http, &token, ALICE);
    read_bodies(&server, &server.http, &token, &[&budget, &travel]);

    let report = exposure(&server, &["--session", &sid(&token)]);
    assert_eq!(
        report["message_ids"],
        json!(["budget-draft@globex.test", "travel-plans@globex.test"])
    );
    assert_eq!(
        report["metadata_only_message_ids"],
        json!(["board-minutes@globex.test"])
    );
    assert_eq!(report["owners"], json!([ALICE]));
    let content: Vec<&Value> = report["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|item| item["access"] == "content")
        .collect();
    assert_eq!(content.len(), 2, "{report:#}");
    for item in content {
        assert_eq!(item["session"], sid(&token).as_str());
        assert_eq!(item["operation"], "Email/get");
        assert_eq!(item["account"], account_id(&server, "acme", ALICE).as_str());
        assert!(
            ["Budget draft", "Travel plans"].contains(&item["subject"].as_str().expect("subject"))
        );
    }
    // The same reads, asked for by the access token's id.
    let jti = claims(&token)["jti"].as_str().expect("jti").to_owned();
    let by_token = exposure(&server, &["--token", &jti]);
    assert_eq!(by_token["message_ids"], report["message_ids"]);
    assert_eq!(
        by_token["metadata_only_message_ids"],
        report["metadata_only_message_ids"]
    );
}

/// Subjects and text of the messages in `user`'s mailbox.
fn mailbox_texts(server: &Server, user: &str) -> Vec<(String, String)> {
    let token = server.issue(user);
    let account = account_id(server, "acme", user);
    let body = jmap_call(
        server,
        &server.http,
        &token,
        json!([
            ["Email/query", {"accountId": account}, "q"],
            ["Email/get", {"accountId": account, "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                           "properties": ["subject", "textBody", "bodyValues"], "fetchAllBodyValues": true}, "g"]
        ]),
    );
    body["methodResponses"][1][1]["list"]
        .as_array()
        .expect("list")
        .iter()
        .map(|email| {
            let text = email["bodyValues"]
                .as_object()
                .map(|values| {
                    values
                        .values()
                        .filter_map(|v| v["value"].as_str())
                        .collect::<String>()
                })
                .unwrap_or_default();
            (
                email["subject"].as_str().unwrap_or_default().to_owned(),
                text,
            )
        })
        .collect()
}

#[test]
fn revoke_with_notify_delivers_a_notice_to_the_owner_and_the_security_contact() {
    let data = tenants_data();
    cli_ok_in(
        data.path(),
        &["user", "create", "secops@acme.test", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    std::fs::write(
        data.path().join("stormproof.toml"),
        "[response]\nsecurity_contacts = { acme = [\"secops@acme.test\"] }\n",
    )
    .expect("config");
    let server = Server::start_in(data);
    for subject in ["Merger terms", "Salary review"] {
        deliver_to_alice(&server, subject);
    }
    let ids: Vec<String> = alice_message_ids(&server)
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let stolen = server.issue(ALICE);
    read_bodies(
        &server,
        &client_from([127, 1, 0, 1]),
        &stolen,
        &[&ids[0], &ids[1]],
    );

    server.cli_ok(&["revoke", "--session", &sid(&stolen), "--notify"]);

    refused_eventually(&server, &stolen, "the session is revoked");
    let notices: Vec<(String, String)> = mailbox_texts(&server, ALICE)
        .into_iter()
        .filter(|(subject, _)| subject.starts_with("Security notice"))
        .collect();
    assert_eq!(notices.len(), 1, "{notices:#?}");
    let text = &notices[0].1;
    for read in [
        "merger-terms@globex.test",
        "salary-review@globex.test",
        "127.1.0.1",
    ] {
        assert!(text.contains(read), "the notice names {read}: {text}");
    }
    assert!(text.contains(&sid(&stolen)), "and what was done: {text}");
    let contact: Vec<(String, String)> = mailbox_texts(&server, "secops@acme.test")
        .into_iter()
        .filter(|(subject, _)| subject.starts_with("Security notice"))
        .collect();
    assert_eq!(contact.len(), 1, "{contact:#?}");
    assert!(contact[0].1.contains("merger-terms@globex.test"));
}

// --- offline detection ----------------------------------------------------

fn alert_lines(output: &str) -> Vec<Value> {
    output
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn detect_over_audit_search_output_raises_the_alerts_the_server_raised() {
    let (server, hook) = watched("", &[]);
    let (key, kid) = stolen_key(&server, "globex");
    assert_eq!(
        server
            .whoami(&forge(&server, &key, &kid, ALICE, "offline-1"))
            .0,
        401
    );
    let live = alert(&hook, "token_forgery", detector("token_forgery"));
    let log = server.data.path().join("audit-search.jsonl");
    std::fs::write(&log, server.cli_ok(&["audit", "search", "--json"])).expect("write");

    let offline = alert_lines(&server.cli_ok(&["detect", "--input", log.to_str().expect("path")]));

    let found = offline
        .iter()
        .find(|a| a["detector"] == "token_forgery")
        .unwrap_or_else(|| panic!("no token_forgery alert offline: {offline:#?}"));
    assert_eq!(found["id"], live["id"], "the same log gives the same alert");
    for field in ALERT_FIELDS {
        assert_eq!(found[field], live[field], "{field}");
    }
}

/// A Microsoft 365 `MailItemsAccessed` record (Bind: content read).
fn mail_items_accessed(time: &str, app: &str, ip: &str, session: &str, items: &[&str]) -> Value {
    json!({
        "CreationTime": time,
        "Id": format!("{session}-{time}"),
        "Operation": "MailItemsAccessed",
        "OrganizationId": "Contoso-Gov",
        "RecordType": 50,
        "ResultStatus": "Succeeded",
        "UserKey": "10032001A1B2C3D4",
        "UserType": 0,
        "Workload": "Exchange",
        "UserId": "Diplomat@contoso-gov.test",
        "ClientIPAddress": ip,
        "ClientInfoString": "Client=REST;Client=RESTSystem;;",
        "AppId": app,
        "ClientAppId": app,
        "MailboxGuid": "5b0c3c2e-8f7a-4b47-9d2e-1f0a6c9b7e11",
        "MailboxOwnerUPN": "Diplomat@contoso-gov.test",
        "SessionId": session,
        "AppAccessContext": {"UniqueTokenId": format!("tok-{session}")},
        "OperationProperties": [{"Name": "MailAccessType", "Value": "Bind"}],
        "Folders": [{
            "Path": "\\Inbox",
            "FolderItems": items.iter().map(|id| json!({"InternetMessageId": id})).collect::<Vec<_>>()
        }]
    })
}

const OUTLOOK: &str = "00000002-0000-0ff1-ce00-000000000000";
const NEVER_SEEN: &str = "7f3e9a61-0c1d-4b7e-a2f4-5d8c6b1e2a90";

#[test]
fn detect_over_a_microsoft_365_export_finds_the_application_that_never_read_mail() {
    let dir = data_dir();
    // Nine days of the usual client: the tenant is past its 7-day learning
    // window by the time the other application appears.
    let usual: Vec<Value> = (1..=9)
        .map(|day| {
            mail_items_accessed(
                &format!("2023-05-{day:02}T09:00:00"),
                OUTLOOK,
                "203.0.113.10",
                "sess-usual",
                &["<cable-1@contoso-gov.test>"],
            )
        })
        .collect();
    let benign = dir.path().join("benign.json");
    std::fs::write(&benign, Value::from(usual.clone()).to_string()).expect("write");
    let mut intrusion = usual;
    intrusion.push(mail_items_accessed(
        "2023-05-15T14:00:00",
        NEVER_SEEN,
        "198.51.100.7",
        "sess-forged",
        &["<cable-2@contoso-gov.test>", "<cable-3@contoso-gov.test>"],
    ));
    let export = dir.path().join("export.json");
    std::fs::write(&export, Value::from(intrusion).to_string()).expect("write");
    let detect = |file: &std::path::Path| {
        alert_lines(&cli_ok_in(
            dir.path(),
            &[
                "detect",
                "--input",
                file.to_str().expect("path"),
                "--format",
                "m365",
            ],
            None,
        ))
    };

    assert_eq!(
        detect(&benign),
        Vec::<Value>::new(),
        "the usual client raises nothing"
    );
    let alerts = detect(&export);

    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_contract_fields(alert);
    assert_eq!(alert["detector"], "first_seen_app");
    assert_eq!(alert["client_id"], NEVER_SEEN);
    assert_eq!(alert["tenant"], "contoso-gov");
    assert_eq!(alert["user"], "diplomat@contoso-gov.test");
    assert_eq!(alert["session"], "sess-forged");
    assert_eq!(alert["ip"], "198.51.100.7");
    assert_eq!(
        alert["evidence"],
        json!([9]),
        "the tenth record, counted from 0"
    );
}

// --- the replay command ---------------------------------------------------

#[test]
fn demo_storm_0558_replays_the_intrusion_end_to_end_and_succeeds() {
    let mut child = Command::new(BIN)
        .args(["demo", "storm-0558"])
        .env("STORMPROOF_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the demo");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    // The demo bounds its own waits; this bound only keeps a wedged run
    // from hanging the suite.
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not finish");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (stdout, stderr) = (
        stdout.join().expect("stdout"),
        stderr.join().expect("stderr"),
    );
    assert!(status.success(), "the demo failed:\n{stdout}\n{stderr}");
    for step in [
        "cross_tenant_key",
        "never_issued",
        "compromised",
        "token_replay",
        "first_seen_app",
        "Exposure report",
        "Security notice",
    ] {
        assert!(
            stdout.contains(step),
            "the timeline shows {step}:\n{stdout}"
        );
    }
}
