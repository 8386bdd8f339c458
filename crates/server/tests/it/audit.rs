//! The audit log against the real server: every read of mail is on the
//! record before the client has it, identity events follow, the log
//! survives kill -9, and `audit verify` catches every kind of tampering.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::jmap::{CORE, MAIL, Smtp, account_id, call, get, message, post_api};
use crate::testkit::{Server, claims, cli_in};

/// `audit search --json` with `args`, one JSON value per line.
pub fn search(server: &Server, args: &[&str]) -> Vec<Value> {
    search_in(server.data.path(), args)
}

fn search_in(data: &Path, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "search", "--json"];
    all.extend_from_slice(args);
    let out = crate::testkit::cli_ok_in(data, &all, None);
    out.lines()
        .map(|line| serde_json::from_str(line).expect("a JSON object per line"))
        .collect()
}

/// Waits (bounded) for `audit search` to find at least one record.
fn eventually(server: &Server, args: &[&str]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = search(server, args);
        if !found.is_empty() {
            return found;
        }
        assert!(Instant::now() < deadline, "no audit record for {args:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn deliver(server: &Server, subject: &str) {
    Smtp::deliver(
        &server.smtp,
        "bob@globex.test",
        "alice@acme.test",
        &message(subject, "hello Alice\r\n"),
    );
}

fn verify(data: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["audit", "verify"];
    args.extend_from_slice(extra);
    let out = cli_in(data, &args, None);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn segments(data: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("audit").join("segments"))
        .expect("segments directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_jmap_read_is_recorded_with_its_items_before_the_client_has_them() {
    let server = Server::with_tenants();
    for subject in ["First note", "Second note"] {
        deliver(&server, subject);
    }
    let token = server.issue("alice@acme.test");
    let token_claims = claims(&token);
    let account = account_id(&server, "acme", "alice@acme.test");
    let request = json!({
        "using": [CORE, MAIL],
        "methodCalls": [
            ["Email/query", {"accountId": account}, "q"],
            ["Email/get", {
                "accountId": account,
                "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                "properties": ["subject", "messageId", "bodyValues", "blobId"],
                "fetchAllBodyValues": true,
            }, "g"],
            ["Email/get", {
                "accountId": account,
                "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                "properties": ["id", "keywords"],
            }, "m"],
        ],
    });
    let (status, _, body) = post_api(&server, &token, &request.to_string());
    assert_eq!(status, 200, "{body}");
    let got = &body["methodResponses"][1][1]["list"];
    let ids: HashSet<String> = got
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids.len(), 2);
    let blob = got[0]["blobId"].as_str().expect("blobId").to_owned();
    let (status, _) = get(
        &server,
        &token,
        &format!("{}/jmap/download/{account}/{blob}/m.eml", server.url),
    );
    assert_eq!(status, 200);

    // No waiting: the records were durable before the responses were sent.
    let records = search(&server, &["--tenant", "acme", "--user", "alice@acme.test"]);
    let reads: Vec<&Value> = records
        .iter()
        .filter(|r| r["operation"] == "Email/get")
        .collect();
    assert_eq!(reads.len(), 2, "{records:?}");
    let content = reads
        .iter()
        .find(|r| r["access"] == "content")
        .expect("a content read");
    let metadata = reads
        .iter()
        .find(|r| r["access"] == "metadata")
        .expect("a metadata read");
    for read in [content, metadata] {
        let items: HashSet<String> = read["target"]["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|v| v.as_str().expect("id").to_owned())
            .collect();
        assert_eq!(items, ids, "one event per bulk read, listing every item");
        assert_eq!(read["count"], 2);
    }
    let message_ids: HashSet<&str> = content["target"]["message_ids"]
        .as_array()
        .expect("message_ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        message_ids,
        HashSet::from(["first-note@globex.test", "second-note@globex.test"])
    );
    assert_eq!(content["tenant"], "acme");
    assert_eq!(content["outcome"], "success");
    assert_eq!(content["target"]["account"], account);
    let actor = &content["actor"];
    assert_eq!(actor["user"], "alice@acme.test");
    assert_eq!(actor["client_id"], "stormproof-cli");
    assert_eq!(actor["session"], token_claims["sid"]);
    assert_eq!(actor["token"], token_claims["jti"]);
    assert_eq!(actor["ip"], "127.0.0.1");
    assert_eq!(actor["protocol"], "jmap");
    assert!(actor.get("user_agent").is_some());
    assert!(content["target"].get("mailbox").is_some());

    let download = records
        .iter()
        .find(|r| r["operation"] == "download")
        .expect("the download is recorded");
    assert_eq!(download["target"]["items"], json!([blob]));
    let query = records
        .iter()
        .find(|r| r["operation"] == "Email/query")
        .expect("the query is recorded");
    assert_eq!(query["access"], "metadata");

    // Filters narrow; other tenants see nothing of acme's.
    assert!(
        search(&server, &["--tenant", "globex"])
            .iter()
            .all(|r| r["tenant"] == "globex")
    );
    let by_session = search(
        &server,
        &["--session", token_claims["sid"].as_str().expect("sid")],
    );
    assert!(by_session.len() >= 4, "{by_session:?}");
    assert!(search(&server, &["--ip", "127.0.0.9"]).is_empty());
    assert!(search(&server, &["--since", "2999-01-01T00:00:00Z"]).is_empty());
    assert_eq!(
        search(
            &server,
            &["--client", "stormproof-cli", "--until", "1000000000"]
        )
        .len(),
        0
    );
}

#[test]
fn import_and_parse_are_recorded_and_a_user_sees_who_read_their_mail() {
    let server = Server::with_tenants();
    let token = server.issue("alice@acme.test");
    let account = account_id(&server, "acme", "alice@acme.test");
    let raw = message("Imported", "body\r\n");
    let upload = server
        .http
        .post(format!("{}/jmap/upload/{account}", server.url))
        .bearer_auth(&token)
        .header("content-type", "message/rfc822")
        .body(raw)
        .send()
        .expect("upload");
    assert_eq!(upload.status().as_u16(), 201);
    let blob = upload.json::<Value>().expect("json")["blobId"]
        .as_str()
        .expect("blobId")
        .to_owned();
    let (_, mailboxes, _) = call(
        &server,
        &token,
        "Mailbox/get",
        json!({"accountId": account}),
    );
    let inbox = mailboxes["list"]
        .as_array()
        .expect("list")
        .iter()
        .find(|m| m["role"] == "inbox")
        .expect("inbox")["id"]
        .clone();
    let (name, parsed, _) = call(
        &server,
        &token,
        "Email/parse",
        json!({"accountId": account, "blobIds": [blob]}),
    );
    assert_eq!(name, "Email/parse");
    assert!(parsed["parsed"][&blob].is_object());
    let (name, imported, _) = call(
        &server,
        &token,
        "Email/import",
        json!({"accountId": account, "emails": {"k1": {"blobId": blob, "mailboxIds": {inbox.as_str().expect("id"): true}}}}),
    );
    assert_eq!(name, "Email/import", "{imported}");
    let email_id = imported["created"]["k1"]["id"]
        .as_str()
        .expect("created")
        .to_owned();

    let parse = search(&server, &["--operation", "Email/parse"]);
    assert_eq!(parse.len(), 1);
    assert_eq!(parse[0]["target"]["items"], json!([blob]));
    assert_eq!(
        parse[0]["target"]["message_ids"],
        json!(["imported@globex.test"])
    );
    let import = search(&server, &["--operation", "Email/import"]);
    assert_eq!(import.len(), 1);
    assert!(
        import[0]["target"]["items"]
            .as_array()
            .expect("items")
            .contains(&json!(email_id))
    );

    // Alice's own history: the app, the address and the items.
    let history: Value = server
        .http
        .get(format!("{}/api/me/mail-access", server.url))
        .bearer_auth(&token)
        .send()
        .expect("history")
        .json()
        .expect("json");
    let accesses = history["accesses"].as_array().expect("accesses");
    assert!(accesses.iter().any(|a| a["operation"] == "Email/parse"
        && a["app"] == "stormproof-cli"
        && a["ip"] == "127.0.0.1"
        && a["items"] == json!([blob])));
    // Bob's history does not show Alice's mail.
    let bob = server.issue("bob@globex.test");
    let bobs: Value = server
        .http
        .get(format!("{}/api/me/mail-access", server.url))
        .bearer_auth(&bob)
        .send()
        .expect("history")
        .json()
        .expect("json");
    assert_eq!(bobs["accesses"], json!([]));
}

#[test]
fn the_admin_api_is_scoped_to_the_callers_tenant_and_needs_the_audit_scope() {
    let server = Server::with_tenants();
    for user in ["alice@acme.test", "bob@globex.test"] {
        let token = server.issue(user);
        let (status, _, _) = server.whoami(&token);
        assert_eq!(status, 200);
    }
    // A rejected token becomes a security event and then an audit record.
    let (status, _, _) = server.whoami("eyJhbGciOiJFZERTQSJ9.e30.AAAA");
    assert_eq!(status, 401);
    server.cli_ok(&["user", "disable", "bob@globex.test"]);
    eventually(&server, &["--operation", "user_disabled"]);
    eventually(&server, &["--operation", "token_rejected"]);

    let plain = server.issue("alice@acme.test");
    let refused = server
        .http
        .get(format!("{}/api/audit", server.url))
        .bearer_auth(&plain)
        .send()
        .expect("GET /api/audit");
    assert_eq!(refused.status().as_u16(), 403);

    let admin = server
        .cli_ok(&[
            "token",
            "issue",
            "--user",
            "alice@acme.test",
            "--scope",
            "audit",
        ])
        .trim()
        .to_owned();
    let mut seen = Vec::new();
    let mut cursor: Option<u64> = None;
    loop {
        let mut url = format!("{}/api/audit?limit=2", server.url);
        if let Some(c) = cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = server
            .http
            .get(url)
            .bearer_auth(&admin)
            .send()
            .expect("page")
            .json()
            .expect("json");
        let events = page["events"].as_array().expect("events");
        assert!(events.len() <= 2);
        seen.extend(events.iter().cloned());
        match page["next"].as_u64() {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert!(seen.len() > 2, "paging walked the whole log: {seen:?}");
    assert!(seen.iter().all(|e| e["tenant"] == "acme"), "{seen:?}");
    assert!(seen.iter().any(|e| e["operation"] == "user_created"));
    // Bob's tenant's disable is not acme's business.
    assert!(!seen.iter().any(|e| e["operation"] == "user_disabled"));

    let ocsf: Value = server
        .http
        .get(format!(
            "{}/api/audit?format=ocsf&operation=user_created",
            server.url
        ))
        .bearer_auth(&admin)
        .send()
        .expect("ocsf")
        .json()
        .expect("json");
    assert_eq!(ocsf["events"][0]["class_uid"], 3001);

    // The search itself is on the record.
    eventually(
        &server,
        &["--operation", "audit.search", "--tenant", "acme"],
    );

    // An inclusion proof of one of acme's records checks out against the
    // checkpoint it comes with; globex's records are not acme's to prove.
    let created = &seen
        .iter()
        .find(|e| e["operation"] == "user_created")
        .expect("record")["seq"];
    let proof: Value = server
        .http
        .get(format!("{}/api/audit/proof?seq={created}", server.url))
        .bearer_auth(&admin)
        .send()
        .expect("proof")
        .json()
        .expect("json");
    let decode = |v: &Value| -> [u8; 32] {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64"))
            .expect("base64")
            .try_into()
            .expect("32 bytes")
    };
    let record = proof["record"].as_str().expect("record");
    let leaf = stormproof_audit::merkle::leaf_hash(record.as_bytes());
    assert_eq!(leaf, decode(&proof["leaf_hash"]));
    let note = proof["checkpoint"].as_str().expect("checkpoint");
    let vkey =
        std::fs::read_to_string(server.data.path().join("audit/checkpoint.vkey")).expect("vkey");
    let checkpoint =
        stormproof_audit::Checkpoint::parse_and_verify(note, vkey.trim()).expect("signed");
    let path: Vec<[u8; 32]> = proof["proof"]
        .as_array()
        .expect("proof")
        .iter()
        .map(decode)
        .collect();
    assert!(stormproof_audit::merkle::verify_inclusion(
        &leaf,
        created.as_u64().expect("seq"),
        checkpoint.size,
        &path,
        &checkpoint.root
    ));
    let globex_record = search(&server, &["--tenant", "globex"])[0]["seq"].clone();
    let refused = server
        .http
        .get(format!(
            "{}/api/audit/proof?seq={globex_record}",
            server.url
        ))
        .bearer_auth(&admin)
        .send()
        .expect("proof");
    assert_eq!(refused.status().as_u16(), 404);
    // Unknown scopes are refused even to an operator.
    assert!(
        !server
            .cli(&[
                "token",
                "issue",
                "--user",
                "alice@acme.test",
                "--scope",
                "root"
            ])
            .status
            .success()
    );
}

#[test]
fn ocsf_export_carries_each_class_and_its_required_fields() {
    let server = Server::with_tenants();
    deliver(&server, "Exported");
    let token = server.issue("alice@acme.test");
    let account = account_id(&server, "acme", "alice@acme.test");
    let (_, list, _) = call(
        &server,
        &token,
        "Email/query",
        json!({"accountId": account}),
    );
    call(
        &server,
        &token,
        "Email/get",
        json!({"accountId": account, "ids": list["ids"], "properties": ["subject"]}),
    );
    server.cli_ok(&["user", "disable", "alice@acme.test"]);
    eventually(&server, &["--operation", "user_disabled"]);
    let out = server.cli_ok(&["audit", "export", "--format", "ocsf"]);
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let by_class = |class: u64| {
        events
            .iter()
            .find(|e| e["class_uid"] == class)
            .unwrap_or_else(|| panic!("no class {class} in {events:?}"))
            .clone()
    };
    for (class, required) in [
        (6003, &["actor", "api", "src_endpoint"][..]),
        (3001, &["user"][..]),
    ] {
        let event = by_class(class);
        for field in [
            "activity_id",
            "category_uid",
            "class_uid",
            "type_uid",
            "severity_id",
            "time",
            "metadata",
        ]
        .iter()
        .chain(required)
        {
            assert!(
                event.get(field).is_some(),
                "class {class} lacks {field}: {event}"
            );
        }
        assert_eq!(
            event["type_uid"].as_u64(),
            Some(class * 100 + event["activity_id"].as_u64().expect("activity"))
        );
        assert!(event["metadata"]["product"]["name"].is_string());
        assert!(event["metadata"]["version"].is_string());
    }
    let read = events
        .iter()
        .find(|e| e["api"]["operation"] == "Email/get")
        .expect("the read");
    assert_eq!(read["activity_id"], 2);
    assert_eq!(read["resources"].as_array().map(Vec::len), Some(1));
}

#[test]
fn audit_verify_passes_untouched_and_names_the_first_bad_record_after_tampering() {
    let mut server = Server::with_tenants();
    deliver(&server, "Evidence");
    let token = server.issue("alice@acme.test");
    let account = account_id(&server, "acme", "alice@acme.test");
    for _ in 0..5 {
        call(
            &server,
            &token,
            "Email/query",
            json!({"accountId": account}),
        );
    }
    let kept = server.data.path().join("kept-checkpoint");
    // The server signs a checkpoint within a second of growing.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = server.cli(&["audit", "checkpoint"]);
        let note = String::from_utf8_lossy(&out.stdout).into_owned();
        let size: u64 = note
            .lines()
            .nth(1)
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        if size >= 5 {
            std::fs::write(&kept, note).expect("keep checkpoint");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint covering the reads: {note}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let kept_arg = kept.to_str().expect("path");
    let (ok, report) = verify(server.data.path(), &["--checkpoint", kept_arg]);
    assert!(ok, "untouched log verifies while the server runs: {report}");
    server.kill9();
    let (ok, report) = verify(server.data.path(), &[]);
    assert!(ok, "and after a crash: {report}");

    // Each tampering on a fresh copy of the data directory.
    let segment = segments(server.data.path())[0].clone();
    let relative = segment
        .strip_prefix(server.data.path())
        .expect("inside data")
        .to_owned();
    let original = std::fs::read(&segment).expect("segment");
    let lines: Vec<&[u8]> = original
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert!(lines.len() >= 6);
    let join = |lines: &[&[u8]]| {
        let mut out = Vec::new();
        for line in lines {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out
    };
    let edited = String::from_utf8_lossy(&original).replacen("Email/query", "Email/quern", 1);
    let mut swapped = lines.clone();
    swapped.swap(2, 3);
    let mut deleted = lines.clone();
    deleted.remove(3);
    let mut inserted = lines.clone();
    inserted.insert(3, lines[3]);
    let truncated = join(&lines[..2]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("edit", edited.into_bytes()),
        ("reorder", join(&swapped)),
        ("delete", join(&deleted)),
        ("insert", join(&inserted)),
        ("truncate", truncated),
    ];
    for (what, bytes) in cases {
        let copy = crate::testkit::data_dir();
        copy_dir(server.data.path(), copy.path());
        std::fs::write(copy.path().join(&relative), bytes).expect("tamper");
        let (ok, report) = verify(copy.path(), &[]);
        assert!(!ok, "{what} must fail verification: {report}");
        if what != "truncate" {
            assert!(report.contains("record"), "{what}: {report}");
        }
    }
    // Deleting the whole log does not pass either: the store keeps an anchor.
    let copy = crate::testkit::data_dir();
    copy_dir(server.data.path(), copy.path());
    std::fs::remove_dir_all(copy.path().join("audit")).expect("rm audit");
    let (ok, report) = verify(copy.path(), &[]);
    assert!(!ok, "a deleted log must fail: {report}");
    // Nor does a consistent rewrite shorter than a kept checkpoint.
    let copy = crate::testkit::data_dir();
    copy_dir(server.data.path(), copy.path());
    std::fs::write(copy.path().join(&relative), join(&lines[..3])).expect("truncate");
    let (ok, report) = verify(copy.path(), &["--checkpoint", kept_arg]);
    assert!(!ok, "{report}");
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn after_kill_9_under_read_load_every_email_a_client_received_has_a_record() {
    let mut server = Server::with_tenants();
    for n in 0..3 {
        deliver(&server, &format!("Load {n}"));
    }
    let token = server.issue("alice@acme.test");
    let account = account_id(&server, "acme", "alice@acme.test");
    let (_, list, _) = call(
        &server,
        &token,
        "Email/query",
        json!({"accountId": account}),
    );
    let ids = list["ids"].clone();
    let url = server.url.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (url, token, account, ids, stop) =
                (url.clone(), token.clone(), account.clone(), ids.clone(), stop.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::new();
                let mut received = 0u64;
                let body = json!({
                    "using": [CORE, MAIL],
                    "methodCalls": [["Email/get", {"accountId": account, "ids": ids, "properties": ["subject"]}, "g"]],
                })
                .to_string();
                while !stop.load(Ordering::Relaxed) {
                    let Ok(response) = http
                        .post(format!("{url}/jmap/api"))
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                    else {
                        break;
                    };
                    let Ok(json) = response.json::<Value>() else { break };
                    if json["methodResponses"][0][1]["list"].as_array().is_some_and(|l| l.len() == 3) {
                        received += 1;
                    }
                }
                received
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    let received: u64 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
    assert!(received > 0, "the readers read something before the kill");

    server.spawn();
    let recorded = search(&server, &["--operation", "Email/get"]);
    assert!(
        recorded.len() as u64 >= received,
        "{} reads received, {} recorded",
        received,
        recorded.len()
    );
    assert!(recorded.iter().all(|r| r["count"] == 3));
    let (ok, report) = verify(server.data.path(), &[]);
    assert!(ok, "{report}");
}

#[test]
fn a_download_that_fails_is_not_recorded_as_a_read_and_bob_cannot_search() {
    let server = Server::with_tenants();
    let token = server.issue("alice@acme.test");
    let account = account_id(&server, "acme", "alice@acme.test");
    let (status, _) = get(
        &server,
        &token,
        &format!("{}/jmap/download/{account}/Gnope/m.eml", server.url),
    );
    assert_eq!(status, 404);
    assert!(search(&server, &["--operation", "download"]).is_empty());
    let bob_admin = server
        .cli_ok(&[
            "token",
            "issue",
            "--user",
            "bob@globex.test",
            "--scope",
            "audit",
        ])
        .trim()
        .to_owned();
    let page: Value = server
        .http
        .get(format!("{}/api/audit?user=alice@acme.test", server.url))
        .bearer_auth(&bob_admin)
        .send()
        .expect("search")
        .json()
        .expect("json");
    assert_eq!(page["events"], json!([]));
}

#[test]
fn an_audit_sink_resumes_after_kill_9_with_the_records_its_receiver_refused() {
    let bound = Duration::from_secs(30);
    let hook = crate::webhook_receiver::HookReceiver::start().unwrap();
    let data = crate::testkit::tenants_data();
    std::fs::write(
        data.path().join("stormproof.toml"),
        format!("[[audit.sinks]]\nurl = {:?}\n", hook.url),
    )
    .unwrap();
    let mut server = Server::start_in(data);
    let has = |operation: &'static str| {
        move |body: &Value| {
            body.as_array()
                .is_some_and(|records| records.iter().any(|r| r["operation"] == operation))
        }
    };

    server.cli_ok(&["user", "disable", "bob@globex.test"]);
    assert!(
        hook.wait_for(bound, has("user_disabled")).is_some(),
        "the sink delivers records as they land"
    );

    // The receiver goes down; the sink keeps retrying the next record.
    hook.set_failing(true);
    server.cli_ok(&["user", "enable", "bob@globex.test"]);
    let deadline = Instant::now() + bound;
    while hook.refused() == 0 {
        assert!(Instant::now() < deadline, "the sink never tried to deliver");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill9();

    // Back up, after the crash: the refused record is delivered.
    hook.set_failing(false);
    server.spawn();
    assert!(
        hook.wait_for(bound, has("user_enabled")).is_some(),
        "the record the receiver refused before the crash was never delivered"
    );
}

#[test]
fn a_syslog_sink_sends_rfc_5424_records_with_octet_counting_over_tcp() {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let data = crate::testkit::tenants_data();
    std::fs::write(
        data.path().join("stormproof.toml"),
        format!("[[audit.sinks]]\nurl = \"syslog+tcp://{address}\"\nformat = \"ocsf\"\n"),
    )
    .unwrap();
    let server = Server::start_in(data);
    server.cli_ok(&["user", "disable", "bob@globex.test"]);

    // Frames until one carries the change; each connection is one batch.
    listener.set_nonblocking(false).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut frames = Vec::new();
    while !frames.iter().any(|f: &String| f.contains("user_disabled")) {
        assert!(
            Instant::now() < deadline,
            "no syslog frame carried the change: {frames:?}"
        );
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        let mut rest = bytes.as_slice();
        // RFC 6587 octet counting: "<length> <message>".
        while !rest.is_empty() {
            let space = rest.iter().position(|&b| b == b' ').expect("a length");
            let length: usize = std::str::from_utf8(&rest[..space])
                .unwrap()
                .parse()
                .unwrap();
            let message = &rest[space + 1..space + 1 + length];
            frames.push(String::from_utf8(message.to_vec()).unwrap());
            rest = &rest[space + 1 + length..];
        }
    }
    let frame = frames.iter().find(|f| f.contains("user_disabled")).unwrap();
    // RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME ...
    assert!(frame.starts_with('<'), "{frame}");
    assert!(frame.contains(">1 "), "{frame}");
    assert!(frame.contains(" stormproof "), "{frame}");
    // The body is OCSF: an account change.
    let json_start = frame.find('{').expect("a JSON body");
    let body: Value = serde_json::from_str(&frame[json_start..]).unwrap();
    assert_eq!(body["class_uid"], 3001, "{body}");
}
