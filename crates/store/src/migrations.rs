//! The schema, as an ordered chain of migrations. Never edit a migration
//! that has shipped: append a new one. The database's `user_version` is the
//! number of migrations applied.

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: identity core.
    r#"
CREATE TABLE tenants (
    name TEXT PRIMARY KEY,
    created INTEGER NOT NULL
) STRICT;

CREATE TABLE domains (
    domain TEXT PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants(name)
) STRICT;

CREATE TABLE users (
    tenant TEXT NOT NULL REFERENCES tenants(name),
    id TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    totp_sealed BLOB,
    enabled INTEGER NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
) STRICT;

CREATE TABLE app_passwords (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created INTEGER NOT NULL,
    revoked_at INTEGER,
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, user_id) REFERENCES users(tenant, id)
) STRICT;

CREATE TABLE clients (
    tenant TEXT NOT NULL REFERENCES tenants(name),
    client_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    secret_hash BLOB,
    redirect_uris TEXT NOT NULL,
    require_dpop INTEGER NOT NULL,
    blocked INTEGER NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (tenant, client_id)
) STRICT;

CREATE TABLE signing_keys (
    tenant TEXT NOT NULL REFERENCES tenants(name),
    kid TEXT NOT NULL,
    alg TEXT NOT NULL,
    backend TEXT NOT NULL,
    material BLOB NOT NULL,
    public_key BLOB NOT NULL,
    created INTEGER NOT NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    status TEXT NOT NULL,
    activated_at INTEGER,
    retiring_at INTEGER,
    imported INTEGER NOT NULL,
    PRIMARY KEY (tenant, kid)
) STRICT;

CREATE TABLE sessions (
    tenant TEXT NOT NULL,
    sid TEXT NOT NULL,
    subject TEXT NOT NULL,
    client_id TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    amr TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    revoked_at INTEGER,
    PRIMARY KEY (tenant, sid)
) STRICT;

CREATE TABLE tokens (
    tenant TEXT NOT NULL,
    jti TEXT NOT NULL,
    kind TEXT NOT NULL,
    sub TEXT NOT NULL,
    sid TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    kid TEXT,
    iat INTEGER NOT NULL,
    exp INTEGER NOT NULL,
    parent TEXT,
    ip TEXT,
    user_agent TEXT,
    jkt TEXT,
    secret_hash BLOB,
    used_at INTEGER,
    revoked_at INTEGER,
    PRIMARY KEY (tenant, jti)
) STRICT;
CREATE UNIQUE INDEX tokens_by_secret ON tokens (tenant, secret_hash) WHERE secret_hash IS NOT NULL;
CREATE INDEX tokens_by_session ON tokens (tenant, sid);
CREATE INDEX tokens_by_kid ON tokens (tenant, kid, exp);
CREATE INDEX tokens_by_parent ON tokens (tenant, parent);

CREATE TABLE auth_codes (
    tenant TEXT NOT NULL,
    code_hash BLOB NOT NULL,
    client_id TEXT NOT NULL,
    sid TEXT NOT NULL,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT NOT NULL,
    expires INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, code_hash)
) STRICT;

CREATE TABLE device_codes (
    tenant TEXT NOT NULL,
    device_code_hash BLOB NOT NULL,
    user_code TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    expires INTEGER NOT NULL,
    status TEXT NOT NULL,
    user_id TEXT,
    sid TEXT,
    last_poll INTEGER,
    PRIMARY KEY (tenant, device_code_hash)
) STRICT;
CREATE UNIQUE INDEX device_by_user_code ON device_codes (tenant, user_code);

