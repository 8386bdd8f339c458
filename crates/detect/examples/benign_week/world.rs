//! A benign simulated fortnight of audit events: tenants of a few hundred
//! users with their usual mail apps, homes, offices, phones and trips, as
//! the Stormproof server would log them. Nothing in it is an attack, so
//! every alert the engine raises over it is a false positive.
//!
//! Deterministic: the same seed gives the same events, byte for byte (for a
//! given `Cargo.lock`: the generator is `rand`'s `StdRng`).
//!
//! Addresses come from reserved ranges (RFC 5737 documentation, RFC 6598
//! shared address space, 240.0.0.0/4, RFC 3849 and RFC 9637 documentation
//! IPv6), so no real network is named. Only their structure matters to the
//! detectors: which `/24`, `/16`, `/48` or `/32` an address falls in.
//!
//! Shared by the `benign_week` example (the full measurement) and the
//! integration test that runs a small world.

use std::net::{Ipv4Addr, Ipv6Addr};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use stormproof_audit::{AccessKind, Actor, AuditEvent, Outcome, Target};
use stormproof_detect::DetectConfig;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Monday 2024-03-04T00:00:00Z: day 0 of the simulation.
pub const START_MS: i64 = 1_709_510_400_000;

/// Access tokens live ten minutes (the issuer's default): an active client
/// refreshes that often.
const TOKEN_MS: i64 = 10 * MINUTE_MS;

/// One tenant to simulate.
#[derive(Debug, Clone)]
pub struct TenantSpec {
    /// The tenant name; users are `name.test` addresses.
    pub name: &'static str,
    /// How many users.
    pub users: usize,
    /// Local time minus UTC, in hours: the working day moves with it.
    pub utc_offset_hours: i64,
    /// Offices (each with its own NAT egress); 0 for a fully remote company.
    pub offices: usize,
    /// Whether a nightly archiving job reads every mailbox.
    pub archiver: bool,
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct WorldSpec {
    pub seed: u64,
    pub tenants: Vec<TenantSpec>,
}

impl WorldSpec {
    /// Three tenants, 1,000 users: a 460-person company with two offices
    /// and an archiving job, a 340-person one with one office, and a
    /// 200-person company whose staff mostly work from home.
    pub fn standard(seed: u64) -> Self {
        Self {
            seed,
            tenants: vec![
                TenantSpec {
                    name: "northwind",
                    users: 460,
                    utc_offset_hours: 1,
                    offices: 2,
                    archiver: true,
                },
                TenantSpec {
                    name: "fabrikam",
                    users: 340,
                    utc_offset_hours: -5,
                    offices: 1,
                    archiver: false,
                },
                TenantSpec {
                    name: "tailspin",
                    users: 200,
                    utc_offset_hours: 8,
                    offices: 1,
                    archiver: false,
                },
            ],
        }
    }

    /// The same shape at `users` users in total, for tests.
    pub fn small(seed: u64, users: usize) -> Self {
        let mut spec = Self::standard(seed);
        let total: usize = spec.tenants.iter().map(|t| t.users).sum();
        for tenant in &mut spec.tenants {
            tenant.users = (tenant.users * users / total).max(4);
        }
        spec
    }
}

/// Which client a device runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum App {
    /// The tenant's webmail, in a browser tab.
    Webmail,
    /// The phone app.
    Phone,
    /// A desktop mail client that keeps mail offline (and sends over SMTP).
    Desktop,
}

impl App {
    fn client_id(self) -> &'static str {
        match self {
            App::Webmail => "webmail",
            App::Phone => "mail-mobile",
            App::Desktop => "mail-desktop",
        }
    }

    fn user_agent(self, variant: usize) -> &'static str {
        const WEB: &[&str] = &[
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0 Safari/537.36",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
            "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
        ];
        const PHONE: &[&str] = &[
            "StormproofMail/3.4 (iPhone; iOS 17.3)",
            "StormproofMail/3.4 (Android 14; Pixel 8)",
        ];
        const DESKTOP: &[&str] = &[
            "Thunderbird/115.8 (Windows NT 10.0)",
            "Thunderbird/115.8 (Macintosh)",
        ];
        let list = match self {
            App::Webmail => WEB,
            App::Phone => PHONE,
            App::Desktop => DESKTOP,
        };
        list[variant % list.len()]
    }
}

/// Where someone is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Home,
    Office(usize),
    /// On the phone network (commuting, lunch, errands).
    Cellular,
    /// A hotel or a client's site on a trip.
    Away,
}

/// A device signed in to one client, with its session and token.
#[derive(Debug, Clone)]
struct Device {
    app: App,
    user_agent: &'static str,
    sid: String,
    /// The current access token and when it expires; `None` before the
    /// first token of the session.
    token: Option<(String, i64)>,
    /// When it last fetched new mail.
    synced_ms: i64,
    /// Sends over SMTP submission (desktop clients) rather than JMAP.
    smtp: bool,
    /// The phone's current cellular address, renewed on each attach.
    cell_ip: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Habit {
    /// In the office on weekdays but `wfh_day`.
    Office { office: usize, wfh_day: usize },
    /// Works from home.
    Remote,
    /// Out and about: works from the phone network much of the day.
    Field { office: usize },
}

#[derive(Debug, Clone)]
struct User {
    email: String,
    id: String,
    account: String,
    habit: Habit,
    apps: Vec<App>,
    /// Devices currently signed in (webmail sessions are per day).
    devices: Vec<Device>,
    home_v4: Ipv4Addr,
    isp: usize,
    /// The day the ISP gives the home a new IPv4 address, if it does.
    renumbered: Option<u32>,
    /// The home's delegated IPv6 `/56`, when the ISP offers IPv6.
    home_v6: Option<u128>,
    carrier: usize,
    /// Emails received on a working day.
    daily_mail: f64,
    /// Messages in the mailbox (what a fresh offline client downloads).
    mailbox: u64,
    /// Shared mailboxes this user works in (index into the tenant's).
    shared: Vec<usize>,
    /// The executive whose mailbox this assistant reads.
    assistant_of: Option<usize>,
    /// A trip: first and last day, and the hotel's address.
    trip: Option<(u32, u32, Ipv4Addr)>,
    /// Joins on this day (created by an operator the day before).
    starts: u32,
    /// Uses the phone on the office Wi-Fi rather than the phone network.
    phone_on_wifi: bool,
    /// Occasionally opens webmail even though another client is their main one.
    webmail_now_and_then: bool,
    /// Arrival times of today's mail (ms), sorted.
    mail_today: Vec<i64>,
    message_seq: u64,
}

#[derive(Debug, Clone)]
struct Office {
    egress_v4: Vec<Ipv4Addr>,
    v6: Option<u128>,
}

#[derive(Debug, Clone)]
struct Shared {
    address: String,
    account: String,
}

#[derive(Debug, Clone)]
struct Tenant {
    spec: TenantSpec,
    domain: String,
    offices: Vec<Office>,
    users: Vec<User>,
    shared: Vec<Shared>,
    kid: u32,
}

/// A home ISP: the `/16`s its customers' IPv4 addresses come from, and its
/// IPv6 `/32` (when it offers IPv6).
struct Isp {
    v4_blocks: Vec<[u8; 2]>,
    v6: Option<u128>,
}

/// A mobile operator: a carrier-grade NAT pool spread over a few `/16`s,
/// and an IPv6 `/32` whose `/48`s differ between gateways.
struct Carrier {
    v4_blocks: Vec<[u8; 2]>,
    v6: Option<u128>,
}

/// Whose mailbox a read is of.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Own,
    User(usize),
    Shared(usize),
}

