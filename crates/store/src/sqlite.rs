//! The embedded SQLite backend: one database file in the data directory, in
//! WAL mode with full synchronous commits, so an acknowledged write survives
//! power loss and the CLI can write while the server reads.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use stormproof_types::{Alg, Email, TenantName, UnixTime};

use crate::migrations::MIGRATIONS;
use crate::mirror::{self, LedgerMirror};
use crate::{
    AppPasswordRecord, AuthCodeRecord, ClientKind, ClientRecord, CodeUse, DeviceCodeRecord,
    DeviceStatus, Epochs, Error, ErrorKind, KeyBackend, KeyRecord, KeyStatus, LedgerEntry,
    LedgerSnapshot, RefreshUse, Result, SecurityEventRecord, SessionRecord, SessionState, Store,
    TenantRecord, TokenKind, TokenRecord, UserRecord,
};

/// The database file's name inside the data directory.
pub const DATABASE_FILE: &str = "stormproof.db";

/// How many read connections serve concurrent readers; WAL lets them run
/// beside the one writer.
const READERS: usize = 4;

/// How long a writer waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// Snapshots of the ledger entries this handle recorded, for
    /// [`Store::recorded_ledger_entry`].
    mirror: LedgerMirror,
}

pub(crate) fn backend(e: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(f, ref msg) = e
        && f.code == rusqlite::ErrorCode::ConstraintViolation
    {
        return ErrorKind::Conflict(msg.clone().unwrap_or_default()).into();
    }
    ErrorKind::Backend(e.to_string()).into()
}

pub(crate) fn corrupt(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_owned(), rusqlite::types::Type::Text)
}