CREATE TABLE security_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    tenant TEXT,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT
) STRICT;

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE epochs (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO epochs (name, value) VALUES ('keys', 0), ('revocations', 0);
"#,
    // 2: mail store.
    r#"
CREATE TABLE mail_accounts (
    tenant TEXT NOT NULL REFERENCES tenants(name),
    account_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    quota_bytes INTEGER NOT NULL,
    used_bytes INTEGER NOT NULL DEFAULT 0,
    modseq INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    PRIMARY KEY (tenant, account_id),
    UNIQUE (tenant, user_id)
) STRICT;

CREATE TABLE mailboxes (
    tenant TEXT NOT NULL,
    account_id TEXT NOT NULL,
    mailbox_id TEXT NOT NULL,
    parent_id TEXT,
    name TEXT NOT NULL,
    role TEXT,
    sort_order INTEGER NOT NULL,
    uid_validity INTEGER NOT NULL,
    uid_next INTEGER NOT NULL,
    highest_modseq INTEGER NOT NULL,
    subscribed INTEGER NOT NULL,
    PRIMARY KEY (tenant, account_id, mailbox_id),
    FOREIGN KEY (tenant, account_id) REFERENCES mail_accounts(tenant, account_id)
) STRICT;
CREATE UNIQUE INDEX mailbox_roles ON mailboxes (tenant, account_id, role) WHERE role IS NOT NULL;

CREATE TABLE account_blobs (
    tenant TEXT NOT NULL,
    account_id TEXT NOT NULL,
    blob_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (tenant, account_id, blob_id)
) STRICT;

CREATE TABLE emails (
    tenant TEXT NOT NULL,
    account_id TEXT NOT NULL,
    email_id TEXT NOT NULL,
    blob_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    sent_at INTEGER,
    message_id TEXT,
    in_reply_to TEXT NOT NULL,
    refs TEXT NOT NULL,
    subject TEXT,
    from_addr TEXT NOT NULL,
    to_addr TEXT NOT NULL,
    cc_addr TEXT NOT NULL,
    preview TEXT NOT NULL,
    has_attachment INTEGER NOT NULL,
    PRIMARY KEY (tenant, account_id, email_id)
) STRICT;
CREATE INDEX emails_by_thread ON emails (tenant, account_id, thread_id);

CREATE TABLE email_mailboxes (
    tenant TEXT NOT NULL,
    account_id TEXT NOT NULL,
    mailbox_id TEXT NOT NULL,
    uid INTEGER NOT NULL,
    email_id TEXT NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY (tenant, account_id, mailbox_id, uid),
    UNIQUE (tenant, account_id, email_id, mailbox_id)
) STRICT;

CREATE TABLE email_keywords (
    tenant TEXT NOT NULL,
    account_id TEXT NOT NULL,
    email_id TEXT NOT NULL,
    keyword TEXT NOT NULL,
    PRIMARY KEY (tenant, account_id, email_id, keyword)
) STRICT;

CREATE TABLE thread_index (
    tenant TEXT NOT NULL,
    account_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    base_subject TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    PRIMARY KEY (tenant, account_id, message_id, base_subject)
) STRICT;

CREATE TABLE changes (
    tenant TEXT NOT NULL,
    account_id TEXT NOT NULL,
    modseq INTEGER NOT NULL,
    type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (tenant, account_id, type, modseq, object_id)
) STRICT;

CREATE VIRTUAL TABLE email_search USING fts5(text, tokenize = 'unicode61 remove_diacritics 2');
"#,
    // 3: JMAP identities, email submissions and vacation responses.
    r#"
CREATE TABLE identities (
    tenant TEXT NOT NULL,
    account_id TEXT NOT NULL,
    identity_id TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    reply_to TEXT,
    bcc TEXT,
    text_signature TEXT NOT NULL,
    html_signature TEXT NOT NULL,
    may_delete INTEGER NOT NULL,
    PRIMARY KEY (tenant, account_id, identity_id),
    FOREIGN KEY (tenant, account_id) REFERENCES mail_accounts(tenant, account_id)
) STRICT;
CREATE UNIQUE INDEX identities_one_default ON identities (tenant, account_id) WHERE may_delete = 0;

CREATE TABLE email_submissions (
    tenant TEXT NOT NULL,
    account_id TEXT NOT NULL,
    submission_id TEXT NOT NULL,
    identity_id TEXT NOT NULL,
    email_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    envelope TEXT NOT NULL,
    send_at INTEGER NOT NULL,
    undo_status TEXT NOT NULL,
    delivery_status TEXT NOT NULL,
    PRIMARY KEY (tenant, account_id, submission_id),
    FOREIGN KEY (tenant, account_id) REFERENCES mail_accounts(tenant, account_id)
) STRICT;

CREATE TABLE vacation_responses (
    tenant TEXT NOT NULL,
    account_id TEXT NOT NULL,
    is_enabled INTEGER NOT NULL,
    from_date INTEGER,
    to_date INTEGER,
    subject TEXT,
    text_body TEXT,
    html_body TEXT,
    PRIMARY KEY (tenant, account_id),
    FOREIGN KEY (tenant, account_id) REFERENCES mail_accounts(tenant, account_id)
) STRICT;
"#,
    // 4: detection: alerts, deduplicated per tenant and key, and what the
    // detectors have learned. `tenant` is '' for records without a tenant,
    // a value no tenant name can take.
    r#"
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    time TEXT NOT NULL,
    severity TEXT NOT NULL,
    detector TEXT NOT NULL,
    summary TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    json TEXT NOT NULL,
    count INTEGER NOT NULL,
    last_seen TEXT NOT NULL,
    UNIQUE (tenant, dedup_key)
) STRICT;
CREATE INDEX alerts_by_time ON alerts (tenant, time);
CREATE INDEX alerts_by_time_all ON alerts (time);

CREATE TABLE detector_state (
    tenant TEXT NOT NULL,
    detector TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated TEXT NOT NULL,
    PRIMARY KEY (tenant, detector, key)
) STRICT;
"#,
    // 5: the last TOTP time step a user signed in with, so that a code is
    // accepted once (RFC 6238 section 5.2).
    r#"
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
"#,
];
