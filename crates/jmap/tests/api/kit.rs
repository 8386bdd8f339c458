//! The test world: a real SQLite store and blob directory in a temp dir,
//! two tenants with one user each, and helpers to drive the API.

use std::sync::Arc;

use serde_json::{Value, json};
use stormproof_jmap::{Access, ApiResponse, Caller, Jmap, JmapConfig};
use stormproof_mail::{Delivery, Target};
use stormproof_store::{SqliteStore, Store, UserRecord};
use stormproof_types::{Email, ManualClock, TenantName};

pub const CORE: &str = "urn:ietf:params:jmap:core";
pub const MAIL: &str = "urn:ietf:params:jmap:mail";
pub const SUBMISSION: &str = "urn:ietf:params:jmap:submission";
pub const VACATION: &str = "urn:ietf:params:jmap:vacationresponse";
/// 2026-12-01T10:00:00Z.
pub const T0: i64 = 1_796_119_200;

pub struct World {
    _dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub delivery: Delivery,
    pub jmap: Jmap,
    /// alice@acme.test, tenant acme.
    pub alice: Caller,
    /// mallory@globex.test, tenant globex.
    pub mallory: Caller,
}

pub fn world() -> World {
    world_with(|_| {})
}

pub fn world_with(adjust: impl FnOnce(&mut JmapConfig)) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let acme = TenantName::parse("acme").unwrap();
    let globex = TenantName::parse("globex").unwrap();
    store
        .create_tenant(&acme, &["acme.test".into()], 0)
        .unwrap();
    store
        .create_tenant(&globex, &["globex.test".into()], 0)
        .unwrap();
    let alice_account = add_user(store.as_ref(), &acme, "u-alice", "alice@acme.test");
    let mallory_account = add_user(store.as_ref(), &globex, "u-mallory", "mallory@globex.test");
    let delivery = Delivery::open(store.clone(), dir.path()).unwrap();
    let mut config = JmapConfig::for_base_url("https://mail.acme.test");
    adjust(&mut config);
    let jmap = Jmap::new(store.clone(), delivery.clone(), config)
        .with_clock(Arc::new(ManualClock::new(T0 + 3600)));
    World {
        _dir: dir,
        store,
        delivery,
        jmap,
        alice: Caller {
            tenant: acme,
            account_id: alice_account.account_id,
            username: "alice@acme.test".into(),
        },
        mallory: Caller {
            tenant: globex,
            account_id: mallory_account.account_id,
            username: "mallory@globex.test".into(),
        },
    }
}

/// A user with a mail account; returns the account.
pub fn add_user(
    store: &dyn Store,
    tenant: &TenantName,
    id: &str,
    email: &str,
) -> stormproof_store::MailAccount {
    store
        .create_user(&UserRecord {
            tenant: tenant.clone(),
            id: id.into(),
            email: Email::parse(email).unwrap(),
            password_hash: "unused".into(),
            totp_sealed: None,
            enabled: true,
            created: 0,
        })
        .unwrap();
    store.create_mail_account(tenant, id, 1 << 24).unwrap()
}

impl World {
    /// Another user of `tenant`, as a caller.
    pub fn user(&self, tenant: &TenantName, id: &str, email: &str) -> Caller {
        let account = add_user(self.store.as_ref(), tenant, id, email);
        Caller {
            tenant: tenant.clone(),
            account_id: account.account_id,
            username: email.into(),
        }
    }

    /// A raw request.
    pub fn raw(&self, caller: &Caller, body: &[u8]) -> ApiResponse {
        self.jmap.api(caller, body)
    }

    /// Runs method calls with every capability; returns the whole response.
    pub fn request(&self, caller: &Caller, calls: Value) -> ApiResponse {
        self.request_recording(caller, calls).0
    }

    /// [`World::request`] through `Jmap::api_recording`; also returns the
    /// accesses in the order they were handed over.
    pub fn request_recording(&self, caller: &Caller, calls: Value) -> (ApiResponse, Vec<Access>) {
        let body = json!({ "using": [CORE, MAIL, SUBMISSION, VACATION], "methodCalls": calls });
        let mut handed = Vec::new();
        let response =
            self.jmap
                .api_recording(caller, body.to_string().as_bytes(), &mut |access| {
                    handed.push(access.clone())
                });
        assert_eq!(response.status, 200, "{}", response.body);
        (response, handed)
    }

