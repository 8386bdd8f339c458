//! `bulk_access`: mail read in bulk. Storm-0558's scripts downloaded mail,
//! attachments and conversations by the thousand; two shapes of that are
//! watched here.
//!
//! **Volume.** Items read per user and per client in a sliding `window`,
//! against that identity's own baseline: a moving average of its past
//! active windows that rises quickly (`alpha`) and falls slowly (`decay`),
//! so a quiet night or weekend does not make Monday morning look like a
//! flood. An alert needs the sliding count above both `multiplier` times
//! the baseline and `floor`, so an identity with no history (cold start)
//! alerts only above the floor. A window that alerted teaches the baseline
//! only up to the threshold it crossed: a bulk download must not become
//! the usual. The sliding count is the current window's count plus the
//! previous one's, weighted by how much of it still overlaps (the usual
//! sliding-window estimate): O(1) per event. By default only content reads
//! count: clients sync ids and flags of whole mailboxes routinely.
//!
//! **Spread.** One client from one address reading `accounts_threshold`
//! different mailboxes (target owner, else account) within
//! `accounts_window`, each read by someone new to that address's network
//! (IPv4 /24, IPv6 /48): one app and one source harvesting many
//! mailboxes. Colleagues behind their office's address are not new to it,
//! so a shared address alerts only if many people who never read mail
//! there start at once. During the tenant's first `learning_window` the
//! networks are learned quietly.
//!
//! State, per tenant: `u:<user>` and `c:<client>` = `<ewma> <windows>`, the
//! baseline and how many active windows made it; `t` = when the tenant was
//! first seen; `n:<user>\u{1f}<network>` = a network the user has read
//! mail from. Sliding counts are minutes long and start afresh after a
//! restart.

use hashbrown::HashMap;
use std::net::IpAddr;

use crate::net::Network;
use std::time::Duration;

use serde::Deserialize;
use stormproof_audit::AccessKind;
use stormproof_store::DetectorStateRecord;

use super::{BuildContext, Component, Detector, Output, Switches, positive, switches};
use crate::alert::{Alert, Severity};
use crate::config::{duration, millis};
use crate::view::View;
use crate::{ErrorKind, Result};

pub(crate) const NAME: &str = "bulk_access";

/// The most evidence listed for a spread alert.
const MAX_EVIDENCE: usize = 64;

/// The networks of the spread check: the size of one site's addresses.
const SITE_V4: u8 = 24;
const SITE_V6: u8 = 48;

/// The most networks remembered per user; the least recently used goes first.
const MAX_SITES: usize = 64;

const SEP: char = '\u{1f}';

switches! {
    /// `[detect.bulk_access]`.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct BulkAccessConfig {
        /// The sliding window for volume. Default `"1h"`.
        #[serde(with = "duration")]
        pub window: Duration,
        /// How far above its baseline an identity must read. Default 10.
        pub multiplier: f64,
        /// The fewest items in a window that can alert, whatever the
        /// baseline. Default 1000.
        pub floor: u64,
        /// The baseline's smoothing: the weight of a newer window busier
        /// than the baseline. Default 0.3.
        pub alpha: f64,
        /// The weight of a newer window quieter than the baseline: small,
        /// so the baseline remembers the working day through the night.
        /// Default 0.02.
        pub decay: f64,
        /// Count metadata reads (ids, flags) as well as content. Default `false`.
        pub count_metadata: bool,
        /// Distinct mailboxes one client from one address may read within
        /// `accounts_window` before alerting. Default 10.
        pub accounts_threshold: usize,
        /// Default `"10m"`.
        #[serde(with = "duration")]
        pub accounts_window: Duration,
        /// Clients never alerted on (archiving, e-discovery). Default empty.
        pub exempt_clients: Vec<String>,
        /// A network a user has not read mail from for this long is new to
        /// them again (spread). Default `"30d"`.
        #[serde(with = "duration")]
        pub familiar_ttl: Duration,
    }
}

