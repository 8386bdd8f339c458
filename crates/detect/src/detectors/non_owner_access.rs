//! `non_owner_access`: someone reading a mailbox that is not theirs. A
//! delegate, an administrator or an operator at the command line may have a
//! reason; each such read is still worth a look, because the owner cannot
//! see it happen. Operator reads (protocol `cli`) always alert, whoever
//! the mailbox belongs to.
//!
//! Delegation that is meant to be (a shared mailbox and its team, an
//! executive and their assistant) is configured per mailbox in
//! `delegates`, so each delegate stays watched on every other mailbox;
//! `exempt_actors` is for service accounts that read every mailbox.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;
use stormproof_store::DetectorStateRecord;

use super::{BuildContext, Component, Detector, Output, Switches, switches};
use crate::Result;
use crate::alert::{Alert, Severity};
use crate::view::View;

pub(crate) const NAME: &str = "non_owner_access";

switches! {
    /// `[detect.non_owner_access]`.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct NonOwnerAccessConfig {
        /// Alert on operator reads at the command line. Default `true`.
        pub operator_reads: bool,
        /// Actors never alerted on (journaling or archiving accounts),
        /// compared case-insensitively. Default empty.
        pub exempt_actors: Vec<String>,
        /// Mailbox owner to the actors who may read it (a shared mailbox's
        /// team, an executive's assistant), compared case-insensitively.
        /// Default empty.
        pub delegates: BTreeMap<String, Vec<String>>,
    }
}

impl Default for NonOwnerAccessConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: None,
            auto_response: false,
            operator_reads: true,
            exempt_actors: Vec::new(),
            delegates: BTreeMap::new(),
        }
    }
}

impl Component for NonOwnerAccessConfig {
    const NAME: &'static str = NAME;

    fn switches(&self) -> Switches {
        self.common()
    }

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Detector>> {
        Ok(Box::new(NonOwnerAccess {
            operator_reads: self.operator_reads,
            exempt: self
                .exempt_actors
                .iter()
                .map(|a| a.to_ascii_lowercase())
                .collect(),
            delegates: self
                .delegates
                .iter()
                .map(|(owner, actors)| {
                    let actors = actors.iter().map(|a| a.to_ascii_lowercase()).collect();
                    (owner.to_ascii_lowercase(), actors)
                })
                .collect(),
        }))
    }
}

struct NonOwnerAccess {
    operator_reads: bool,
    exempt: Vec<String>,
    /// Lowercase owner to lowercase actors.
    delegates: HashMap<String, HashSet<String>>,
}

impl NonOwnerAccess {
    fn delegated(&self, actor: &str, owner: &str) -> bool {
        // Only reached for reads of someone else's mailbox, which are rare:
        // lowercasing here costs nothing on the common path.
        self.delegates
            .get(&owner.to_ascii_lowercase())
            .is_some_and(|actors| actors.contains(&actor.to_ascii_lowercase()))
    }
}

impl Detector for NonOwnerAccess {
    fn restore(&mut self, _records: Vec<DetectorStateRecord>) -> Result<()> {
        Ok(())
    }

    fn observe(&mut self, view: &View<'_>, out: &mut Output) {
        if !view.mail_read {
            return;
        }
        let event = view.event;
        let owner = event.target.owner.as_deref();
        let actor = event.actor.user.as_deref();
        if actor.is_some_and(|a| self.exempt.iter().any(|e| e.eq_ignore_ascii_case(a))) {
            return;
        }
        let operator = event.actor.protocol == "cli";
        let summary = match (operator, actor, owner) {
            (true, _, _) if self.operator_reads => format!(
                "An operator{} read {} items of {}'s mailbox at the command line ({})",
                actor.map(|a| format!(" ({a})")).unwrap_or_default(),
                event.count,
                owner
                    .or(event.target.account.as_deref())
                    .unwrap_or("an unknown owner"),
                event.operation,
            ),
            (false, Some(actor), Some(owner))
                if !actor.eq_ignore_ascii_case(owner) && !self.delegated(actor, owner) =>
            {
                format!(
                    "{actor} read {} items of {owner}'s mailbox ({}, from {})",
                    event.count,
                    event.operation,
                    event.actor.ip.as_deref().unwrap_or("an unknown address"),
                )
            }
            _ => return,
        };
        let dedup_key = format!(
            "{NAME}:{}:{}",
            actor.unwrap_or(if operator { "operator" } else { "" }),
            owner.or(event.target.account.as_deref()).unwrap_or("")
        );
        out.alerts
            .push(Alert::about(view, NAME, Severity::High, summary, dedup_key));
    }
}
