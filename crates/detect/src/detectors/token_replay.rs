//! `token_replay`: a session's tokens used from somewhere the session was
//! not. Storm-0558's actor replayed tokens from dedicated servers, Tor and
//! proxies; a session signed in from one network and used from another, or
//! any use from an anonymizing network, is how that looks in our log.
//!
//! A session's home network is the network of its `sign_in` (or, for a
//! session first seen in use, of that first use): IPv4 /24 and IPv6 /48 by
//! default. People move, though: a phone goes from Wi-Fi to the phone
//! network, a laptop from home to the office, and a dual-stack home is two
//! networks. So a use from outside the session's home alerts only when the
//! network is also unfamiliar: not one of the provider-sized blocks (IPv4
//! /16, IPv6 /32) the user signed in from, or used at all during their
//! first `learning_window`, nor one that `tenant_familiar_users` of their
//! colleagues are familiar with (the office, the big home and mobile
//! providers). Such a use raises one alert per session and block: medium
//! when the session moved there (a trip, a new home address, or a stolen
//! token used while its owner is idle), high when the session goes back
//! and forth between there and elsewhere within `concurrent_window`: in
//! two places at once, as when its owner and a thief both use it. (One
//! switch is not enough: a phone leaving the house switches networks
//! within seconds.)
//!
//! State, per tenant: `s:<sid>` = the home network (`203.0.113.0/24`);
//! `p:<user>` = when the user was first seen (Unix ms); `f:<user>\u{1f}<block>`
//! = a familiar block. Sessions unused for `session_ttl` and blocks unused
//! for `familiar_ttl` are forgotten.

use hashbrown::HashMap;
use std::time::Duration;

use serde::Deserialize;
use stormproof_store::DetectorStateRecord;

use super::{BuildContext, Component, Detector, Output, Switches, positive, switches};
use crate::alert::{Alert, Response, Severity};
use crate::config::{duration, millis};
use crate::net::{CidrSet, Network};
use crate::view::View;
use crate::{ErrorKind, Result};

pub(crate) const NAME: &str = "token_replay";

switches! {
    /// `[detect.token_replay]`. The anonymizing networks are the engine's
    /// `anonymizing_networks`.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct TokenReplayConfig {
        /// IPv4 prefix length that makes "the same network". Default 24.
        pub ipv4_prefix: u8,
        /// IPv6 prefix length that makes "the same network". Default 48.
        pub ipv6_prefix: u8,
        /// A session unused this long is forgotten. Default `"30d"`.
        #[serde(with = "duration")]
        pub session_ttl: Duration,
        /// IPv4 prefix length of the blocks a user becomes familiar with:
        /// about one provider's pool. Default 16.
        pub familiar_ipv4_prefix: u8,
        /// IPv6 prefix length of familiar blocks. Default 32.
        pub familiar_ipv6_prefix: u8,
        /// A familiar block unused this long is forgotten; `"0s"` turns
        /// familiarity off, so every use outside the session's home alerts.
        /// Default `"30d"`.
        #[serde(with = "duration")]
        pub familiar_ttl: Duration,
        /// A block familiar to this many users of a tenant is familiar to
        /// all of them; 0 turns that off. Default 3.
        pub tenant_familiar_users: usize,
        /// A session going back and forth between an unfamiliar block and
        /// elsewhere within this long is in two places at once (high).
        /// Default `"10m"`.
        #[serde(with = "duration")]
        pub concurrent_window: Duration,
    }
}

impl Default for TokenReplayConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: None,
            auto_response: false,
            ipv4_prefix: 24,
            ipv6_prefix: 48,
            session_ttl: Duration::from_secs(30 * 86_400),
            familiar_ipv4_prefix: 16,
            familiar_ipv6_prefix: 32,
            familiar_ttl: Duration::from_secs(30 * 86_400),
            tenant_familiar_users: 3,
            concurrent_window: Duration::from_secs(600),
        }
    }
}

impl Component for TokenReplayConfig {
    const NAME: &'static str = NAME;