impl Default for BulkAccessConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: None,
            auto_response: false,
            window: Duration::from_secs(3600),
            multiplier: 10.0,
            floor: 1000,
            alpha: 0.3,
            decay: 0.02,
            count_metadata: false,
            accounts_threshold: 10,
            accounts_window: Duration::from_secs(600),
            exempt_clients: Vec::new(),
            familiar_ttl: Duration::from_secs(30 * 86_400),
        }
    }
}

impl Component for BulkAccessConfig {
    const NAME: &'static str = NAME;

    fn switches(&self) -> Switches {
        self.common()
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Detector>> {
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return Err(ErrorKind::Config("bulk_access.alpha must be in (0, 1]".into()).into());
        }
        if !(self.decay > 0.0 && self.decay <= 1.0) {
            return Err(ErrorKind::Config("bulk_access.decay must be in (0, 1]".into()).into());
        }
        Ok(Box::new(BulkAccess {
            settings: Settings {
                window_ms: positive(millis(self.window), "bulk_access.window")?,
                multiplier: positive(self.multiplier, "bulk_access.multiplier")?,
                floor: positive(self.floor, "bulk_access.floor")?,
                alpha: self.alpha,
                decay: self.decay,
                count_metadata: self.count_metadata,
                accounts_threshold: positive(
                    self.accounts_threshold,
                    "bulk_access.accounts_threshold",
                )?,
                accounts_window_ms: positive(
                    millis(self.accounts_window),
                    "bulk_access.accounts_window",
                )?,
                exempt: self.exempt_clients.clone(),
                familiar_ttl_ms: positive(millis(self.familiar_ttl), "bulk_access.familiar_ttl")?,
                learning_ms: ctx.learning_window_ms,
            },
            tenants: HashMap::new(),
            next_sweep_ms: i64::MIN,
        }))
    }
}

/// Client, then source address, then the mailboxes read: owner (else
/// account) to the (time, seq) of its latest read.
type Spread = HashMap<String, HashMap<IpAddr, HashMap<String, (i64, u64)>>>;

/// One identity's reading volume.
#[derive(Debug, Default, Clone)]
struct Volume {
    window_start: i64,
    current: u64,
    previous: u64,
    ewma: f64,
    windows: u32,
    /// The window in which it last alerted, so one window alerts once.
    alerted: Option<i64>,
    /// The threshold that window crossed: the most it may teach.
    cap: Option<f64>,
}

impl Volume {
    /// Moves to the window holding `now`, folding closed windows into the
    /// baseline. Returns whether the baseline changed.
    fn advance(&mut self, now: i64, window: i64, alpha: f64, decay: f64) -> bool {
        if now < self.window_start + window {
            return false;
        }
        let closed = self.current;
        let cap = self.cap.take().unwrap_or(f64::INFINITY);
        self.previous = if now < self.window_start + 2 * window {
            closed
        } else {
            0
        };
        self.current = 0;
        self.window_start = now - (now - self.window_start).rem_euclid(window);
        // Only active windows teach the baseline: an idle night must not
        // make the morning's usual reading look like a flood.
        if closed == 0 {
            return false;
        }
        let closed = (closed as f64).min(cap);
        self.ewma = if self.windows == 0 {
            closed
        } else {
            let weight = if closed > self.ewma { alpha } else { decay };
            weight * closed + (1.0 - weight) * self.ewma
        };
        self.windows = self.windows.saturating_add(1);
        true
    }

    fn sliding(&self, now: i64, window: i64) -> u64 {
        let elapsed = (now - self.window_start) as f64 / window as f64;
        let overlap = (1.0 - elapsed).clamp(0.0, 1.0);
        self.current + (self.previous as f64 * overlap) as u64
    }
}

/// A network a user has read mail from.
struct Site {
    network: Network,
    last_ms: i64,
    stored_ms: i64,
}

