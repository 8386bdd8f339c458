//! The command-line and HTTP contract of the identity core, as the README
//! documents it.

use std::time::Duration;

use serde_json::json;

use crate::testkit::{Server, claims, cli_ok_in, data_dir, ed25519_pem, sign_ed25519};

const CHALLENGE: &str = r#"Bearer error="invalid_token""#;

#[test]
fn whoami_names_the_principal_of_an_issued_token() {
    let server = Server::with_tenants();
    let token = server.issue("alice@acme.test");
    let (status, body, _) = server.whoami(&token);
    assert_eq!(status, 200);
    let c = claims(&token);
    assert_eq!(body["tenant"], "acme");
    assert_eq!(body["user"], "alice@acme.test");
    assert_eq!(body["client_id"], "stormproof-cli");
    assert_eq!(body["sid"], c["sid"]);
    assert_eq!(body["jti"], c["jti"]);
    assert_eq!(c["iss"], format!("{}/t/acme", server.url));
    assert_eq!(c["aud"], server.url);
    assert_eq!(c["tid"], "acme");
}

#[test]
fn refusals_carry_the_standard_challenge_and_no_reason() {
    let server = Server::with_tenants();
    let token = server.issue("alice@acme.test");
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    for bad in [tampered.as_str(), "garbage", "a.b.c", ""] {
        let (status, body, challenge) = server.whoami(bad);
        assert_eq!(status, 401, "{bad}");
        assert_eq!(challenge.as_deref(), Some(CHALLENGE), "{bad}");
        assert_eq!(body, json!({"error": "invalid_token"}), "{bad}");
    }
    let no_auth = server
        .http
        .get(format!("{}/api/whoami", server.url))
        .send()
        .expect("request");
    assert_eq!(no_auth.status().as_u16(), 401);
}

#[test]
fn data_flag_works_before_and_after_the_subcommand() {
    let data = data_dir();
    let path = data.path().to_str().expect("utf-8 path");
    let out = std::process::Command::new(crate::testkit::BIN)
        .args([
            "tenant",
            "create",
            "acme",
            "--domain",
            "acme.test",
            "--data",
            path,
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = cli_ok_in(data.path(), &["tenant", "list"], None);
    assert!(list.contains("acme"), "{list}");
}

#[test]
fn token_signed_with_another_tenants_key_is_refused_as_cross_tenant() {
    let server = Server::with_tenants();
    // The attacker holds globex's real (imported) signing key and forges
    // a token for acme's user, as in the 2023 intrusion.
    let (stolen, pem) = ed25519_pem(server.data.path());
    let globex_kid = server.cli_ok(&[
        "keys",
        "import",
        "--tenant",
        "globex",
        "--pem",
        pem.to_str().expect("path"),
    ]);
    let genuine = claims(&server.issue("alice@acme.test"));
    let forged = sign_ed25519(
        &stolen,
        &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": globex_kid.trim()}),
        &genuine,
    );
    let (status, _, challenge) = server.whoami(&forged);
    assert_eq!(status, 401);
    assert_eq!(challenge.as_deref(), Some(CHALLENGE));
    let detail = server.expect_security_event("cross_tenant_key");
    assert_eq!(detail["kid"], globex_kid.trim());
}

#[test]
fn token_signed_with_the_tenants_own_key_but_never_issued_is_refused() {
    let server = Server::with_tenants();
    let (stolen, pem) = ed25519_pem(server.data.path());
    let kid = server.cli_ok(&[
        "keys",
        "import",
        "--tenant",
        "acme",
        "--pem",
        pem.to_str().expect("path"),
    ]);
    let mut forged_claims = claims(&server.issue("alice@acme.test"));
    forged_claims["jti"] = json!("never-issued-jti");
    let forged = sign_ed25519(
        &stolen,
        &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid.trim()}),
        &forged_claims,
    );
    let (status, _, _) = server.whoami(&forged);
    assert_eq!(status, 401);
    let detail = server.expect_security_event("never_issued");
    assert_eq!(detail["jti"], "never-issued-jti");
    assert_eq!(detail["forgery"], true);
}

#[test]
fn genuine_token_re_signed_with_another_subject_is_refused() {
    let server = Server::with_tenants();
    let (stolen, pem) = ed25519_pem(server.data.path());
    let kid = server.cli_ok(&[
        "keys",
        "import",
        "--tenant",
        "acme",
        "--pem",
        pem.to_str().expect("path"),
    ]);
    let token = server.issue("alice@acme.test");
    assert_eq!(
        crate::testkit::claims(&token)["sub"].as_str().map(str::len),
        Some(16)
    );
    let mut changed = claims(&token);
    changed["sub"] = json!("someone-else");
    let forged = sign_ed25519(
        &stolen,
        &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid.trim()}),
        &changed,
    );
    assert_eq!(
        server.whoami(&token).0,
        200,
        "the genuine token still works"
    );
    assert_eq!(server.whoami(&forged).0, 401);
    server.expect_security_event("ledger_mismatch");
}

