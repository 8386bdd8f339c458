//! `token_forgery`: tokens that only someone holding (or faking) a signing
//! key could present. The verifier refuses them; this detector makes the
//! refusal an alert, critical, the moment the first one arrives (Storm-0558
//! went unseen for a month). It also raises a burst alert when one address
//! collects many rejections: someone probing the verifier. Expired tokens
//! do not count by default: every client that wakes from sleep presents
//! one, and an office's address collects dozens on a Monday morning.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;
use stormproof_store::DetectorStateRecord;

use super::{BuildContext, Component, Detector, Output, Switches, positive, switches};
use crate::Result;
use crate::alert::{Alert, Response, Severity};
use crate::config::{duration, millis};
use crate::view::View;

pub(crate) const NAME: &str = "token_forgery";

/// The most evidence kept for one burst.
const MAX_BURST_EVIDENCE: usize = 64;

switches! {
    /// `[detect.token_forgery]`.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct TokenForgeryConfig {
        /// Rejections from one address, of any reason, that make a burst.
        /// Default 20.
        pub burst_threshold: usize,
        /// The window a burst must fit in. Default `"5m"`.
        #[serde(with = "duration")]
        pub burst_window: Duration,
        /// Rejection reasons that do not count towards a burst. Default
        /// `["expired"]`.
        pub burst_ignore: Vec<String>,
    }
}

impl Default for TokenForgeryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: None,
            // On by default, unlike every other detector: a validly signed
            // token that was never issued means the key is in someone
            // else's hands, and every minute it stays active is another
            // minute of forged access.
            auto_response: true,
            burst_threshold: 20,
            burst_window: Duration::from_secs(300),
            burst_ignore: vec!["expired".into()],
        }
    }
}

impl Component for TokenForgeryConfig {
    const NAME: &'static str = NAME;

    fn switches(&self) -> Switches {
        self.common()
    }

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Detector>> {
        Ok(Box::new(TokenForgery {
            burst_threshold: positive(self.burst_threshold, "token_forgery.burst_threshold")?,
            burst_window_ms: positive(millis(self.burst_window), "token_forgery.burst_window")?,
            burst_ignore: self.burst_ignore.clone(),
            recent: HashMap::new(),
            next_sweep_ms: i64::MIN,
        }))
    }
}

/// What a rejection reason says about the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Validly signed, yet never issued or not as issued: the key signs for
    /// someone else.
    SignedNotIssued,
    /// Signed with another tenant's key: the Storm-0558 validator bug.
    CrossTenant,
    /// A key id nobody has.
    UnknownKey,
    /// A key that may no longer sign.
    RetiredKey,
    /// An algorithm or signature attack.
    Algorithm,
    /// The verifier marked it a forgery for a reason this build does not know.
    Other,
}

fn classify(reason: &str, forgery_flag: bool) -> Option<Class> {
    Some(match reason {
        "never_issued" | "ledger_mismatch" => Class::SignedNotIssued,
        "cross_tenant_key" => Class::CrossTenant,
        "unknown_key" => Class::UnknownKey,
        "key_compromised" | "key_expired" | "key_not_active" => Class::RetiredKey,
        "alg_none" | "hmac_alg" | "alg_mismatch" | "embedded_key" | "bad_signature" => {
            Class::Algorithm
        }
        _ if forgery_flag => Class::Other,
        _ => return None,
    })
}

struct TokenForgery {
    burst_threshold: usize,
    burst_window_ms: i64,
    burst_ignore: Vec<String>,
    /// Recent rejections per source address: (time, seq), newest last, at
    /// most `burst_threshold` of them.
    recent: HashMap<IpAddr, VecDeque<(i64, u64)>>,
    next_sweep_ms: i64,
}