#[derive(Default)]
struct TenantVolumes {
    /// When the tenant was first seen; `None` until then.
    first_ms: Option<i64>,
    users: HashMap<String, Volume>,
    clients: HashMap<String, Volume>,
    spread: Spread,
    /// User to the networks they read mail from.
    sites: HashMap<String, Vec<Site>>,
}

struct BulkAccess {
    settings: Settings,
    tenants: HashMap<String, TenantVolumes>,
    next_sweep_ms: i64,
}

impl BulkAccess {
    /// Forgets networks not read from for `familiar_ttl`, in memory and in
    /// the store, so phones hopping between carrier addresses do not pile
    /// up state.
    fn sweep(&mut self, now: i64, time: &str, out: &mut Output) {
        let since = now - self.settings.familiar_ttl_ms;
        for (tenant, seen) in &mut self.tenants {
            seen.sites.retain(|user, sites| {
                sites.retain(|site| {
                    let keep = site.last_ms >= since;
                    if !keep {
                        out.keep(
                            NAME,
                            tenant,
                            format!("n:{user}{SEP}{}", site.network),
                            None,
                            time,
                        );
                    }
                    keep
                });
                !sites.is_empty()
            });
        }
    }
}

struct Settings {
    window_ms: i64,
    multiplier: f64,
    floor: u64,
    alpha: f64,
    decay: f64,
    count_metadata: bool,
    accounts_threshold: usize,
    accounts_window_ms: i64,
    exempt: Vec<String>,
    familiar_ttl_ms: i64,
    learning_ms: i64,
}

#[derive(Clone, Copy)]
enum Kind {
    User,
    Client,
}

impl Settings {
    fn volume(
        &self,
        kind: Kind,
        id: &str,
        volume: &mut Volume,
        view: &View<'_>,
        items: u64,
        out: &mut Output,
    ) {
        let now = view.time_ms;
        if volume.window_start == 0 && volume.current == 0 && volume.previous == 0 {
            volume.window_start = now;
        }
        let (prefix, label) = match kind {
            Kind::User => ("u", "user"),
            Kind::Client => ("c", "application"),
        };
        if volume.advance(now, self.window_ms, self.alpha, self.decay) {
            let value = format!("{} {}", volume.ewma, volume.windows);
            out.keep(
                NAME,
                view.tenant,
                format!("{prefix}:{id}"),
                Some(value),
                &view.event.time,
            );
        }
        volume.current = volume.current.saturating_add(items);
        let threshold = (self.multiplier * volume.ewma).max(self.floor as f64);
        let read = volume.sliding(now, self.window_ms);
        if (read as f64) <= threshold || volume.alerted == Some(volume.window_start) {
            return;
        }
        volume.alerted = Some(volume.window_start);
        volume.cap = Some(threshold);
        let window = humantime::format_duration(Duration::from_millis(
            u64::try_from(self.window_ms).unwrap_or(0),
        ));
        let summary = if volume.windows == 0 {
            format!(
                "The {label} {id} read {read} items within {window}, with no history in tenant {}",
                view.tenant
            )
        } else {
            format!(
                "The {label} {id} read {read} items within {window}, {:.0} times its usual {:.0} (tenant {})",
                read as f64 / volume.ewma.max(1.0),
                volume.ewma,
                view.tenant
            )
        };
        out.alerts.push(Alert::about(
            view,
            NAME,
            Severity::High,
            summary,
            format!("{NAME}:{prefix}:{id}"),
        ));
    }

