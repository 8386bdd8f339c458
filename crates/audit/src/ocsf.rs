//! Export to the Open Cybersecurity Schema Framework (OCSF 1.3.0), so a
//! SIEM can take the log without a custom parser: reads of mail as API
//! Activity (6003), sign-ins as Authentication (3002), changes to users,
//! passwords and app passwords as Account Change (3001). Other events
//! (token rejections, key changes) have no better class than API Activity,
//! with `api.operation` naming them.

use serde_json::{Map, Value, json};

use crate::event::{AccessKind, AuditEvent, Outcome};

/// The OCSF schema version the output follows.
pub const OCSF_VERSION: &str = "1.3.0";

/// OCSF class of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcsfClass {
    /// 3001, Identity & Access Management.
    AccountChange,
    /// 3002, Identity & Access Management.
    Authentication,
    /// 6003, Application Activity.
    ApiActivity,
}

impl OcsfClass {
    /// `class_uid`.
    pub fn uid(self) -> u32 {
        match self {
            Self::AccountChange => 3001,
            Self::Authentication => 3002,
            Self::ApiActivity => 6003,
        }
    }

    fn category_uid(self) -> u32 {
        self.uid() / 1000
    }

    fn name(self) -> &'static str {
        match self {
            Self::AccountChange => "Account Change",
            Self::Authentication => "Authentication",
            Self::ApiActivity => "API Activity",
        }
    }
}

/// The class an event exports as, with its `activity_id`.
pub fn classify(event: &AuditEvent) -> (OcsfClass, u32) {
    let op = event.operation.as_str();
    match op {
        // Authentication: 1 Logon, 99 Other.
        "sign_in" | "sign_in_failed" | "smtp.auth" | "smtp.auth_failed" => {
            (OcsfClass::Authentication, 1)
        }
        // Account Change: 1 Create, 2 Enable, 3 Password Change, 5 Disable,
        // 10 MFA Factor Enable, 11 MFA Factor Disable, 99 Other.
        "user_created" => (OcsfClass::AccountChange, 1),
        "user_enabled" => (OcsfClass::AccountChange, 2),
        "password_changed" => (OcsfClass::AccountChange, 3),
        "user_disabled" => (OcsfClass::AccountChange, 5),
        "totp_enrolled" => (OcsfClass::AccountChange, 10),
        "totp_disabled" => (OcsfClass::AccountChange, 11),
        "app_password_created" | "app_password_revoked" => (OcsfClass::AccountChange, 99),
        // API Activity: 1 Create, 2 Read, 3 Update, 4 Delete, 99 Other.
        _ if event.access != AccessKind::None => (OcsfClass::ApiActivity, 2),
        _ if op.ends_with("/set") || op.ends_with("_created") || op.ends_with("_issued") => {
            (OcsfClass::ApiActivity, 1)
        }
        _ if op.ends_with("_revoked") || op.ends_with("_deleted") => (OcsfClass::ApiActivity, 4),
        _ if op.ends_with("_rotated") || op.ends_with("_blocked") || op.ends_with("_changed") => {
            (OcsfClass::ApiActivity, 3)
        }
        _ => (OcsfClass::ApiActivity, 99),
    }
}

