//! `persistence`: changes that let someone come back later without the
//! credentials they used today: an app password, a new OAuth client, a new
//! sending identity, mail forwarding or redirection, two-factor turned off,
//! a signing key imported from outside. Each is routine when the owner does
//! it, and exactly what an intruder does first, so each raises a medium
//! alert for the owner or an administrator to confirm.
//!
//! `forwarding_set` and `redirect_set` are reserved operation names: the
//! server does not offer forwarding yet, and the detector covers them the
//! day it does.

use serde::Deserialize;
use stormproof_store::DetectorStateRecord;

use super::{BuildContext, Component, Detector, Output, Switches, switches};
use crate::Result;
use crate::alert::{Alert, Severity};
use crate::view::View;

pub(crate) const NAME: &str = "persistence";

/// The operations watched by default, with what each means.
const DEFAULT_OPERATIONS: &[(&str, &str)] = &[
    ("app_password_created", "created an app password"),
    ("client_created", "registered an OAuth client"),
    ("Identity/set", "changed sending identities"),
    ("forwarding_set", "set up mail forwarding"),
    ("redirect_set", "set up mail redirection"),
    ("totp_disabled", "turned off two-factor authentication"),
    ("key_imported", "imported a signing key"),
];

switches! {
    /// `[detect.persistence]`.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct PersistenceConfig {
        /// The operations that alert. Default: `app_password_created`,
        /// `client_created`, `Identity/set`, `forwarding_set`,
        /// `redirect_set`, `totp_disabled`, `key_imported`.
        pub operations: Vec<String>,
    }
}

impl Default for PersistenceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: None,
            auto_response: false,
            operations: DEFAULT_OPERATIONS
                .iter()
                .map(|(op, _)| (*op).to_owned())
                .collect(),
        }
    }
}

impl Component for PersistenceConfig {
    const NAME: &'static str = NAME;

    fn switches(&self) -> Switches {
        self.common()
    }

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Detector>> {
        Ok(Box::new(Persistence {
            operations: self.operations.clone(),
        }))
    }
}

struct Persistence {
    operations: Vec<String>,
}

impl Detector for Persistence {
    fn restore(&mut self, _records: Vec<DetectorStateRecord>) -> Result<()> {
        Ok(())
    }

    fn observe(&mut self, view: &View<'_>, out: &mut Output) {
        let operation = view.operation();
        if !view.success() || !self.operations.iter().any(|op| op == operation) {
            return;
        }
        let event = view.event;
        let what = DEFAULT_OPERATIONS
            .iter()
            .find(|(op, _)| *op == operation)
            .map_or_else(
                || format!("performed {operation}"),
                |(_, what)| (*what).to_owned(),
            );
        let who = view
            .user()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("an unknown {} actor", event.actor.protocol));
        let item = event.target.items.first().map(String::as_str).unwrap_or("");
        let mut summary = format!("{who} {what}");
        if !item.is_empty() {
            summary.push_str(&format!(" ({item})"));
        }
        if let Some(owner) = event.target.owner.as_deref()
            && view.user() != Some(owner)
        {
            summary.push_str(&format!(" for {owner}"));
        }
        if let Some(tenant) = event.tenant.as_deref() {
            summary.push_str(&format!(" in tenant {tenant}"));
        }
        let dedup_key = format!("{NAME}:{operation}:{}:{item}", view.user().unwrap_or(""));
        out.alerts.push(Alert::about(
            view,
            NAME,
            Severity::Medium,
            summary,
            dedup_key,
        ));
    }
}
