//! The ledger mirror: for each access token recorded through one store
//! handle, the joined ledger read ([`crate::Store::ledger_entry`]) as it
//! stood in the transaction that recorded the token, with the change
//! counters of that transaction. A verifier in the same process can then
//! skip the database read for tokens its own issuer minted, for as long as
//! the counters it has observed have not moved.
//!
//! Losing an entry is always safe: the caller falls back to the database.
//! So the mirror is bounded by evicting, and every revocation through the
//! handle simply empties it.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use stormproof_types::{TenantName, UnixTime};

use crate::{LedgerEntry, LedgerSnapshot};

/// How many snapshots one handle keeps. With the default 10-minute access
/// tokens this covers about 100 issuances per second; beyond that, the
/// oldest fall back to the database read.
pub(crate) const CAPACITY: usize = 65_536;

/// Independent locks, so verifications on different cores do not all
/// bounce one lock word between them (as in the verifier's token cache).
const SHARDS: usize = 16;

/// One token's snapshot, keyed by `jti` alone so a lookup needs no
/// allocation; the tenant is compared on the way out. Should two tenants'
/// tokens share a jti, the later replaces the earlier, which only costs the
/// earlier one a database read.
#[derive(Debug)]
struct Slot {
    tenant: TenantName,
    snapshot: Arc<LedgerSnapshot>,
}

type Shard = HashMap<String, Slot>;

pub(crate) struct LedgerMirror {
    shards: Box<[RwLock<Shard>]>,
    hasher: RandomState,
    per_shard: usize,
    /// Bumped before every clear. A recording reads it before its
    /// transaction and inserts only if it is unchanged, so a snapshot taken
    /// before a revocation cannot land in the mirror after the clear that
    /// revocation made.
    generation: AtomicU64,
}

impl fmt::Debug for LedgerMirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LedgerMirror")
            .field("per_shard", &self.per_shard)
            .finish_non_exhaustive()
    }
}

impl LedgerMirror {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            per_shard: capacity.div_ceil(SHARDS),
            generation: AtomicU64::new(0),
        }
    }

    fn shard(&self, jti: &str) -> &RwLock<Shard> {
        // The high bits: the shard's own table indexes by the low ones.
        let hash = self.hasher.hash_one(jti);
        &self.shards[(hash >> 32) as usize % SHARDS]
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Keeps `snapshot` of (`tenant`, `jti`) unless the mirror was cleared
    /// since `generation` was read, or the entry does not allow use. `now`
    /// is the recording's time, below which an `exp` is dead weight.
    pub(crate) fn insert(
        &self,
        tenant: &TenantName,
        jti: &str,
        snapshot: LedgerSnapshot,
        generation: u64,
        now: UnixTime,
    ) {
        // Only state that lets the token through is worth vouching for; a
        // refusal is left to the live read, so the mirror never has to
        // track how a refusing state might later change.
        if self.per_shard == 0 || !allows_use(&snapshot.entry) {
            return;
        }
        let mut shard = write(self.shard(jti));
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if shard.len() >= self.per_shard && !shard.contains_key(jti) {
            make_room(&mut shard, self.per_shard, now);
        }
        shard.insert(
            jti.to_owned(),
            Slot {
                tenant: tenant.clone(),
                snapshot: Arc::new(snapshot),
            },
        );
    }

    pub(crate) fn get(&self, tenant: &TenantName, jti: &str) -> Option<Arc<LedgerSnapshot>> {
        read(self.shard(jti))
            .get(jti)
            .filter(|slot| slot.tenant == *tenant)
            .map(|slot| slot.snapshot.clone())
    }

    pub(crate) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for shard in &self.shards {
            write(shard).clear();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| read(s).len()).sum()
    }
}

/// Drops what expired before `now`; if that frees less than a quarter of a
/// full shard, drops everything, so a shard of live entries is not scanned
/// again on each of the next insertions.
fn make_room(shard: &mut Shard, per_shard: usize, now: UnixTime) {
    shard.retain(|_, slot| slot.snapshot.entry.exp > now);
    if shard.len() > per_shard - per_shard / 4 {
        shard.clear();
    }
}

fn allows_use(entry: &LedgerEntry) -> bool {
    !entry.revoked
        && entry
            .session
            .as_ref()
            .is_some_and(|s| !s.session_revoked && !s.user_disabled && !s.client_blocked)
}