    fn switches(&self) -> Switches {
        self.common()
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Detector>> {
        if self.ipv4_prefix > 32
            || self.ipv6_prefix > 128
            || self.familiar_ipv4_prefix > 32
            || self.familiar_ipv6_prefix > 128
        {
            return Err(ErrorKind::Config(
                "token_replay: IPv4 prefixes are at most 32 and IPv6 prefixes at most 128".into(),
            )
            .into());
        }
        Ok(Box::new(TokenReplay {
            v4: self.ipv4_prefix,
            v6: self.ipv6_prefix,
            familiar_v4: self.familiar_ipv4_prefix,
            familiar_v6: self.familiar_ipv6_prefix,
            ttl_ms: millis(self.session_ttl),
            familiar_ttl_ms: millis(self.familiar_ttl),
            learning_ms: ctx.learning_window_ms,
            tenant_familiar_users: u32::try_from(self.tenant_familiar_users).unwrap_or(u32::MAX),
            concurrent_ms: positive(
                millis(self.concurrent_window),
                "token_replay.concurrent_window",
            )?,
            anonymizing: ctx.anonymizing.clone(),
            tenants: HashMap::new(),
            next_sweep_ms: i64::MIN,
        }))
    }
}

/// The most blocks remembered per user; the least recently used goes first.
const MAX_FAMILIAR: usize = 64;

const SEP: char = '\u{1f}';

struct Home {
    network: Network,
    last_ms: i64,
    /// When the store last heard of it: rewritten now and then, so a
    /// restart does not forget a long-lived session as idle.
    stored_ms: i64,
    /// The blocks of the session's recent uses, one entry per run of uses
    /// from one block, with the time of the run's last use; oldest first,
    /// none older than `concurrent_window`.
    runs: Vec<(Network, i64)>,
    /// Unfamiliar blocks the session was used from, each alerted on once,
    /// and whether it was also seen in two places at once there.
    away: Vec<(Network, bool)>,
}

/// The most runs kept per session: enough to see back and forth.
const MAX_RUNS: usize = 8;

impl Home {
    fn new(network: Network, now: i64) -> Self {
        Self {
            network,
            last_ms: now,
            stored_ms: now,
            runs: Vec::new(),
            away: Vec::new(),
        }
    }

    /// Records a use from `block`, forgetting runs older than `window`.
    fn used(&mut self, block: Network, now: i64, window: i64) {
        self.runs.retain(|&(_, at)| now - at <= window);
        match self.runs.last_mut() {
            Some((last, at)) if *last == block => *at = now,
            _ => {
                if self.runs.len() >= MAX_RUNS {
                    self.runs.remove(0);
                }
                self.runs.push((block, now));
            }
        }
    }

    /// Whether the recent runs go from `block` to elsewhere and back, or
    /// from elsewhere to `block` and away again.
    fn back_and_forth(&self, block: Network) -> bool {
        let switches = self
            .runs
            .windows(2)
            .filter(|pair| (pair[0].0 == block) != (pair[1].0 == block))
            .count();
        switches >= 2
    }
}

/// A block a user is familiar with.
struct Familiar {
    block: Network,
    last_ms: i64,
    stored_ms: i64,
}

#[derive(Default)]
struct UserNets {
    first_ms: i64,
    familiar: Vec<Familiar>,
}

#[derive(Default)]
struct Tenant {
    sessions: HashMap<String, Home>,
    users: HashMap<String, UserNets>,
    /// How many users each block is familiar to.
    block_users: HashMap<Network, u32>,
}

impl Tenant {
    /// Makes `block` familiar to `user` (see [`UserNets::learn`]).
    fn learn(
        &mut self,
        user: &str,
        block: Network,
        now: i64,
        refresh_ms: i64,
    ) -> (bool, Option<Network>) {
        let nets = self.users.entry_ref(user).or_default();
        let known = nets.knows(block);
        let (store, evicted) = nets.learn(block, now, refresh_ms);
        if !known {
            *self.block_users.entry(block).or_default() += 1;
        }
        if let Some(old) = evicted {
            self.forget(old);
        }
        (store, evicted)
    }

    fn forget(&mut self, block: Network) {
        if let Some(n) = self.block_users.get_mut(&block) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.block_users.remove(&block);
            }
        }
    }
}

struct TokenReplay {
    v4: u8,
    v6: u8,
    familiar_v4: u8,
    familiar_v6: u8,
    ttl_ms: i64,
    familiar_ttl_ms: i64,
    learning_ms: i64,
    tenant_familiar_users: u32,
    concurrent_ms: i64,
    anonymizing: CidrSet,
    tenants: HashMap<String, Tenant>,
    next_sweep_ms: i64,
}

impl TokenReplay {
    fn sweep(&mut self, now: i64, time: &str, out: &mut Output) {
        let since = now - self.ttl_ms;
        let familiar_since = now - self.familiar_ttl_ms;
        for (tenant, seen) in &mut self.tenants {
            seen.sessions.retain(|sid, home| {
                let keep = home.last_ms >= since;
                if !keep {
                    out.keep(NAME, tenant, format!("s:{sid}"), None, time);
                }
                keep
            });
            let mut forgotten = Vec::new();
            for (user, nets) in &mut seen.users {
                nets.familiar.retain(|f| {
                    let keep = f.last_ms >= familiar_since;
                    if !keep {
                        out.keep(
                            NAME,
                            tenant,
                            format!("f:{user}{SEP}{}", f.block),
                            None,
                            time,
                        );
                        forgotten.push(f.block);
                    }
                    keep
                });
            }
            for block in forgotten {
                seen.forget(block);
            }
        }
        self.tenants
            .retain(|_, seen| !seen.sessions.is_empty() || !seen.users.is_empty());
    }
}

