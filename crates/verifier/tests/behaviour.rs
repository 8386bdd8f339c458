//! Genuine tokens, the cache, refresh, DPoP and security events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;
use stormproof_keys::{SecretKey, Signer};
use stormproof_store::{KeyBackend, KeyRecord, KeyStatus, Store};
use stormproof_types::Alg;
use stormproof_verifier::RejectReason::{self, *};
use stormproof_verifier::{RequestContext, VerifyMode};

#[test]
fn genuine_eddsa_and_es256_tokens_verify() {
    let f = Fixture::new();
    for kid in ["a1", "a-es"] {
        let claims = f.alice();
        let token = f.issue(kid, &claims);
        let p = f
            .verify_bearer(&token)
            .unwrap_or_else(|r| panic!("{kid}: {r:?}"));
        assert_eq!(p.tenant(), &f.a);
        assert_eq!(p.subject(), "u-alice");
        assert_eq!(p.client_id(), "mail-app");
        assert_eq!(p.session_id(), "s-alice");
        assert_eq!(p.token_id(), claims["jti"].as_str().unwrap());
        assert_eq!(p.scope(), "mail.read mail.send");
        assert_eq!(p.expires_at(), NOW + 600);
        assert_eq!(p.issued_at(), NOW - 10);
        assert_eq!(p.jkt(), None);
        assert!(p.has_scope("mail.send"));
        assert!(!p.has_scope("admin"));
    }
    // Tenant B's genuine token verifies with B's key, as B.
    let token = f.issue("b1", &f.claims_for(&f.b, "u-bob", "s-bob", "mail-app"));
    assert_eq!(f.verify_bearer(&token).unwrap().tenant(), &f.b);
    assert_eq!(f.verifier.issuer(&f.b), format!("{URL}/t/beta"));
}

#[test]
fn typ_media_type_form_and_leeway_are_accepted() {
    let f = Fixture::new();
    let claims = f.alice();
    f.record("a1", &claims);
    let token = f.sign(
        "a1",
        &json!({"alg": "EdDSA", "typ": "application/AT+JWT", "kid": "a1"}),
        &claims,
    );
    f.verify_bearer(&token).unwrap();

    // Expired ten seconds ago, within the 30 s leeway.
    let mut claims = f.alice();
    claims["exp"] = (NOW - 10).into();
    claims["iat"] = (NOW - 610).into();
    f.verify_bearer(&f.issue("a1", &claims)).unwrap();
    // An audience list including ours.
    let mut claims = f.alice();
    claims["aud"] = json!(["https://other.example", URL]);
    f.verify_bearer(&f.issue("a1", &claims)).unwrap();
}

#[test]
fn retiring_key_verifies_tokens_signed_before_retiring() {
    let f = Fixture::new();
    // retiring_at is NOW - 600; signed just before it.
    let mut claims = f.alice();
    claims["iat"] = (NOW - 700).into();
    claims["exp"] = (NOW + 2000).into();
    f.verify_bearer(&f.issue("a-retiring", &claims)).unwrap();
    // Within the leeway after retiring_at is still the key's own signing window.
    claims["jti"] = "late-but-in-leeway".into();
    claims["iat"] = (NOW - 580).into();
    f.verify_bearer(&f.issue("a-retiring", &claims)).unwrap();
}

#[test]
fn cache_serves_repeat_verifications_until_refresh_or_invalidate() {
    let f = Fixture::new();

    let claims = f.alice();
    let token = f.issue("a1", &claims);
    f.verify_bearer(&token).unwrap();
    f.store
        .revoke_token(&f.a, claims["jti"].as_str().unwrap(), NOW)
        .unwrap();
    // Still accepted: served from the cache, which only the next poll clears.
    // (An uncached verification would read the ledger and refuse it.)
    f.verify_bearer(&token).expect("cache hit");
    f.verifier.refresh().unwrap();
    assert_eq!(f.verify_bearer(&token).unwrap_err().reason, Revoked);

    let claims = f.alice();
    let token = f.issue("a1", &claims);
    f.verify_bearer(&token).unwrap();
    f.store
        .revoke_token(&f.a, claims["jti"].as_str().unwrap(), NOW)
        .unwrap();
    f.verifier.invalidate();
    assert_eq!(f.verify_bearer(&token).unwrap_err().reason, Revoked);

    // refresh() without any change keeps the cache: the revocation below is
    // only visible once a later refresh sees the epoch move.
    let claims = f.alice();
    let token = f.issue("a1", &claims);
    f.verifier.refresh().unwrap();
    f.verify_bearer(&token).unwrap();
    f.verifier.refresh().unwrap();
    f.store
        .revoke_token(&f.a, claims["jti"].as_str().unwrap(), NOW)
        .unwrap();
    f.verify_bearer(&token)
        .expect("cache survived a no-op refresh");
    f.verifier.refresh().unwrap();
    assert_eq!(f.verify_bearer(&token).unwrap_err().reason, Revoked);
}