impl TokenForgery {
    fn forgery(&self, view: &View<'_>, reason: &str, class: Class, out: &mut Output) {
        let tenant = view.event.tenant.as_deref().unwrap_or("(no tenant)");
        let kid = view.detail_str("kid");
        let kid_text = kid.unwrap_or("(none)");
        let from = view
            .event
            .actor
            .ip
            .as_deref()
            .unwrap_or("an unknown address");
        let summary = match class {
            Class::SignedNotIssued => format!(
                "A token validly signed by key {kid_text} of tenant {tenant} was never issued \
                 ({reason}): the signing key is likely compromised; presented from {from}"
            ),
            Class::CrossTenant => format!(
                "A token for tenant {tenant} was signed with another tenant's key {kid_text}; \
                 presented from {from}"
            ),
            Class::UnknownKey => format!(
                "A token for tenant {tenant} names unknown key {kid_text}; presented from {from}"
            ),
            Class::RetiredKey => format!(
                "A token for tenant {tenant} was signed by key {kid_text}, which may not sign \
                 ({reason}); presented from {from}"
            ),
            Class::Algorithm => format!(
                "A token for tenant {tenant} naming key {kid_text} failed an algorithm or signature \
                 check ({reason}); presented from {from}"
            ),
            Class::Other => format!(
                "The verifier flagged a token for tenant {tenant} naming key {kid_text} as forged \
                 ({reason}); presented from {from}"
            ),
        };
        // A key that signed a token the issuer never minted is in someone
        // else's hands: the one response that stops it is killing the key.
        let response = match (class, kid) {
            (Class::SignedNotIssued, Some(kid)) => Some(Response::RevokeKey {
                kid: kid.to_owned(),
            }),
            _ => None,
        };
        // One alert per key and reason: a thousand forged tokens signed by
        // one key are one incident, counted.
        let dedup_key = format!("{NAME}:{reason}:{kid_text}");
        out.alerts.push(
            Alert::about(view, NAME, Severity::Critical, summary, dedup_key)
                .with_response(response),
        );
    }

    fn burst(&mut self, view: &View<'_>, ip: IpAddr, out: &mut Output) {
        let now = view.time_ms;
        let since = now - self.burst_window_ms;
        let recent = self.recent.entry(ip).or_default();
        while recent.front().is_some_and(|&(t, _)| t < since) {
            recent.pop_front();
        }
        if recent.len() >= self.burst_threshold {
            recent.pop_front();
        }
        recent.push_back((now, view.event.seq));
        if recent.len() >= self.burst_threshold {
            let evidence: Vec<u64> = recent
                .iter()
                .rev()
                .take(MAX_BURST_EVIDENCE)
                .rev()
                .map(|&(_, seq)| seq)
                .collect();
            let summary = format!(
                "{} tokens presented from {ip} were rejected within {}",
                recent.len(),
                humantime::format_duration(Duration::from_millis(
                    u64::try_from(self.burst_window_ms).unwrap_or(0)
                )),
            );
            let alert = Alert::about(
                view,
                NAME,
                Severity::High,
                summary,
                format!("{NAME}:burst:{ip}"),
            );
            out.alerts.push(alert.with_evidence(evidence));
        }
        if now >= self.next_sweep_ms {
            // Forget quiet addresses, so memory follows the attack, not history.
            self.recent
                .retain(|_, r| r.back().is_some_and(|&(t, _)| t >= since));
            self.next_sweep_ms = now + self.burst_window_ms;
        }
    }
}

impl Detector for TokenForgery {
    fn restore(&mut self, _records: Vec<DetectorStateRecord>) -> Result<()> {
        // Bursts are minutes long: nothing worth keeping across a restart.
        Ok(())
    }

    fn observe(&mut self, view: &View<'_>, out: &mut Output) {
        if view.operation() != "token_rejected" {
            return;
        }
        let reason = view.event.reason.as_deref().unwrap_or("");
        let flagged = view.event.detail.get("forgery").and_then(|f| f.as_bool()) == Some(true);
        if let Some(class) = classify(reason, flagged) {
            self.forgery(view, reason, class, out);
        }
        if let Some(ip) = view.ip
            && !self.burst_ignore.iter().any(|r| r == reason)
        {
            self.burst(view, ip, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verifiers_forgery_set_is_all_classified() {
        let forgery_set = [
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
        ];
        for reason in forgery_set {
            assert!(classify(reason, false).is_some(), "{reason}");
        }
        let benign = [
            "expired",
            "wrong_audience",
            "revoked",
            "malformed",
            "dpop_replay",
        ];
        for reason in benign {
            assert_eq!(classify(reason, false), None, "{reason}");
        }
        assert_eq!(classify("something_new", true), Some(Class::Other));
    }
}