impl UserNets {
    fn knows(&self, block: Network) -> bool {
        self.familiar.iter().any(|f| f.block == block)
    }

    /// Makes `block` familiar. Returns whether the store must hear of it,
    /// and a block forgotten to make room, which it must forget too.
    fn learn(&mut self, block: Network, now: i64, refresh_ms: i64) -> (bool, Option<Network>) {
        if let Some(found) = self.familiar.iter_mut().find(|f| f.block == block) {
            found.last_ms = found.last_ms.max(now);
            if now - found.stored_ms > refresh_ms {
                found.stored_ms = now;
                return (true, None);
            }
            return (false, None);
        }
        let mut evicted = None;
        if self.familiar.len() >= MAX_FAMILIAR
            && let Some(oldest) = (0..self.familiar.len()).min_by_key(|&i| self.familiar[i].last_ms)
        {
            evicted = Some(self.familiar.swap_remove(oldest).block);
        }
        self.familiar.push(Familiar {
            block,
            last_ms: now,
            stored_ms: now,
        });
        (true, evicted)
    }
}

impl Detector for TokenReplay {
    fn restore(&mut self, records: Vec<DetectorStateRecord>) -> Result<()> {
        for record in records {
            let tenant = record.tenant.as_ref().map_or("", |t| t.as_str());
            let updated_ms = crate::view::parse_time_ms(&record.updated).unwrap_or(0);
            let value = record.value.as_deref().unwrap_or("");
            let seen = self.tenants.entry_ref(tenant).or_default();
            // A damaged row loses one fact; it must not stop the engine.
            let ok = if let Some(sid) = record.key.strip_prefix("s:") {
                Network::parse(value).map(|network| {
                    seen.sessions
                        .insert(sid.to_owned(), Home::new(network, updated_ms));
                })
            } else if let Some(user) = record.key.strip_prefix("p:") {
                value.parse::<i64>().ok().map(|first_ms| {
                    seen.users.entry_ref(user).or_default().first_ms = first_ms;
                })
            } else if let Some((user, block)) = record
                .key
                .strip_prefix("f:")
                .and_then(|k| k.split_once(SEP))
            {
                Network::parse(block).map(|block| {
                    // Rows beyond the cap were deleted when written; a
                    // stray one is forgotten again on the next sweep.
                    let _ = seen.learn(user, block, updated_ms, i64::MAX);
                })
            } else {
                None
            };
            if ok.is_none() {
                tracing::warn!(
                    message = "detector state row ignored",
                    detector = NAME,
                    key = %record.key
                );
            }
        }
        Ok(())
    }

