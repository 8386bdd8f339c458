//! Revocation by what an operator knows: a user, a client, a session or a
//! source address. Each ends the matching sign-in sessions through the
//! issuer, which revokes every token derived from them and records the
//! change; a running server stops accepting them within its poll interval.

use std::collections::BTreeSet;

use serde::Serialize;
use stormproof_audit::LogReader;
use stormproof_identity::Issuer;
use stormproof_types::{Email, TenantName};

use crate::{Error, ErrorKind};

/// What to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationTarget {
    /// Every live session of the user.
    User(Email),
    /// Every live session of the client, in one tenant or in all.
    Client {
        /// The tenant; `None` for every tenant with such a client.
        tenant: Option<TenantName>,
        /// The client id.
        client_id: String,
    },
    /// One session, in one tenant or wherever it exists.
    Session {
        /// The tenant; `None` to look in every tenant.
        tenant: Option<TenantName>,
        /// The session id.
        sid: String,
    },
    /// Every live session that signed in from, or was used from, the
    /// address, as the audit log saw it.
    Ip(String),
}

/// What was revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct RevokeReport {
    /// (tenant, sid) of every session ended.
    pub sessions: Vec<(String, String)>,
}

/// Ends the sessions `target` names. `log` is needed for [`RevocationTarget::Ip`].
pub fn revoke(
    issuer: &Issuer,
    log: Option<&LogReader>,
    target: &RevocationTarget,
) -> Result<RevokeReport, Error> {
    let store = issuer.store();
    let tenants: Vec<TenantName> = store.tenants()?.into_iter().map(|t| t.name).collect();
    let mut found: BTreeSet<(TenantName, String)> = BTreeSet::new();
    match target {
        RevocationTarget::User(email) => {
            let user = issuer.user(email)?;
            for session in store.live_sessions(&user.tenant, Some(&user.id), None)? {
                found.insert((session.tenant, session.sid));
            }
        }
        RevocationTarget::Client { tenant, client_id } => {
            let mut known = false;
            for name in tenants
                .iter()
                .filter(|t| tenant.as_ref().is_none_or(|w| w == *t))
            {
                if store.client(name, client_id)?.is_none() {
                    continue;
                }
                known = true;
                for session in store.live_sessions(name, None, Some(client_id))? {
                    found.insert((session.tenant, session.sid));
                }
            }
            if !known {
                return Err(ErrorKind::Invalid(format!("no client {client_id}")).into());
            }
        }
        RevocationTarget::Session { tenant, sid } => {
            for name in tenants
                .iter()
                .filter(|t| tenant.as_ref().is_none_or(|w| w == *t))
            {
                if let Some(session) = store.session(name, sid)?
                    && session.revoked_at.is_none()
                {
                    found.insert((session.tenant, session.sid));
                }
            }
            if found.is_empty()
                && !tenants
                    .iter()
                    .any(|t| store.session(t, sid).ok().flatten().is_some())
            {
                return Err(ErrorKind::Invalid(format!("no session {sid}")).into());
            }
        }
        RevocationTarget::Ip(ip) => {
            // Sign-ins from the address, from the store's own record ...
            for name in &tenants {
                for session in store.live_sessions(name, None, None)? {
                    if session.ip.as_deref() == Some(ip.as_str()) {
                        found.insert((session.tenant, session.sid));
                    }
                }
            }
            // ... and sessions whose tokens were used from it, from the log.
            if let Some(log) = log {
                for record in log.records(0) {
                    let event = record?.event()?;
                    if event.actor.ip.as_deref() != Some(ip.as_str()) {
                        continue;
                    }
                    let (Some(tenant), Some(sid)) = (
                        event
                            .tenant
                            .as_deref()
                            .and_then(|t| TenantName::parse(t).ok()),
                        event.actor.session.clone(),
                    ) else {
                        continue;
                    };
                    if store
                        .session(&tenant, &sid)?
                        .is_some_and(|s| s.revoked_at.is_none())
                    {
                        found.insert((tenant, sid));
                    }
                }
            }
        }
    }
    let mut report = RevokeReport::default();
    for (tenant, sid) in found {
        issuer.revoke_session(&tenant, &sid)?;
        report.sessions.push((tenant.to_string(), sid));
    }
    Ok(report)
}
