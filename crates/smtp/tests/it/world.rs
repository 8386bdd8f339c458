//! The inbound listener on loopback over a real SQLite store in a temp
//! dir, and a minimal SMTP client to talk to it.

use std::net::SocketAddr;
use std::sync::Arc;

use stormproof_identity::{Issuer, IssuerConfig};
use stormproof_mail::Delivery;
use stormproof_smtp::{Authenticator, Listener, SmtpContext};
use stormproof_store::{SqliteStore, Store};
use stormproof_types::{Email, SystemClock, TenantName};
use stormproof_verifier::{Verifier, VerifierConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

pub const HOSTNAME: &str = "mx.test";
const URL: &str = "https://mx.test";

/// A running inbound listener with one local user, alice@acme.test.
pub struct World {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    delivery: Delivery,
    tenant: TenantName,
    account_id: String,
    pub address: SocketAddr,
}

impl World {
    pub async fn start(authenticator: Option<Authenticator>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(SystemClock);
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("store"));
        let issuer = Issuer::open(
            store.clone(),
            clock.clone(),
            IssuerConfig {
                public_url: URL.into(),
                ..IssuerConfig::default()
            },
            dir.path(),
            None,
        )
        .expect("issuer");
        let tenant = TenantName::parse("acme").expect("name");
        issuer
            .create_tenant(&tenant, &["acme.test".into()])
            .expect("tenant");
        let user = issuer
            .create_user(
                &Email::parse("alice@acme.test").expect("email"),
                "a long password",
            )
            .expect("user");
        let account = store
            .create_mail_account(&tenant, &user.id, 1 << 30)
            .expect("account");
        let verifier = Verifier::new(
            store.clone(),
            clock.clone(),
            VerifierConfig {
                public_url: URL.into(),
                audience: URL.into(),
                ..VerifierConfig::default()
            },
            None,
        )
        .expect("verifier");
        let delivery = Delivery::open(store.clone(), dir.path()).expect("delivery");
        let master = stormproof_keys::MasterKey::load_or_create(&dir.path().join("master.key"))
            .expect("master key");
        let audit_dir = dir.path().join("audit");
        let signer =
            stormproof_audit::CheckpointSigner::load_or_create(&audit_dir, &master, "test/audit")
                .expect("audit key");
        let audit = stormproof_audit::AuditLog::open(&audit_dir, signer, Default::default())
            .expect("audit log");
        let context = Arc::new(SmtpContext {
            store: store.clone(),
            delivery: delivery.clone(),
            issuer: Arc::new(issuer),
            verifier: Arc::new(verifier),
            hostname: HOSTNAME.into(),
            tls: None,
            clock,
            authenticator,
            audit,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(stormproof_smtp::serve(listener, context, Listener::Inbound));
        Self {
            _dir: dir,
            store,
            delivery,
            tenant,
            account_id: account.account_id,
            address,
        }
    }

    /// The raw messages in Alice's inbox, newest first.
    pub fn inbox(&self) -> Vec<String> {
        let inbox = self
            .store
            .mailboxes(&self.tenant, &self.account_id)
            .expect("mailboxes")
            .into_iter()
            .find(|m| m.role.as_deref() == Some("inbox"))
            .expect("inbox");
        let ids = self
            .store
            .mailbox_email_ids(&self.tenant, &self.account_id, &inbox.id)
            .expect("ids");
        self.store
            .emails(&self.tenant, &self.account_id, &ids)
            .expect("emails")
            .into_iter()
            .map(|e| {
                let raw = self.delivery.blobs().get(&e.blob_id).expect("blob");
                String::from_utf8(raw).expect("utf-8")
            })
            .collect()
    }

    /// Sends one message to Alice and returns the final reply to DATA.
    pub async fn send(&self, helo: &str, from: &str, message: &str) -> String {
        let mut client = Client::connect(self.address, helo).await;
        client.send(from, "alice@acme.test", message).await
    }

    /// Sends one message and returns how Alice's inbox stored it.
    pub async fn deliver(&self, helo: &str, from: &str, message: &str) -> String {
        let before = self.inbox().len();
        let reply = self.send(helo, from, message).await;
        assert!(reply.starts_with("250 "), "{reply}");
        let inbox = self.inbox();
        assert_eq!(inbox.len(), before + 1);
        let body = message.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        inbox
            .into_iter()
            .find(|raw| raw.ends_with(body))
            .expect("the message just sent")
    }
}

/// A minimal SMTP client: every reply is read, none is interpreted.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    pub async fn connect(address: SocketAddr, helo: &str) -> Self {
        let (read, writer) = TcpStream::connect(address)
            .await
            .expect("connect")
            .into_split();
        let mut client = Self {
            reader: BufReader::new(read),
            writer,
        };
        client.reply().await;
        let ehlo = client.command(&format!("EHLO {helo}")).await;
        assert!(ehlo.starts_with("250 "), "{ehlo}");
        client
    }

    /// One (possibly multi-line) reply; its last line.
    async fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            let read = self.reader.read_line(&mut line).await.expect("read");
            assert!(read > 0, "connection closed");
            if line.as_bytes().get(3) != Some(&b'-') {
                return line.trim_end().to_owned();
            }
        }
    }

    async fn command(&mut self, line: &str) -> String {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("write");
        self.reply().await
    }

    /// One transaction; the final reply to DATA.
    pub async fn send(&mut self, from: &str, to: &str, message: &str) -> String {
        let mail = self.command(&format!("MAIL FROM:<{from}>")).await;
        assert!(mail.starts_with("250 "), "{mail}");
        let rcpt = self.command(&format!("RCPT TO:<{to}>")).await;
        assert!(rcpt.starts_with("250 "), "{rcpt}");
        let data = self.command("DATA").await;
        assert!(data.starts_with("354 "), "{data}");
        assert!(
            !message.contains("\r\n."),
            "the test messages need no dot-stuffing"
        );
        self.writer
            .write_all(message.as_bytes())
            .await
            .expect("write");
        self.command(".").await
    }
}
