//! SMTP delivery against the real server: real clients, real sockets, and a
//! kill -9 in the middle of a delivery burst.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stormproof_store::{BlobStore, MailStore, Store};
use stormproof_types::{Email, TenantName};

use crate::testkit::Server;

/// A minimal SMTP client: one transaction per call, every reply checked.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(address: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut client = Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        client.reply()?;
        client.command("EHLO client.test")?;
        Ok(client)
    }

    /// Reads one (possibly multi-line) reply; returns its last line.
    fn reply(&mut self) -> std::io::Result<String> {
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed",
                ));
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(line.trim_end().to_owned());
            }
        }
    }

    fn command(&mut self, line: &str) -> std::io::Result<String> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// Sends one message; `Ok(reply)` is the final reply to the data.
    fn send(&mut self, from: &str, to: &str, body: &str) -> std::io::Result<String> {
        let mail = self.command(&format!("MAIL FROM:<{from}>"))?;
        if !mail.starts_with("250") {
            return Ok(mail);
        }
        let rcpt = self.command(&format!("RCPT TO:<{to}>"))?;
        if !rcpt.starts_with("250") {
            self.command("RSET")?;
            return Ok(rcpt);
        }
        let data = self.command("DATA")?;
        if !data.starts_with("354") {
            return Ok(data);
        }
        self.writer.write_all(body.as_bytes())?;
        self.command(".")
    }
}

fn message(id: usize) -> String {
    format!(
        "From: bob@globex.test\r\nTo: alice@acme.test\r\nSubject: Burst {id}\r\nMessage-ID: <burst-{id}@globex.test>\r\n\r\n{}\r\n",
        format!("line {id}\r\n").repeat(20)
    )
}

/// Alice's inbox as (message-id, subject, raw bytes) read straight from the store.
fn inbox(server: &Server) -> Vec<(String, String, Vec<u8>)> {
    let store = stormproof_store::SqliteStore::open(server.data.path()).expect("store");
    let blobs = BlobStore::open(server.data.path()).expect("blobs");
    let acme = TenantName::parse("acme").expect("tenant");
    let alice = store
        .user_by_email(&acme, &Email::parse("alice@acme.test").expect("email"))
        .expect("user")
        .expect("alice");
    let account = store
        .mail_account_for_user(&acme, &alice.id)
        .expect("account")
        .expect("mail account");
    let inbox = store
        .mailboxes(&acme, &account.account_id)
        .expect("mailboxes")
        .into_iter()
        .find(|m| m.role.as_deref() == Some("inbox"))
        .expect("inbox");
    let ids = store
        .mailbox_email_ids(&acme, &account.account_id, &inbox.id)
        .expect("ids");
    store
        .emails(&acme, &account.account_id, &ids)
        .expect("emails")
        .into_iter()
        .map(|e| {
            let raw = blobs
                .get(&e.blob_id)
                .expect("every stored message has its intact blob");
            (
                e.message_id.unwrap_or_default(),
                e.subject.unwrap_or_default(),
                raw,
            )
        })
        .collect()
}

#[test]
fn mail_sent_with_lettre_lands_in_the_recipients_inbox() {
    use lettre::{Message, SmtpTransport, Transport};
    let server = Server::with_tenants();
    let port: u16 = server
        .smtp
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let mailer = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(port)
        .build();
    let email = Message::builder()
        .from("Bob <bob@globex.test>".parse().expect("from"))
        .to("Alice <alice@acme.test>".parse().expect("to"))
        .subject("Quarterly numbers")
        .body(String::from("The numbers are attached.\r\n"))
        .expect("message");
    mailer.send(&email).expect("delivered");
    let inbox = inbox(&server);
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].1, "Quarterly numbers");
    let raw = String::from_utf8_lossy(&inbox[0].2);
    assert!(
        raw.starts_with("Return-Path: <bob@globex.test>\r\nReceived: from "),
        "{raw}"
    );
    assert!(raw.contains("by mx.test with ESMTP;"), "{raw}");
    assert!(raw.contains("The numbers are attached."));
}

#[test]
fn recipients_are_checked_at_rcpt() {
    let server = Server::with_tenants();
    let mut client = Client::connect(&server.smtp).expect("connect");
    let cases = [
        ("nobody@acme.test", "550 5.1.1"),
        ("someone@elsewhere.test", "550 5.7.1"),
        ("not an address", "501"),
        ("alice@acme.test", "250"),
    ];
    client.command("MAIL FROM:<bob@globex.test>").expect("mail");
    for (to, expect) in cases {
        let reply = client.command(&format!("RCPT TO:<{to}>")).expect("rcpt");
        assert!(reply.starts_with(expect), "{to}: {reply}");
    }
    assert!(inbox(&server).is_empty(), "nothing delivered without DATA");
}

