//! Every way we know to forge, bend or replay a token, each refused with its
//! exact reason, against a real store and real keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use stormproof_keys::{SecretKey, Signer};
use stormproof_store::TokenKind;
use stormproof_types::Alg;
use stormproof_verifier::RejectReason::{self, *};
use stormproof_verifier::{AuthScheme, RequestContext, VerifierConfig};

/// How a case presents its token.
enum As {
    Bearer,
    Dpop(Option<String>),
    /// Bearer scheme with a DPoP header anyway.
    BearerWithProof(String),
}

struct Case {
    name: &'static str,
    token: String,
    present: As,
    expect: RejectReason,
}

fn bearer_case(name: &'static str, token: String, expect: RejectReason) -> Case {
    Case {
        name,
        token,
        present: As::Bearer,
        expect,
    }
}

fn dpop_case(
    name: &'static str,
    token: String,
    proof: Option<String>,
    expect: RejectReason,
) -> Case {
    Case {
        name,
        token,
        present: As::Dpop(proof),
        expect,
    }
}

#[test]
fn forged_and_malformed_tokens_are_refused_with_their_exact_reason() {
    let f = Fixture::new();
    let a1 = || f.header("a1");

    // A state for each store-side refusal, each on its own entities. First:
    // each change drops the store's ledger snapshots, and the genuine tokens
    // below must keep theirs.
    let revoked_claims = f.alice();
    let revoked = f.issue("a1", &revoked_claims);
    f.store
        .revoke_token(&f.a, revoked_claims["jti"].as_str().unwrap(), NOW)
        .unwrap();
    // revoke_session also revokes the session's tokens, so the token is
    // recorded afterwards: the session check must stand on its own.
    f.store.revoke_session(&f.a, "s-revoked", NOW).unwrap();
    let in_revoked_session = f.issue(
        "a1",
        &f.claims_for(&f.a, "u-alice", "s-revoked", "mail-app"),
    );
    let in_unknown_session = f.issue("a1", &f.claims_for(&f.a, "u-alice", "s-ghost", "mail-app"));
    f.store.set_user_enabled(&f.a, "u-mallory", false).unwrap();
    let disabled_user = f.issue(
        "a1",
        &f.claims_for(&f.a, "u-mallory", "s-mallory", "mail-app"),
    );
    f.store
        .set_client_blocked(&f.a, "blocked-app", true)
        .unwrap();
    let blocked_client = f.issue(
        "a1",
        &f.claims_for(&f.a, "u-alice", "s-blocked", "blocked-app"),
    );

    // A genuine token, whose parts the forgeries below reuse.
    let genuine_claims = f.alice();
    let genuine = f.issue("a1", &genuine_claims);
    let other_genuine = f.issue("a1", &f.alice());
    let mut sig = signature_of(&genuine);
    sig[10] ^= 1;
    let flipped = with_signature(&genuine, &sig);
    let truncated = with_signature(&genuine, &signature_of(&genuine)[..63]);
    let swapped = with_signature(&genuine, &signature_of(&other_genuine));
    let (g_header, g_rest) = genuine.split_once('.').unwrap();

    // The attacker's own key, never registered anywhere.
    let attacker = SecretKey::generate(Alg::EdDsa);

    // Re-signed genuine claims, edited.
    let edited = |field: &str, value: serde_json::Value| {
        let mut c = genuine_claims.clone();
        c[field] = value;
        c
    };

    let refresh_claims = f.alice();
    f.record_kind("a1", &refresh_claims, TokenKind::Refresh);

    // DPoP: a token bound to `holder`'s key.
    let holder = SecretKey::generate(Alg::EdDsa);
    let stranger = SecretKey::generate(Alg::Es256);
    let jkt = holder.public_key().thumbprint();
    let mut bound_claims = f.alice();
    bound_claims["cnf"] = json!({"jkt": jkt});
    let bound = f.issue("a1", &bound_claims);
    let used_proof = proof(&holder, "GET", RESOURCE, Some(&bound), NOW);
    f.verifier
        .verify(&bound, &dpop_request(Some(&used_proof)))
        .expect("the bound token verifies once");
    let mut unbound_claims = bound_claims.clone();
    unbound_claims.as_object_mut().unwrap().remove("cnf");
    let private_jwk_proof = {
        let SecretKey::Ed25519(inner) = &holder else {
            unreachable!()
        };
        let mut jwk = holder.public_key().to_jwk("dpop");
        jwk["d"] = stormproof_jws::b64(inner.to_bytes()).into();
        let header = json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk});
        let ath = stormproof_jws::b64(<Sha256 as sha2::Digest>::digest(bound.as_bytes()));
        sign_with(
            &holder,
            &header,
            &json!({"jti": "p1", "htm": "GET", "htu": RESOURCE, "iat": NOW, "ath": ath}),
        )
    };
    let wrong_typ_proof = {
        let header =
            json!({"typ": "JWT", "alg": "EdDSA", "jwk": holder.public_key().to_jwk("dpop")});
        let ath = stormproof_jws::b64(<Sha256 as sha2::Digest>::digest(bound.as_bytes()));
        sign_with(
            &holder,
            &header,
            &json!({"jti": "p2", "htm": "GET", "htu": RESOURCE, "iat": NOW, "ath": ath}),
        )
    };
    let forged_proof = {
        let good = proof(&holder, "GET", RESOURCE, Some(&bound), NOW);
        let mut s = signature_of(&good);
        s[0] ^= 1;
        with_signature(&good, &s)
    };

    // HS256 keyed with the tenant's public key: the classic algorithm confusion.
    let hs256 = {
        let input = format!(
            "{}.{}",
            stormproof_jws::b64(json!({"alg": "HS256", "typ": "at+jwt", "kid": "a1"}).to_string()),
            stormproof_jws::b64(f.alice().to_string())
        );
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&f.secret("a1").public_key().to_bytes()).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            stormproof_jws::b64(mac.finalize().into_bytes())
        )
    };

    let base = r#""iss":"http://127.0.0.1:8080/t/alpha","aud":"http://127.0.0.1:8080","iat":1749999990,"jti":"dup","tid":"alpha","sid":"s-alice","client_id":"mail-app","scope":"mail.read""#;
    let hdr = r#"{"alg":"EdDSA","typ":"at+jwt","kid":"a1"}"#;

    #[rustfmt::skip]
    let cases = vec![
        // Wire format.
        bearer_case("not_a_jws", "not-a-token".into(), Malformed),
        bearer_case("empty", String::new(), Malformed),
        bearer_case("four_parts", format!("{genuine}.AAAA"), Malformed),
        bearer_case("padded_base64", format!("{g_header}=.{g_rest}"), Malformed),
        bearer_case("oversized", f.sign("a1", &a1(), &edited("pad", "x".repeat(9000).into())), TooLarge),
        bearer_case("duplicate_claim", sign_raw(f.secret("a1"), hdr, &format!(r#"{{{base},"exp":1750000600,"sub":"u-alice","sub":"u-bob"}}"#)), Malformed),
        bearer_case("wrong_claim_type", sign_raw(f.secret("a1"), hdr, &format!(r#"{{{base},"exp":"1750000600","sub":"u-alice"}}"#)), Malformed),
        bearer_case("missing_claim", sign_raw(f.secret("a1"), hdr, &format!(r#"{{{base},"sub":"u-alice"}}"#)), Malformed),
        bearer_case("duplicate_header_member", sign_raw(f.secret("a1"), r#"{"alg":"EdDSA","typ":"at+jwt","kid":"a1","kid":"b1"}"#, &genuine_claims.to_string()), Malformed),
        // Header: algorithm and key choice.
        bearer_case("alg_none", with_signature(&f.sign("a1", &json!({"alg": "none", "typ": "at+jwt", "kid": "a1"}), &f.alice()), b"x"), AlgNone),
        bearer_case("alg_none_mixed_case", with_signature(&f.sign("a1", &json!({"alg": "NoNe", "typ": "at+jwt", "kid": "a1"}), &f.alice()), b"x"), AlgNone),
        bearer_case("alg_none_empty_signature", format!("{}.", f.sign("a1", &json!({"alg": "none", "typ": "at+jwt", "kid": "a1"}), &f.alice()).rsplit_once('.').unwrap().0), Malformed),
        bearer_case("hs256_keyed_with_public_key", hs256, HmacAlg),
        bearer_case("unsupported_alg_rs256", f.sign("a1", &json!({"alg": "RS256", "typ": "at+jwt", "kid": "a1"}), &f.alice()), UnsupportedAlg),
        bearer_case("embedded_jwk", sign_with(&attacker, &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "a1", "jwk": attacker.public_key().to_jwk("x")}), &f.alice()), EmbeddedKey),
        bearer_case("jku_header", sign_with(&attacker, &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "a1", "jku": "https://evil.example/jwks"}), &f.alice()), EmbeddedKey),
        bearer_case("x5c_header", sign_with(&attacker, &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "a1", "x5c": ["MIIB"]}), &f.alice()), EmbeddedKey),
        bearer_case("crit_header", f.sign("a1", &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "a1", "crit": ["exp"]}), &f.alice()), UnknownCrit),
        bearer_case("typ_jwt", f.sign("a1", &json!({"alg": "EdDSA", "typ": "JWT", "kid": "a1"}), &f.alice()), WrongType),
        bearer_case("typ_missing", f.sign("a1", &json!({"alg": "EdDSA", "kid": "a1"}), &f.alice()), WrongType),
        bearer_case("id_token_typ", f.sign("a1", &json!({"alg": "EdDSA", "typ": "id+jwt", "kid": "a1"}), &f.alice()), WrongType),
        // Issuer and tenant.
        bearer_case("foreign_issuer", f.sign("a1", &a1(), &edited("iss", "https://evil.example/t/alpha".into())), UnknownIssuer),
        bearer_case("issuer_invalid_tenant", f.sign("a1", &a1(), &edited("iss", format!("{URL}/t/Alpha").into())), UnknownIssuer),
        bearer_case("issuer_trailing_path", f.sign("a1", &a1(), &edited("iss", format!("{URL}/t/alpha/x").into())), UnknownIssuer),
        bearer_case("tid_mismatch", f.sign("a1", &a1(), &edited("tid", "beta".into())), TenantMismatch),
        // Storm-0558: tenant B's real key signing tenant A's claims.
        bearer_case("cross_tenant_key_b_signs_a", f.sign("b1", &f.header("b1"), &f.alice()), CrossTenantKey),
        // A genuine token of A moved to B (iss and tid both B), re-signed
        // with A's key: (beta, a1) does not exist, a1 is A's, so it is a
        // cross-tenant key use.
        bearer_case("tenant_moved_signed_by_a", f.sign("a1", &a1(), &edited("iss", format!("{URL}/t/beta").into()).tap_set("tid", "beta")), CrossTenantKey),
        // The same move re-signed with B's own real key: structurally B's
        // token, but B's ledger never issued that jti.
        bearer_case("tenant_moved_signed_by_b", f.sign("b1", &f.header("b1"), &edited("iss", format!("{URL}/t/beta").into()).tap_set("tid", "beta")), NeverIssued),
        bearer_case("missing_kid", f.sign("a1", &json!({"alg": "EdDSA", "typ": "at+jwt"}), &f.alice()), MissingKid),
        bearer_case("unknown_kid", f.sign("a1", &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "nope"}), &f.alice()), UnknownKey),
        // Key state, whatever the ledger says.
        bearer_case("retired_key", f.issue("a-retired", &f.alice()), KeyNotActive),
        bearer_case("next_key", f.issue("a-next", &f.alice()), KeyNotActive),
        bearer_case("compromised_key", f.issue("a-comp", &f.alice()), KeyCompromised),
        bearer_case("key_past_not_after", f.issue("a-dead", &f.alice()), KeyExpired),
        bearer_case("alg_mismatch_es256_on_eddsa_key", f.sign("a1", &json!({"alg": "ES256", "typ": "at+jwt", "kid": "a1"}), &f.alice()), AlgMismatch),
        bearer_case("alg_mismatch_eddsa_on_es256_key", f.sign("a1", &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "a-es"}), &f.alice()), AlgMismatch),
        // Signature.
        bearer_case("es256_r_s_zero", with_signature(&f.issue("a-es", &f.alice()), &[0u8; 64]), BadSignature),
        bearer_case("attacker_key_genuine_kid", sign_with(&attacker, &a1(), &f.alice()), BadSignature),
        bearer_case("flipped_signature_bit", flipped, BadSignature),
        bearer_case("truncated_signature", truncated, BadSignature),
        bearer_case("signature_of_other_token", swapped, BadSignature),
        // Audience and time.
        bearer_case("wrong_audience", f.sign("a1", &a1(), &edited("aud", "https://other.example".into())), WrongAudience),
        bearer_case("wrong_audience_list", f.sign("a1", &a1(), &edited("aud", json!(["https://other.example", "x"]))), WrongAudience),
        bearer_case("expired", f.issue("a1", &edited("exp", (NOW - 100).into()).tap_set("iat", NOW - 700).tap_set("jti", "exp1")), Expired),
        bearer_case("not_yet_valid", f.issue("a1", &edited("nbf", (NOW + 600).into()).tap_set("jti", "nbf1")), NotYetValid),
        bearer_case("issued_in_future", f.issue("a1", &edited("iat", (NOW + 600).into()).tap_set("exp", NOW + 1200).tap_set("jti", "fut1")), IssuedInFuture),
        bearer_case("lifetime_too_long", f.issue("a1", &edited("exp", (NOW + 7200).into()).tap_set("jti", "long1")), LifetimeTooLong),
        bearer_case("iat_before_key_not_before", f.issue("a-young", &edited("iat", (NOW - 200).into()).tap_set("jti", "young1")), IatOutsideKeyValidity),
        bearer_case("retiring_key_signed_after_retiring", f.issue("a-retiring", &f.alice()), IatOutsideKeyValidity),
        // The ledger.
        bearer_case("never_issued_own_key", f.sign("a1", &a1(), &f.alice()), NeverIssued),
        bearer_case("changed_sub", f.sign("a1", &a1(), &edited("sub", "u-mallory".into())), LedgerMismatch),
        bearer_case("escalated_scope", f.sign("a1", &a1(), &edited("scope", "mail.read mail.send admin".into())), LedgerMismatch),
        bearer_case("extended_exp", f.sign("a1", &a1(), &edited("exp", (NOW + 3000).into())), LedgerMismatch),
        bearer_case("changed_sid", f.sign("a1", &a1(), &edited("sid", "s-mallory".into())), LedgerMismatch),
        bearer_case("resigned_with_other_key", f.sign("a-es", &f.header("a-es"), &genuine_claims), LedgerMismatch),
        bearer_case("refresh_token_jti", f.sign("a1", &a1(), &refresh_claims), LedgerMismatch),
        bearer_case("dpop_binding_stripped", f.sign("a1", &a1(), &unbound_claims), LedgerMismatch),
        bearer_case("revoked_token", revoked, Revoked),
        bearer_case("revoked_session", in_revoked_session, SessionRevoked),
        bearer_case("unknown_session", in_unknown_session, SessionRevoked),
        bearer_case("disabled_user", disabled_user, UserDisabled),
        bearer_case("blocked_client", blocked_client, ClientBlocked),
        // DPoP.
        bearer_case("dpop_bound_as_bearer", bound.clone(), DpopRequired),
        Case { name: "dpop_bound_bearer_scheme_with_proof", token: bound.clone(), present: As::BearerWithProof(proof(&holder, "GET", RESOURCE, Some(&bound), NOW)), expect: DpopRequired },
        dpop_case("dpop_bound_no_proof", bound.clone(), None, DpopRequired),
        dpop_case("dpop_proof_other_key", bound.clone(), Some(proof(&stranger, "GET", RESOURCE, Some(&bound), NOW)), DpopMismatch),
        dpop_case("dpop_replayed_proof", bound.clone(), Some(used_proof.clone()), DpopReplay),
        dpop_case("dpop_wrong_htu", bound.clone(), Some(proof(&holder, "GET", "http://127.0.0.1:8080/admin", Some(&bound), NOW)), DpopInvalid),
        dpop_case("dpop_wrong_htm", bound.clone(), Some(proof(&holder, "POST", RESOURCE, Some(&bound), NOW)), DpopInvalid),
        dpop_case("dpop_wrong_ath", bound.clone(), Some(proof(&holder, "GET", RESOURCE, Some(&genuine), NOW)), DpopMismatch),
        dpop_case("dpop_missing_ath", bound.clone(), Some(proof(&holder, "GET", RESOURCE, None, NOW)), DpopMismatch),
        dpop_case("dpop_stale_proof", bound.clone(), Some(proof(&holder, "GET", RESOURCE, Some(&bound), NOW - 3600)), DpopInvalid),
        dpop_case("dpop_proof_wrong_typ", bound.clone(), Some(wrong_typ_proof), DpopInvalid),
        dpop_case("dpop_proof_with_private_key", bound.clone(), Some(private_jwk_proof), DpopInvalid),
        dpop_case("dpop_proof_bad_signature", bound.clone(), Some(forged_proof), DpopInvalid),
        dpop_case("dpop_proof_not_a_jws", bound.clone(), Some("garbage".into()), DpopInvalid),
        dpop_case("dpop_scheme_unbound_token", other_genuine.clone(), Some(proof(&holder, "GET", RESOURCE, Some(&other_genuine), NOW)), DpopMismatch),
    ];

    // Every case twice: by the fixture's verifier, on the store handle that
    // recorded the tokens, which checks the ledger against the handle's
    // snapshots once a refresh has seen the current counters; and by a
    // verifier on another handle, which reads the database. Both must give
    // the same exact reason.
    f.verifier.refresh().unwrap();
    let genuine_jti = genuine_claims["jti"].as_str().unwrap();
    assert!(f.store.recorded_ledger_entry(&f.a, genuine_jti).is_some());
    let elsewhere = f.verifier_on(&f.open_store(), VerifierConfig::default().cache_capacity);
    elsewhere
        .verify(&bound, &dpop_request(Some(&used_proof)))
        .expect("the bound token verifies once");
    for (path, verifier) in [("snapshot", &f.verifier), ("database", &elsewhere)] {
        let mut failures = Vec::new();
        for case in &cases {
            let request = match &case.present {
                As::Bearer => bearer(),
                As::Dpop(proof) => dpop_request(proof.as_deref()),
                As::BearerWithProof(proof) => RequestContext {
                    dpop: Some(proof),
                    scheme: AuthScheme::Bearer,
                    ..bearer()
                },
            };
            match verifier.verify(&case.token, &request) {
                Ok(_) => failures.push(format!(
                    "{}: accepted, expected {:?}",
                    case.name, case.expect
                )),
                Err(r) if r.reason != case.expect => failures.push(format!(
                    "{}: got {:?}, expected {:?}",
                    case.name, r.reason, case.expect
                )),
                Err(_) => {}
            }
        }
        assert!(
            failures.is_empty(),
            "{path}: {} of {} cases failed:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );

        // Each rejection was counted exactly once.
        let counted: u64 = verifier.rejection_counts().iter().map(|(_, n)| n).sum();
        assert_eq!(counted, cases.len() as u64, "{path}");
    }
    assert!(cases.len() >= 25);
}

