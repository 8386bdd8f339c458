//! `[detect]`: the engine's settings, with one section per detector.
//! Unknown keys are errors, so a typo cannot quietly leave a detector at
//! its defaults.

use std::time::Duration;

use serde::Deserialize;

use crate::detectors::{
    BulkAccessConfig, FirstSeenAppConfig, NonOwnerAccessConfig, PersistenceConfig,
    TokenForgeryConfig, TokenReplayConfig,
};
use crate::sigma::SigmaConfig;

/// The detection engine's configuration.
///
/// ```toml
/// [detect]
/// learning_window = "7d"
/// anonymizing_networks = ["185.220.100.0/22"]
/// [detect.token_forgery]
/// auto_response = true
/// [detect.bulk_access]
/// floor = 1000
/// [detect.sigma]
/// rules_dir = "/etc/stormproof/rules"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// How long a detector that learns what is normal (first-seen
    /// applications) watches a new tenant before alerting; from the first
    /// event of the tenant it saw. `"0s"` alerts at once. Default `"7d"`.
    #[serde(with = "duration")]
    pub learning_window: Duration,
    /// Firings of one deduplication key within this long of its last
    /// firing are counted on the existing alert, not raised again.
    /// Default `"1h"`.
    #[serde(with = "duration")]
    pub dedup_window: Duration,
    /// Learned state is written to the store in batches, at least this often
    /// in event time, and whenever [`crate::Engine::flush`] is called.
    /// Default `"5s"`.
    #[serde(with = "duration")]
    pub flush_interval: Duration,
    /// Anonymizing networks (Tor exits, open proxies, commercial VPN
    /// egress): CIDR blocks or addresses. Any use of a session, token or
    /// account from one raises a `token_replay` alert. Default empty.
    pub anonymizing_networks: Vec<String>,
    /// `[detect.token_forgery]`.
    pub token_forgery: TokenForgeryConfig,
    /// `[detect.first_seen_app]`.
    pub first_seen_app: FirstSeenAppConfig,
    /// `[detect.token_replay]`.
    pub token_replay: TokenReplayConfig,
    /// `[detect.bulk_access]`.
    pub bulk_access: BulkAccessConfig,
    /// `[detect.non_owner_access]`.
    pub non_owner_access: NonOwnerAccessConfig,
    /// `[detect.persistence]`.
    pub persistence: PersistenceConfig,
    /// `[detect.sigma]`.
    pub sigma: SigmaConfig,
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            learning_window: Duration::from_secs(7 * 86_400),
            dedup_window: Duration::from_secs(3600),
            flush_interval: Duration::from_secs(5),
            anonymizing_networks: Vec::new(),
            token_forgery: TokenForgeryConfig::default(),
            first_seen_app: FirstSeenAppConfig::default(),
            token_replay: TokenReplayConfig::default(),
            bulk_access: BulkAccessConfig::default(),
            non_owner_access: NonOwnerAccessConfig::default(),
            persistence: PersistenceConfig::default(),
            sigma: SigmaConfig::default(),
        }
    }
}

/// A duration as humantime text (`"7d"`, `"90s"`, `"0s"`).
pub(crate) mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Milliseconds of a duration, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