#[test]
fn cached_tokens_still_expire() {
    let f = Fixture::new();
    let token = f.issue("a1", &f.alice());
    f.verify_bearer(&token).unwrap();
    f.clock.advance(600 + 30);
    assert_eq!(f.verify_bearer(&token).unwrap_err().reason, Expired);
}

#[test]
fn refresh_picks_up_a_compromised_key() {
    let f = Fixture::new();
    let cached = f.issue("a1", &f.alice());
    let uncached = f.issue("a1", &f.alice());
    f.verify_bearer(&cached).unwrap();
    f.store.compromise_key(&f.a, "a1", NOW).unwrap();
    f.verifier.refresh().unwrap();
    assert_eq!(f.verify_bearer(&cached).unwrap_err().reason, KeyCompromised);
    assert_eq!(
        f.verify_bearer(&uncached).unwrap_err().reason,
        KeyCompromised
    );
    // The other keys of the tenant are unaffected.
    f.verify_bearer(&f.issue("a-es", &f.alice())).unwrap();
}

#[test]
fn a_key_created_elsewhere_is_found_before_the_next_refresh() {
    let f = Fixture::new();
    let secret = SecretKey::generate(Alg::Es256);
    f.store
        .insert_key(&KeyRecord {
            tenant: f.a.clone(),
            kid: "a-new".into(),
            alg: Alg::Es256,
            backend: KeyBackend::Software,
            material: vec![],
            public_key: secret.public_key().to_bytes(),
            created: NOW - 60,
            not_before: NOW - 60,
            not_after: NOW + DAY,
            status: KeyStatus::Active,
            activated_at: Some(NOW - 60),
            retiring_at: None,
            imported: false,
        })
        .unwrap();
    let claims = f.alice();
    f.record("a-new", &claims);
    let token = sign_with(
        &secret,
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": "a-new"}),
        &claims,
    );
    // No explicit refresh: a miss catches up with the store before it is
    // called unknown, so a just-imported key is neither refused nor
    // misreported.
    f.verify_bearer(&token).unwrap();
}

#[test]
fn rejections_become_security_events() {
    let f = Fixture::new();
    let (verifier, sink) = f.verifier_with_events();
    let claims = f.alice();
    let forged = f.sign("a1", &f.header("a1"), &claims);
    let rejection = verifier.verify(&forged, &bearer()).unwrap_err();
    assert_eq!(rejection.reason, NeverIssued);
    let _ = verifier.verify("garbage", &bearer()).unwrap_err();
    sink.flush();
    assert_eq!(sink.dropped(), 0);

    let events = f.store.security_events(0, 100).unwrap();
    let event = events
        .iter()
        .find(|e| e.reason == "never_issued")
        .expect("never_issued event");
    assert_eq!(event.kind, "token_rejected");
    assert_eq!(event.tenant.as_deref(), Some("alpha"));
    assert_eq!(event.ip.as_deref(), Some("198.51.100.7"));
    assert_eq!(event.user_agent.as_deref(), Some("test-agent"));
    assert_eq!(event.time, NOW);
    assert_eq!(event.detail["kid"], "a1");
    assert_eq!(event.detail["jti"], claims["jti"]);
    assert_eq!(event.detail["sub"], "u-alice");
    assert_eq!(event.detail["client_id"], "mail-app");
    assert_eq!(event.detail["sid"], "s-alice");
    assert_eq!(event.detail["forgery"], true);
    let malformed = events
        .iter()
        .find(|e| e.reason == "malformed")
        .expect("malformed event");
    assert_eq!(malformed.detail["forgery"], false);
    assert_eq!(malformed.tenant, None);

    let counts = verifier.rejection_counts();
    assert_eq!(counts.len(), RejectReason::all().len());
    let count = |reason| counts.iter().find(|(r, _)| *r == reason).map(|(_, n)| *n);
    assert_eq!(count(NeverIssued), Some(1));
    assert_eq!(count(Malformed), Some(1));
    assert_eq!(count(Revoked), Some(0));
}