// A panic while holding a shard cannot leave the map half-updated in a way
// that matters: at worst an entry is missing, and the caller reads the
// database instead.
fn read(shard: &RwLock<Shard>) -> RwLockReadGuard<'_, Shard> {
    shard
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write(shard: &RwLock<Shard>) -> RwLockWriteGuard<'_, Shard> {
    shard
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Epochs, SessionState, TokenKind};

    fn snapshot(exp: UnixTime) -> LedgerSnapshot {
        LedgerSnapshot {
            entry: LedgerEntry {
                kind: TokenKind::Access,
                sub: "u".into(),
                sid: "s".into(),
                client_id: "c".into(),
                scope: String::new(),
                kid: Some("k".into()),
                iat: exp - 600,
                exp,
                jkt: None,
                revoked: false,
                session: Some(SessionState {
                    session_revoked: false,
                    user_disabled: false,
                    client_blocked: false,
                }),
            },
            epochs: Epochs::default(),
        }
    }

    fn tenant(name: &str) -> TenantName {
        TenantName::parse(name).unwrap()
    }

    #[test]
    fn lookups_need_the_same_tenant() {
        let mirror = LedgerMirror::new(64);
        mirror.insert(&tenant("a"), "j", snapshot(100), mirror.generation(), 0);
        assert!(mirror.get(&tenant("a"), "j").is_some());
        assert!(mirror.get(&tenant("b"), "j").is_none());
        assert!(mirror.get(&tenant("a"), "k").is_none());
    }

    #[test]
    fn a_snapshot_from_before_a_clear_is_not_inserted() {
        let mirror = LedgerMirror::new(64);
        let generation = mirror.generation();
        mirror.clear();
        mirror.insert(&tenant("a"), "j", snapshot(100), generation, 0);
        assert!(mirror.get(&tenant("a"), "j").is_none());
    }

    #[test]
    fn only_usable_state_is_kept() {
        let mirror = LedgerMirror::new(64);
        let refusing: [fn(&mut LedgerEntry); 5] = [
            |e| e.revoked = true,
            |e| e.session = None,
            |e| e.session.as_mut().unwrap().session_revoked = true,
            |e| e.session.as_mut().unwrap().user_disabled = true,
            |e| e.session.as_mut().unwrap().client_blocked = true,
        ];
        for (i, edit) in refusing.iter().enumerate() {
            let mut s = snapshot(100);
            edit(&mut s.entry);
            let jti = format!("j{i}");
            mirror.insert(&tenant("a"), &jti, s, mirror.generation(), 0);
            assert!(mirror.get(&tenant("a"), &jti).is_none(), "case {i}");
        }
    }

    #[test]
    fn size_is_bounded() {
        let mirror = LedgerMirror::new(SHARDS * 8);
        for i in 0..SHARDS * 100 {
            mirror.insert(&tenant("a"), &format!("j{i}"), snapshot(1000), 0, 500);
            assert!(mirror.len() <= SHARDS * 8, "{}", mirror.len());
        }
        // The newest entry always survives its own insertion.
        assert!(
            mirror
                .get(&tenant("a"), &format!("j{}", SHARDS * 100 - 1))
                .is_some()
        );
        let disabled = LedgerMirror::new(0);
        disabled.insert(&tenant("a"), "j", snapshot(100), 0, 0);
        assert!(disabled.get(&tenant("a"), "j").is_none());
    }

    /// A store with tenant `a`, user `u`, client `c` and session `s`.
    fn store() -> (tempfile::TempDir, crate::SqliteStore) {
        use crate::{ClientKind, ClientRecord, SessionRecord, Store, UserRecord};
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(dir.path()).unwrap();
        let a = tenant("a");
        store.create_tenant(&a, &[], 0).unwrap();
        store
            .create_user(&UserRecord {
                tenant: a.clone(),
                id: "u".into(),
                email: stormproof_types::Email::parse("u@a.test").unwrap(),
                password_hash: String::new(),
                totp_sealed: None,
                enabled: true,
                created: 0,
            })
            .unwrap();
        store
            .create_client(&ClientRecord {
                tenant: a.clone(),
                client_id: "c".into(),
                name: "c".into(),
                kind: ClientKind::Public,
                secret_hash: None,
                redirect_uris: vec![],
                require_dpop: false,
                blocked: false,
                created: 0,
            })
            .unwrap();
        store
            .create_session(&SessionRecord {
                tenant: a,
                sid: "s".into(),
                subject: "u".into(),
                client_id: "c".into(),
                auth_time: 0,
                amr: vec![],
                ip: None,
                user_agent: None,
                revoked_at: None,
            })
            .unwrap();
        (dir, store)
    }

    fn record(store: &crate::SqliteStore, jti: &str, kind: TokenKind) {
        use crate::Store;
        store
            .record_token(&crate::TokenRecord {
                tenant: tenant("a"),
                jti: jti.into(),
                kind,
                sub: "u".into(),
                sid: "s".into(),
                client_id: "c".into(),
                scope: "mail".into(),
                kid: Some("k".into()),
                iat: 100,
                exp: 700,
                parent: None,
                ip: None,
                user_agent: None,
                jkt: Some("thumb".into()),
                secret_hash: None,
                used_at: None,
                revoked_at: None,
            })
            .unwrap();
    }

    #[test]
    fn a_recording_snapshots_the_joined_read_and_its_counters() {
        use crate::Store;
        let (dir, store) = store();
        let a = tenant("a");
        record(&store, "j1", TokenKind::Access);
        let snapshot = store.recorded_ledger_entry(&a, "j1").unwrap();
        assert_eq!(
            Some(&snapshot.entry),
            store.ledger_entry(&a, "j1").unwrap().as_ref()
        );
        assert_eq!(snapshot.epochs, store.epochs().unwrap());
        // Refresh tokens never reach the verifier.
        record(&store, "r1", TokenKind::Refresh);
        assert!(store.recorded_ledger_entry(&a, "r1").is_none());
        // Another handle on the same database recorded nothing.
        let other = crate::SqliteStore::open(dir.path()).unwrap();
        assert!(other.recorded_ledger_entry(&a, "j1").is_none());
    }

    #[test]
    fn every_change_through_the_handle_that_bumps_a_counter_drops_the_snapshots() {
        use crate::Store;
        let (_dir, store) = store();
        let a = tenant("a");
        type Change = (&'static str, fn(&crate::SqliteStore));
        let changes: [Change; 7] = [
            ("revoke token", |s| {
                s.revoke_token(&tenant("a"), "other", 0).unwrap()
            }),
            ("enable user", |s| {
                s.set_user_enabled(&tenant("a"), "u", true).unwrap()
            }),
            ("unblock client", |s| {
                s.set_client_blocked(&tenant("a"), "c", false).unwrap()
            }),
            ("insert key", |s| {
                s.insert_key(&crate::KeyRecord {
                    tenant: tenant("a"),
                    kid: "k".into(),
                    alg: stormproof_types::Alg::EdDsa,
                    backend: crate::KeyBackend::Software,
                    material: vec![],
                    public_key: vec![],
                    created: 0,
                    not_before: 0,
                    not_after: 1000,
                    status: crate::KeyStatus::Active,
                    activated_at: None,
                    retiring_at: None,
                    imported: false,
                })
                .unwrap()
            }),
            ("key status", |s| {
                s.set_key_statuses(&tenant("a"), &[], 0).unwrap()
            }),
            ("compromise key", |s| {
                s.compromise_key(&tenant("a"), "k", 0).unwrap();
            }),
            ("revoke session", |s| {
                s.revoke_session(&tenant("a"), "s", 0).unwrap()
            }),
        ];
        for (i, (name, change)) in changes.iter().enumerate() {
            let jti = format!("j{i}");
            record(&store, &jti, TokenKind::Access);
            assert!(store.recorded_ledger_entry(&a, &jti).is_some(), "{name}");
            change(&store);
            assert!(store.recorded_ledger_entry(&a, &jti).is_none(), "{name}");
        }
    }

    #[test]
    fn making_room_drops_expired_entries_first() {
        let slot = |exp| Slot {
            tenant: tenant("a"),
            snapshot: Arc::new(snapshot(exp)),
        };
        let shard = |exps: &[UnixTime]| -> Shard {
            exps.iter()
                .enumerate()
                .map(|(i, &exp)| (format!("j{i}"), slot(exp)))
                .collect()
        };
        // Expiring at `now` is expired.
        let mut mixed = shard(&[10, 10, 10, 10, 10, 500, 900, 900]);
        make_room(&mut mixed, 8, 500);
        assert_eq!(mixed.len(), 2);
        assert!(mixed.values().all(|s| s.snapshot.entry.exp == 900));
        let mut all_live = shard(&[10, 900, 900, 900, 900, 900, 900, 900]);
        make_room(&mut all_live, 8, 500);
        assert!(all_live.is_empty());
    }
}
