//! Building logs to test.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stormproof_audit::{
    AccessKind, Actor, AuditEvent, AuditLog, CheckpointSigner, LogOptions, Outcome,
};
use stormproof_keys::MasterKey;
use tempfile::TempDir;

/// 2023-11-14T22:13:20.000Z: the first test event's time.
pub const T0: i64 = 1_700_000_000_000;

/// A temporary data directory with a master key and an audit directory.
pub struct World {
    pub tmp: TempDir,
    pub master: MasterKey,
}

impl World {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let master = MasterKey::load_or_create(&tmp.path().join("master.key")).unwrap();
        Self { tmp, master }
    }

    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("audit")
    }

    pub fn signer(&self) -> CheckpointSigner {
        CheckpointSigner::load_or_create(&self.dir(), &self.master, "test.example/audit").unwrap()
    }

    /// Opens the log with small segments and no checkpoint timer, so tests
    /// decide when checkpoints happen.
    pub fn open(&self) -> AuditLog {
        self.open_with(options())
    }

    pub fn open_with(&self, options: LogOptions) -> AuditLog {
        AuditLog::open(&self.dir(), self.signer(), options).unwrap()
    }

    pub fn vkey(&self) -> String {
        self.signer().verifier_key()
    }
}

pub fn options() -> LogOptions {
    LogOptions {
        origin: "test.example/audit".into(),
        checkpoint_interval: Duration::ZERO,
        segment_bytes: 8 * 1024,
        queue_capacity: 1024,
        ..LogOptions::default()
    }
}

/// A realistic `Email/get`: ten email ids and their message ids.
pub fn event(n: u64, time_ms: i64) -> AuditEvent {
    let actor = Actor {
        user: Some("alice@example.com".into()),
        user_id: Some("u-7f3a".into()),
        client_id: Some("thunderbird".into()),
        session: Some("s-91c2".into()),
        token: Some(format!("jti-{n}")),
        ip: Some("192.0.2.10".into()),
        user_agent: Some("Thunderbird/128.0".into()),
        protocol: "jmap".into(),
    };
    let mut event = AuditEvent::new(time_ms, "Email/get", Outcome::Success, actor);
    event.tenant = Some("example".into());
    event.access = AccessKind::Content;
    event.count = 10;
    event.target.account = Some("a-alice".into());
    event.target.owner = Some("alice@example.com".into());
    event.target.mailboxes = vec!["inbox".into()];
    event.target.items = (0..10).map(|i| format!("M{n:06}{i}")).collect();
    event.target.message_ids = (0..10)
        .map(|i| format!("<{n}.{i}@mail.example.com>"))
        .collect();
    event
}

/// Appends `count` events, `per` per call, and waits for them.
pub fn fill(log: &AuditLog, count: u64, per: u64, time_ms: i64) {
    let mut done = 0;
    while done < count {
        let n = per.min(count - done);
        let events = (done..done + n).map(|i| event(i, time_ms)).collect();
        log.append(events).wait().unwrap();
        done += n;
    }
}

/// A copy of `from` at `to`, so one log can be tampered with many ways.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The segment files' first seqs, in order.
pub fn segments(dir: &Path) -> Vec<u64> {
    let mut firsts: Vec<u64> = fs::read_dir(dir.join("segments"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".log").map(|stem| stem.parse().unwrap())
        })
        .collect();
    firsts.sort_unstable();
    firsts
}

pub fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join("segments").join(format!("{first:020}.log"))
}