/// The simulation.
pub struct World {
    rng: StdRng,
    tenants: Vec<Tenant>,
    isps: Vec<Isp>,
    carriers: Vec<Carrier>,
    day: u32,
    seq: u64,
    jti: u64,
    /// Events generated but not yet handed out (a later tenant's day may
    /// start before an earlier one's ends).
    pending: Vec<AuditEvent>,
}

fn v6_block(a: u16, b: u16) -> u128 {
    (u128::from(a) << 112) | (u128::from(b) << 96)
}

impl World {
    pub fn new(spec: &WorldSpec) -> Self {
        let mut rng = StdRng::seed_from_u64(spec.seed);
        // Five home ISPs in 240.0.0.0/4, two without IPv6.
        let isps = (0..5u8)
            .map(|i| Isp {
                v4_blocks: (0..3 + usize::from(i) * 2)
                    .map(|_| [240 + i * 3 + rng.gen_range(0..3), rng.gen_range(0..=255)])
                    .collect(),
                v6: (i < 3).then(|| v6_block(0x3fff, 0x0100 + u16::from(i))),
            })
            .collect();
        // Three mobile operators in 100.64.0.0/10; two offer IPv6.
        let carriers = (0..3u8)
            .map(|i| Carrier {
                v4_blocks: (0..2 + usize::from(i) * 2)
                    .map(|j| [100, 64 + i * 16 + j as u8])
                    .collect(),
                v6: (i < 2).then(|| v6_block(0x3fff, 0x0200 + u16::from(i))),
            })
            .collect();
        let mut world = Self {
            rng,
            tenants: Vec::new(),
            isps,
            carriers,
            day: 0,
            seq: 0,
            jti: 0,
            pending: Vec::new(),
        };
        for (t, tenant) in spec.tenants.iter().enumerate() {
            let built = world.tenant(t, tenant);
            world.tenants.push(built);
        }
        // The server ran before the engine did: phones and desktop clients
        // are signed in already (their sign-ins are not in this log), and
        // have their mail.
        for t in 0..world.tenants.len() {
            for u in 0..world.tenants[t].users.len() {
                let user = &world.tenants[t].users[u];
                if user.starts > 0 {
                    continue;
                }
                let apps: Vec<App> = user
                    .apps
                    .iter()
                    .copied()
                    .filter(|a| *a != App::Webmail)
                    .collect();
                for app in apps {
                    world.jti += 1;
                    let variant = world.rng.gen_range(0..3);
                    let sid = format!("sid-{}-{}", world.tenants[t].spec.name, world.jti);
                    world.tenants[t].users[u].devices.push(Device {
                        app,
                        user_agent: app.user_agent(variant),
                        sid,
                        // Expired: the first use refreshes it.
                        token: Some((format!("jti-before-{}", world.jti), START_MS - HOUR_MS)),
                        synced_ms: START_MS,
                        smtp: app == App::Desktop,
                        cell_ip: None,
                    });
                }
            }
        }
        world
    }