#[test]
fn imported_key_signs_at_once_and_the_previous_key_keeps_verifying() {
    let server = Server::with_tenants();
    let before = server.issue("alice@acme.test");
    let old_kid = server.active_kid("acme");
    let (_, pem) = ed25519_pem(server.data.path());
    let new_kid = server.cli_ok(&[
        "keys",
        "import",
        "--tenant",
        "acme",
        "--pem",
        pem.to_str().expect("path"),
    ]);
    let new_kid = new_kid.trim();
    assert_eq!(server.active_kid("acme"), new_kid);
    let after = server.issue("alice@acme.test");
    let header = |t: &str| -> serde_json::Value {
        use base64::Engine;
        let h = t.split('.').next().expect("header");
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .expect("b64"),
        )
        .expect("json")
    };
    assert_eq!(header(&after)["kid"], new_kid);
    assert_eq!(header(&before)["kid"], old_kid.as_str());
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        server.whoami(&before).0,
        200,
        "tokens of the retiring key still verify"
    );
    assert_eq!(server.whoami(&after).0, 200);
    let keys: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["keys", "list", "--tenant", "acme", "--json"]))
            .expect("json");
    let old = keys
        .as_array()
        .expect("array")
        .iter()
        .find(|k| k["kid"] == old_kid.as_str())
        .expect("old key");
    assert_eq!(old["status"], "retiring");
    for field in [
        "tenant",
        "kid",
        "alg",
        "created",
        "not_before",
        "not_after",
        "status",
    ] {
        assert!(old.get(field).is_some(), "keys list lacks {field}");
    }
}

#[test]
fn revoking_a_key_refuses_its_tokens_in_a_running_server_within_a_second() {
    let server = Server::with_tenants();
    let token = server.issue("alice@acme.test");
    assert_eq!(
        server.whoami(&token).0,
        200,
        "verified once, so it is cached"
    );
    let kid = server.active_kid("acme");
    server.cli_ok(&["keys", "revoke", "--tenant", "acme", "--kid", &kid]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(server.whoami(&token).0, 401);
    // A fresh key took over: new tokens work.
    assert_ne!(server.active_kid("acme"), kid);
    assert_eq!(server.whoami(&server.issue("alice@acme.test")).0, 200);
}

#[test]
fn client_create_prints_the_client_id_last_and_token_issue_mints_for_it() {
    let server = Server::with_tenants();
    let out = server.cli_ok(&[
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        "Reporting app",
    ]);
    let client_id = out.lines().last().expect("a line").trim().to_owned();
    let token = server.cli_ok(&[
        "token",
        "issue",
        "--user",
        "alice@acme.test",
        "--client",
        &client_id,
    ]);
    let (status, body, _) = server.whoami(token.trim());
    assert_eq!(status, 200);
    assert_eq!(body["client_id"], client_id.as_str());
    let blocked = server.cli(&[
        "token",
        "issue",
        "--user",
        "alice@acme.test",
        "--client",
        "no-such-client",
    ]);
    assert!(!blocked.status.success());
}

#[test]
fn disabling_a_user_or_blocking_a_client_stops_their_tokens() {
    let server = Server::with_tenants();
    let client_id = server.cli_ok(&["client", "create", "--tenant", "acme", "--name", "App"]);
    let client_id = client_id.lines().last().expect("id").trim().to_owned();
    let alice = server.issue("alice@acme.test");
    let via_client = server.cli_ok(&[
        "token",
        "issue",
        "--user",
        "alice@acme.test",
        "--client",
        &client_id,
    ]);
    let bob = server.issue("bob@globex.test");
    server.cli_ok(&[
        "client", "block", "--tenant", "acme", "--client", &client_id,
    ]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(server.whoami(via_client.trim()).0, 401);
    assert_eq!(server.whoami(&alice).0, 200);
    server.cli_ok(&["user", "disable", "alice@acme.test"]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(server.whoami(&alice).0, 401);
    assert_eq!(server.whoami(&bob).0, 200, "other tenants are untouched");
    server.expect_security_event("user_disabled");
}

#[test]
fn each_tenant_publishes_only_its_own_keys() {
    let server = Server::with_tenants();
    let jwks = |tenant: &str| -> Vec<String> {
        let body: serde_json::Value = server
            .http
            .get(format!("{}/t/{tenant}/jwks.json", server.url))
            .send()
            .expect("jwks")
            .json()
            .expect("json");
        body["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let (acme, globex) = (jwks("acme"), jwks("globex"));
    assert_eq!(acme.len(), 2, "active and next: {acme:?}");
    assert!(acme.iter().all(|k| !globex.contains(k)));
    let discovery: serde_json::Value = server
        .http
        .get(format!(
            "{}/t/acme/.well-known/openid-configuration",
            server.url
        ))
        .send()
        .expect("discovery")
        .json()
        .expect("json");
    assert_eq!(discovery["issuer"], format!("{}/t/acme", server.url));
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        json!(["S256"])
    );
    let missing = server
        .http
        .get(format!("{}/t/nobody/jwks.json", server.url))
        .send()
        .expect("request");
    assert_eq!(missing.status().as_u16(), 404);
}

#[test]
fn every_rejection_is_counted_by_reason() {
    let server = Server::with_tenants();
    assert_eq!(server.whoami("not-a-token").0, 401);
    assert_eq!(server.whoami("not-a-token").0, 401);
    let metrics = server
        .http
        .get(format!("{}/metrics", server.url))
        .send()
        .expect("metrics")
        .text()
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"stormproof_token_rejections_total{reason="malformed"} 2"#),
        "{metrics}"
    );
}
