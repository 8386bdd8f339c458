//! SPF, DKIM and DMARC on the inbound listener, recorded in
//! `Authentication-Results:` and never enforced.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::dns::{Mode, Stub};
use crate::world::{HOSTNAME, World};

/// A 2048-bit RSA key made for these tests only (ring cannot generate RSA).
const RSA_TEST_KEY: &str = include_str!("rsa-test-key.pem");

/// globex.test signs with DKIM, sends from 127.0.0.1 and publishes
/// p=reject; forwarder.test publishes nothing; other.test's SPF excludes us.
struct Globex {
    ed25519: Vec<u8>,
}

impl Globex {
    fn new() -> Self {
        Self {
            ed25519: Ed25519Key::generate_pkcs8().expect("ed25519 key"),
        }
    }

    fn ed25519(&self) -> Ed25519Key {
        Ed25519Key::from_pkcs8_der(&self.ed25519).expect("ed25519 key")
    }

    fn rsa() -> RsaKey<Sha256> {
        let der: String = RSA_TEST_KEY
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        let der = STANDARD.decode(der).expect("base64");
        RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)))
            .expect("rsa key")
    }

    fn records(&self) -> Vec<(String, String)> {
        let spf = "v=spf1 ip4:127.0.0.1 -all";
        [
            ("globex.test", spf.to_owned()),
            ("mail.globex.test", spf.to_owned()),
            (
                "ed._domainkey.globex.test",
                format!(
                    "v=DKIM1; k=ed25519; p={}",
                    STANDARD.encode(self.ed25519().public_key())
                ),
            ),
            (
                "rsa._domainkey.globex.test",
                format!(
                    "v=DKIM1; k=rsa; p={}",
                    STANDARD.encode(Self::rsa().public_key())
                ),
            ),
            ("_dmarc.globex.test", "v=DMARC1; p=reject".to_owned()),
            ("other.test", "v=spf1 ip4:192.0.2.1 -all".to_owned()),
            ("_dmarc.other.test", "v=DMARC1; p=reject".to_owned()),
        ]
        .into_iter()
        .map(|(name, text)| (name.to_owned(), text))
        .collect()
    }

    /// `message` with an Ed25519 DKIM signature of globex.test prepended.
    fn sign(&self, message: &str) -> String {
        let signature = DkimSigner::from_key(self.ed25519())
            .domain("globex.test")
            .selector("ed")
            .headers(["From", "To", "Subject", "Date", "Message-ID"])
            .sign(message.as_bytes())
            .expect("sign");
        format!("{}{message}", signature.to_header())
    }

    fn sign_rsa(&self, message: &str) -> String {
        let signature = DkimSigner::from_key(Self::rsa())
            .domain("globex.test")
            .selector("rsa")
            .headers(["From", "To", "Subject", "Date", "Message-ID"])
            .sign(message.as_bytes())
            .expect("sign");
        format!("{}{message}", signature.to_header())
    }
}

fn message(from: &str, id: &str) -> String {
    format!(
        "From: Bob <{from}>\r\nTo: Alice <alice@acme.test>\r\nSubject: Quarterly numbers\r\n\
         Date: Sun, 29 Nov 2026 13:31:09 +0000\r\nMessage-ID: <{id}@globex.test>\r\n\r\n\
         The numbers for {id} are attached.\r\n"
    )
}

async fn world(globex: &Globex, mode: Mode) -> (Stub, World) {
    let stub = Stub::start(&globex.records(), mode);
    let authenticator = stormproof_smtp::authenticator(&[stub.address]).expect("authenticator");
    (stub, World::start(Some(authenticator)).await)
}

