//! `first_seen_app`: an application reading mail in a tenant where it never
//! read mail before. This is the rule that caught Storm-0558: the State
//! Department flagged an app that had never accessed mailbox items.
//!
//! The detector first learns: for `learning_window` after it first sees a
//! tenant it only records which clients read mail there. After that, a new
//! client reading mail raises a high alert naming it, and a user reading
//! mail through a client they never used before (when the client itself is
//! known, and the user has been seen for the learning window too) raises a
//! medium one.
//!
//! With a window of `0s` nothing is learned quietly: every client the
//! detector has not seen read mail alerts, including on the tenant's very
//! first event. That is meant for tenants whose legitimate clients are
//! known up front (state seeded by replaying a benign log).
//!
//! State, per tenant: `t` (when the tenant was first seen), `c:<client>`
//! (clients that read mail), `p:<user>` (when a user was first seen),
//! `u:<user>\u{1f}<client>` (user and client pairs); values are Unix ms.

use hashbrown::{HashMap, HashSet};

use serde::Deserialize;
use stormproof_store::DetectorStateRecord;

use super::{BuildContext, Component, Detector, Output, Switches, switches};
use crate::Result;
use crate::alert::{Alert, Response, Severity};
use crate::view::View;

pub(crate) const NAME: &str = "first_seen_app";

switches! {
    /// `[detect.first_seen_app]`. The learning window is the engine's
    /// `learning_window`.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct FirstSeenAppConfig {
        /// Also alert (medium) on a user's first read through a known client.
        /// Default `true`.
        pub per_user: bool,
        /// The per-user alert's severity. Default `medium`.
        pub per_user_severity: Severity,
    }
}

impl Default for FirstSeenAppConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: None,
            auto_response: false,
            per_user: true,
            per_user_severity: Severity::Medium,
        }
    }
}

impl Component for FirstSeenAppConfig {
    const NAME: &'static str = NAME;

    fn switches(&self) -> Switches {
        self.common()
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Detector>> {
        Ok(Box::new(FirstSeenApp {
            window_ms: ctx.learning_window_ms,
            per_user: self.per_user.then_some(self.per_user_severity),
            tenants: HashMap::new(),
        }))
    }
}

#[derive(Default)]
struct UserSeen {
    first_ms: i64,
    clients: HashSet<String>,
}

#[derive(Default)]
struct TenantSeen {
    first_ms: i64,
    clients: HashSet<String>,
    users: HashMap<String, UserSeen>,
}

struct FirstSeenApp {
    window_ms: i64,
    per_user: Option<Severity>,
    tenants: HashMap<String, TenantSeen>,
}

const SEP: char = '\u{1f}';

impl Detector for FirstSeenApp {
    fn restore(&mut self, records: Vec<DetectorStateRecord>) -> Result<()> {
        for record in records {
            let tenant = record.tenant.as_ref().map_or("", |t| t.as_str());
            let value = record.value.as_deref().unwrap_or("");
            // A damaged row loses one fact; it must not stop the engine.
            let Ok(ms) = value.parse::<i64>() else {
                tracing::warn!(
                    message = "detector state row ignored",
                    detector = NAME,
                    key = %record.key
                );
                continue;
            };
            let seen = self.tenants.entry_ref(tenant).or_default();
            if record.key == "t" {
                seen.first_ms = ms;
            } else if let Some(client) = record.key.strip_prefix("c:") {
                seen.clients.insert(client.to_owned());
            } else if let Some(user) = record.key.strip_prefix("p:") {
                seen.users.entry_ref(user).or_default().first_ms = ms;
            } else if let Some((user, client)) = record
                .key
                .strip_prefix("u:")
                .and_then(|k| k.split_once(SEP))
            {
                let user = seen.users.entry_ref(user).or_default();
                user.clients.insert(client.to_owned());
            }
        }
        Ok(())
    }

    fn observe(&mut self, view: &View<'_>, out: &mut Output) {
        // Rejected tokens carry unverified claims: they must not teach the
        // detector a tenant, a user or a client.
        if view.tenant.is_empty() || !view.success() {
            return;
        }
        let now = view.time_ms;
        let time = &view.event.time;
        let seen = self.tenants.entry_ref(view.tenant).or_insert_with(|| {
            out.keep(NAME, view.tenant, "t".into(), Some(now.to_string()), time);
            TenantSeen {
                first_ms: now,
                ..TenantSeen::default()
            }
        });
        let tenant_learned = now - seen.first_ms >= self.window_ms;
        let user_first_ms = view.user().map(|user| {
            let user_seen = seen.users.entry_ref(user).or_insert_with(|| {
                out.keep(
                    NAME,
                    view.tenant,
                    format!("p:{user}"),
                    Some(now.to_string()),
                    time,
                );
                UserSeen {
                    first_ms: now,
                    ..UserSeen::default()
                }
            });
            user_seen.first_ms
        });
        let (true, Some(client)) = (view.mail_read, view.client()) else {
            return;
        };
        let new_client = !seen.clients.contains(client);
        if new_client {
            seen.clients.insert(client.to_owned());
            out.keep(
                NAME,
                view.tenant,
                format!("c:{client}"),
                Some(now.to_string()),
                time,
            );
            if tenant_learned {
                let who = view.user().unwrap_or("an unknown user");
                let from = view
                    .event
                    .actor
                    .ip
                    .as_deref()
                    .unwrap_or("an unknown address");
                let summary = format!(
                    "Application {client} read mail in tenant {} for the first time ({} of {}'s \
                     items, as {who}, from {from})",
                    view.tenant,
                    view.event.count,
                    view.event.target.owner.as_deref().unwrap_or(who),
                );
                let alert = Alert::about(
                    view,
                    NAME,
                    Severity::High,
                    summary,
                    format!("{NAME}:client:{client}"),
                )
                .with_response(Some(Response::BlockClient {
                    client_id: client.to_owned(),
                }));
                out.alerts.push(alert);
            }
        }
        let (Some(user), Some(user_first_ms)) = (view.user(), user_first_ms) else {
            return;
        };
        let Some(user_seen) = seen.users.get_mut(user) else {
            return;
        };
        if user_seen.clients.contains(client) {
            return;
        }
        user_seen.clients.insert(client.to_owned());
        out.keep(
            NAME,
            view.tenant,
            format!("u:{user}{SEP}{client}"),
            Some(now.to_string()),
            time,
        );
        // A brand-new client already raised the tenant-wide alert; a user
        // still being learned is not yet known well enough to judge.
        if let Some(severity) = self.per_user
            && !new_client
            && tenant_learned
            && now - user_first_ms >= self.window_ms
        {
            let summary = format!(
                "{user} read mail through application {client} for the first time (tenant {})",
                view.tenant
            );
            out.alerts.push(Alert::about(
                view,
                NAME,
                severity,
                summary,
                format!("{NAME}:user:{user}:{client}"),
            ));
        }
    }
}