#[test]
fn forged_token_rejections_carry_the_presented_claims() {
    let f = Fixture::new();
    let claims = f.alice();
    let forged = f.sign("b1", &f.header("b1"), &claims);
    let rejection = f.verify_bearer(&forged).unwrap_err();
    assert_eq!(rejection.reason, CrossTenantKey);
    assert_eq!(rejection.tenant.as_ref(), Some(&f.a));
    assert_eq!(rejection.kid.as_deref(), Some("b1"));
    assert_eq!(rejection.jti.as_deref(), claims["jti"].as_str());
    assert_eq!(rejection.subject.as_deref(), Some("u-alice"));
    assert_eq!(rejection.client_id.as_deref(), Some("mail-app"));
    assert_eq!(rejection.session.as_deref(), Some("s-alice"));
    assert_eq!(rejection.to_string(), "cross_tenant_key");
    assert!(rejection.reason.is_forgery());
}

/// What a rejection reports, on one line: the reason, then the tenant, kid,
/// jti, sub, client_id and sid it carries ("-" when absent).
fn report(rejection: &stormproof_verifier::Rejection) -> String {
    let field = |value: Option<&str>| value.unwrap_or("-").to_owned();
    [
        rejection.reason.as_str().to_owned(),
        field(rejection.tenant.as_ref().map(|t| t.as_str())),
        field(rejection.kid.as_deref()),
        field(rejection.jti.as_deref()),
        field(rejection.subject.as_deref()),
        field(rejection.client_id.as_deref()),
        field(rejection.session.as_deref()),
    ]
    .join(" ")
}