    fn tenant(&mut self, t: usize, spec: &TenantSpec) -> Tenant {
        let rng = &mut self.rng;
        let domain = format!("{}.test", spec.name);
        let offices: Vec<Office> = (0..spec.offices)
            .map(|o| Office {
                // Offices egress through a handful of NAT addresses in one /24.
                egress_v4: (0..1 + o % 2 * 2)
                    .map(|k| {
                        Ipv4Addr::new(198, 18 + (t % 2) as u8, (t * 16 + o) as u8, 10 + k as u8)
                    })
                    .collect(),
                v6: (o == 0).then(|| v6_block(0x2001, 0x0db8) | (((t * 16 + o) as u128) << 80)),
            })
            .collect();
        let mut users = Vec::with_capacity(spec.users);
        for u in 0..spec.users {
            let local = format!("user{u:04}");
            let habit = match (spec.offices, rng.gen_range(0..100)) {
                (0, _) => Habit::Remote,
                (_, 0..=64) => Habit::Office {
                    office: rng.gen_range(0..spec.offices),
                    wfh_day: rng.gen_range(0..7),
                },
                (_, 65..=84) => Habit::Remote,
                _ => Habit::Field {
                    office: rng.gen_range(0..spec.offices),
                },
            };
            let mut apps = Vec::new();
            if rng.gen_bool(0.8) {
                apps.push(App::Webmail);
            }
            if rng.gen_bool(if matches!(habit, Habit::Field { .. }) {
                0.95
            } else {
                0.65
            }) {
                apps.push(App::Phone);
            }
            if rng.gen_bool(0.45) {
                apps.push(App::Desktop);
            }
            if apps.is_empty() {
                apps.push(App::Webmail);
            }
            let isp = rng.gen_range(0..self.isps.len());
            let block = *self.isps[isp].v4_blocks.choose(rng).unwrap_or(&[240, 0]);
            let home_v4 = Ipv4Addr::new(block[0], block[1], rng.r#gen(), rng.gen_range(1..255));
            let home_v6 = self.isps[isp]
                .v6
                .filter(|_| rng.gen_bool(0.7))
                .map(|prefix| prefix | (u128::from(rng.r#gen::<u32>() & 0xffff_ff00) << 64));
            // Daily mail: most people get dozens, some a couple of hundred.
            let daily_mail = (rng.gen_range(20.0f64..60.0) * rng.gen_range(0.5f64..3.0)).round();
            let mailbox = (rng.gen_range(2_000.0f64..12_000.0) * rng.gen_range(0.3f64..3.0)) as u64;
            users.push(User {
                email: format!("{local}@{domain}"),
                id: format!("u-{}-{u:04}", spec.name),
                account: format!("a-{}-{u:04}", spec.name),
                habit,
                apps,
                devices: Vec::new(),
                home_v4,
                isp,
                // Some ISPs hand out a new address now and then.
                renumbered: rng.gen_bool(0.1).then(|| rng.gen_range(1..14)),
                home_v6,
                carrier: rng.gen_range(0..self.carriers.len()),
                daily_mail,
                mailbox,
                shared: Vec::new(),
                assistant_of: None,
                trip: None,
                starts: 0,
                phone_on_wifi: rng.gen_bool(0.5),
                webmail_now_and_then: rng.gen_bool(0.3),
                mail_today: Vec::new(),
                message_seq: 0,
            });
        }
        // Shared mailboxes (support, sales, ...), each worked by a small team.
        let shared: Vec<Shared> = ["support", "sales", "billing", "office"]
            .iter()
            .take(1 + spec.users / 120)
            .map(|name| Shared {
                address: format!("{name}@{domain}"),
                account: format!("a-{}-{name}", spec.name),
            })
            .collect();
        for (s, _) in shared.iter().enumerate() {
            for _ in 0..rng.gen_range(3..=8) {
                let member = rng.gen_range(0..users.len());
                if !users[member].shared.contains(&s) {
                    users[member].shared.push(s);
                }
            }
        }
        // One executive in a hundred has an assistant reading their mail.
        for _ in 0..(spec.users / 100).max(1) {
            let (a, e) = (rng.gen_range(0..users.len()), rng.gen_range(0..users.len()));
            if a != e {
                users[a].assistant_of = Some(e);
            }
        }
        // About 4% of people travel in a fortnight, for two to four days.
        for user in &mut users {
            if rng.gen_bool(0.04) {
                let first = rng.gen_range(1..12);
                let hotel = Ipv4Addr::new(
                    rng.gen_range(250..=254),
                    rng.r#gen(),
                    rng.r#gen(),
                    rng.gen_range(1..255),
                );
                user.trip = Some((first, first + rng.gen_range(1..4), hotel));
            }
        }
        // New staff: about one a week per 150 people, created the day before.
        let new_staff = (spec.users / 75).max(1);
        for k in 0..new_staff.min(users.len()) {
            let user = &mut users[spec.users - 1 - k];
            user.starts = rng.gen_range(2..13);
        }
        Tenant {
            spec: spec.clone(),
            domain,
            offices,
            users,
            shared,
            kid: 1,
        }
    }

    /// Users in all tenants.
    pub fn users(&self) -> usize {
        self.tenants.iter().map(|t| t.users.len()).sum()
    }

    /// The settings an operator of these tenants would use: the archiving
    /// job's account and client are exempt, and each shared mailbox and
    /// executive's mailbox lists the people who work in it.
    pub fn detect_config(&self) -> DetectConfig {
        self.operator_settings(DetectConfig::default())
    }

    /// [`World::detect_config`]'s operator settings added to `config`.
    pub fn operator_settings(&self, mut config: DetectConfig) -> DetectConfig {
        for tenant in &self.tenants {
            if tenant.spec.archiver {
                config
                    .non_owner_access
                    .exempt_actors
                    .push(format!("archiver@{}", tenant.domain));
                if !config
                    .bulk_access
                    .exempt_clients
                    .iter()
                    .any(|c| c == "archiver")
                {
                    config.bulk_access.exempt_clients.push("archiver".into());
                }
            }
            for user in &tenant.users {
                for &s in &user.shared {
                    config
                        .non_owner_access
                        .delegates
                        .entry(tenant.shared[s].address.clone())
                        .or_default()
                        .push(user.email.clone());
                }
                if let Some(e) = user.assistant_of {
                    config
                        .non_owner_access
                        .delegates
                        .entry(tenant.users[e].email.clone())
                        .or_default()
                        .push(user.email.clone());
                }
            }
        }
        config
    }

    /// The next day's events, in time order, numbered from where the last
    /// day stopped. Day 0 is a Monday.
    pub fn next_day(&mut self) -> Vec<AuditEvent> {
        let day = self.day;
        self.day += 1;
        let mut events = std::mem::take(&mut self.pending);
        for t in 0..self.tenants.len() {
            self.tenant_day(t, day, &mut events);
        }
        events.sort_by(|a, b| a.time.cmp(&b.time));
        // Hold back what a tenant further east may still precede tomorrow.
        let east = self
            .tenants
            .iter()
            .map(|t| t.spec.utc_offset_hours)
            .max()
            .unwrap_or(0);
        let cutoff = stormproof_audit::format_time_ms(
            START_MS + (i64::from(day) + 1) * DAY_MS - east * HOUR_MS,
        );
        let split = events.partition_point(|e| e.time < cutoff);
        self.pending = events.split_off(split);
        for event in &mut events {
            event.seq = self.seq;
            self.seq += 1;
        }
        events
    }

    /// Whatever is still held back, after the last day.
    pub fn finish(&mut self) -> Vec<AuditEvent> {
        let mut events = std::mem::take(&mut self.pending);
        for event in &mut events {
            event.seq = self.seq;
            self.seq += 1;
        }
        events
    }

    fn tenant_day(&mut self, t: usize, day: u32, out: &mut Vec<AuditEvent>) {
        let offset = self.tenants[t].spec.utc_offset_hours;
        // Local midnight of `day`, in UTC milliseconds.
        let midnight = START_MS + i64::from(day) * DAY_MS - offset * HOUR_MS;
        let weekday = (day % 7) as usize;
        let weekend = weekday >= 5;
        self.operators(t, day, midnight, out);
        for u in 0..self.tenants[t].users.len() {
            let starts = self.tenants[t].users[u].starts;
            if day < starts {
                continue;
            }
            self.receive_mail(t, u, midnight, weekend);
            let plan = self.plan(t, u, day, midnight, weekday);
            self.user_day(t, u, day, midnight, &plan, out);
        }
        if self.tenants[t].spec.archiver {
            self.archive(t, midnight, out);
        }
    }

    /// Operators' routine: new staff created the day before they start,
    /// now and then an app password for someone's old device, the signing
    /// key rotated once a fortnight.
    fn operators(&mut self, t: usize, day: u32, midnight: i64, out: &mut Vec<AuditEvent>) {
        let tenant = &self.tenants[t];
        let at = midnight + 10 * HOUR_MS + self.rng.gen_range(0..6 * HOUR_MS);
        let mut admin = |operation: &str, owner: Option<&str>, items: Vec<String>, detail| {
            let actor = Actor {
                protocol: "cli".into(),
                ..Actor::default()
            };
            let mut event = AuditEvent::new(at, operation, Outcome::Success, actor);
            event.tenant = Some(tenant.spec.name.to_owned());
            event.reason = Some("admin".into());
            event.count = items.len() as u64;
            event.target = Target {
                owner: owner.map(str::to_owned),
                items,
                ..Target::default()
            };
            event.detail = detail;
            out.push(event);
        };
        for user in tenant.users.iter().filter(|u| u.starts == day + 1) {
            admin(
                "user_created",
                Some(&user.email),
                Vec::new(),
                serde_json::json!({"user": user.id, "email": user.email}),
            );
        }
        if day % 7 < 5 && self.rng.gen_bool(0.2) {
            let user = &tenant.users[self.rng.gen_range(0..tenant.users.len())];
            let id = format!("ap-{day}-{}", user.id);
            admin(
                "app_password_created",
                Some(&user.email),
                vec![id.clone()],
                serde_json::json!({"user": user.id, "id": id, "name": "old phone"}),
            );
        }
        if day == 3 + t as u32 {
            let (old, new) = (tenant.kid, tenant.kid + 1);
            admin(
                "key_rotated",
                None,
                Vec::new(),
                serde_json::json!({"changes": [
                    {"kid": format!("{}-k{old}", tenant.spec.name), "status": "retiring"},
                    {"kid": format!("{}-k{new}", tenant.spec.name), "status": "active"},
                ]}),
            );
            self.tenants[t].kid = new;
        }
    }

    fn receive_mail(&mut self, t: usize, u: usize, midnight: i64, weekend: bool) {
        let rng = &mut self.rng;
        let user = &mut self.tenants[t].users[u];
        let n = if weekend {
            user.daily_mail * 0.1
        } else {
            user.daily_mail * rng.gen_range(0.6..1.4)
        } as usize;
        user.mail_today = (0..n)
            .map(|_| {
                // Mostly office hours, some early and late.
                let hour = if rng.gen_bool(0.85) {
                    rng.gen_range(8.0..18.5)
                } else {
                    rng.gen_range(0.0..24.0)
                };
                midnight + (hour * HOUR_MS as f64) as i64
            })
            .collect();
        user.mail_today.sort_unstable();
    }

    /// Where the user is through the day: (from, to, place), local times
    /// turned into UTC milliseconds.
    fn plan(
        &mut self,
        t: usize,
        u: usize,
        day: u32,
        midnight: i64,
        weekday: usize,
    ) -> Vec<(i64, i64, Place)> {
        let rng = &mut self.rng;
        let user = &self.tenants[t].users[u];
        let h = |hours: f64| midnight + (hours * HOUR_MS as f64) as i64;
        if let Some((first, last, _)) = user.trip
            && (first..=last).contains(&day)
        {
            return vec![
                (h(6.5), h(8.5), Place::Away),
                (h(8.5), h(9.0), Place::Cellular),
                (h(9.0), h(18.0), Place::Away),
                (h(18.0), h(19.5), Place::Cellular),
                (h(19.5), h(23.0), Place::Away),
            ];
        }
        let wake = rng.gen_range(6.0..8.0);
        let sleep = rng.gen_range(22.0..24.0);
        if weekday >= 5 {
            let out_at = rng.gen_range(10.0..16.0);
            let back = out_at + rng.gen_range(1.0..5.0);
            return vec![
                (h(wake + 1.0), h(out_at), Place::Home),
                (h(out_at), h(back), Place::Cellular),
                (h(back), h(sleep), Place::Home),
            ];
        }
        match user.habit {
            Habit::Office { office, wfh_day } if wfh_day != weekday => {
                let leave = wake + rng.gen_range(0.7..1.5);
                let arrive = leave + rng.gen_range(0.3..1.0);
                let lunch = rng.gen_range(12.0..13.0);
                let home_time = rng.gen_range(16.5..18.5);
                let mut plan = vec![
                    (h(wake), h(leave), Place::Home),
                    (h(leave), h(arrive), Place::Cellular),
                ];
                if rng.gen_bool(0.5) {
                    plan.push((h(arrive), h(lunch), Place::Office(office)));
                    plan.push((h(lunch), h(lunch + 0.75), Place::Cellular));
                    plan.push((h(lunch + 0.75), h(home_time), Place::Office(office)));
                } else {
                    plan.push((h(arrive), h(home_time), Place::Office(office)));
                }
                let back = home_time + rng.gen_range(0.3..1.0);
                plan.push((h(home_time), h(back), Place::Cellular));
                plan.push((h(back), h(sleep), Place::Home));
                plan
            }
            Habit::Field { office } => {
                let mut plan = vec![(h(wake), h(8.5), Place::Home)];
                let mut at: f64 = 8.5;
                while at < 17.0 {
                    let until = (at + rng.gen_range(0.5..2.5)).min(17.5);
                    let place = if rng.gen_bool(0.2) {
                        Place::Office(office)
                    } else {
                        Place::Cellular
                    };
                    plan.push((h(at), h(until), place));
                    at = until;
                }
                plan.push((h(at), h(sleep), Place::Home));
                plan
            }
            _ => vec![(h(wake), h(sleep), Place::Home)],
        }
    }

    /// A fresh address for `place`, as the device would present it.
    fn address(&mut self, t: usize, u: usize, place: Place, device: Option<usize>) -> String {
        let rng = &mut self.rng;
        let tenant = &self.tenants[t];
        let user = &tenant.users[u];
        match place {
            Place::Home => match user.home_v6 {
                // Dual-stack homes reach us over IPv6 almost always.
                Some(prefix) if rng.gen_bool(0.9) => {
                    let host = prefix
                        | (u128::from(rng.r#gen::<u8>()) << 64)
                        | u128::from(rng.r#gen::<u64>());
                    Ipv6Addr::from(host).to_string()
                }
                _ => user.home_v4.to_string(),
            },
            Place::Office(o) => {
                let office = &tenant.offices[o.min(tenant.offices.len().saturating_sub(1))];
                match office.v6 {
                    Some(prefix) if rng.gen_bool(0.4) => {
                        let host = prefix
                            | (u128::from(rng.r#gen::<u16>()) << 64)
                            | u128::from(rng.r#gen::<u64>());
                        Ipv6Addr::from(host).to_string()
                    }
                    _ => office
                        .egress_v4
                        .choose(rng)
                        .map_or_else(|| "198.18.0.1".to_owned(), |ip| ip.to_string()),
                }
            }
            Place::Cellular => {
                let existing = device
                    .and_then(|d| user.devices.get(d))
                    .and_then(|d| d.cell_ip.clone());
                existing.unwrap_or_else(|| self.cell_address(t, u))
            }
            Place::Away => match user.trip {
                Some((_, _, hotel)) => hotel.to_string(),
                None => user.home_v4.to_string(),
            },
        }
    }

    /// A new carrier-grade NAT address: a phone gets one each time it
    /// attaches to the phone network.
    fn cell_address(&mut self, t: usize, u: usize) -> String {
        let rng = &mut self.rng;
        let carrier = &self.carriers[self.tenants[t].users[u].carrier];
        match carrier.v6 {
            Some(prefix) if rng.gen_bool(0.6) => {
                let host = prefix
                    | (u128::from(rng.r#gen::<u32>()) << 64)
                    | u128::from(rng.r#gen::<u64>());
                Ipv6Addr::from(host).to_string()
            }
            _ => {
                let block = carrier.v4_blocks.choose(rng).copied().unwrap_or([100, 64]);
                Ipv4Addr::new(block[0], block[1], rng.r#gen(), rng.gen_range(1..255)).to_string()
            }
        }
    }

    fn user_day(
        &mut self,
        t: usize,
        u: usize,
        day: u32,
        midnight: i64,
        plan: &[(i64, i64, Place)],
        out: &mut Vec<AuditEvent>,
    ) {
        let weekend = day % 7 >= 5;
        let apps = self.tenants[t].users[u].apps.clone();
        if self.tenants[t].users[u].renumbered == Some(day) {
            let isp = &self.isps[self.tenants[t].users[u].isp];
            let block = *isp.v4_blocks.choose(&mut self.rng).unwrap_or(&[240, 0]);
            let home = Ipv4Addr::new(
                block[0],
                block[1],
                self.rng.r#gen(),
                self.rng.gen_range(1..255),
            );
            self.tenants[t].users[u].home_v4 = home;
        }
        // A new device, now and then: a new phone, a reinstalled laptop.
        if day > 0 && self.rng.gen_bool(0.0025) {
            let app = *apps.choose(&mut self.rng).unwrap_or(&App::Webmail);
            if app != App::Webmail {
                self.tenants[t].users[u].devices.retain(|d| d.app != app);
            }
        }
        // Webmail sessions last a day.
        self.tenants[t].users[u]
            .devices
            .retain(|d| d.app != App::Webmail);
        let main_computer_app = if apps.contains(&App::Desktop) {
            Some(App::Desktop)
        } else if apps.contains(&App::Webmail) {
            Some(App::Webmail)
        } else {
            None
        };
        let working_day = !weekend;
        for &(from, to, place) in plan {
            if from >= to {
                continue;
            }
            let computer_here = matches!(place, Place::Home | Place::Office(_) | Place::Away);
            let working = working_day
                && computer_here
                && (place != Place::Home
                    || matches!(self.tenants[t].users[u].habit, Habit::Remote)
                    || matches!(self.tenants[t].users[u].habit, Habit::Office { wfh_day, .. } if wfh_day == (day % 7) as usize))
                && to - from > HOUR_MS
                && {
                    let local = (from - midnight) as f64 / HOUR_MS as f64;
                    local < 16.0
                };
            if working && let Some(app) = main_computer_app {
                let start = from.max(midnight + 8 * HOUR_MS);
                let end = to.min(midnight + 18 * HOUR_MS);
                if end > start {
                    self.continuous(t, u, app, start, end, place, out);
                    if app == App::Desktop
                        && apps.contains(&App::Webmail)
                        && self.tenants[t].users[u].webmail_now_and_then
                        && self.rng.gen_bool(0.15)
                    {
                        let at = self.rng.gen_range(start..end);
                        self.check(t, u, App::Webmail, at, place, 2, out);
                    }
                }
            } else if computer_here
                && !working
                && self.rng.gen_bool(if weekend { 0.15 } else { 0.2 })
            {
                // An evening or weekend look at the computer.
                if let Some(app) = main_computer_app {
                    let at = self.rng.gen_range(from..to);
                    let end = (at + self.rng.gen_range(15..60) * MINUTE_MS).min(to);
                    self.continuous(t, u, app, at, end, place, out);
                }
            }
            if apps.contains(&App::Phone) {
                let hours = (to - from) as f64 / HOUR_MS as f64;
                let rate = match place {
                    Place::Cellular => 2.5,
                    Place::Office(_) => 0.8,
                    _ => 1.2,
                };
                let checks = (hours * rate * self.rng.gen_range(0.5..1.5)).round() as usize;
                if place == Place::Cellular {
                    // Attaching to the phone network: a new address.
                    let ip = self.cell_address(t, u);
                    if let Some(d) = self.device(t, u, App::Phone) {
                        self.tenants[t].users[u].devices[d].cell_ip = Some(ip);
                    }
                }
                let wifi_at_office = self.tenants[t].users[u].phone_on_wifi;
                let phone_place = match place {
                    Place::Office(_) if !wifi_at_office => Place::Cellular,
                    other => other,
                };
                for _ in 0..checks {
                    let at = self.rng.gen_range(from..to);
                    self.check(t, u, App::Phone, at, phone_place, 1, out);
                }
            }
        }
        if working_day {
            self.shared_work(t, u, midnight, plan, out);
        }
    }

    /// The index of the user's device for `app`, signing one in if needed.
    fn device(&self, t: usize, u: usize, app: App) -> Option<usize> {
        self.tenants[t].users[u]
            .devices
            .iter()
            .position(|d| d.app == app)
    }

    fn actor(&self, t: usize, u: usize, d: usize, ip: &str, protocol: &str) -> Actor {
        let user = &self.tenants[t].users[u];
        let device = &user.devices[d];
        Actor {
            user: Some(user.email.clone()),
            user_id: Some(user.id.clone()),
            client_id: Some(device.app.client_id().into()),
            session: Some(device.sid.clone()),
            token: device.token.as_ref().map(|(jti, _)| jti.clone()),
            ip: Some(ip.to_owned()),
            user_agent: Some(device.user_agent.into()),
            protocol: protocol.into(),
        }
    }

    fn event(&self, t: usize, at: i64, operation: &str, actor: Actor) -> AuditEvent {
        let mut event = AuditEvent::new(at, operation, Outcome::Success, actor);
        event.tenant = Some(self.tenants[t].spec.name.to_owned());
        event
    }

    /// Signs the user in on `app` at `at`, from `ip`: a wrong password
    /// first, now and then. Returns the device and the time after it.
    fn sign_in(
        &mut self,
        t: usize,
        u: usize,
        app: App,
        mut at: i64,
        ip: &str,
        out: &mut Vec<AuditEvent>,
    ) -> (usize, i64) {
        let variant = self.rng.gen_range(0..3);
        if self.rng.gen_bool(0.03) {
            // A mistyped password (twice, now and then).
            for _ in 0..if self.rng.gen_bool(0.2) { 2 } else { 1 } {
                let user = &self.tenants[t].users[u];
                let actor = Actor {
                    user: Some(user.email.clone()),
                    ip: Some(ip.to_owned()),
                    user_agent: Some(app.user_agent(variant).into()),
                    protocol: "oidc".into(),
                    ..Actor::default()
                };
                let mut event = AuditEvent::new(at, "sign_in_failed", Outcome::Failure, actor);
                event.tenant = Some(self.tenants[t].spec.name.to_owned());
                event.reason = Some("bad_credentials".into());
                event.detail =
                    serde_json::json!({"email": user.email, "client_id": app.client_id()});
                out.push(event);
                at += self.rng.gen_range(5_000..40_000);
            }
        }
        self.jti += 1;
        let sid = format!("sid-{}-{}", self.tenants[t].spec.name, self.jti);
        let user = &mut self.tenants[t].users[u];
        user.devices.push(Device {
            app,
            user_agent: app.user_agent(variant),
            sid: sid.clone(),
            token: None,
            synced_ms: at,
            smtp: app == App::Desktop,
            cell_ip: None,
        });
        let d = user.devices.len() - 1;
        let mut actor = self.actor(t, u, d, ip, "oidc");
        actor.token = None;
        let mut event = self.event(t, at, "sign_in", actor);
        let user = &self.tenants[t].users[u];
        event.reason = Some("success".into());
        event.detail = serde_json::json!({
            "user": user.id, "sid": sid, "client_id": app.client_id(), "amr": ["pwd", "otp"],
        });
        out.push(event);
        (d, at + self.rng.gen_range(500..3_000))
    }

    /// Makes sure the device has a live token at `at`: a client that slept
    /// presents its expired token first, now and then, and is refused.
    fn token(
        &mut self,
        t: usize,
        u: usize,
        d: usize,
        at: i64,
        ip: &str,
        out: &mut Vec<AuditEvent>,
    ) -> i64 {
        let current = self.tenants[t].users[u].devices[d].token.clone();
        let mut at = at;
        let reason = match &current {
            Some((_, expires)) if *expires > at + MINUTE_MS => return at,
            Some((jti, expires)) => {
                if *expires <= at && self.rng.gen_bool(0.3) {
                    let actor = self.actor(t, u, d, ip, "http");
                    let mut event = self.event(t, at, "token_rejected", actor);
                    event.outcome = Outcome::Failure;
                    event.reason = Some("expired".into());
                    let tenant = &self.tenants[t];
                    let device = &tenant.users[u].devices[d];
                    event.detail = serde_json::json!({
                        "kid": format!("{}-k{}", tenant.spec.name, tenant.kid), "jti": jti,
                        "sub": tenant.users[u].id, "client_id": device.app.client_id(),
                        "sid": device.sid, "forgery": false,
                    });
                    out.push(event);
                    at += self.rng.gen_range(100..800);
                }
                "refresh"
            }
            None => "grant",
        };
        self.jti += 1;
        let jti = format!("jti-{}", self.jti);
        self.tenants[t].users[u].devices[d].token = Some((jti.clone(), at + TOKEN_MS));
        let actor = self.actor(t, u, d, ip, "oidc");
        let mut event = self.event(t, at, "token_issued", actor);
        event.reason = Some(reason.into());
        let device = &self.tenants[t].users[u].devices[d];
        event.detail = serde_json::json!({
            "jti": jti, "user": self.tenants[t].users[u].id, "sid": device.sid,
            "client_id": device.app.client_id(), "scope": "openid mail",
        });
        out.push(event);
        at + self.rng.gen_range(100..600)
    }

    /// A mail read of `count` items of `owner`'s mailbox.
    #[allow(clippy::too_many_arguments)]
    fn read(
        &mut self,
        t: usize,
        u: usize,
        d: usize,
        at: i64,
        ip: &str,
        operation: &str,
        access: AccessKind,
        count: u64,
        owner: Owner,
        out: &mut Vec<AuditEvent>,
    ) {
        if count == 0 {
            return;
        }
        let actor = self.actor(t, u, d, ip, "jmap");
        let mut event = self.event(t, at, operation, actor);
        event.access = access;
        event.count = count;
        let tenant = &self.tenants[t];
        let (owner, account) = match owner {
            Owner::Shared(s) => (
                tenant.shared[s].address.clone(),
                tenant.shared[s].account.clone(),
            ),
            Owner::User(o) => (
                tenant.users[o].email.clone(),
                tenant.users[o].account.clone(),
            ),
            Owner::Own => (
                tenant.users[u].email.clone(),
                tenant.users[u].account.clone(),
            ),
        };
        let user = &mut self.tenants[t].users[u];
        let first = user.message_seq;
        user.message_seq += count;
        // At most 64 ids (the count is exact): detectors read `count`, and
        // short lists keep a fortnight of 1,000 users in memory.
        let listed = count.min(64);
        event.target = Target {
            account: Some(account),
            owner: Some(owner),
            mailbox: Some("inbox".into()),
            mailboxes: vec!["inbox".into()],
            items: (first..first + listed).map(|i| format!("M{i:x}")).collect(),
            message_ids: Vec::new(),
        };
        out.push(event);
    }

    /// Where the device is at `at` (the plan's place), as an address.
    fn device_ip(&mut self, t: usize, u: usize, app: App, place: Place) -> String {
        let d = self.device(t, u, app);
        self.address(t, u, place, d)
    }

    /// Ensures a signed-in device for `app`; returns it and the time.
    fn ensure_device(
        &mut self,
        t: usize,
        u: usize,
        app: App,
        at: i64,
        ip: &str,
        out: &mut Vec<AuditEvent>,
    ) -> (usize, i64) {
        if let Some(d) = self.device(t, u, app) {
            return (d, at);
        }
        let (d, at) = self.sign_in(t, u, app, at, ip, out);
        if app != App::Webmail {
            // A fresh offline client fetches the mailbox: the desktop client
            // all of it, the phone app the last few weeks' previews.
            let total = match app {
                App::Desktop => self.tenants[t].users[u].mailbox,
                _ => self.rng.gen_range(200..1_200),
            };
            let at = self.token(t, u, d, at, ip, out);
            let mut fetched = 0;
            let mut when = at;
            while fetched < total {
                let batch = (total - fetched).min(256);
                self.read(
                    t,
                    u,
                    d,
                    when,
                    ip,
                    "Email/get",
                    AccessKind::Content,
                    batch,
                    Owner::Own,
                    out,
                );
                fetched += batch;
                when += self.rng.gen_range(2_000..15_000);
                if when
                    > self.tenants[t].users[u].devices[d]
                        .token
                        .as_ref()
                        .map_or(0, |(_, e)| *e)
                {
                    when = self.token(t, u, d, when, ip, out);
                }
            }
            self.tenants[t].users[u].devices[d].synced_ms = when;
            return (d, when);
        }
        (d, at)
    }

    /// New mail since the device last synced, fetched (previews or full).
    fn fetch_new(
        &mut self,
        t: usize,
        u: usize,
        d: usize,
        at: i64,
        ip: &str,
        out: &mut Vec<AuditEvent>,
    ) {
        let user = &self.tenants[t].users[u];
        let since = user.devices[d].synced_ms;
        let new = user
            .mail_today
            .iter()
            .filter(|&&m| m > since && m <= at)
            .count() as u64;
        self.tenants[t].users[u].devices[d].synced_ms = at;
        self.read(
            t,
            u,
            d,
            at,
            ip,
            "Email/get",
            AccessKind::Content,
            new,
            Owner::Own,
            out,
        );
    }

    /// A quick look: open the app, sync, read a few, maybe reply.
    #[allow(clippy::too_many_arguments)]
    fn check(
        &mut self,
        t: usize,
        u: usize,
        app: App,
        at: i64,
        place: Place,
        reads: u32,
        out: &mut Vec<AuditEvent>,
    ) {
        let ip = self.device_ip(t, u, app, place);
        let (d, at) = self.ensure_device(t, u, app, at, &ip, out);
        let mut at = self.token(t, u, d, at, &ip, out);
        let listed = self.rng.gen_range(20..60);
        self.read(
            t,
            u,
            d,
            at,
            &ip,
            "Email/query",
            AccessKind::Metadata,
            listed,
            Owner::Own,
            out,
        );
        at += self.rng.gen_range(200..1_500);
        self.fetch_new(t, u, d, at, &ip, out);
        for _ in 0..self.rng.gen_range(0..=reads + 2) {
            at += self.rng.gen_range(5_000..60_000);
            self.read(
                t,
                u,
                d,
                at,
                &ip,
                "Email/get",
                AccessKind::Content,
                1,
                Owner::Own,
                out,
            );
            if self.rng.gen_bool(0.1) {
                self.read(
                    t,
                    u,
                    d,
                    at + 900,
                    &ip,
                    "download",
                    AccessKind::Content,
                    1,
                    Owner::Own,
                    out,
                );
            }
        }
        if self.rng.gen_bool(0.15) {
            let when = at + self.rng.gen_range(20_000..120_000);
            self.send(t, u, d, when, &ip, out);
        }
    }

    fn send(&mut self, t: usize, u: usize, d: usize, at: i64, ip: &str, out: &mut Vec<AuditEvent>) {
        if self.tenants[t].users[u].devices[d].smtp {
            let actor = self.actor(t, u, d, ip, "smtp");
            out.push(self.event(t, at, "smtp.auth", actor.clone()));
            let mut event = self.event(t, at + 400, "smtp.submission", actor);
            event.access = AccessKind::Content;
            // Local recipients stored; zero when all were outside.
            event.count = self.rng.gen_range(0..3);
            out.push(event);
        } else {
            self.read(
                t,
                u,
                d,
                at,
                ip,
                "EmailSubmission/set",
                AccessKind::Content,
                1,
                Owner::Own,
                out,
            );
        }
    }

    /// A client open for a stretch of work: it syncs every few minutes,
    /// refreshes its token as it expires, and the user reads, searches and
    /// writes.
    #[allow(clippy::too_many_arguments)]
    fn continuous(
        &mut self,
        t: usize,
        u: usize,
        app: App,
        from: i64,
        to: i64,
        place: Place,
        out: &mut Vec<AuditEvent>,
    ) {
        let ip = self.device_ip(t, u, app, place);
        let (d, mut at) = self.ensure_device(t, u, app, from, &ip, out);
        // About one person in fifty digs through their archive on a working day.
        let share = (to - from) as f64 / (8 * HOUR_MS) as f64;
        let mut search_at = (to > from && self.rng.gen_bool((0.02 * share).min(1.0)))
            .then(|| self.rng.gen_range(from..to));
        if app == App::Webmail {
            // Opening webmail lists the inbox with previews.
            at = self.token(t, u, d, at, &ip, out);
            self.read(
                t,
                u,
                d,
                at,
                &ip,
                "Email/query",
                AccessKind::Metadata,
                50,
                Owner::Own,
                out,
            );
            self.read(
                t,
                u,
                d,
                at + 300,
                &ip,
                "Email/get",
                AccessKind::Content,
                50,
                Owner::Own,
                out,
            );
        }
        while at < to {
            at = self.token(t, u, d, at, &ip, out);
            self.fetch_new(t, u, d, at, &ip, out);
            // The user's own activity in this stretch of a few minutes.
            if self.rng.gen_bool(0.5) {
                let opens = self.rng.gen_range(1..4);
                for _ in 0..opens {
                    at += self.rng.gen_range(3_000..40_000);
                    self.read(
                        t,
                        u,
                        d,
                        at,
                        &ip,
                        "Email/get",
                        AccessKind::Content,
                        1,
                        Owner::Own,
                        out,
                    );
                    if self.rng.gen_bool(0.3) {
                        let threads = self.rng.gen_range(1..8);
                        self.read(
                            t,
                            u,
                            d,
                            at + 200,
                            &ip,
                            "Thread/get",
                            AccessKind::Metadata,
                            threads,
                            Owner::Own,
                            out,
                        );
                    }
                    if self.rng.gen_bool(0.08) {
                        self.read(
                            t,
                            u,
                            d,
                            at + 700,
                            &ip,
                            "download",
                            AccessKind::Content,
                            1,
                            Owner::Own,
                            out,
                        );
                    }
                }
            }
            if self.rng.gen_bool(0.12) {
                let when = at + self.rng.gen_range(30_000..200_000);
                self.send(t, u, d, when, &ip, out);
            }
            if search_at.is_some_and(|s| at >= s) {
                search_at = None;
                // Digging through the archive: searches and a few hundred reads.
                let mut when = at;
                for _ in 0..self.rng.gen_range(3..10) {
                    when += self.rng.gen_range(20_000..90_000);
                    let hits = self.rng.gen_range(20..80);
                    self.read(
                        t,
                        u,
                        d,
                        when,
                        &ip,
                        "Email/query",
                        AccessKind::Metadata,
                        hits,
                        Owner::Own,
                        out,
                    );
                    self.read(
                        t,
                        u,
                        d,
                        when + 500,
                        &ip,
                        "SearchSnippet/get",
                        AccessKind::Content,
                        hits.min(50),
                        Owner::Own,
                        out,
                    );
                    self.read(
                        t,
                        u,
                        d,
                        when + 900,
                        &ip,
                        "Email/get",
                        AccessKind::Content,
                        hits,
                        Owner::Own,
                        out,
                    );
                }
                at = when;
            }
            at += self.rng.gen_range(3 * MINUTE_MS..8 * MINUTE_MS);
        }
    }

    /// Shared mailboxes and an executive's mail, worked from the main app.
    fn shared_work(
        &mut self,
        t: usize,
        u: usize,
        midnight: i64,
        plan: &[(i64, i64, Place)],
        out: &mut Vec<AuditEvent>,
    ) {
        let user = &self.tenants[t].users[u];
        let mut owners: Vec<Owner> = user.shared.iter().map(|&s| Owner::Shared(s)).collect();
        owners.extend(user.assistant_of.map(Owner::User));
        if owners.is_empty() {
            return;
        }
        let app = if user.apps.contains(&App::Desktop) {
            App::Desktop
        } else {
            App::Webmail
        };
        for owner in owners {
            for _ in 0..self.rng.gen_range(2..8) {
                let at = midnight + self.rng.gen_range(9 * HOUR_MS..17 * HOUR_MS);
                let place = plan
                    .iter()
                    .find(|(from, to, _)| (*from..*to).contains(&at))
                    .map_or(Place::Home, |p| p.2);
                if place == Place::Cellular {
                    continue;
                }
                let ip = self.device_ip(t, u, app, place);
                let (d, at) = self.ensure_device(t, u, app, at, &ip, out);
                let at = self.token(t, u, d, at, &ip, out);
                let n = self.rng.gen_range(5..40);
                self.read(
                    t,
                    u,
                    d,
                    at,
                    &ip,
                    "Email/query",
                    AccessKind::Metadata,
                    n,
                    owner,
                    out,
                );
                let opened = self.rng.gen_range(1..n);
                self.read(
                    t,
                    u,
                    d,
                    at + 400,
                    &ip,
                    "Email/get",
                    AccessKind::Content,
                    opened,
                    owner,
                    out,
                );
            }
        }
    }

    /// The nightly archiving job: one service account reading every
    /// mailbox's new mail from the server room.
    fn archive(&mut self, t: usize, midnight: i64, out: &mut Vec<AuditEvent>) {
        let tenant = &self.tenants[t];
        let ip = "198.18.200.5";
        let mut at = midnight + 2 * HOUR_MS;
        let mut events = Vec::new();
        for (o, owner) in tenant.users.iter().enumerate() {
            let n = owner.mail_today.len() as u64;
            if n == 0 {
                continue;
            }
            at += 1_500;
            let actor = Actor {
                user: Some(format!("archiver@{}", tenant.domain)),
                user_id: Some(format!("u-{}-archiver", tenant.spec.name)),
                client_id: Some("archiver".into()),
                session: Some(format!("sid-{}-archiver", tenant.spec.name)),
                token: Some(format!("jti-{}-archiver-{o}", tenant.spec.name)),
                ip: Some(ip.into()),
                user_agent: Some("stormproof-archiver/1.2".into()),
                protocol: "jmap".into(),
            };
            let mut event = AuditEvent::new(at, "Email/get", Outcome::Success, actor);
            event.tenant = Some(tenant.spec.name.to_owned());
            event.access = AccessKind::Content;
            event.count = n;
            event.target = Target {
                account: Some(owner.account.clone()),
                owner: Some(owner.email.clone()),
                ..Target::default()
            };
            events.push(event);
        }
        out.extend(events);
    }
}
