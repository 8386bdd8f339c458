//! The built-in detectors. Each is a component: a config struct (serde,
//! `deny_unknown_fields`) with the common switches `enabled`, `severity`
//! and `auto_response`, and a `build` that turns it into a [`Detector`].
//! [`build_all`] is the one place they are registered.

mod bulk_access;
mod first_seen_app;
mod non_owner_access;
mod persistence;
mod token_forgery;
mod token_replay;

use stormproof_store::DetectorStateRecord;
use stormproof_types::TenantName;

pub use bulk_access::BulkAccessConfig;
pub use first_seen_app::FirstSeenAppConfig;
pub use non_owner_access::NonOwnerAccessConfig;
pub use persistence::PersistenceConfig;
pub use token_forgery::TokenForgeryConfig;
pub use token_replay::TokenReplayConfig;

use crate::alert::{Alert, Severity};
use crate::config::{DetectConfig, millis};
use crate::net::CidrSet;
use crate::view::View;
use crate::{Result, sigma};

/// Every detector's name, in the order they see each event.
pub const DETECTORS: &[&str] = &[
    token_forgery::NAME,
    first_seen_app::NAME,
    token_replay::NAME,
    bulk_access::NAME,
    non_owner_access::NAME,
    persistence::NAME,
    sigma::NAME,
];

/// The switches every detector's config has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Switches {
    /// Whether it runs.
    pub enabled: bool,
    /// Replaces the severity of every alert it raises.
    pub severity: Option<Severity>,
    /// Whether the server may carry out its response hints unasked.
    pub auto_response: bool,
}

impl Switches {
    /// Applies the severity override and the response switch to an alert
    /// the detector raised.
    pub(crate) fn apply(&self, alert: &mut Alert) {
        if let Some(severity) = self.severity {
            alert.severity = severity;
        }
        alert.auto_response = self.auto_response && alert.response.is_some();
    }
}

/// What a detector's `build` gets besides its own config.
pub(crate) struct BuildContext {
    /// See [`DetectConfig::learning_window`], in milliseconds.
    pub learning_window_ms: i64,
    /// See [`DetectConfig::anonymizing_networks`].
    pub anonymizing: CidrSet,
}

impl BuildContext {
    pub(crate) fn new(config: &DetectConfig) -> Result<Self> {
        Ok(Self {
            learning_window_ms: millis(config.learning_window),
            anonymizing: CidrSet::parse(&config.anonymizing_networks, "anonymizing_networks")?,
        })
    }
}

/// A detector's config: the component contract.
pub(crate) trait Component {
    /// The detector's name, as in alerts and the store.
    const NAME: &'static str;
    /// The common switches.
    fn switches(&self) -> Switches;
    /// Checks the settings and builds the detector.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Detector>>;
}

/// What a detector produces for one event: alerts, and state to keep.
#[derive(Default)]
pub(crate) struct Output {
    pub alerts: Vec<Alert>,
    pub state: Vec<DetectorStateRecord>,
}

impl Output {
    /// Queues a state write (`value: None` deletes) for the store.
    pub(crate) fn keep(
        &mut self,
        detector: &str,
        tenant: &str,
        key: String,
        value: Option<String>,
        time: &str,
    ) {
        self.state.push(DetectorStateRecord {
            // An event's tenant that is not a valid name cannot have been
            // written by Stormproof; it is kept with the tenantless state.
            tenant: TenantName::parse(tenant).ok(),
            detector: detector.to_owned(),
            key,
            value,
            updated: time.to_owned(),
        });
    }
}

/// A running detector. It sees every event once, in order, and must be
/// fast: no IO, no allocation on the common path.
pub(crate) trait Detector: Send {
    /// Loads what it learned before (its records from the store).
    fn restore(&mut self, records: Vec<DetectorStateRecord>) -> Result<()>;
    /// Looks at one event.
    fn observe(&mut self, view: &View<'_>, out: &mut Output);
    /// Called when the engine flushes; `full` on an explicit flush, when
    /// costly state (Sigma correlation windows) should be saved too. When
    /// not `full` it may come between events of a batch the detector has
    /// already seen the rest of ([`crate::Engine::process_batch`]): it must
    /// then write nothing that depends on events after the current one.
    fn checkpoint(&mut self, _now_ms: i64, _full: bool, _out: &mut Output) {}
    /// Re-reads rule files, if it has any; `Ok(None)` when it has none.
    fn reload(&mut self, _now_ms: i64, _out: &mut Output) -> Result<Option<usize>> {
        Ok(None)
    }
    /// The Sigma detector, whose observing splits into two stages that
    /// [`crate::Engine::process_batch`] spreads over threads.
    fn as_sigma(&mut self) -> Option<&mut crate::sigma::Sigma> {
        None
    }
}

/// A built detector with its name and switches.
pub(crate) struct Slot {
    pub name: &'static str,
    pub switches: Switches,
    pub detector: Box<dyn Detector>,
}

fn add<C: Component>(slots: &mut Vec<Slot>, config: &C, ctx: &BuildContext) -> Result<()> {
    let switches = config.switches();
    if switches.enabled {
        slots.push(Slot {
            name: C::NAME,
            switches,
            detector: config.build(ctx)?,
        });
    }
    Ok(())
}

/// Builds every enabled detector. The one place detectors are registered:
/// a new one is added here and to [`DETECTORS`].
pub(crate) fn build_all(config: &DetectConfig) -> Result<Vec<Slot>> {
    let ctx = BuildContext::new(config)?;
    let mut slots = Vec::new();
    add(&mut slots, &config.token_forgery, &ctx)?;
    add(&mut slots, &config.first_seen_app, &ctx)?;
    add(&mut slots, &config.token_replay, &ctx)?;
    add(&mut slots, &config.bulk_access, &ctx)?;
    add(&mut slots, &config.non_owner_access, &ctx)?;
    add(&mut slots, &config.persistence, &ctx)?;
    add(&mut slots, &config.sigma, &ctx)?;
    Ok(slots)
}

/// Writes the three common switches into a detector's config struct, with
/// their documentation, so every component spells them the same way.
macro_rules! switches {
    ($(#[$meta:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        pub struct $name {
            /// Whether the detector runs. Default `true`.
            pub enabled: bool,
            /// Replaces the severity of every alert it raises.
            pub severity: Option<$crate::alert::Severity>,
            /// Whether the server may carry out its response hints without
            /// asking. Default `false`.
            pub auto_response: bool,
            $($body)*
        }

        impl $name {
            fn common(&self) -> $crate::detectors::Switches {
                $crate::detectors::Switches {
                    enabled: self.enabled,
                    severity: self.severity,
                    auto_response: self.auto_response,
                }
            }
        }
    };
}
pub(crate) use switches;

/// Ensures a numeric setting is positive.
pub(crate) fn positive<T: PartialOrd + Default + std::fmt::Display>(
    value: T,
    what: &str,
) -> Result<T> {
    if value > T::default() {
        Ok(value)
    } else {
        Err(crate::ErrorKind::Config(format!("{what} must be positive, not {value}")).into())
    }
}
