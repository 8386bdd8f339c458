//! The detection store on SQLite: alerts and detector state in the same
//! database file as everything else, each write batch one transaction.

use rusqlite::{OptionalExtension, Row, params};
use stormproof_types::TenantName;

use crate::sqlite::{backend, corrupt};
use crate::{AlertInsert, AlertRecord, DetectionStore, DetectorStateRecord, Result, SqliteStore};

/// The stored form of "no tenant": no tenant name can be empty.
const NO_TENANT: &str = "";

fn tenant_key(tenant: Option<&TenantName>) -> &str {
    tenant.map_or(NO_TENANT, TenantName::as_str)
}

fn tenant_from(text: String) -> rusqlite::Result<Option<TenantName>> {
    if text.is_empty() {
        return Ok(None);
    }
    TenantName::parse(&text)
        .map(Some)
        .map_err(|_| corrupt("tenant"))
}

fn count_col(row: &Row, i: usize) -> rusqlite::Result<u64> {
    u64::try_from(row.get::<_, i64>(i)?).map_err(|_| corrupt("count"))
}

const ALERT_COLS: &str =
    "id, tenant, time, severity, detector, summary, dedup_key, json, count, last_seen";
fn alert_row(row: &Row) -> rusqlite::Result<AlertRecord> {
    Ok(AlertRecord {
        id: row.get(0)?,
        tenant: tenant_from(row.get(1)?)?,
        time: row.get(2)?,
        severity: row.get(3)?,
        detector: row.get(4)?,
        summary: row.get(5)?,
        dedup_key: row.get(6)?,
        json: row.get(7)?,
        count: count_col(row, 8)?,
        last_seen: row.get(9)?,
    })
}

fn state_row(row: &Row) -> rusqlite::Result<DetectorStateRecord> {
    Ok(DetectorStateRecord {
        tenant: tenant_from(row.get(0)?)?,
        detector: row.get(1)?,
        key: row.get(2)?,
        value: Some(row.get(3)?),
        updated: row.get(4)?,
    })
}

fn sql_count(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// One alert inside a write transaction.
fn record_alert_in(
    tx: &rusqlite::Transaction,
    alert: &AlertRecord,
    dedup_since: &str,
) -> Result<AlertInsert> {
    let tenant = tenant_key(alert.tenant.as_ref());
    // Most calls count repeats of a row inside the window: one statement.
    let counted: Option<(String, i64)> = tx
        .prepare_cached(
            "UPDATE alerts SET count = count + ?3, last_seen = max(last_seen, ?4)
             WHERE tenant = ?1 AND dedup_key = ?2 AND last_seen >= ?5 RETURNING id, count",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    tenant,
                    alert.dedup_key,
                    sql_count(alert.count.max(1)),
                    alert.last_seen,
                    dedup_since
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .map_err(backend)?;
    if let Some((id, count)) = counted {
        return Ok(AlertInsert::Duplicate {
            id,
            count: u64::try_from(count).unwrap_or(0),
        });
    }
    let current: Option<String> = tx
        .prepare_cached("SELECT id FROM alerts WHERE tenant = ?1 AND dedup_key = ?2")
        .and_then(|mut s| {
            s.query_row(params![tenant, alert.dedup_key], |r| r.get(0))
                .optional()
        })
        .map_err(backend)?;
    if let Some(id) = current {
        // Outside the window: retire the old row out of the unique key's
        // way, so the new one can take it and the old one stays readable.
        tx.prepare_cached("UPDATE alerts SET dedup_key = dedup_key || '#' || id WHERE id = ?1")
            .and_then(|mut s| s.execute([&id]))
            .map_err(backend)?;
    }
    tx.prepare_cached(
        "INSERT INTO alerts (id, tenant, time, severity, detector, summary, dedup_key, json, count, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            alert.id,
            tenant,
            alert.time,
            alert.severity,
            alert.detector,
            alert.summary,
            alert.dedup_key,
            alert.json,
            sql_count(alert.count.max(1)),
            alert.last_seen,
        ])
    })
    .map_err(backend)?;
    Ok(AlertInsert::New)
}

impl DetectionStore for SqliteStore {
    fn record_alert(&self, alert: &AlertRecord, dedup_since: &str) -> Result<AlertInsert> {
        self.write(|tx| record_alert_in(tx, alert, dedup_since))
    }