/// Our `Authentication-Results:` field in a stored message: one entry per
/// result, comments and the signature's `header.b` left out.
fn results(raw: &str) -> Vec<String> {
    let fields = header_fields(raw);
    let ours: Vec<&String> = fields
        .iter()
        .filter(|f| {
            f.to_ascii_lowercase()
                .starts_with(&format!("authentication-results: {HOSTNAME};"))
        })
        .collect();
    assert_eq!(ours.len(), 1, "exactly one field of ours in {raw}");
    let value = ours[0].split_once(':').expect("field").1;
    let mut plain = String::new();
    let mut depth = 0;
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    plain
        .split(';')
        .skip(1)
        .map(|entry| {
            entry
                .split_whitespace()
                .filter(|word| !word.starts_with("header.b="))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// The header fields of `raw`, unfolded.
fn header_fields(raw: &str) -> Vec<String> {
    let header = raw.split_once("\r\n\r\n").map_or(raw, |(header, _)| header);
    let mut fields: Vec<String> = Vec::new();
    for line in header.split("\r\n") {
        match fields.last_mut() {
            Some(field) if line.starts_with([' ', '\t']) => field.push_str(line),
            _ => fields.push(line.to_owned()),
        }
    }
    fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aligned_dkim_and_spf_pass_dmarc() {
    let globex = Globex::new();
    let (_stub, world) = world(&globex, Mode::Answer).await;
    let signed = globex.sign(&message("bob@globex.test", "aligned"));
    let raw = world
        .deliver("mail.globex.test", "bob@globex.test", &signed)
        .await;
    assert_eq!(
        results(&raw),
        [
            "spf=pass smtp.helo=mail.globex.test",
            "spf=pass smtp.mailfrom=bob@globex.test",
            "dkim=pass header.d=globex.test header.s=ed",
            "dmarc=pass header.from=globex.test policy.dmarc=reject",
        ]
    );
    // Return-Path stays first; the results follow our Received field.
    let fields = header_fields(&raw);
    assert_eq!(fields[0], "Return-Path: <bob@globex.test>");
    assert!(
        fields[1].starts_with("Received: from mail.globex.test (127.0.0.1) by mx.test with ESMTP;"),
        "{raw}"
    );
    assert!(
        fields[2].starts_with("Authentication-Results: mx.test;"),
        "{raw}"
    );
    assert!(fields[3].starts_with("DKIM-Signature: "), "{raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rsa_signature_passes_dmarc_through_a_forwarder() {
    let globex = Globex::new();
    let (_stub, world) = world(&globex, Mode::Answer).await;
    let signed = globex.sign_rsa(&message("bob@globex.test", "rsa"));
    let raw = world
        .deliver("relay.forwarder.test", "list@forwarder.test", &signed)
        .await;
    assert_eq!(
        results(&raw),
        [
            "spf=none smtp.helo=relay.forwarder.test",
            "spf=none smtp.mailfrom=list@forwarder.test",
            "dkim=pass header.d=globex.test header.s=rsa",
            "dmarc=pass header.from=globex.test policy.dmarc=reject",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_body_fails_dkim_and_dmarc_and_is_still_delivered() {
    let globex = Globex::new();
    let (_stub, world) = world(&globex, Mode::Answer).await;
    let signed = globex
        .sign(&message("bob@globex.test", "tampered"))
        .replace("are attached", "are wired to account 1234");
    let raw = world
        .deliver("relay.forwarder.test", "list@forwarder.test", &signed)
        .await;
    assert_eq!(
        results(&raw),
        [
            "spf=none smtp.helo=relay.forwarder.test",
            "spf=none smtp.mailfrom=list@forwarder.test",
            "dkim=fail header.d=globex.test header.s=ed",
            "dmarc=fail header.from=globex.test policy.dmarc=reject",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spf_fail_and_dmarc_reject_are_recorded_not_enforced() {
    let globex = Globex::new();
    let (_stub, world) = world(&globex, Mode::Answer).await;
    let raw = world
        .deliver(
            "mail.globex.test",
            "ceo@other.test",
            &message("ceo@other.test", "spoofed"),
        )
        .await;
    assert_eq!(
        results(&raw),
        [
            "spf=pass smtp.helo=mail.globex.test",
            "spf=fail smtp.mailfrom=ceo@other.test",
            "dkim=none",
            "dmarc=fail header.from=other.test policy.dmarc=reject",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_without_records_is_none() {
    let globex = Globex::new();
    let (_stub, world) = world(&globex, Mode::Answer).await;
    let raw = world
        .deliver(
            "client.nowhere.test",
            "bob@nowhere.test",
            &message("bob@nowhere.test", "nowhere"),
        )
        .await;
    assert_eq!(
        results(&raw),
        [
            "spf=none smtp.helo=client.nowhere.test",
            "spf=none smtp.mailfrom=bob@nowhere.test",
            "dkim=none",
            "dmarc=none header.from=nowhere.test policy.dmarc=none",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_resolver_is_temperror_and_the_message_is_delivered() {
    let globex = Globex::new();
    let stub = Stub::start(&globex.records(), Mode::Silent);
    // Our own bound cuts the checks short here, well before the resolver's.
    let authenticator = stormproof_smtp::authenticator(&[stub.address])
        .expect("authenticator")
        .with_timeout(Duration::from_millis(500));
    let world = World::start(Some(authenticator)).await;
    let signed = globex.sign(&message("bob@globex.test", "silent"));
    let raw = world
        .deliver("mail.globex.test", "bob@globex.test", &signed)
        .await;
    assert_eq!(
        results(&raw),
        [
            "spf=temperror smtp.helo=mail.globex.test",
            "spf=temperror smtp.mailfrom=bob@globex.test",
            "dkim=temperror header.d=globex.test header.s=ed",
            "dmarc=temperror header.from=globex.test policy.dmarc=none",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolver_that_is_down_is_temperror_and_the_message_is_delivered() {
    let globex = Globex::new();
    let authenticator = stormproof_smtp::authenticator(&[Stub::down()]).expect("authenticator");
    let world = World::start(Some(authenticator)).await;
    let signed = globex.sign(&message("bob@globex.test", "down"));
    let raw = world
        .deliver("mail.globex.test", "bob@globex.test", &signed)
        .await;
    assert_eq!(
        results(&raw),
        [
            "spf=temperror smtp.helo=mail.globex.test",
            "spf=temperror smtp.mailfrom=bob@globex.test",
            "dkim=temperror header.d=globex.test header.s=ed",
            "dmarc=temperror header.from=globex.test policy.dmarc=none",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_claiming_our_name_are_removed_and_others_kept() {
    let globex = Globex::new();
    let (_stub, world) = world(&globex, Mode::Answer).await;
    let forged = format!(
        "Authentication-Results: {HOSTNAME}; dkim=pass header.d=bank.test\r\n\
         Authentication-Results: mx.elsewhere.test; spf=pass\r\n\
         Authentication-Results: (tricky)\r\n {HOSTNAME};\r\n\tdmarc=pass\r\n{}",
        message("bob@nowhere.test", "forged")
    );
    let raw = world
        .deliver("client.nowhere.test", "bob@nowhere.test", &forged)
        .await;
    // `results` checks there is exactly one field of ours left.
    assert_eq!(results(&raw)[2], "dkim=none");
    assert!(
        header_fields(&raw)
            .contains(&"Authentication-Results: mx.elsewhere.test; spf=pass".to_owned()),
        "{raw}"
    );
    assert!(!raw.contains("bank.test"), "{raw}");
    assert!(!raw.contains("tricky"), "{raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_authenticator_nothing_is_checked() {
    let world = World::start(None).await;
    let raw = world
        .deliver(
            "mail.globex.test",
            "bob@globex.test",
            &format!(
                "Authentication-Results: {HOSTNAME}; dkim=pass\r\n{}",
                message("bob@globex.test", "unchecked")
            ),
        )
        .await;
    assert_eq!(results(&raw), ["none"]);
}

#[test]
fn an_authenticator_needs_a_nameserver() {
    assert!(stormproof_smtp::authenticator(&[]).is_err());
}

/// The server builds its SMTP context before it starts the runtime.
#[test]
fn authenticators_are_built_outside_a_runtime() {
    let address = "127.0.0.1:5353".parse().expect("address");
    let authenticator = stormproof_smtp::authenticator(&[address]).expect("authenticator");
    assert_eq!(authenticator.timeout(), stormproof_smtp::AUTH_TIMEOUT);
    // Reads /etc/resolv.conf; asks nothing.
    stormproof_smtp::authenticator_from_system().expect("system authenticator");
}
