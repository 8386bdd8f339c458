//! What the audit benches append: realistic `Email/get` records.

use stormproof_audit::{AccessKind, Actor, AuditEvent, Outcome};

/// User `user`'s `n`th `Email/get` record: ten email ids and their
/// Message-IDs, read with Thunderbird over JMAP.
pub fn email_get(user: usize, n: usize) -> AuditEvent {
    let actor = Actor {
        user: Some(format!("user{user}@example.com")),
        user_id: Some(format!("u-{user:04x}")),
        client_id: Some("thunderbird".into()),
        session: Some(format!("s-{user}-91c2")),
        token: Some(format!("jti-{user}-{n}")),
        ip: Some(format!("192.0.2.{}", user % 250)),
        user_agent: Some("Thunderbird/128.0".into()),
        protocol: "jmap".into(),
    };
    let mut event = AuditEvent::new(
        1_700_000_000_000 + n as i64,
        "Email/get",
        Outcome::Success,
        actor,
    );
    event.tenant = Some("example".into());
    event.access = AccessKind::Content;
    event.count = 10;
    event.target.account = Some(format!("a-{user}"));
    event.target.owner = Some(format!("user{user}@example.com"));
    event.target.mailboxes = vec!["inbox".into()];
    event.target.items = (0..10).map(|i| format!("M{n:08}{i}")).collect();
    event.target.message_ids = (0..10)
        .map(|i| format!("<{n}.{i}@mail.example.com>"))
        .collect();
    event
}