    /// Whether the reader is new to the network `ip` is in, learning that
    /// they are not from now on.
    fn newcomer(
        &self,
        tenant: &mut TenantVolumes,
        view: &View<'_>,
        ip: IpAddr,
        out: &mut Output,
    ) -> bool {
        let Some(user) = view.user() else {
            return true;
        };
        let now = view.time_ms;
        let network = Network::of(ip, SITE_V4, SITE_V6);
        let sites = tenant.sites.entry_ref(user).or_default();
        if let Some(site) = sites.iter_mut().find(|s| s.network == network) {
            let new = now - site.last_ms > self.familiar_ttl_ms;
            site.last_ms = now;
            // The store hears of it now and then, so a restart does not
            // forget a network in daily use as idle.
            if new || now - site.stored_ms > self.familiar_ttl_ms / 4 {
                site.stored_ms = now;
                out.keep(
                    NAME,
                    view.tenant,
                    format!("n:{user}{SEP}{network}"),
                    Some(String::new()),
                    &view.event.time,
                );
            }
            return new;
        }
        if sites.len() >= MAX_SITES
            && let Some(oldest) = (0..sites.len()).min_by_key(|&i| sites[i].last_ms)
        {
            let old = sites.swap_remove(oldest).network;
            out.keep(
                NAME,
                view.tenant,
                format!("n:{user}{SEP}{old}"),
                None,
                &view.event.time,
            );
        }
        sites.push(Site {
            network,
            last_ms: now,
            stored_ms: now,
        });
        out.keep(
            NAME,
            view.tenant,
            format!("n:{user}{SEP}{network}"),
            Some(String::new()),
            &view.event.time,
        );
        true
    }

    fn spread(
        &self,
        tenant: &mut TenantVolumes,
        view: &View<'_>,
        client: &str,
        ip: IpAddr,
        out: &mut Output,
    ) {
        let target = &view.event.target;
        let Some(mailbox) = target.owner.as_deref().or(target.account.as_deref()) else {
            return;
        };
        if !self.newcomer(tenant, view, ip, out) {
            return;
        }
        let now = view.time_ms;
        let since = now - self.accounts_window_ms;
        let learning = tenant
            .first_ms
            .is_some_and(|first| now - first < self.learning_ms);
        // Look up without allocating; keys are built only for a new client.
        let by_ip = tenant.spread.entry_ref(client).or_default();
        let read = by_ip.entry(ip).or_default();
        if let Some(last) = read.get_mut(mailbox) {
            *last = (now, view.event.seq);
            return;
        }
        read.retain(|_, &mut (t, _)| t >= since);
        read.insert(mailbox.to_owned(), (now, view.event.seq));
        if read.len() < self.accounts_threshold || learning {
            return;
        }
        let mut evidence: Vec<u64> = read.values().map(|&(_, seq)| seq).collect();
        evidence.sort_unstable();
        evidence.truncate(MAX_EVIDENCE);
        let window = humantime::format_duration(Duration::from_millis(
            u64::try_from(self.accounts_window_ms).unwrap_or(0),
        ));
        let summary = format!(
            "Application {client} read {} different mailboxes from {ip} within {window}, each by \
             someone who had not read mail from there before (tenant {})",
            read.len(),
            view.tenant
        );
        let alert = Alert::about(
            view,
            NAME,
            Severity::High,
            summary,
            format!("{NAME}:spread:{client}:{ip}"),
        );
        out.alerts.push(alert.with_evidence(evidence));
    }
}

impl Detector for BulkAccess {
    fn restore(&mut self, records: Vec<DetectorStateRecord>) -> Result<()> {
        for record in records {
            let tenant = record.tenant.as_ref().map_or("", |t| t.as_str());
            let value = record.value.as_deref().unwrap_or("");
            if record.key == "t" {
                if let Ok(first) = value.parse::<i64>() {
                    self.tenants.entry_ref(tenant).or_default().first_ms = Some(first);
                    continue;
                }
            } else if let Some((user, network)) = record
                .key
                .strip_prefix("n:")
                .and_then(|k| k.split_once(SEP))
                && let Some(network) = Network::parse(network)
            {
                let at = crate::view::parse_time_ms(&record.updated).unwrap_or(0);
                let seen = self.tenants.entry_ref(tenant).or_default();
                seen.sites.entry_ref(user).or_default().push(Site {
                    network,
                    last_ms: at,
                    stored_ms: at,
                });
                continue;
            }
            let parsed = value
                .split_once(' ')
                .and_then(|(e, w)| Some((e.parse::<f64>().ok()?, w.parse::<u32>().ok()?)));
            let Some((ewma, windows)) = parsed else {
                tracing::warn!(
                    message = "detector state row ignored",
                    detector = NAME,
                    key = %record.key
                );
                continue;
            };
            let volume = Volume {
                ewma,
                windows,
                ..Volume::default()
            };
            let seen = self.tenants.entry_ref(tenant).or_default();
            if let Some(user) = record.key.strip_prefix("u:") {
                seen.users.insert(user.to_owned(), volume);
            } else if let Some(client) = record.key.strip_prefix("c:") {
                seen.clients.insert(client.to_owned(), volume);
            }
        }
        Ok(())
    }

