//! A JMAP API request (RFC 8620, RFC 8621) from arbitrary bytes, run
//! against a real SQLite store holding a few messages. Any input must give
//! a Response object (200) or a request-level problem (400), never a panic;
//! a refused request must have read nothing. The string `"A"` in the input
//! stands for the caller's account id, which the fuzzer could not guess.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use stormproof_jmap::{Caller, Jmap, JmapConfig};
use stormproof_mail::{Delivery, Target};
use stormproof_store::{SqliteStore, Store, UserRecord};
use stormproof_types::{Email, TenantName};

struct World {
    _dir: tempfile::TempDir,
    jmap: Jmap,
    caller: Caller,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("store"));
        let tenant = TenantName::parse("acme").expect("tenant");
        store
            .create_tenant(&tenant, &["acme.test".into()], 0)
            .expect("tenant");
        store
            .create_user(&UserRecord {
                tenant: tenant.clone(),
                id: "u-alice".into(),
                email: Email::parse("alice@acme.test").expect("address"),
                password_hash: String::new(),
                enabled: true,
                totp_sealed: None,
                created: 0,
            })
            .expect("user");
        let account = store
            .create_mail_account(&tenant, "u-alice", 1 << 24)
            .expect("account");
        let delivery = Delivery::open(store.clone(), dir.path()).expect("delivery");
        for n in 0..3 {
            let raw = format!(
                "From: Bob <bob@globex.test>\r\nTo: alice@acme.test\r\nSubject: Note {n}\r\n\
                 Message-ID: <n{n}@globex.test>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
                 --b\r\nContent-Type: text/plain\r\n\r\nHello {n}\r\n--b\r\n\
                 Content-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n\
                 JVBERi0xLjQK\r\n--b--\r\n"
            );
            delivery
                .deliver(
                    &tenant,
                    &account.account_id,
                    raw.as_bytes(),
                    Target::Role("inbox"),
                    &[],
                    1_772_445_600,
                )
                .expect("delivery");
        }
        let jmap = Jmap::new(store, delivery, JmapConfig::for_base_url("http://127.0.0.1"));
        World {
            _dir: dir,
            jmap,
            caller: Caller {
                tenant,
                account_id: account.account_id,
                username: "alice@acme.test".into(),
            },
        }
    })
}

/// `data` with each `"A"` replaced by the caller's quoted account id.
fn with_account(data: &[u8], account: &str) -> Vec<u8> {
    let quoted = format!("\"{account}\"");
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while let Some(at) = rest.windows(3).position(|w| w == b"\"A\"") {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(quoted.as_bytes());
        rest = &rest[at + 3..];
    }
    out.extend_from_slice(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let world = world();
    let request = with_account(data, &world.caller.account_id);
    let response = world.jmap.api(&world.caller, &request);
    assert!(
        response.status == 200 || response.status == 400,
        "status {}",
        response.status
    );
    if response.status == 400 {
        assert!(response.accessed.is_empty(), "a refused request read mail");
    }
});
