//! Detection records and the detection half of the storage interface:
//! alerts, deduplicated by key, and the state detectors learn (first-seen
//! applications, sessions' home networks, volume baselines), so a restart
//! does not reset what was learned.
//!
//! Times here are the audit log's fixed-width RFC 3339 strings
//! (`YYYY-MM-DDTHH:MM:SS.mmmZ`), whose string order is time order: the
//! store compares them and never parses them.
//!
//! An event may carry no tenant (a token naming no known issuer). Such
//! records have `tenant: None`; backends keep them under a value no
//! [`TenantName`] can take, so they stay inside the tenant-keyed tables and
//! never mix with a real tenant's rows.

use stormproof_types::TenantName;

use crate::Result;

/// An alert as stored. The store keeps one row per tenant and `dedup_key`
/// at a time: a repeat within the caller's window bumps `count` and
/// `last_seen` instead of adding a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    /// Unique id.
    pub id: String,
    /// Tenant, when the alert concerns one.
    pub tenant: Option<TenantName>,
    /// When it first fired (audit time format).
    pub time: String,
    /// `critical`, `high`, `medium`, `low` or `info`.
    pub severity: String,
    /// The detector that raised it.
    pub detector: String,
    /// One human sentence.
    pub summary: String,
    /// Alerts with the same key (and tenant) inside the window are one alert.
    pub dedup_key: String,
    /// The whole alert as its producer serialized it.
    pub json: String,
    /// How many times it fired. On insert: how many firings this record
    /// stands for (usually 1), added to an existing row's count.
    pub count: u64,
    /// When it last fired (audit time format).
    pub last_seen: String,
}

/// What [`DetectionStore::record_alert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertInsert {
    /// No alert with this key was seen since the window start: a new row.
    New,
    /// The key fired inside the window: the existing row absorbed it.
    Duplicate {
        /// The existing alert's id.
        id: String,
        /// Its count after this firing.
        count: u64,
    },
}

/// One value a detector keeps, under (tenant, detector, key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectorStateRecord {
    /// Tenant, or `None` for state not tied to one (e.g. per source address).
    pub tenant: Option<TenantName>,
    /// The detector that owns it.
    pub detector: String,
    /// The detector's own key.
    pub key: String,
    /// The value, in the detector's own encoding (usually JSON). `None`
    /// in a write deletes the entry.
    pub value: Option<String>,
    /// When it was last written (audit time format).
    pub updated: String,
}

/// The detection half of the storage interface. Every call names the tenant
/// or returns records that carry theirs.
pub trait DetectionStore: Send + Sync + std::fmt::Debug {
    /// Records an alert, deduplicating on (tenant, `dedup_key`): when the
    /// key's current row was last seen at or after `dedup_since`, that row's
    /// count grows by `alert.count`, its `last_seen` moves forward, and
    /// [`AlertInsert::Duplicate`] is returned. Otherwise a new row is
    /// written; an older row with the key is kept, retired (its stored key
    /// gains a `#` and its id), so history is never lost. A `dedup_since`
    /// of `"~"`, later than any time, always writes a new row.
    fn record_alert(&self, alert: &AlertRecord, dedup_since: &str) -> Result<AlertInsert>;
    /// [`DetectionStore::record_alert`] for many alerts in one transaction,
    /// in order; one result per alert.
    fn record_alerts(&self, alerts: &[AlertRecord], dedup_since: &str) -> Result<Vec<AlertInsert>>;
    /// Alerts first raised after `after_time`, oldest first, at most
    /// `limit`; of one tenant, or of every tenant (and none) when `tenant`
    /// is `None`.
    fn alerts(
        &self,
        tenant: Option<&TenantName>,
        after_time: &str,
        limit: usize,
    ) -> Result<Vec<AlertRecord>>;
    /// The alert currently holding a deduplication key, if any: a read,
    /// so a caller can tell a repeat from a new alert without a write.
    fn alert_by_key(
        &self,
        tenant: Option<&TenantName>,
        dedup_key: &str,
    ) -> Result<Option<AlertRecord>>;
    /// One alert by id, within a tenant (`None`: an alert without tenant).
    fn alert(&self, tenant: Option<&TenantName>, id: &str) -> Result<Option<AlertRecord>>;

    /// One detector value.
    fn detector_state_get(
        &self,
        tenant: Option<&TenantName>,
        detector: &str,
        key: &str,
    ) -> Result<Option<DetectorStateRecord>>;
    /// Every value a detector keeps, across tenants, for loading at start.
    fn detector_state_scan(&self, detector: &str) -> Result<Vec<DetectorStateRecord>>;
    /// Writes (or, with `value: None`, deletes) many values in one
    /// transaction, in order.
    fn detector_state_put(&self, records: &[DetectorStateRecord]) -> Result<()>;
}