    fn record_alerts(&self, alerts: &[AlertRecord], dedup_since: &str) -> Result<Vec<AlertInsert>> {
        if alerts.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|tx| {
            alerts
                .iter()
                .map(|alert| record_alert_in(tx, alert, dedup_since))
                .collect()
        })
    }

    fn alerts(
        &self,
        tenant: Option<&TenantName>,
        after_time: &str,
        limit: usize,
    ) -> Result<Vec<AlertRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|conn| match tenant {
            Some(tenant) => conn
                .prepare_cached(&format!(
                    "SELECT {ALERT_COLS} FROM alerts WHERE tenant = ?1 AND time > ?2
                     ORDER BY time, id LIMIT ?3"
                ))?
                .query_map(params![tenant.as_str(), after_time, limit], alert_row)?
                .collect(),
            None => conn
                .prepare_cached(&format!(
                    "SELECT {ALERT_COLS} FROM alerts WHERE time > ?1 ORDER BY time, id LIMIT ?2"
                ))?
                .query_map(params![after_time, limit], alert_row)?
                .collect(),
        })
    }

    fn alert_by_key(
        &self,
        tenant: Option<&TenantName>,
        dedup_key: &str,
    ) -> Result<Option<AlertRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {ALERT_COLS} FROM alerts WHERE tenant = ?1 AND dedup_key = ?2"
            ))?
            .query_row(params![tenant_key(tenant), dedup_key], alert_row)
            .optional()
        })
    }

    fn alert(&self, tenant: Option<&TenantName>, id: &str) -> Result<Option<AlertRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {ALERT_COLS} FROM alerts WHERE tenant = ?1 AND id = ?2"
            ))?
            .query_row(params![tenant_key(tenant), id], alert_row)
            .optional()
        })
    }

    fn detector_state_get(
        &self,
        tenant: Option<&TenantName>,
        detector: &str,
        key: &str,
    ) -> Result<Option<DetectorStateRecord>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT tenant, detector, key, value, updated FROM detector_state
                 WHERE tenant = ?1 AND detector = ?2 AND key = ?3",
            )?
            .query_row(params![tenant_key(tenant), detector, key], state_row)
            .optional()
        })
    }

    fn detector_state_scan(&self, detector: &str) -> Result<Vec<DetectorStateRecord>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT tenant, detector, key, value, updated FROM detector_state
                 WHERE detector = ?1 ORDER BY tenant, key",
            )?
            .query_map([detector], state_row)?
            .collect()
        })
    }

    fn detector_state_put(&self, records: &[DetectorStateRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO detector_state (tenant, detector, key, value, updated)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (tenant, detector, key)
                     DO UPDATE SET value = excluded.value, updated = excluded.updated",
                )
                .map_err(backend)?;
            let mut delete = tx
                .prepare_cached(
                    "DELETE FROM detector_state WHERE tenant = ?1 AND detector = ?2 AND key = ?3",
                )
                .map_err(backend)?;
            for record in records {
                let tenant = tenant_key(record.tenant.as_ref());
                match &record.value {
                    Some(value) => upsert.execute(params![
                        tenant,
                        record.detector,
                        record.key,
                        value,
                        record.updated
                    ]),
                    None => delete.execute(params![tenant, record.detector, record.key]),
                }
                .map_err(backend)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        (dir, store)
    }

    fn tenant(name: &str) -> TenantName {
        TenantName::parse(name).unwrap()
    }

    fn alert(id: &str, tenant: Option<TenantName>, key: &str, time: &str) -> AlertRecord {
        AlertRecord {
            id: id.into(),
            tenant,
            time: time.into(),
            severity: "high".into(),
            detector: "test".into(),
            summary: "something happened".into(),
            dedup_key: key.into(),
            json: "{}".into(),
            count: 1,
            last_seen: time.into(),
        }
    }

    const T0: &str = "2024-01-01T00:00:00.000Z";
    const T1: &str = "2024-01-01T00:10:00.000Z";
    const T2: &str = "2024-01-01T03:00:00.000Z";

    #[test]
    fn alerts_deduplicate_within_the_window_per_tenant() {
        let (_dir, store) = store();
        let acme = tenant("acme");
        let beta = tenant("beta");
        // (alert, window start, expected)
        let cases: Vec<(AlertRecord, &str, AlertInsert)> = vec![
            (
                alert("a1", Some(acme.clone()), "k", T0),
                T0,
                AlertInsert::New,
            ),
            (
                alert("a2", Some(acme.clone()), "k", T1),
                T0,
                AlertInsert::Duplicate {
                    id: "a1".into(),
                    count: 2,
                },
            ),
            // Same key, other tenant: its own alert.
            (
                alert("b1", Some(beta.clone()), "k", T1),
                T0,
                AlertInsert::New,
            ),
            // Same key, no tenant: its own alert too.
            (alert("n1", None, "k", T1), T0, AlertInsert::New),
            // The window has moved past a1's last sighting: a new alert.
            (
                alert("a3", Some(acme.clone()), "k", T2),
                T2,
                AlertInsert::New,
            ),
        ];
        for (record, since, expected) in cases {
            assert_eq!(
                store.record_alert(&record, since).unwrap(),
                expected,
                "{}",
                record.id
            );
        }
        let acme_alerts = store.alerts(Some(&acme), "", 10).unwrap();
        let ids: Vec<&str> = acme_alerts.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["a1", "a3"]);
        // The retired alert keeps its count and history.
        assert_eq!(acme_alerts[0].count, 2);
        assert_eq!(acme_alerts[0].last_seen, T1);
        assert_eq!(acme_alerts[0].dedup_key, "k#a1");
        assert_eq!(acme_alerts[1].dedup_key, "k");
        assert_eq!(store.alerts(None, "", 10).unwrap().len(), 4);
        assert_eq!(store.alerts(None, T1, 10).unwrap().len(), 1);
        assert_eq!(store.alerts(Some(&beta), "", 10).unwrap().len(), 1);
        assert!(store.alert(Some(&beta), "a1").unwrap().is_none());
        let current = store.alert_by_key(Some(&acme), "k").unwrap().unwrap();
        assert_eq!(current.id, "a3");
        assert!(store.alert_by_key(Some(&acme), "other").unwrap().is_none());
        assert_eq!(
            store.alert(None, "n1").unwrap().map(|a| a.tenant),
            Some(None)
        );
    }

    #[test]
    fn batched_alerts_add_their_counts() {
        let (_dir, store) = store();
        let mut first = alert("a1", None, "k", T0);
        first.count = 3;
        let mut second = alert("a2", None, "k", T1);
        second.count = 4;
        let results = store.record_alerts(&[first, second], T0).unwrap();
        assert_eq!(
            results,
            [
                AlertInsert::New,
                AlertInsert::Duplicate {
                    id: "a1".into(),
                    count: 7
                }
            ]
        );
    }

    #[test]
    fn detector_state_is_kept_per_tenant_and_detector() {
        let (dir, store) = store();
        let acme = tenant("acme");
        let record =
            |tenant: Option<TenantName>, detector: &str, key: &str, value: Option<&str>| {
                DetectorStateRecord {
                    tenant,
                    detector: detector.into(),
                    key: key.into(),
                    value: value.map(str::to_owned),
                    updated: T0.into(),
                }
            };
        store
            .detector_state_put(&[
                record(
                    Some(acme.clone()),
                    "first_seen_app",
                    "c:mail-app",
                    Some("1"),
                ),
                record(None, "first_seen_app", "c:mail-app", Some("2")),
                record(Some(acme.clone()), "token_replay", "c:mail-app", Some("3")),
                record(Some(acme.clone()), "first_seen_app", "gone", Some("4")),
                record(Some(acme.clone()), "first_seen_app", "gone", None),
                record(
                    Some(acme.clone()),
                    "first_seen_app",
                    "c:mail-app",
                    Some("5"),
                ),
            ])
            .unwrap();
        drop(store);
        // Reopened: state survives.
        let store = SqliteStore::open(dir.path()).unwrap();
        let get = |tenant: Option<&TenantName>, detector: &str, key: &str| {
            store
                .detector_state_get(tenant, detector, key)
                .unwrap()
                .and_then(|r| r.value)
        };
        assert_eq!(
            get(Some(&acme), "first_seen_app", "c:mail-app").as_deref(),
            Some("5")
        );
        assert_eq!(
            get(None, "first_seen_app", "c:mail-app").as_deref(),
            Some("2")
        );
        assert_eq!(
            get(Some(&acme), "token_replay", "c:mail-app").as_deref(),
            Some("3")
        );
        assert_eq!(get(Some(&acme), "first_seen_app", "gone"), None);
        let scan = store.detector_state_scan("first_seen_app").unwrap();
        assert_eq!(scan.len(), 2);
        assert_eq!(scan[0].tenant, None);
        assert_eq!(scan[1].tenant, Some(acme));
    }
}