#[test]
fn dpop_bound_tokens_verify_with_a_proof_of_their_key() {
    let f = Fixture::new();
    for alg in [Alg::EdDsa, Alg::Es256] {
        let holder = SecretKey::generate(alg);
        let jkt = holder.public_key().thumbprint();
        let mut claims = f.alice();
        claims["cnf"] = json!({"jkt": jkt});
        let token = f.issue("a1", &claims);

        let first = proof(&holder, "GET", RESOURCE, Some(&token), NOW);
        let p = f
            .verifier
            .verify(&token, &dpop_request(Some(&first)))
            .unwrap();
        assert_eq!(p.jkt(), Some(jkt.as_str()));
        // A cache hit still needs a fresh proof for each request, and the
        // proof's htu is compared after normalisation.
        let htu = "HTTP://127.0.0.1:8080/jmap?ignored=1";
        let second = proof(&holder, "GET", htu, Some(&token), NOW + 5);
        f.verifier
            .verify(&token, &dpop_request(Some(&second)))
            .unwrap();
        assert_eq!(
            f.verifier
                .verify(&token, &dpop_request(Some(&second)))
                .unwrap_err()
                .reason,
            DpopReplay
        );

        // Introspection checks the token, not the holder.
        let introspect = RequestContext {
            mode: VerifyMode::Introspection,
            ..bearer()
        };
        f.verifier.verify(&token, &introspect).unwrap();
    }
}

#[test]
fn token_endpoint_proofs_return_the_thumbprint() {
    let f = Fixture::new();
    let holder = SecretKey::generate(Alg::Es256);
    let url = format!("{URL}/t/alpha/token");
    let p = proof(&holder, "POST", &url, None, NOW - 20);
    let jkt = f
        .verifier
        .verify_dpop_proof(&p, "POST", &url, None)
        .unwrap();
    assert_eq!(jkt, holder.public_key().thumbprint());
    let again = f
        .verifier
        .verify_dpop_proof(&p, "POST", &url, None)
        .unwrap_err();
    assert_eq!(again.reason, DpopReplay);
    let late = proof(&holder, "POST", &url, None, NOW + 61);
    assert_eq!(
        f.verifier
            .verify_dpop_proof(&late, "POST", &url, None)
            .unwrap_err()
            .reason,
        DpopInvalid
    );
    // An algorithm the key cannot have.
    let header = json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": holder.public_key().to_jwk("x")});
    let claims = json!({"jti": "x", "htm": "POST", "htu": url, "iat": NOW});
    let lying = stormproof_jws::encode(&header, &claims, |i| holder.sign(i)).unwrap();
    assert_eq!(
        f.verifier
            .verify_dpop_proof(&lying, "POST", &url, None)
            .unwrap_err()
            .reason,
        DpopInvalid
    );
}

#[test]
fn all_reasons_have_names_and_forgeries_are_flagged() {
    let forgeries: Vec<_> = RejectReason::all()
        .iter()
        .filter(|r| r.is_forgery())
        .map(|r| r.as_str())
        .collect();
    assert_eq!(
        forgeries,
        [
            "alg_none",
            "hmac_alg",
            "alg_mismatch",
            "embedded_key",
            "unknown_key",
            "cross_tenant_key",
            "key_not_active",
            "key_compromised",
            "key_expired",
            "bad_signature",
            "never_issued",
            "ledger_mismatch"
        ]
    );
}