fn lock(mutex: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock cannot leave a connection half-written:
    // SQLite rolls back the open transaction. Keep using it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;",
    )
    .map_err(backend)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir` and brings its
    /// schema up to date.
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| ErrorKind::Backend(format!("create {}: {e}", data_dir.display())))?;
        let path = data_dir.join(DATABASE_FILE);
        let mut writer = open_connection(&path)?;
        migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| open_connection(&path).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
            mirror: LedgerMirror::new(mirror::CAPACITY),
        })
    }

    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        // Prefer an idle reader; fall back to waiting on one in turn.
        for reader in &self.readers {
            if let Ok(conn) = reader.try_lock() {
                return f(&conn).map_err(backend);
            }
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        f(&lock(&self.readers[i])).map_err(backend)
    }

    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction) -> Result<T>,
    ) -> Result<T> {
        let mut conn = lock(&self.writer);
        // IMMEDIATE takes the write lock up front, so a read-then-write
        // sequence cannot be interleaved with another process's write.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let value = f(&tx)?;
        tx.commit().map_err(backend)?;
        Ok(value)
    }

    /// Bumps a change counter inside `tx`, and drops every ledger snapshot
    /// first: a revocation made through this handle must take effect in this
    /// process at once, not at the next poll of the counters. Dropping them
    /// before the commit is safe: until then the database still answers
    /// with the old state, and a recording that overlaps this transaction is
    /// kept out of the mirror by its generation check.
    fn bump(&self, tx: &rusqlite::Transaction, epoch: &str) -> Result<()> {
        self.mirror.clear();
        tx.execute(
            "UPDATE epochs SET value = value + 1 WHERE name = ?1",
            [epoch],
        )
        .map_err(backend)?;
        Ok(())
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    let supported = MIGRATIONS.len() as i64;
    if version > supported {
        return Err(ErrorKind::TooNew {
            found: version,
            supported,
        }
        .into());
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(backend)?;
        if now > i as i64 {
            continue;
        }
        tx.execute_batch(sql).map_err(backend)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        tracing::info!(message = "applied schema migration", version = i + 1);
    }
    Ok(())
}

fn changed(rows: usize, what: &str) -> Result<()> {
    if rows == 0 {
        return Err(ErrorKind::NotFound(what.to_owned()).into());
    }
    Ok(())
}

fn tenant_col(row: &Row, i: usize) -> rusqlite::Result<TenantName> {
    TenantName::parse(&row.get::<_, String>(i)?).map_err(|_| corrupt("tenant"))
}

pub(crate) fn json_list(text: String) -> rusqlite::Result<Vec<String>> {
    serde_json::from_str(&text).map_err(|_| corrupt("json list"))
}

pub(crate) fn list_json(items: &[String]) -> String {
    serde_json::Value::from(items).to_string()
}

const USER_COLS: &str = "tenant, id, email, password_hash, totp_sealed, enabled, created";
fn user_row(row: &Row) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        tenant: tenant_col(row, 0)?,
        id: row.get(1)?,
        email: Email::parse(&row.get::<_, String>(2)?).map_err(|_| corrupt("email"))?,
        password_hash: row.get(3)?,
        totp_sealed: row.get(4)?,
        enabled: row.get(5)?,
        created: row.get(6)?,
    })
}

const APP_PASSWORD_COLS: &str = "tenant, id, user_id, name, password_hash, created, revoked_at";
fn app_password_row(row: &Row) -> rusqlite::Result<AppPasswordRecord> {
    Ok(AppPasswordRecord {
        tenant: tenant_col(row, 0)?,
        id: row.get(1)?,
        user_id: row.get(2)?,
        name: row.get(3)?,
        password_hash: row.get(4)?,
        created: row.get(5)?,
        revoked_at: row.get(6)?,
    })
}

const CLIENT_COLS: &str =
    "tenant, client_id, name, kind, secret_hash, redirect_uris, require_dpop, blocked, created";
fn client_row(row: &Row) -> rusqlite::Result<ClientRecord> {
    let kind = match row.get::<_, String>(3)?.as_str() {
        "public" => ClientKind::Public,
        "confidential" => ClientKind::Confidential,
        _ => return Err(corrupt("client kind")),
    };
    Ok(ClientRecord {
        tenant: tenant_col(row, 0)?,
        client_id: row.get(1)?,
        name: row.get(2)?,
        kind,
        secret_hash: row.get(4)?,
        redirect_uris: json_list(row.get(5)?)?,
        require_dpop: row.get(6)?,
        blocked: row.get(7)?,
        created: row.get(8)?,
    })
}

const KEY_COLS: &str = "tenant, kid, alg, backend, material, public_key, created, not_before, \
                        not_after, status, activated_at, retiring_at, imported";
fn key_row(row: &Row) -> rusqlite::Result<KeyRecord> {
    let alg = Alg::from_jws_name(&row.get::<_, String>(2)?).ok_or_else(|| corrupt("alg"))?;
    let backend = match row.get::<_, String>(3)?.as_str() {
        "software" => KeyBackend::Software,
        "pkcs11" => KeyBackend::Pkcs11,
        _ => return Err(corrupt("key backend")),
    };
    Ok(KeyRecord {
        tenant: tenant_col(row, 0)?,
        kid: row.get(1)?,
        alg,
        backend,
        material: row.get(4)?,
        public_key: row.get(5)?,
        created: row.get(6)?,
        not_before: row.get(7)?,
        not_after: row.get(8)?,
        status: KeyStatus::parse(&row.get::<_, String>(9)?).ok_or_else(|| corrupt("key status"))?,
        activated_at: row.get(10)?,
        retiring_at: row.get(11)?,
        imported: row.get(12)?,
    })
}

const SESSION_COLS: &str =
    "tenant, sid, subject, client_id, auth_time, amr, ip, user_agent, revoked_at";
fn session_row(row: &Row) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        tenant: tenant_col(row, 0)?,
        sid: row.get(1)?,
        subject: row.get(2)?,
        client_id: row.get(3)?,
        auth_time: row.get(4)?,
        amr: json_list(row.get(5)?)?,
        ip: row.get(6)?,
        user_agent: row.get(7)?,
        revoked_at: row.get(8)?,
    })
}

const TOKEN_COLS: &str = "tenant, jti, kind, sub, sid, client_id, scope, kid, iat, exp, parent, \
                          ip, user_agent, jkt, secret_hash, used_at, revoked_at";
fn token_row(row: &Row) -> rusqlite::Result<TokenRecord> {
    let kind = match row.get::<_, String>(2)?.as_str() {
        "access" => TokenKind::Access,
        "refresh" => TokenKind::Refresh,
        _ => return Err(corrupt("token kind")),
    };
    Ok(TokenRecord {
        tenant: tenant_col(row, 0)?,
        jti: row.get(1)?,
        kind,
        sub: row.get(3)?,
        sid: row.get(4)?,
        client_id: row.get(5)?,
        scope: row.get(6)?,
        kid: row.get(7)?,
        iat: row.get(8)?,
        exp: row.get(9)?,
        parent: row.get(10)?,
        ip: row.get(11)?,
        user_agent: row.get(12)?,
        jkt: row.get(13)?,
        secret_hash: row.get(14)?,
        used_at: row.get(15)?,
        revoked_at: row.get(16)?,
    })
}

const AUTH_CODE_COLS: &str = "tenant, code_hash, client_id, sid, user_id, redirect_uri, scope, \
                              nonce, code_challenge, expires";
fn auth_code_row(row: &Row) -> rusqlite::Result<AuthCodeRecord> {
    Ok(AuthCodeRecord {
        tenant: tenant_col(row, 0)?,
        code_hash: row.get(1)?,
        client_id: row.get(2)?,
        sid: row.get(3)?,
        user_id: row.get(4)?,
        redirect_uri: row.get(5)?,
        scope: row.get(6)?,
        nonce: row.get(7)?,
        code_challenge: row.get(8)?,
        expires: row.get(9)?,
    })
}

const DEVICE_COLS: &str = "tenant, device_code_hash, user_code, client_id, scope, expires, \
                           status, user_id, sid, last_poll";
fn device_status_name(status: DeviceStatus) -> &'static str {
    match status {
        DeviceStatus::Pending => "pending",
        DeviceStatus::Approved => "approved",
        DeviceStatus::Denied => "denied",
        DeviceStatus::Consumed => "consumed",
    }
}
fn device_row(row: &Row) -> rusqlite::Result<DeviceCodeRecord> {
    let status = match row.get::<_, String>(6)?.as_str() {
        "pending" => DeviceStatus::Pending,
        "approved" => DeviceStatus::Approved,
        "denied" => DeviceStatus::Denied,
        "consumed" => DeviceStatus::Consumed,
        _ => return Err(corrupt("device status")),
    };
    Ok(DeviceCodeRecord {
        tenant: tenant_col(row, 0)?,
        device_code_hash: row.get(1)?,
        user_code: row.get(2)?,
        client_id: row.get(3)?,
        scope: row.get(4)?,
        expires: row.get(5)?,
        status,
        user_id: row.get(7)?,
        sid: row.get(8)?,
        last_poll: row.get(9)?,
    })
}

fn event_row(row: &Row) -> rusqlite::Result<SecurityEventRecord> {
    Ok(SecurityEventRecord {
        id: row.get(0)?,
        time: row.get(1)?,
        tenant: row.get(2)?,
        kind: row.get(3)?,
        reason: row.get(4)?,
        detail: serde_json::from_str(&row.get::<_, String>(5)?).map_err(|_| corrupt("detail"))?,
        ip: row.get(6)?,
        user_agent: row.get(7)?,
    })
}

/// Revokes `roots` and every token derived from them, in one statement.
fn revoke_descendants(
    tx: &rusqlite::Transaction,
    tenant: &str,
    jti: &str,
    now: UnixTime,
) -> Result<()> {
    tx.execute(
        "WITH RECURSIVE tree(jti) AS (
             SELECT ?2
             UNION SELECT t.jti FROM tokens t JOIN tree ON t.parent = tree.jti AND t.tenant = ?1
         )
         UPDATE tokens SET revoked_at = ?3
         WHERE tenant = ?1 AND jti IN (SELECT jti FROM tree) AND revoked_at IS NULL",
        params![tenant, jti, now],
    )
    .map_err(backend)?;
    Ok(())
}

/// The joined ledger read behind [`Store::ledger_entry`], shared with the
/// snapshot [`Store::record_token`] takes, so the two cannot drift apart.
fn read_ledger_entry(
    conn: &Connection,
    tenant: &str,
    jti: &str,
) -> rusqlite::Result<Option<LedgerEntry>> {
    conn.prepare_cached(
        "SELECT t.kind, t.sub, t.sid, t.client_id, t.scope, t.kid, t.iat, t.exp, t.jkt,
                t.revoked_at IS NOT NULL,
                s.sid IS NOT NULL, s.revoked_at IS NOT NULL,
                COALESCE(u.enabled = 0, 0), COALESCE(c.blocked, 0)
         FROM tokens t
         LEFT JOIN sessions s ON s.tenant = t.tenant AND s.sid = t.sid
         LEFT JOIN users u ON u.tenant = s.tenant AND u.id = s.subject
         LEFT JOIN clients c ON c.tenant = s.tenant AND c.client_id = s.client_id
         WHERE t.tenant = ?1 AND t.jti = ?2",
    )?
    .query_row(params![tenant, jti], |row| {
        let kind = match row.get_ref(0)?.as_str()? {
            "access" => TokenKind::Access,
            "refresh" => TokenKind::Refresh,
            _ => return Err(corrupt("token kind")),
        };
        let session = row.get::<_, bool>(10)?.then_some(SessionState {
            session_revoked: row.get(11)?,
            user_disabled: row.get(12)?,
            client_blocked: row.get(13)?,
        });
        Ok(LedgerEntry {
            kind,
            sub: row.get(1)?,
            sid: row.get(2)?,
            client_id: row.get(3)?,
            scope: row.get(4)?,
            kid: row.get(5)?,
            iat: row.get(6)?,
            exp: row.get(7)?,
            jkt: row.get(8)?,
            revoked: row.get(9)?,
            session,
        })
    })
    .optional()
}

fn read_epochs(conn: &Connection) -> rusqlite::Result<Epochs> {
    let mut stmt = conn.prepare_cached("SELECT name, value FROM epochs")?;
    let mut epochs = Epochs::default();
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (name, value) = row?;
        match name.as_str() {
            "keys" => epochs.keys = value,
            "revocations" => epochs.revocations = value,
            _ => {}
        }
    }
    Ok(epochs)
}

impl Store for SqliteStore {
    fn create_tenant(&self, name: &TenantName, domains: &[String], now: UnixTime) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO tenants (name, created) VALUES (?1, ?2)",
                params![name.as_str(), now],
            )
            .map_err(backend)?;
            for domain in domains {
                tx.execute(
                    "INSERT INTO domains (domain, tenant) VALUES (?1, ?2)",
                    params![domain, name.as_str()],
                )
                .map_err(backend)?;
            }
            Ok(())
        })
    }

    fn tenant(&self, name: &TenantName) -> Result<Option<TenantRecord>> {
        Ok(self.tenants()?.into_iter().find(|t| &t.name == name))
    }

    fn tenants(&self) -> Result<Vec<TenantRecord>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT t.name, t.created, COALESCE(json_group_array(d.domain) FILTER (WHERE d.domain IS NOT NULL), '[]')
                 FROM tenants t LEFT JOIN domains d ON d.tenant = t.name
                 GROUP BY t.name ORDER BY t.name",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok(TenantRecord {
                    name: tenant_col(row, 0)?,
                    created: row.get(1)?,
                    domains: json_list(row.get(2)?)?,
                })
            })?;
            rows.collect()
        })
    }

    fn tenant_for_domain(&self, domain: &str) -> Result<Option<TenantName>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT tenant FROM domains WHERE domain = ?1")?
                .query_row([domain.to_ascii_lowercase()], |row| tenant_col(row, 0))
                .optional()
        })
    }

    fn create_user(&self, user: &UserRecord) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                &format!("INSERT INTO users ({USER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    user.tenant.as_str(),
                    user.id,
                    user.email.as_str(),
                    user.password_hash,
                    user.totp_sealed,
                    user.enabled,
                    user.created
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn user_by_email(&self, tenant: &TenantName, email: &Email) -> Result<Option<UserRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {USER_COLS} FROM users WHERE tenant = ?1 AND email = ?2"
            ))?
            .query_row(params![tenant.as_str(), email.as_str()], user_row)
            .optional()
        })
    }

    fn user_by_id(&self, tenant: &TenantName, id: &str) -> Result<Option<UserRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {USER_COLS} FROM users WHERE tenant = ?1 AND id = ?2"
            ))?
            .query_row(params![tenant.as_str(), id], user_row)
            .optional()
        })
    }

    fn users(&self, tenant: &TenantName) -> Result<Vec<UserRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {USER_COLS} FROM users WHERE tenant = ?1 ORDER BY email"
            ))?
            .query_map([tenant.as_str()], user_row)?
            .collect()
        })
    }

    fn set_user_enabled(&self, tenant: &TenantName, id: &str, enabled: bool) -> Result<()> {
        self.write(|tx| {
            let rows = tx
                .execute(
                    "UPDATE users SET enabled = ?3 WHERE tenant = ?1 AND id = ?2",
                    params![tenant.as_str(), id, enabled],
                )
                .map_err(backend)?;
            changed(rows, "user")?;
            self.bump(tx, "revocations")
        })
    }

    fn set_user_totp(&self, tenant: &TenantName, id: &str, sealed: Option<&[u8]>) -> Result<()> {
        self.write(|tx| {
            let rows = tx
                .execute(
                    "UPDATE users SET totp_sealed = ?3 WHERE tenant = ?1 AND id = ?2",
                    params![tenant.as_str(), id, sealed],
                )
                .map_err(backend)?;
            changed(rows, "user")
        })
    }

    fn claim_totp_step(&self, tenant: &TenantName, id: &str, step: u64) -> Result<bool> {
        let step = i64::try_from(step)
            .map_err(|_| Error::from(ErrorKind::Invalid("TOTP step out of range".into())))?;
        self.write(|tx| {
            let rows = tx
                .execute(
                    "UPDATE users SET totp_last_step = ?3 WHERE tenant = ?1 AND id = ?2
                     AND (totp_last_step IS NULL OR totp_last_step < ?3)",
                    params![tenant.as_str(), id, step],
                )
                .map_err(backend)?;
            Ok(rows == 1)
        })
    }

    fn set_user_password(&self, tenant: &TenantName, id: &str, hash: &str) -> Result<()> {
        self.write(|tx| {
            let rows = tx
                .execute(
                    "UPDATE users SET password_hash = ?3 WHERE tenant = ?1 AND id = ?2",
                    params![tenant.as_str(), id, hash],
                )
                .map_err(backend)?;
            changed(rows, "user")
        })
    }

    fn create_app_password(&self, record: &AppPasswordRecord) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                &format!("INSERT INTO app_passwords ({APP_PASSWORD_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    record.tenant.as_str(),
                    record.id,
                    record.user_id,
                    record.name,
                    record.password_hash,
                    record.created,
                    record.revoked_at
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn app_passwords(&self, tenant: &TenantName, user_id: &str) -> Result<Vec<AppPasswordRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {APP_PASSWORD_COLS} FROM app_passwords WHERE tenant = ?1 AND user_id = ?2 ORDER BY created"
            ))?
            .query_map(params![tenant.as_str(), user_id], app_password_row)?
            .collect()
        })
    }

    fn revoke_app_password(
        &self,
        tenant: &TenantName,
        user_id: &str,
        id: &str,
        now: UnixTime,
    ) -> Result<()> {
        self.write(|tx| {
            let rows = tx
                .execute(
                    "UPDATE app_passwords SET revoked_at = ?4
                     WHERE tenant = ?1 AND user_id = ?2 AND id = ?3 AND revoked_at IS NULL",
                    params![tenant.as_str(), user_id, id, now],
                )
                .map_err(backend)?;
            changed(rows, "app password")?;
            self.bump(tx, "revocations")
        })
    }

    fn create_client(&self, client: &ClientRecord) -> Result<()> {
        let kind = match client.kind {
            ClientKind::Public => "public",
            ClientKind::Confidential => "confidential",
        };
        self.write(|tx| {
            tx.execute(
                &format!("INSERT INTO clients ({CLIENT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    client.tenant.as_str(),
                    client.client_id,
                    client.name,
                    kind,
                    client.secret_hash,
                    list_json(&client.redirect_uris),
                    client.require_dpop,
                    client.blocked,
                    client.created
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn client(&self, tenant: &TenantName, client_id: &str) -> Result<Option<ClientRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {CLIENT_COLS} FROM clients WHERE tenant = ?1 AND client_id = ?2"
            ))?
            .query_row(params![tenant.as_str(), client_id], client_row)
            .optional()
        })
    }

    fn clients(&self, tenant: &TenantName) -> Result<Vec<ClientRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {CLIENT_COLS} FROM clients WHERE tenant = ?1 ORDER BY created"
            ))?
            .query_map([tenant.as_str()], client_row)?
            .collect()
        })
    }

    fn set_client_blocked(
        &self,
        tenant: &TenantName,
        client_id: &str,
        blocked: bool,
    ) -> Result<()> {
        self.write(|tx| {
            let rows = tx
                .execute(
                    "UPDATE clients SET blocked = ?3 WHERE tenant = ?1 AND client_id = ?2",
                    params![tenant.as_str(), client_id, blocked],
                )
                .map_err(backend)?;
            changed(rows, "client")?;
            self.bump(tx, "revocations")
        })
    }

    fn insert_key(&self, key: &KeyRecord) -> Result<()> {
        let backend_name = match key.backend {
            KeyBackend::Software => "software",
            KeyBackend::Pkcs11 => "pkcs11",
        };
        self.write(|tx| {
            tx.execute(
                &format!(
                    "INSERT INTO signing_keys ({KEY_COLS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                ),
                params![
                    key.tenant.as_str(),
                    key.kid,
                    key.alg.jws_name(),
                    backend_name,
                    key.material,
                    key.public_key,
                    key.created,
                    key.not_before,
                    key.not_after,
                    key.status.as_str(),
                    key.activated_at,
                    key.retiring_at,
                    key.imported
                ],
            )
            .map_err(backend)?;
            self.bump(tx, "keys")
        })
    }

    fn keys(&self, tenant: &TenantName) -> Result<Vec<KeyRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {KEY_COLS} FROM signing_keys WHERE tenant = ?1 ORDER BY created DESC, rowid DESC"
            ))?
            .query_map([tenant.as_str()], key_row)?
            .collect()
        })
    }

    fn all_keys(&self) -> Result<Vec<KeyRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {KEY_COLS} FROM signing_keys ORDER BY tenant, created DESC, rowid DESC"
            ))?
            .query_map([], key_row)?
            .collect()
        })
    }

    fn set_key_statuses(
        &self,
        tenant: &TenantName,
        changes: &[(String, KeyStatus)],
        now: UnixTime,
    ) -> Result<()> {
        self.write(|tx| {
            for (kid, status) in changes {
                let rows = tx
                    .execute(
                        "UPDATE signing_keys SET status = ?3,
                            activated_at = CASE WHEN ?3 = 'active' THEN ?4 ELSE activated_at END,
                            retiring_at = CASE WHEN ?3 = 'retiring' THEN ?4 ELSE retiring_at END
                         WHERE tenant = ?1 AND kid = ?2",
                        params![tenant.as_str(), kid, status.as_str(), now],
                    )
                    .map_err(backend)?;
                changed(rows, "key")?;
            }
            self.bump(tx, "keys")
        })
    }

    fn compromise_key(&self, tenant: &TenantName, kid: &str, now: UnixTime) -> Result<u64> {
        self.write(|tx| {
            let rows = tx
                .execute(
                    "UPDATE signing_keys SET status = 'compromised' WHERE tenant = ?1 AND kid = ?2",
                    params![tenant.as_str(), kid],
                )
                .map_err(backend)?;
            changed(rows, "key")?;
            let revoked = tx
                .execute(
                    "UPDATE tokens SET revoked_at = ?3
                     WHERE tenant = ?1 AND kid = ?2 AND exp > ?3 AND revoked_at IS NULL",
                    params![tenant.as_str(), kid, now],
                )
                .map_err(backend)?;
            self.bump(tx, "keys")?;
            self.bump(tx, "revocations")?;
            Ok(revoked as u64)
        })
    }

    fn create_session(&self, session: &SessionRecord) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                &format!("INSERT INTO sessions ({SESSION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    session.tenant.as_str(),
                    session.sid,
                    session.subject,
                    session.client_id,
                    session.auth_time,
                    list_json(&session.amr),
                    session.ip,
                    session.user_agent,
                    session.revoked_at
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn session(&self, tenant: &TenantName, sid: &str) -> Result<Option<SessionRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {SESSION_COLS} FROM sessions WHERE tenant = ?1 AND sid = ?2"
            ))?
            .query_row(params![tenant.as_str(), sid], session_row)
            .optional()
        })
    }

    fn live_sessions(
        &self,
        tenant: &TenantName,
        subject: Option<&str>,
        client_id: Option<&str>,
    ) -> Result<Vec<SessionRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {SESSION_COLS} FROM sessions WHERE tenant = ?1 AND revoked_at IS NULL
                 AND (?2 IS NULL OR subject = ?2) AND (?3 IS NULL OR client_id = ?3)
                 ORDER BY auth_time"
            ))?
            .query_map(params![tenant.as_str(), subject, client_id], session_row)?
            .collect()
        })
    }

    fn revoke_session(&self, tenant: &TenantName, sid: &str, now: UnixTime) -> Result<()> {
        self.write(|tx| {
            let rows = tx
                .execute(
                    "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?3) WHERE tenant = ?1 AND sid = ?2",
                    params![tenant.as_str(), sid, now],
                )
                .map_err(backend)?;
            changed(rows, "session")?;
            tx.execute(
                "UPDATE tokens SET revoked_at = ?3 WHERE tenant = ?1 AND sid = ?2 AND revoked_at IS NULL",
                params![tenant.as_str(), sid, now],
            )
            .map_err(backend)?;
            self.bump(tx, "revocations")
        })
    }

    fn record_token(&self, token: &TokenRecord) -> Result<()> {
        let kind = match token.kind {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        };
        // Read before the transaction: if a revocation through this handle
        // clears the mirror after it, this recording's snapshot is dropped
        // instead of outliving the revocation.
        let generation = self.mirror.generation();
        let snapshot = self.write(|tx| {
            tx.execute(
                &format!(
                    "INSERT INTO tokens ({TOKEN_COLS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
                ),
                params![
                    token.tenant.as_str(),
                    token.jti,
                    kind,
                    token.sub,
                    token.sid,
                    token.client_id,
                    token.scope,
                    token.kid,
                    token.iat,
                    token.exp,
                    token.parent,
                    token.ip,
                    token.user_agent,
                    token.jkt,
                    token.secret_hash,
                    token.used_at,
                    token.revoked_at
                ],
            )
            .map_err(backend)?;
            if token.kind != TokenKind::Access {
                return Ok(None);
            }
            // The verifier's own joined read, in the transaction that makes
            // the row durable: the snapshot is exactly what the read would
            // return at the commit, and its counters say as of when.
            let entry = read_ledger_entry(tx, token.tenant.as_str(), &token.jti).map_err(backend)?;
            let epochs = read_epochs(tx).map_err(backend)?;
            Ok(entry.map(|entry| LedgerSnapshot { entry, epochs }))
        })?;
        if let Some(snapshot) = snapshot {
            self.mirror
                .insert(&token.tenant, &token.jti, snapshot, generation, token.iat);
        }
        Ok(())
    }

    fn token(&self, tenant: &TenantName, jti: &str) -> Result<Option<TokenRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {TOKEN_COLS} FROM tokens WHERE tenant = ?1 AND jti = ?2"
            ))?
            .query_row(params![tenant.as_str(), jti], token_row)
            .optional()
        })
    }

    fn token_by_secret(
        &self,
        tenant: &TenantName,
        secret_hash: &[u8],
    ) -> Result<Option<TokenRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {TOKEN_COLS} FROM tokens WHERE tenant = ?1 AND secret_hash = ?2"
            ))?
            .query_row(params![tenant.as_str(), secret_hash], token_row)
            .optional()
        })
    }

    fn use_refresh_token(
        &self,
        tenant: &TenantName,
        secret_hash: &[u8],
        now: UnixTime,
    ) -> Result<RefreshUse> {
        self.write(|tx| {
            let record = tx
                .prepare_cached(&format!(
                    "SELECT {TOKEN_COLS} FROM tokens WHERE tenant = ?1 AND secret_hash = ?2 AND kind = 'refresh'"
                ))
                .and_then(|mut s| s.query_row(params![tenant.as_str(), secret_hash], token_row).optional())
                .map_err(backend)?;
            let Some(record) = record else { return Ok(RefreshUse::Unknown) };
            if record.used_at.is_some() {
                return Ok(RefreshUse::Reused(record));
            }
            if record.revoked_at.is_some() || record.exp <= now {
                return Ok(RefreshUse::Unknown);
            }
            tx.execute(
                "UPDATE tokens SET used_at = ?3 WHERE tenant = ?1 AND jti = ?2",
                params![tenant.as_str(), record.jti, now],
            )
            .map_err(backend)?;
            Ok(RefreshUse::Fresh(record))
        })
    }

    fn revoke_token(&self, tenant: &TenantName, jti: &str, now: UnixTime) -> Result<()> {
        self.write(|tx| {
            revoke_descendants(tx, tenant.as_str(), jti, now)?;
            self.bump(tx, "revocations")
        })
    }

    fn ledger_entry(&self, tenant: &TenantName, jti: &str) -> Result<Option<LedgerEntry>> {
        self.read(|conn| read_ledger_entry(conn, tenant.as_str(), jti))
    }

    fn recorded_ledger_entry(&self, tenant: &TenantName, jti: &str) -> Option<Arc<LedgerSnapshot>> {
        self.mirror.get(tenant, jti)
    }

    fn session_state(&self, tenant: &TenantName, sid: &str) -> Result<Option<SessionState>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT s.revoked_at IS NOT NULL,
                        COALESCE(u.enabled = 0, 0),
                        COALESCE(c.blocked, 0)
                 FROM sessions s
                 LEFT JOIN users u ON u.tenant = s.tenant AND u.id = s.subject
                 LEFT JOIN clients c ON c.tenant = s.tenant AND c.client_id = s.client_id
                 WHERE s.tenant = ?1 AND s.sid = ?2",
            )?
            .query_row(params![tenant.as_str(), sid], |row| {
                Ok(SessionState {
                    session_revoked: row.get(0)?,
                    user_disabled: row.get(1)?,
                    client_blocked: row.get(2)?,
                })
            })
            .optional()
        })
    }

    fn insert_auth_code(&self, code: &AuthCodeRecord) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                &format!("INSERT INTO auth_codes ({AUTH_CODE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                params![
                    code.tenant.as_str(),
                    code.code_hash,
                    code.client_id,
                    code.sid,
                    code.user_id,
                    code.redirect_uri,
                    code.scope,
                    code.nonce,
                    code.code_challenge,
                    code.expires
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn take_auth_code(
        &self,
        tenant: &TenantName,
        code_hash: &[u8],
        now: UnixTime,
    ) -> Result<CodeUse> {
        self.write(|tx| {
            let found = tx
                .prepare_cached(&format!(
                    "SELECT {AUTH_CODE_COLS}, used FROM auth_codes WHERE tenant = ?1 AND code_hash = ?2"
                ))
                .and_then(|mut s| {
                    s.query_row(params![tenant.as_str(), code_hash], |row| {
                        Ok((auth_code_row(row)?, row.get::<_, bool>(10)?))
                    })
                    .optional()
                })
                .map_err(backend)?;
            match found {
                None => Ok(CodeUse::Unknown),
                Some((code, true)) => Ok(CodeUse::Reused { sid: code.sid }),
                Some((code, false)) => {
                    tx.execute(
                        "UPDATE auth_codes SET used = 1 WHERE tenant = ?1 AND code_hash = ?2",
                        params![tenant.as_str(), code_hash],
                    )
                    .map_err(backend)?;
                    if code.expires <= now {
                        return Ok(CodeUse::Unknown);
                    }
                    Ok(CodeUse::Fresh(code))
                }
            }
        })
    }

    fn insert_device_code(&self, record: &DeviceCodeRecord) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                &format!("INSERT INTO device_codes ({DEVICE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                params![
                    record.tenant.as_str(),
                    record.device_code_hash,
                    record.user_code,
                    record.client_id,
                    record.scope,
                    record.expires,
                    device_status_name(record.status),
                    record.user_id,
                    record.sid,
                    record.last_poll
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn device_by_user_code(
        &self,
        tenant: &TenantName,
        user_code: &str,
    ) -> Result<Option<DeviceCodeRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {DEVICE_COLS} FROM device_codes WHERE tenant = ?1 AND user_code = ?2"
            ))?
            .query_row(params![tenant.as_str(), user_code], device_row)
            .optional()
        })
    }

    fn decide_device(
        &self,
        tenant: &TenantName,
        user_code: &str,
        approval: Option<(&str, &str)>,
    ) -> Result<()> {
        self.write(|tx| {
            let (status, user_id, sid) = match approval {
                Some((user, sid)) => ("approved", Some(user), Some(sid)),
                None => ("denied", None, None),
            };
            let rows = tx
                .execute(
                    "UPDATE device_codes SET status = ?3, user_id = ?4, sid = ?5
                     WHERE tenant = ?1 AND user_code = ?2 AND status = 'pending'",
                    params![tenant.as_str(), user_code, status, user_id, sid],
                )
                .map_err(backend)?;
            changed(rows, "pending device authorization")
        })
    }

    fn poll_device(
        &self,
        tenant: &TenantName,
        device_code_hash: &[u8],
        now: UnixTime,
    ) -> Result<Option<DeviceCodeRecord>> {
        self.write(|tx| {
            let record = tx
                .prepare_cached(&format!(
                    "SELECT {DEVICE_COLS} FROM device_codes WHERE tenant = ?1 AND device_code_hash = ?2"
                ))
                .and_then(|mut s| s.query_row(params![tenant.as_str(), device_code_hash], device_row).optional())
                .map_err(backend)?;
            if let Some(record) = &record {
                let next = if record.status == DeviceStatus::Approved { "consumed" } else { device_status_name(record.status) };
                tx.execute(
                    "UPDATE device_codes SET last_poll = ?3, status = ?4 WHERE tenant = ?1 AND device_code_hash = ?2",
                    params![tenant.as_str(), device_code_hash, now, next],
                )
                .map_err(backend)?;
            }
            Ok(record)
        })
    }

    fn record_security_event(&self, event: &SecurityEventRecord) -> Result<i64> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO security_events (time, tenant, kind, reason, detail, ip, user_agent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    event.time,
                    event.tenant,
                    event.kind,
                    event.reason,
                    event.detail.to_string(),
                    event.ip,
                    event.user_agent
                ],
            )
            .map_err(backend)?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn security_events(&self, after_id: i64, limit: usize) -> Result<Vec<SecurityEventRecord>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT id, time, tenant, kind, reason, detail, ip, user_agent
                 FROM security_events WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?
            .query_map(params![after_id, limit as i64], event_row)?
            .collect()
        })
    }

    fn epochs(&self) -> Result<Epochs> {
        self.read(read_epochs)
    }

    fn setting(&self, name: &str) -> Result<Option<String>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT value FROM settings WHERE name = ?1")?
                .query_row([name], |row| row.get(0))
                .optional()
        })
    }

    fn set_setting(&self, name: &str, value: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO settings (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )
            .map_err(backend)?;
            Ok(())
        })
    }
}