    fn observe(&mut self, view: &View<'_>, out: &mut Output) {
        if !view.mail_read || view.tenant.is_empty() {
            return;
        }
        if view.time_ms >= self.next_sweep_ms {
            self.sweep(view.time_ms, &view.event.time, out);
            self.next_sweep_ms = view
                .time_ms
                .saturating_add(self.settings.familiar_ttl_ms / 30 + 1);
        }
        let settings = &self.settings;
        let client = view.client();
        if client.is_some_and(|c| settings.exempt.iter().any(|e| e == c)) {
            return;
        }
        let items = match view.event.access {
            AccessKind::Content => view.event.count,
            AccessKind::Metadata if settings.count_metadata => view.event.count,
            _ => 0,
        };
        let tenant = self.tenants.entry_ref(view.tenant).or_default();
        if tenant.first_ms.is_none() {
            tenant.first_ms = Some(view.time_ms);
            let now = view.time_ms.to_string();
            out.keep(NAME, view.tenant, "t".into(), Some(now), &view.event.time);
        }
        if items > 0 {
            if let Some(user) = view.user() {
                let volume = tenant.users.entry_ref(user).or_default();
                settings.volume(Kind::User, user, volume, view, items, out);
            }
            if let Some(client) = client {
                let volume = tenant.clients.entry_ref(client).or_default();
                settings.volume(Kind::Client, client, volume, view, items, out);
            }
        }
        if let (Some(client), Some(ip)) = (client, view.ip) {
            settings.spread(tenant, view, client, ip, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_learns_only_from_active_windows() {
        let w = 1000;
        let mut v = Volume {
            window_start: 0,
            ..Volume::default()
        };
        // (time, items read, expected baseline after advancing, windows)
        let steps: &[(i64, u64, f64, u32)] = &[
            (0, 100, 0.0, 0),
            (1500, 100, 100.0, 1),
            // Long idle: the previous window is empty, the baseline stays.
            (9000, 50, 100.0, 2),
            (10_100, 0, 85.0, 3),
        ];
        for &(now, items, ewma, windows) in steps {
            v.advance(now, w, 0.3, 0.3);
            v.current += items;
            assert!((v.ewma - ewma).abs() < 1e-9, "at {now}: {}", v.ewma);
            assert_eq!(v.windows, windows, "at {now}");
        }
    }

    #[test]
    fn the_baseline_rises_quickly_falls_slowly_and_is_not_taught_by_alerts() {
        let w = 1000;
        let mut v = Volume {
            window_start: 0,
            ..Volume::default()
        };
        // (time, items read, cap from an alert, expected baseline after advancing)
        let steps: &[(i64, u64, Option<f64>, f64)] = &[
            (0, 100, None, 0.0),
            (1000, 200, None, 100.0),
            // Busier: alpha 0.5.
            (2000, 10, None, 150.0),
            // Quieter: decay 0.1.
            (3000, 5000, Some(1500.0), 136.0),
            // The alerting window teaches no more than its threshold.
            (4000, 0, None, 0.5 * 1500.0 + 0.5 * 136.0),
        ];
        for &(now, items, cap, ewma) in steps {
            v.advance(now, w, 0.5, 0.1);
            v.current += items;
            v.cap = cap;
            assert!((v.ewma - ewma).abs() < 1e-9, "at {now}: {}", v.ewma);
        }
    }
}