#[test]
fn rejections_report_what_was_presented_up_to_the_failing_step() {
    // Claims become part of the report only once they have been parsed, and
    // the tenant is the issuer's once `iss` names one (else `tid`'s).
    let f = Fixture::new();
    let alice = |jti: &str| f.alice().tap_set("jti", jti);
    let long = "x".repeat(300);
    let truncated = format!(
        "never_issued alpha a1 {0} {0} mail-app s-alice",
        &long[..256]
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("garbage", "garbage".into(), "malformed - - - - - -"),
        (
            "alg none",
            f.sign(
                "a1",
                &json!({"alg": "none", "typ": "at+jwt", "kid": "a1"}),
                &alice("j1"),
            ),
            "alg_none - a1 - - - -",
        ),
        (
            "wrong typ",
            f.sign(
                "a1",
                &json!({"alg": "EdDSA", "typ": "JWT", "kid": "a1"}),
                &alice("j2"),
            ),
            "wrong_type - a1 - - - -",
        ),
        (
            "claims unparseable",
            sign_raw(
                f.secret("a1"),
                r#"{"alg":"EdDSA","typ":"at+jwt","kid":"a1"}"#,
                r#"{"sub":1}"#,
            ),
            "malformed - a1 - - - -",
        ),
        (
            "foreign issuer, tenant from tid",
            f.sign(
                "a1",
                &f.header("a1"),
                &alice("j3").tap_set("iss", "https://evil.example/t/alpha"),
            ),
            "unknown_issuer alpha a1 j3 u-alice mail-app s-alice",
        ),
        (
            "foreign issuer, unusable tid",
            f.sign(
                "a1",
                &f.header("a1"),
                &alice("j4")
                    .tap_set("iss", "https://evil.example")
                    .tap_set("tid", "Alpha"),
            ),
            "unknown_issuer - a1 j4 u-alice mail-app s-alice",
        ),
        (
            "tid of another tenant, tenant from iss",
            f.sign("a1", &f.header("a1"), &alice("j5").tap_set("tid", "beta")),
            "tenant_mismatch alpha a1 j5 u-alice mail-app s-alice",
        ),
        (
            "missing kid",
            f.sign(
                "a1",
                &json!({"alg": "EdDSA", "typ": "at+jwt"}),
                &alice("j6"),
            ),
            "missing_kid alpha - j6 u-alice mail-app s-alice",
        ),
        (
            "never issued",
            f.sign("a1", &f.header("a1"), &alice("j7")),
            "never_issued alpha a1 j7 u-alice mail-app s-alice",
        ),
        (
            "long claims are truncated",
            f.sign(
                "a1",
                &f.header("a1"),
                &alice(&long).tap_set("sub", long.clone()),
            ),
            &truncated,
        ),
    ];
    for (name, token, expect) in &cases {
        let rejection = f.verify_bearer(token).unwrap_err();
        assert_eq!(report(&rejection), *expect, "{name}");
    }
}

/// Setting one more claim in a chain.
trait TapSet {
    fn tap_set(self, field: &str, value: impl Into<serde_json::Value>) -> Self;
}

impl TapSet for serde_json::Value {
    fn tap_set(mut self, field: &str, value: impl Into<serde_json::Value>) -> Self {
        self[field] = value.into();
        self
    }
}

#[test]
fn signer_trait_is_what_signs_the_fixture() {
    // Guards the fixture itself: a genuine token must verify, or every
    // refusal above could be an accident of a broken helper.
    let f = Fixture::new();
    let token = f.issue("a1", &f.alice());
    assert!(f.secret("a1").alg() == Alg::EdDsa);
    f.verify_bearer(&token).expect("genuine token verifies");
}