#[test]
fn submission_requires_authentication_before_mail() {
    let server = Server::with_tenants();
    let mut client = Client::connect(&server.submission).expect("connect");
    let reply = client.command("MAIL FROM:<alice@acme.test>").expect("mail");
    assert!(reply.starts_with("530 5.7.0"), "{reply}");
    let auth = client
        .command("AUTH PLAIN AGFsaWNlQGFjbWUudGVzdABwYXNzd29yZA==")
        .expect("auth");
    assert!(
        auth.starts_with("538") || auth.starts_with("503") || auth.starts_with("5"),
        "plaintext AUTH refused: {auth}"
    );
}

#[test]
fn every_acknowledged_message_survives_kill_9_and_no_partial_one_appears() {
    let mut server = Server::with_tenants();
    let acknowledged: Arc<Mutex<Vec<usize>>> = Arc::default();
    let address = server.smtp.clone();
    let senders: Vec<_> = (0..4)
        .map(|sender| {
            let acknowledged = acknowledged.clone();
            let address = address.clone();
            std::thread::spawn(move || {
                let Ok(mut client) = Client::connect(&address) else {
                    return;
                };
                // Bounded: at most 200 messages per sender.
                for n in 0..200 {
                    let id = sender * 1000 + n;
                    match client.send("bob@globex.test", "alice@acme.test", &message(id)) {
                        Ok(reply) if reply.starts_with("250") => {
                            acknowledged.lock().expect("lock").push(id)
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    // Let the burst get going, then pull the plug.
    while acknowledged.lock().expect("lock").len() < 40 {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill9();
    for sender in senders {
        let _ = sender.join();
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    server.spawn();
    let stored = inbox(&server);
    for id in &acknowledged {
        let wanted = format!("burst-{id}@globex.test");
        let found = stored.iter().find(|(mid, _, _)| mid == &wanted);
        let (_, subject, raw) = found.unwrap_or_else(|| panic!("acknowledged message {id} lost"));
        assert_eq!(subject, &format!("Burst {id}"));
        assert!(
            raw.ends_with(
                message(*id)
                    .split_once("\r\n\r\n")
                    .map(|(_, body)| body)
                    .expect("body")
                    .as_bytes()
            ),
            "message {id} intact"
        );
    }
    // Messages stored but not yet acknowledged when the server died are
    // fine (the client will retry); a torn one is not, and inbox() would
    // have failed reading its blob.
    assert!(stored.len() >= acknowledged.len());
}

/// A submission client speaking over TLS after STARTTLS, trusting only the
/// certificate the server generated in its data directory.
struct TlsClient {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl TlsClient {
    fn connect(server: &Server) -> Self {
        let mut plain = Client::connect(&server.submission).expect("connect");
        let ready = plain.command("STARTTLS").expect("starttls");
        assert!(ready.starts_with("220"), "{ready}");
        use rustls::pki_types::pem::PemObject;
        let cert_path = server.data.path().join("tls").join("cert.pem");
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(&cert_path).expect("cert") {
            roots.add(cert.expect("pem")).expect("root");
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("mx.test").expect("name");
        let connection =
            rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("tls");
        let mut client = Self {
            stream: rustls::StreamOwned::new(connection, plain.writer),
        };
        let ehlo = client.command("EHLO client.test");
        assert!(ehlo.starts_with("250"), "{ehlo}");
        client
    }

    fn command(&mut self, line: &str) -> String {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
        let mut reader = BufReader::new(&mut self.stream);
        loop {
            let mut reply = String::new();
            if reader.read_line(&mut reply).expect("read") == 0 {
                return "closed".into();
            }
            if reply.as_bytes().get(3) != Some(&b'-') {
                return reply.trim_end().to_owned();
            }
        }
    }

    fn send(&mut self, from: &str, to: &str, body: &str) -> String {
        for (line, expect) in [
            (format!("MAIL FROM:<{from}>"), "250"),
            (format!("RCPT TO:<{to}>"), "250"),
            ("DATA".into(), "354"),
        ] {
            let reply = self.command(&line);
            if !reply.starts_with(expect) {
                self.command("RSET");
                return reply;
            }
        }
        self.stream.write_all(body.as_bytes()).expect("body");
        self.command(".")
    }
}

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn submission_over_starttls_with_an_app_password_or_a_token_delivers_locally_only() {
    let server = Server::with_tenants();
    let app_password = server.cli_ok(&[
        "user",
        "app-password",
        "create",
        "alice@acme.test",
        "--name",
        "Thunderbird",
    ]);
    let mut client = TlsClient::connect(&server);
    let wrong = client.command(&format!(
        "AUTH PLAIN {}",
        b64(&format!("\0alice@acme.test\0{}", crate::testkit::PASSWORD))
    ));
    assert!(
        wrong.starts_with("535"),
        "the account password is not for mail protocols: {wrong}"
    );
    let ok = client.command(&format!(
        "AUTH PLAIN {}",
        b64(&format!("\0alice@acme.test\0{}", app_password.trim()))
    ));
    assert!(ok.starts_with("235"), "{ok}");
    let body = "From: alice@acme.test\r\nTo: bob@globex.test\r\nSubject: Hi Bob\r\nMessage-ID: <s1@acme.test>\r\n\r\nhello\r\n";
    assert!(
        client
            .send("mallory@acme.test", "bob@globex.test", body)
            .starts_with("553 5.7.1"),
        "only one's own address"
    );
    assert!(
        client
            .send("alice@acme.test", "someone@remote.example", body)
            .starts_with("550 5.7.1"),
        "no relay yet"
    );
    assert!(
        client
            .send("alice@acme.test", "bob@globex.test", body)
            .starts_with("250")
    );

    // The same with an OAuth token over XOAUTH2.
    let token = server.issue("alice@acme.test");
    let mut oauth = TlsClient::connect(&server);
    let auth = oauth.command(&format!(
        "AUTH XOAUTH2 {}",
        b64(&format!(
            "user=alice@acme.test\x01auth=Bearer {token}\x01\x01"
        ))
    ));
    assert!(auth.starts_with("235"), "{auth}");
    let mut forged = TlsClient::connect(&server);
    let refused = forged.command(&format!(
        "AUTH XOAUTH2 {}",
        b64(&format!(
            "user=alice@acme.test\x01auth=Bearer {token}x\x01\x01"
        ))
    ));
    assert!(
        refused.starts_with("334"),
        "RFC 7628 error challenge first: {refused}"
    );
    assert!(forged.command("").starts_with("535"));

    // On the record: the refused password, both sign-ins, the submission.
    let claims = crate::testkit::claims(&token);
    // The account password, then the forged token.
    let failed = crate::audit::search(&server, &["--operation", "smtp.auth_failed"]);
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[0]["outcome"], "failure");
    assert_eq!(failed[0]["tenant"], "acme");
    assert_eq!(failed[0]["actor"]["user"], "alice@acme.test");
    assert_eq!(failed[0]["actor"]["ip"], "127.0.0.1");
    let signed_in = crate::audit::search(&server, &["--operation", "smtp.auth"]);
    assert_eq!(signed_in.len(), 2, "{signed_in:?}");
    assert_eq!(signed_in[1]["actor"]["token"], claims["jti"]);
    assert_eq!(signed_in[1]["actor"]["session"], claims["sid"]);
    let sent = crate::audit::search(&server, &["--operation", "smtp.submission"]);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["tenant"], "acme");
    assert_eq!(sent[0]["actor"]["user"], "alice@acme.test");
    assert_eq!(sent[0]["actor"]["protocol"], "smtp");
    assert_eq!(
        sent[0]["target"]["message_ids"],
        serde_json::json!(["s1@acme.test"])
    );
    assert_eq!(sent[0]["target"]["items"].as_array().map(Vec::len), Some(1));
}

#[test]
fn swaks_delivers_with_starttls_and_the_message_reads_back() {
    let server = Server::with_tenants();
    let output = std::process::Command::new("swaks")
        .args([
            "--server",
            &server.smtp,
            "--helo",
            "client.test",
            "--from",
            "bob@globex.test",
            "--to",
            "alice@acme.test",
        ])
        .args(["--tls", "--tls-verify", "--tls-ca-path"])
        .arg(server.data.path().join("tls").join("cert.pem"))
        .args([
            "--tls-sni",
            "mx.test",
            "--header",
            "Subject: Sent with swaks",
            "--body",
            "Swaks body.",
        ])
        .output()
        .expect("swaks not found: apt-get install swaks");
    let transcript = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{transcript}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(transcript.contains("<~  250 2.0.0"), "{transcript}");
    let inbox = inbox(&server);
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].1, "Sent with swaks");
    let raw = String::from_utf8_lossy(&inbox[0].2);
    assert!(raw.contains("with ESMTPS;"), "delivered over TLS: {raw}");
    assert!(raw.contains("Swaks body."));
}

#[test]
fn inbound_mail_carries_one_authentication_results_field_of_ours() {
    let server = Server::with_tenants();
    let mut client = Client::connect(&server.smtp).expect("connect");
    let forged = format!(
        "Authentication-Results: mx.test; dkim=pass header.d=bank.test\r\n\
         Authentication-Results: mx.elsewhere.test; spf=pass\r\n{}",
        message(1)
    );
    let reply = client
        .send("bob@globex.test", "alice@acme.test", &forged)
        .expect("send");
    assert!(reply.starts_with("250"), "{reply}");
    let inbox = inbox(&server);
    assert_eq!(inbox.len(), 1);
    let raw = String::from_utf8_lossy(&inbox[0].2);
    // Ours follows our Received field; a forged one claiming our name is
    // gone, another server's stays.
    let fields: Vec<&str> = raw.split("\r\n").collect();
    assert!(fields[1].starts_with("Received: from "), "{raw}");
    assert!(
        fields[2].starts_with("Authentication-Results: mx.test;"),
        "{raw}"
    );
    assert_eq!(
        raw.matches("Authentication-Results: mx.test;").count(),
        1,
        "{raw}"
    );
    assert!(!raw.contains("bank.test"), "{raw}");
    assert!(
        raw.contains("Authentication-Results: mx.elsewhere.test; spf=pass\r\n"),
        "{raw}"
    );
}