fn time_ms(time: &str) -> i64 {
    humantime::parse_rfc3339(time)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

fn insert_some(map: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(value) = value {
        map.insert(key.into(), Value::String(value.clone()));
    }
}

/// The event as one OCSF object.
pub fn to_ocsf(event: &AuditEvent) -> Value {
    let (class, activity_id) = classify(event);
    let failed = event.outcome == Outcome::Failure;
    let mut user = Map::new();
    insert_some(&mut user, "email_addr", &event.actor.user);
    insert_some(&mut user, "name", &event.actor.user);
    insert_some(&mut user, "uid", &event.actor.user_id);
    let mut session = Map::new();
    insert_some(&mut session, "uid", &event.actor.session);
    let mut actor = Map::new();
    actor.insert("user".into(), Value::Object(user.clone()));
    if !session.is_empty() {
        actor.insert("session".into(), Value::Object(session.clone()));
    }
    insert_some(&mut actor, "app_uid", &event.actor.client_id);
    insert_some(&mut actor, "app_name", &event.actor.client_id);
    let mut src = Map::new();
    insert_some(&mut src, "ip", &event.actor.ip);
    let mut out = json!({
        "activity_id": activity_id,
        "category_uid": class.category_uid(),
        "class_uid": class.uid(),
        "class_name": class.name(),
        "type_uid": class.uid() * 100 + activity_id,
        "severity_id": if failed { 3 } else { 1 },
        "time": time_ms(&event.time),
        "status_id": if failed { 2 } else { 1 },
        "status": if failed { "Failure" } else { "Success" },
        "message": event.operation,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": event.seq.to_string(),
            "original_time": event.time,
            "log_name": "stormproof-audit",
            "product": {"name": "Stormproof", "vendor_name": "Stormproof", "version": env!("CARGO_PKG_VERSION")},
        },
        "actor": actor,
        "src_endpoint": src,
        "unmapped": {
            "protocol": event.actor.protocol,
            "access": event.access,
            "count": event.count,
            "target": event.target,
        },
    });
    let Some(object) = out.as_object_mut() else {
        return out;
    };
    if let Some(tenant) = &event.tenant
        && let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut)
    {
        metadata.insert("tenant_uid".into(), Value::String(tenant.clone()));
    }
    if let Some(reason) = &event.reason {
        object.insert("status_detail".into(), Value::String(reason.clone()));
    }
    if let Some(agent) = &event.actor.user_agent {
        object.insert("http_request".into(), json!({"user_agent": agent}));
    }
    match class {
        OcsfClass::ApiActivity => {
            object.insert(
                "api".into(),
                json!({"operation": event.operation, "service": {"name": event.actor.protocol}}),
            );
            let resources: Vec<Value> = event
                .target
                .items
                .iter()
                .map(|id| {
                    json!({"uid": id, "type": "email", "owner": {"account_uid": event.target.account, "email_addr": event.target.owner}})
                })
                .collect();
            object.insert("resources".into(), Value::Array(resources));
        }
        OcsfClass::Authentication => {
            object.insert("user".into(), Value::Object(user));
            if !session.is_empty() {
                object.insert("session".into(), Value::Object(session));
            }
            object.insert("auth_protocol_id".into(), json!(99));
            object.insert("auth_protocol".into(), json!(event.actor.protocol));
            object.insert(
                "is_mfa".into(),
                json!(
                    event
                        .detail
                        .get("amr")
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.len() > 1)
                ),
            );
        }
        OcsfClass::AccountChange => {
            let mut changed = Map::new();
            insert_some(&mut changed, "email_addr", &event.target.owner);
            insert_some(&mut changed, "uid", &event.target.account);
            if changed.is_empty() {
                changed = user;
            }
            object.insert("user".into(), Value::Object(changed));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, AuditEvent, Outcome};

    fn event(operation: &str, access: AccessKind, outcome: Outcome) -> AuditEvent {
        let mut event = AuditEvent::new(
            1_700_000_000_000,
            operation,
            outcome,
            Actor {
                user: Some("alice@example.com".into()),
                user_id: Some("u1".into()),
                client_id: Some("mail-app".into()),
                session: Some("s1".into()),
                token: Some("j1".into()),
                ip: Some("127.0.0.1".into()),
                user_agent: Some("test".into()),
                protocol: "jmap".into(),
            },
        );
        event.access = access;
        event.tenant = Some("acme".into());
        event.target.items = vec!["e1".into(), "e2".into()];
        event
    }

    /// The attributes OCSF 1.3 marks required for every class, then each
    /// class's own.
    fn assert_required(value: &Value, class_required: &[&str]) {
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
        .chain(class_required)
        {
            assert!(value.get(field).is_some(), "missing {field} in {value}");
        }
        assert!(value["metadata"]["version"].is_string());
        assert!(value["metadata"]["product"]["vendor_name"].is_string());
        let class = value["class_uid"].as_u64().unwrap_or(0);
        let activity = value["activity_id"].as_u64().unwrap_or(0);
        assert_eq!(value["type_uid"].as_u64(), Some(class * 100 + activity));
    }

    #[test]
    fn each_class_carries_its_required_fields() {
        let cases: [(&str, AccessKind, Outcome, u64, &[&str]); 5] = [
            (
                "Email/get",
                AccessKind::Content,
                Outcome::Success,
                6003,
                &["actor", "api", "src_endpoint"],
            ),
            (
                "download",
                AccessKind::Content,
                Outcome::Success,
                6003,
                &["actor", "api", "src_endpoint"],
            ),
            (
                "sign_in",
                AccessKind::None,
                Outcome::Success,
                3002,
                &["user"],
            ),
            (
                "sign_in_failed",
                AccessKind::None,
                Outcome::Failure,
                3002,
                &["user"],
            ),
            (
                "user_disabled",
                AccessKind::None,
                Outcome::Success,
                3001,
                &["user"],
            ),
        ];
        for (operation, access, outcome, class, required) in cases {
            let value = to_ocsf(&event(operation, access, outcome));
            assert_eq!(value["class_uid"].as_u64(), Some(class), "{operation}");
            assert_required(&value, required);
        }
    }

    #[test]
    fn a_mail_read_names_every_item_and_the_time_in_milliseconds() {
        let value = to_ocsf(&event("Email/get", AccessKind::Content, Outcome::Success));
        assert_eq!(value["activity_id"], 2);
        assert_eq!(value["time"], 1_700_000_000_000_i64);
        assert_eq!(value["resources"].as_array().map(Vec::len), Some(2));
        assert_eq!(value["actor"]["app_uid"], "mail-app");
        assert_eq!(value["src_endpoint"]["ip"], "127.0.0.1");
        assert_eq!(value["metadata"]["tenant_uid"], "acme");
    }
}