    fn observe(&mut self, view: &View<'_>, out: &mut Output) {
        let now = view.time_ms;
        if now >= self.next_sweep_ms {
            self.sweep(now, &view.event.time, out);
            let every = if self.familiar_ttl_ms > 0 {
                self.ttl_ms.min(self.familiar_ttl_ms)
            } else {
                self.ttl_ms
            };
            self.next_sweep_ms = now.saturating_add(every / 30 + 1);
        }
        // Only what the server accepted is a use; operator and system
        // actions have no client network.
        let protocol = view.event.actor.protocol.as_str();
        let (true, Some(ip)) = (view.success(), view.ip) else {
            return;
        };
        if matches!(protocol, "cli" | "system") {
            return;
        }
        let session = view.session();
        if !self.anonymizing.is_empty()
            && let Some(block) = self.anonymizing.find(ip)
            && (session.is_some() || view.user().is_some() || view.client().is_some())
        {
            let who = view.user().unwrap_or("an unknown user");
            let summary = format!(
                "{} by {who} came from anonymizing network {block} ({ip}){}",
                view.operation(),
                session
                    .map(|s| format!(", session {s}"))
                    .unwrap_or_default(),
            );
            let subject = session.or(view.user()).or(view.client()).unwrap_or("");
            let alert = Alert::about(
                view,
                NAME,
                Severity::High,
                summary,
                format!("{NAME}:anonymizing:{subject}"),
            )
            .with_response(session.map(|s| Response::RevokeSession {
                session: s.to_owned(),
            }));
            out.alerts.push(alert);
        }
        let time = &view.event.time;
        let seen = self.tenants.entry_ref(view.tenant).or_default();
        // What the user is familiar with: blocks they signed in from, and
        // during their first learning window, every block they used.
        let familiarity = self.familiar_ttl_ms > 0;
        let block = Network::of(ip, self.familiar_v4, self.familiar_v6);
        let mut familiar = false;
        if let (true, Some(user)) = (familiarity, view.user()) {
            let nets = seen.users.entry_ref(user).or_insert_with(|| {
                out.keep(
                    NAME,
                    view.tenant,
                    format!("p:{user}"),
                    Some(now.to_string()),
                    time,
                );
                UserNets {
                    first_ms: now,
                    familiar: Vec::new(),
                }
            });
            let learning = now - nets.first_ms < self.learning_ms;
            familiar = nets.knows(block);
            if familiar || learning || view.operation() == "sign_in" {
                // A use keeps a familiar block familiar; the store hears of
                // it now and then, so a restart does not forget it as idle.
                let (store, evicted) = seen.learn(user, block, now, self.familiar_ttl_ms / 4);
                if store {
                    out.keep(
                        NAME,
                        view.tenant,
                        format!("f:{user}{SEP}{block}"),
                        Some(String::new()),
                        time,
                    );
                }
                if let Some(old) = evicted {
                    out.keep(NAME, view.tenant, format!("f:{user}{SEP}{old}"), None, time);
                }
                familiar = true;
            } else if self.tenant_familiar_users > 0 {
                familiar = seen
                    .block_users
                    .get(&block)
                    .is_some_and(|&n| n >= self.tenant_familiar_users);
            }
        }
        let Some(sid) = session else {
            return;
        };
        let network = Network::of(ip, self.v4, self.v6);
        // Without familiarity, the block is the session's network.
        let block = if familiarity { block } else { network };
        let Some(home) = seen.sessions.get_mut(sid) else {
            seen.sessions
                .insert(sid.to_owned(), Home::new(network, now));
            out.keep(
                NAME,
                view.tenant,
                format!("s:{sid}"),
                Some(network.to_string()),
                time,
            );
            return;
        };
        home.last_ms = now;
        home.used(block, now, self.concurrent_ms);
        if view.operation() == "sign_in" {
            // A sign-in defines where the session lives.
            if home.network != network || now - home.stored_ms > self.ttl_ms / 4 {
                home.network = network;
                home.stored_ms = now;
                out.keep(
                    NAME,
                    view.tenant,
                    format!("s:{sid}"),
                    Some(network.to_string()),
                    time,
                );
            }
            return;
        }
        if now - home.stored_ms > self.ttl_ms / 4 {
            home.stored_ms = now;
            let value = Some(home.network.to_string());
            out.keep(NAME, view.tenant, format!("s:{sid}"), value, time);
        }
        let who = view.user().unwrap_or("an unknown user");
        let window = humantime::format_duration(Duration::from_millis(
            u64::try_from(self.concurrent_ms).unwrap_or(0),
        ));
        let mut raise = |severity: Severity, summary: String, key: String| {
            let alert = Alert::about(view, NAME, severity, summary, key).with_response(Some(
                Response::RevokeSession {
                    session: sid.to_owned(),
                },
            ));
            out.alerts.push(alert);
        };
        let unfamiliar = home.network != network && !familiar;
        if unfamiliar && !home.away.iter().any(|(b, _)| *b == block) {
            home.away.push((block, false));
            if !home.back_and_forth(block) {
                let unfamiliar_text = if familiarity {
                    format!(", in {block}, which neither {who} nor their colleagues use")
                } else {
                    String::new()
                };
                let summary = format!(
                    "Session {sid} of {who} belongs to network {} but was used from {ip} ({}){unfamiliar_text}",
                    home.network,
                    view.operation(),
                );
                raise(
                    Severity::Medium,
                    summary,
                    format!("{NAME}:session:{sid}:{block}"),
                );
            }
        }
        // Two places at once: back and forth between an unfamiliar block
        // and elsewhere, within the window.
        for i in 0..home.away.len() {
            let (away, concurrent) = home.away[i];
            if concurrent || !home.back_and_forth(away) {
                continue;
            }
            home.away[i].1 = true;
            let summary = format!(
                "Session {sid} of {who} went back and forth between {away} and elsewhere within \
                 {window}, last from {ip} ({}): in two places at once",
                view.operation(),
            );
            raise(
                Severity::High,
                summary,
                format!("{NAME}:concurrent:{sid}:{away}"),
            );
        }
    }
}
