//! Events, stores and engines for the tests: a real SQLite store in a
//! temporary directory, events built the way the fronts build them.

use std::path::Path;
use std::sync::Arc;

use stormproof_audit::{AccessKind, Actor, AuditEvent, Outcome};
use stormproof_detect::{Alert, DetectConfig, Engine};
use stormproof_store::SqliteStore;

/// 2023-11-14T22:13:20Z.
pub const T0: i64 = 1_700_000_000_000;
pub const MINUTE: i64 = 60;
pub const HOUR: i64 = 3600;
pub const DAY: i64 = 86_400;

/// A store in a fresh temporary directory.
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
}

impl TestStore {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        Self { dir, store }
    }

    /// The same database, opened again, as after a restart.
    pub fn reopen(&self) -> Arc<SqliteStore> {
        Arc::new(SqliteStore::open(self.dir.path()).unwrap())
    }

    pub fn engine(&self, config: &DetectConfig) -> Engine {
        Engine::new(config, self.store.clone()).unwrap()
    }
}

pub fn config(toml_text: &str) -> DetectConfig {
    toml::from_str(toml_text).unwrap()
}

/// A config running only `detector`, with extra TOML for its section.
pub fn only(detector: &str, section: &str) -> DetectConfig {
    let mut text = String::from("learning_window = \"0s\"\n");
    for name in stormproof_detect::DETECTORS {
        if *name != detector {
            text.push_str(&format!("[{name}]\nenabled = false\n"));
        }
    }
    text.push_str(&format!("[{detector}]\n{section}\n"));
    config(&text)
}

/// Runs events through an engine, returning every new alert.
pub fn run(engine: &mut Engine, events: &[AuditEvent]) -> Vec<Alert> {
    events.iter().flat_map(|e| engine.process(e)).collect()
}

/// Runs events through a fresh engine over a fresh store.
pub fn run_fresh(config: &DetectConfig, events: &[AuditEvent]) -> Vec<Alert> {
    let store = TestStore::new();
    let mut engine = store.engine(config);
    run(&mut engine, events)
}

/// An event builder.
#[derive(Clone)]
pub struct E(pub AuditEvent);

impl E {
    /// `operation` at `at` seconds after [`T0`], in tenant `acme`.
    pub fn new(seq: u64, at: i64, operation: &str) -> Self {
        let actor = Actor {
            protocol: "jmap".into(),
            ..Actor::default()
        };
        let mut event = AuditEvent::new(T0 + at * 1000, operation, Outcome::Success, actor);
        event.seq = seq;
        event.tenant = Some("acme".into());
        Self(event)
    }
    pub fn tenant(mut self, tenant: Option<&str>) -> Self {
        self.0.tenant = tenant.map(str::to_owned);
        self
    }
    pub fn user(mut self, user: &str) -> Self {
        self.0.actor.user = Some(user.into());
        self
    }
    pub fn client(mut self, client: &str) -> Self {
        self.0.actor.client_id = Some(client.into());
        self
    }
    pub fn ip(mut self, ip: &str) -> Self {
        self.0.actor.ip = Some(ip.into());
        self
    }
    pub fn session(mut self, sid: &str) -> Self {
        self.0.actor.session = Some(sid.into());
        self
    }
    pub fn token(mut self, jti: &str) -> Self {
        self.0.actor.token = Some(jti.into());
        self
    }
    pub fn protocol(mut self, protocol: &str) -> Self {
        self.0.actor.protocol = protocol.into();
        self
    }
    pub fn user_agent(mut self, ua: &str) -> Self {
        self.0.actor.user_agent = Some(ua.into());
        self
    }
    pub fn failed(mut self, reason: &str) -> Self {
        self.0.outcome = Outcome::Failure;
        self.0.reason = Some(reason.into());
        self
    }
    pub fn reason(mut self, reason: &str) -> Self {
        self.0.reason = Some(reason.into());
        self
    }
    pub fn owner(mut self, owner: &str) -> Self {
        self.0.target.owner = Some(owner.into());
        self.0.target.account = Some(format!("acct-{owner}"));
        self
    }
    pub fn item(mut self, item: &str) -> Self {
        self.0.target.items.push(item.into());
        self
    }
    pub fn content(mut self, count: u64) -> Self {
        self.0.access = AccessKind::Content;
        self.0.count = count;
        self
    }
    pub fn metadata(mut self, count: u64) -> Self {
        self.0.access = AccessKind::Metadata;
        self.0.count = count;
        self
    }
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.0.detail = detail;
        self
    }
    pub fn build(self) -> AuditEvent {
        self.0
    }
}

/// A mail read by `user` of their own mailbox through `client`.
pub fn read(seq: u64, at: i64, user: &str, client: &str, ip: &str) -> AuditEvent {
    E::new(seq, at, "Email/get")
        .user(user)
        .client(client)
        .ip(ip)
        .session(&format!("sid-{user}"))
        .owner(user)
        .content(10)
        .build()
}

/// A sign-in creating session `sid`.
pub fn sign_in(seq: u64, at: i64, user: &str, client: &str, ip: &str, sid: &str) -> AuditEvent {
    E::new(seq, at, "sign_in")
        .user(user)
        .client(client)
        .ip(ip)
        .session(sid)
        .protocol("oidc")
        .reason("success")
        .detail(serde_json::json!({"user": user, "sid": sid, "client_id": client, "amr": ["pwd"]}))
        .build()
}

/// A token the verifier refused.
pub fn rejected(seq: u64, at: i64, reason: &str, ip: &str, kid: &str) -> AuditEvent {
    let forgery = [
        "never_issued",
        "ledger_mismatch",
        "cross_tenant_key",
        "key_compromised",
        "key_expired",
        "key_not_active",
        "bad_signature",
        "alg_none",
        "hmac_alg",
        "embedded_key",
        "alg_mismatch",
        "unknown_key",
    ]
    .contains(&reason);
    E::new(seq, at, "token_rejected")
        .failed(reason)
        .ip(ip)
        .protocol("http")
        .client("mail-app")
        .session("sid-claimed")
        .token(&format!("jti-{seq}"))
        .detail(serde_json::json!({
            "kid": kid, "jti": format!("jti-{seq}"), "sub": "u-alice",
            "client_id": "mail-app", "sid": "sid-claimed", "forgery": forgery,
        }))
        .build()
}

/// The alerts' (detector, severity) pairs, for compact assertions.
pub fn kinds(alerts: &[Alert]) -> Vec<(String, String)> {
    alerts
        .iter()
        .map(|a| (a.detector.clone(), a.severity.as_str().to_owned()))
        .collect()
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}