/// One revocation of each kind the joined ledger read reports, each on its
/// own token and entities: (name, token, the change, the reason after it).
type Revocation = (&'static str, String, Box<dyn Fn(&dyn Store)>, RejectReason);

/// Mints a fresh token for each revocation kind. Minted only when needed, so
/// each token's snapshot is taken at the counters current at that moment.
fn revocation(f: &Fixture, kind: usize) -> Revocation {
    let a = f.a.clone();
    match kind {
        0 => {
            let claims = f.alice();
            let jti = claims["jti"].as_str().unwrap().to_owned();
            let token = f.issue("a1", &claims);
            let revoke = move |s: &dyn Store| s.revoke_token(&a, &jti, NOW).unwrap();
            ("token", token, Box::new(revoke), Revoked)
        }
        1 => {
            // Revoking a session also revokes its tokens, which the ledger
            // check reports first.
            let token = f.issue(
                "a1",
                &f.claims_for(&f.a, "u-alice", "s-revoked", "mail-app"),
            );
            let revoke = move |s: &dyn Store| s.revoke_session(&a, "s-revoked", NOW).unwrap();
            ("session", token, Box::new(revoke), Revoked)
        }
        2 => {
            let token = f.issue(
                "a1",
                &f.claims_for(&f.a, "u-mallory", "s-mallory", "mail-app"),
            );
            let revoke = move |s: &dyn Store| s.set_user_enabled(&a, "u-mallory", false).unwrap();
            ("user", token, Box::new(revoke), UserDisabled)
        }
        3 => {
            let token = f.issue(
                "a1",
                &f.claims_for(&f.a, "u-alice", "s-blocked", "blocked-app"),
            );
            let revoke =
                move |s: &dyn Store| s.set_client_blocked(&a, "blocked-app", true).unwrap();
            ("client", token, Box::new(revoke), ClientBlocked)
        }
        _ => {
            let token = f.issue("a-es", &f.alice());
            let revoke = move |s: &dyn Store| {
                s.compromise_key(&a, "a-es", NOW).unwrap();
            };
            ("key", token, Box::new(revoke), KeyCompromised)
        }
    }
}

const REVOCATION_KINDS: usize = 5;

#[test]
fn snapshots_serve_changes_made_elsewhere_only_until_the_next_refresh() {
    // The cache is off, so only the store's ledger snapshots can serve
    // stale state. They follow the verified-token cache's rule: a change
    // another process (here the CLI's own handle) makes takes effect when a
    // refresh sees the counters move, and not before.
    let f = Fixture::new();
    let cli = f.open_store();
    let verifier = f.verifier_on(&f.store, 0);
    for kind in 0..REVOCATION_KINDS {
        let (name, token, revoke, reason) = revocation(&f, kind);
        verifier.refresh().unwrap();
        verifier.verify(&token, &bearer()).unwrap();
        revoke(cli.as_ref());
        verifier
            .verify(&token, &bearer())
            .unwrap_or_else(|r| panic!("{name}: {r:?} before the refresh"));
        verifier.refresh().unwrap();
        let rejection = verifier.verify(&token, &bearer()).unwrap_err();
        assert_eq!(rejection.reason, reason, "{name}");
    }
}

#[test]
fn snapshots_never_serve_changes_made_through_the_same_store() {
    // A change through the verifier's own store handle, as the server's
    // revocation endpoints make, drops the snapshots at once: no refresh is
    // needed, and the reason is the one the database gives another handle.
    let f = Fixture::new();
    let verifier = f.verifier_on(&f.store, 0);
    let elsewhere = f.verifier_on(&f.open_store(), 0);
    for kind in 0..REVOCATION_KINDS {
        let (name, token, revoke, reason) = revocation(&f, kind);
        verifier.refresh().unwrap();
        elsewhere.refresh().unwrap();
        verifier.verify(&token, &bearer()).unwrap();
        revoke(f.store.as_ref());
        let here = verifier.verify(&token, &bearer()).unwrap_err().reason;
        let there = elsewhere.verify(&token, &bearer()).unwrap_err().reason;
        assert_eq!(here, there, "{name}");
        // Until a refresh reloads the ring, a compromised key's tokens are
        // refused by the ledger, where the compromise revoked them.
        let expect = if reason == KeyCompromised {
            Revoked
        } else {
            reason
        };
        assert_eq!(here, expect, "{name}");
    }
}

#[test]
fn invalidate_stops_trusting_snapshots_until_the_next_refresh() {
    let f = Fixture::new();
    let cli = f.open_store();
    let verifier = f.verifier_on(&f.store, 0);
    let claims = f.alice();
    let token = f.issue("a1", &claims);
    verifier.verify(&token, &bearer()).unwrap();
    cli.revoke_token(&f.a, claims["jti"].as_str().unwrap(), NOW)
        .unwrap();
    verifier.invalidate();
    assert_eq!(
        verifier.verify(&token, &bearer()).unwrap_err().reason,
        Revoked
    );
    // A token minted after the refresh has a trusted snapshot again.
    verifier.refresh().unwrap();
    let claims = f.alice();
    let token = f.issue("a1", &claims);
    cli.revoke_token(&f.a, claims["jti"].as_str().unwrap(), NOW)
        .unwrap();
    verifier
        .verify(&token, &bearer())
        .expect("served from the snapshot");
}

#[test]
fn a_snapshot_taken_after_a_change_not_yet_seen_is_not_trusted() {
    // The CLI revokes a token; before the verifier's refresh notices, the
    // server mints another in the same session. Its snapshot carries the
    // newer counters, so it is not trusted yet: the database answers.
    let f = Fixture::new();
    let cli = f.open_store();
    let verifier = f.verifier_on(&f.store, 0);
    let first = f.alice();
    f.issue("a1", &first);
    cli.revoke_token(&f.a, first["jti"].as_str().unwrap(), NOW)
        .unwrap();
    let claims = f.alice();
    let token = f.issue("a1", &claims);
    let jti = claims["jti"].as_str().unwrap();
    let snapshot = f.store.recorded_ledger_entry(&f.a, jti).unwrap();
    assert_eq!(snapshot.epochs, f.store.epochs().unwrap());
    // Revoked through the CLI as well: only the database knows.
    cli.revoke_token(&f.a, jti, NOW).unwrap();
    assert_eq!(
        verifier.verify(&token, &bearer()).unwrap_err().reason,
        Revoked
    );
}