    /// Runs method calls and returns the `methodResponses`.
    pub fn calls(&self, caller: &Caller, calls: Value) -> Vec<Value> {
        responses(&self.request(caller, calls))
    }

    /// Runs one method call as Alice and returns its response arguments,
    /// failing if it answered anything but `method`.
    pub fn call(&self, method: &str, args: Value) -> Value {
        let mut responses = self.calls(&self.alice, json!([[method, args, "c"]]));
        let [name, args, _] =
            <[Value; 3]>::try_from(responses.remove(0).as_array().cloned().unwrap()).unwrap();
        assert_eq!(name, method, "{args}");
        args
    }

    /// Runs one method call as Alice and returns the error type.
    pub fn call_error(&self, method: &str, args: Value) -> String {
        self.call_error_as(&self.alice, method, args)
    }

    pub fn call_error_as(&self, caller: &Caller, method: &str, args: Value) -> String {
        let responses = self.calls(caller, json!([[method, args, "c"]]));
        assert_eq!(responses[0][0], "error", "{}", responses[0]);
        responses[0][1]["type"].as_str().unwrap().to_owned()
    }

    /// The data directory the store and the blobs live in.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn account(&self) -> &str {
        &self.alice.account_id
    }

    pub fn mailbox(&self, role: &str) -> String {
        self.mailbox_of(&self.alice, role)
    }

    /// A mailbox of any caller's account, by role.
    pub fn mailbox_of(&self, caller: &Caller, role: &str) -> String {
        self.store
            .mailboxes(&caller.tenant, &caller.account_id)
            .unwrap()
            .into_iter()
            .find(|m| m.role.as_deref() == Some(role))
            .unwrap()
            .id
    }

    /// Delivers a message into one of Alice's mailboxes, by role.
    pub fn deliver(&self, raw: &str, role: &str, keywords: &[&str], received_at: i64) -> String {
        self.deliver_to(
            &self.alice,
            raw,
            &[self.mailbox(role)],
            keywords,
            received_at,
        )
    }

    pub fn deliver_to(
        &self,
        caller: &Caller,
        raw: &str,
        mailboxes: &[String],
        keywords: &[&str],
        received_at: i64,
    ) -> String {
        let keywords: Vec<String> = keywords.iter().map(|k| (*k).to_owned()).collect();
        self.delivery
            .deliver(
                &caller.tenant,
                &caller.account_id,
                raw.as_bytes(),
                Target::Mailboxes(mailboxes),
                &keywords,
                received_at,
            )
            .unwrap()
            .email_id
    }

    pub fn state(&self) -> String {
        self.store
            .mail_account(&self.alice.tenant, self.account())
            .unwrap()
            .unwrap()
            .modseq
            .to_string()
    }
}

pub fn responses(response: &ApiResponse) -> Vec<Value> {
    response.body["methodResponses"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A plain message.
pub fn simple(subject: &str, from: &str, message_id: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: Alice <alice@acme.test>\r\nSubject: {subject}\r\n\
Message-ID: <{message_id}>\r\nDate: Tue, 1 Dec 2026 09:00:00 +0000\r\n\r\n{body}\r\n"
    )
}

/// A reply to `parent`.
pub fn reply(subject: &str, message_id: &str, parent: &str, body: &str) -> String {
    format!(
        "From: Bob <bob@globex.test>\r\nTo: alice@acme.test\r\nSubject: {subject}\r\n\
Message-ID: <{message_id}>\r\nIn-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n\
Date: Tue, 1 Dec 2026 11:00:00 +0000\r\n\r\n{body}\r\n"
    )
}

/// text/plain + text/html alternatives and a PDF attachment.
pub const MULTIPART: &str = "From: Carol <carol@globex.test>\r\n\
To: alice@acme.test\r\n\
Cc: Dave <dave@acme.test>\r\n\
Bcc: eve@acme.test\r\n\
Reply-To: replies@globex.test\r\n\
Subject: Quarterly numbers\r\n\
Message-ID: <q4@globex.test>\r\n\
Date: Tue, 1 Dec 2026 10:00:00 +0100\r\n\
X-Classification: internal\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=\"inner\"\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
The quarterly numbers are attached. Revenue is up.\r\n\
--inner\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>The <b>quarterly</b> numbers are attached.</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"q4.pdf\"\r\n\
Content-Disposition: attachment; filename=\"q4.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQKJcfsj6IK\r\n\
--outer--\r\n";
