//! Verification throughput per core, single-threaded, for EdDSA and ES256
//! access tokens, measured side by side in one run:
//!
//! - `raw_ed25519` / `raw_p256`: only the signature check the verifier makes
//!   (`stormproof_keys::PublicKey::verify`'s exact calls), over the already
//!   decoded signing input and signature of the same tokens;
//! - `jsonwebtoken`: `jsonwebtoken::decode` of the same tokens with the same
//!   audience and issuer (it has no ledger, so it does no ledger check);
//! - `stormproof_uncached`: `Verifier::verify` with the cache disabled
//!   (`cache_capacity: 0`, so nothing is ever inserted), over a pool of
//!   distinct ledger-recorded tokens on a real SQLite store, recorded through
//!   the same store handle the verifier reads, as the server's own issuer
//!   records them in a single-binary deployment: every iteration parses,
//!   checks the signature, and checks the ledger entry and the session
//!   state, which come from the handle's snapshot of the joined read;
//! - `stormproof_uncached_sqlite`: the same, by a verifier on a second
//!   handle of the same database, for which the tokens were minted elsewhere
//!   (the CLI, another node): every iteration reads SQLite;
//! - `stormproof_cached`: `Verifier::verify` of one token again and again
//!   after a warm-up verification;
//! - `ledger_only`, `snapshot_only` and `parse_only`: the non-cryptographic
//!   parts of the uncached paths on their own (`Store::ledger_entry`, one
//!   joined SQLite read; `Store::recorded_ledger_entry`, the snapshot lookup;
//!   and the strict JWS/claims parsing), to show where uncached time goes.
//!
//! Run with `cargo bench -p stormproof-verifier --bench verify`; BENCHMARKS.md
//! at the workspace root records the results.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use p256::ecdsa::signature::Verifier as _;
use serde::Deserialize;
use serde_json::json;
use stormproof_jws::{AccessClaims, Compact, Header};
use stormproof_keys::{PublicKey, SecretKey, Signer};
use stormproof_store::{
    ClientKind, ClientRecord, KeyBackend, KeyRecord, KeyStatus, SessionRecord, SqliteStore, Store,
    TokenKind, TokenRecord, UserRecord,
};
use stormproof_types::{Alg, Clock, Email, SystemClock, TenantName, UnixTime, random_id};
use stormproof_verifier::{AuthScheme, RequestContext, Verifier, VerifierConfig, VerifyMode};

const URL: &str = "http://127.0.0.1:8080";
const DAY: i64 = 86_400;
/// Distinct ledger-recorded tokens per algorithm; a power of two so the
/// cycling index is a mask.
const POOL: usize = 2048;
const SID: &str = "s-bench";

/// What `jsonwebtoken` deserializes: the same claims, typed, as the
/// verifier's strict parser produces.
#[derive(Debug, Deserialize)]
#[allow(dead_code)] // Deserialized for a like-for-like cost; never read.
struct JwtClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    iat: i64,
    jti: String,
    tid: String,
    sid: String,
    client_id: String,
    scope: String,
}

/// A token's signing input and its decoded signature.
type Decoded = (Vec<u8>, Vec<u8>);

/// One algorithm's key and its pool of issued, ledger-recorded tokens.
struct Keyset {
    kid: &'static str,
    public: PublicKey,
    tokens: Vec<String>,
    jtis: Vec<String>,
    /// Each token's signing input and decoded signature.
    decoded: Vec<Decoded>,
}

struct Deployment {
    _dir: tempfile::TempDir,
    /// The handle the tokens were recorded through, and `uncached` reads.
    store: Arc<dyn Store>,
    tenant: TenantName,
    uncached: Verifier,
    /// Uncached, on a second handle of the same database, which recorded
    /// nothing: the SQLite fallback.
    uncached_sqlite: Verifier,
    cached: Verifier,
    eddsa: Keyset,
    es256: Keyset,
}

fn bearer() -> RequestContext<'static> {
    RequestContext {
        method: "GET",
        url: "http://127.0.0.1:8080/jmap",
        dpop: None,
        scheme: AuthScheme::Bearer,
        ip: Some("198.51.100.7"),
        user_agent: Some("bench"),
        mode: VerifyMode::Resource,
    }
}

impl Deployment {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        // Real time: jsonwebtoken checks `exp` against the system clock.
        let now = SystemClock.now();
        let tenant = TenantName::parse("alpha").unwrap();
        store
            .create_tenant(&tenant, &["alpha.test".into()], now - 90 * DAY)
            .unwrap();
        store
            .create_user(&UserRecord {
                tenant: tenant.clone(),
                id: "u-alice".into(),
                email: Email::parse("alice@alpha.test").unwrap(),
                password_hash: "$argon2id$unused".into(),
                totp_sealed: None,
                enabled: true,
                created: now - 30 * DAY,
            })
            .unwrap();
        store
            .create_client(&ClientRecord {
                tenant: tenant.clone(),
                client_id: "mail-app".into(),
                name: "mail-app".into(),
                kind: ClientKind::Public,
                secret_hash: None,
                redirect_uris: vec![format!("{URL}/cb")],
                require_dpop: false,
                blocked: false,
                created: now - 30 * DAY,
            })
            .unwrap();
        store
            .create_session(&SessionRecord {
                tenant: tenant.clone(),
                sid: SID.into(),
                subject: "u-alice".into(),
                client_id: "mail-app".into(),
                auth_time: now - 3600,
                amr: vec!["pwd".into()],
                ip: Some("192.0.2.1".into()),
                user_agent: None,
                revoked_at: None,
            })
            .unwrap();

        // Both keys first, as in a running server, whose keys change about
        // monthly: a key change bumps the epochs, which retires every ledger
        // snapshot taken before it.
        let ed = Self::key(&store, &tenant, "k-ed", Alg::EdDsa, now);
        let es = Self::key(&store, &tenant, "k-es", Alg::Es256, now);
        let eddsa = Self::keyset(&store, &tenant, "k-ed", ed, now);
        let es256 = Self::keyset(&store, &tenant, "k-es", es, now);

        let elsewhere: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let verifier = |store: &Arc<dyn Store>, cache_capacity| {
            let config = VerifierConfig {
                public_url: URL.into(),
                audience: URL.into(),
                cache_capacity,
                ..VerifierConfig::default()
            };
            Verifier::new(store.clone(), Arc::new(SystemClock), config, None).unwrap()
        };
        // Each row below must measure the path it is named for.
        let epochs = store.epochs().unwrap();
        for jti in eddsa.jtis.iter().chain(&es256.jtis) {
            let snapshot = store.recorded_ledger_entry(&tenant, jti);
            assert!(
                snapshot.is_some_and(|s| s.epochs == epochs),
                "no snapshot of {jti}"
            );
            assert!(elsewhere.recorded_ledger_entry(&tenant, jti).is_none());
        }
        Self {
            _dir: dir,
            uncached: verifier(&store, 0),
            uncached_sqlite: verifier(&elsewhere, 0),
            cached: verifier(&store, VerifierConfig::default().cache_capacity),
            store,
            tenant,
            eddsa,
            es256,
        }
    }

    /// Stores an active signing key.
    fn key(
        store: &Arc<dyn Store>,
        tenant: &TenantName,
        kid: &'static str,
        alg: Alg,
        now: UnixTime,
    ) -> SecretKey {
        let secret = SecretKey::generate(alg);
        store
            .insert_key(&KeyRecord {
                tenant: tenant.clone(),
                kid: kid.into(),
                alg,
                backend: KeyBackend::Software,
                material: vec![],
                public_key: secret.public_key().to_bytes(),
                created: now - DAY,
                not_before: now - DAY,
                not_after: now + 30 * DAY,
                status: KeyStatus::Active,
                activated_at: Some(now - DAY),
                retiring_at: None,
                imported: false,
            })
            .unwrap();
        secret
    }

    /// Issues [`POOL`] tokens with `kid`'s key exactly as the issuer would:
    /// signed, and recorded in the ledger through `store`.
    fn keyset(
        store: &Arc<dyn Store>,
        tenant: &TenantName,
        kid: &'static str,
        secret: SecretKey,
        now: UnixTime,
    ) -> Keyset {
        let alg = secret.alg();
        let (iat, exp) = (now - 10, now + 3000);
        let header = json!({"alg": alg.jws_name(), "typ": "at+jwt", "kid": kid});
        let mut tokens = Vec::with_capacity(POOL);
        let mut jtis = Vec::with_capacity(POOL);
        let mut decoded = Vec::with_capacity(POOL);
        for _ in 0..POOL {
            let jti = random_id(16);
            let claims = json!({
                "iss": format!("{URL}/t/{tenant}"),
                "sub": "u-alice",
                "aud": URL,
                "exp": exp,
                "iat": iat,
                "jti": jti,
                "tid": tenant.as_str(),
                "sid": SID,
                "client_id": "mail-app",
                "scope": "mail.read mail.send",
            });
            store
                .record_token(&TokenRecord {
                    tenant: tenant.clone(),
                    jti: jti.clone(),
                    kind: TokenKind::Access,
                    sub: "u-alice".into(),
                    sid: SID.into(),
                    client_id: "mail-app".into(),
                    scope: "mail.read mail.send".into(),
                    kid: Some(kid.into()),
                    iat,
                    exp,
                    parent: None,
                    ip: None,
                    user_agent: None,
                    jkt: None,
                    secret_hash: None,
                    used_at: None,
                    revoked_at: None,
                })
                .unwrap();
            let token =
                stormproof_jws::encode(&header, &claims, |input| secret.sign(input)).unwrap();
            let compact = Compact::parse(&token).unwrap();
            decoded.push((compact.signing_input.to_vec(), compact.signature.clone()));
            tokens.push(token);
            jtis.push(jti);
        }
        Keyset {
            kid,
            public: secret.public_key(),
            tokens,
            jtis,
            decoded,
        }
    }
}

/// `PublicKey::verify`'s Ed25519 arm, called directly.
fn raw_ed25519(key: &ed25519_dalek::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    let signature = ed25519_dalek::Signature::from_bytes(&bytes);
    key.verify_strict(message, &signature).is_ok()
}

/// `PublicKey::verify`'s P-256 arm, called directly.
fn raw_p256(key: &p256::ecdsa::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    if signature.len() != 64 {
        return false;
    }
    let Ok(signature) = p256::ecdsa::Signature::from_slice(signature) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

/// Runs `f` on pool entry 0, 1, 2, … cycling, one entry per iteration.
fn cycle<T>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    pool: &[T],
    f: impl Fn(&T) -> bool,
) {
    assert!(pool.len().is_power_of_two());
    for item in pool {
        assert!(f(item), "{name}: a pool entry does not verify");
    }
    let mask = pool.len() - 1;
    let mut i = 0;
    group.bench_function(name, |b| {
        b.iter(|| {
            let ok = f(black_box(&pool[i]));
            i = (i + 1) & mask;
            ok
        })
    });
}

/// Criterion measures each row on its own, seconds apart from the others,
/// so on a shared machine background load can slow one row and not the
/// next. This runs `fast` and `slow` in alternating short rounds (each pair
/// of rounds within a few milliseconds, so both see the same load) for
/// `PAIRED_TIME`, and prints the median over rounds of
/// `time(fast) / time(slow)`: the throughput of `slow` relative to `fast`.
fn paired(label: &str, fast: impl Fn(usize) -> bool, slow: impl Fn(usize) -> bool) {
    const ROUND: usize = 32;
    const PAIRED_TIME: Duration = Duration::from_secs(3);
    let run = |f: &dyn Fn(usize) -> bool, from: usize| {
        let start = Instant::now();
        for i in from..from + ROUND {
            assert!(
                black_box(f(black_box(i))),
                "{label}: a pool entry does not verify"
            );
        }
        start.elapsed().as_secs_f64()
    };
    let mut ratios = Vec::new();
    let (mut i, start) = (0, Instant::now());
    while start.elapsed() < PAIRED_TIME {
        // Alternate which side goes first, so neither always follows the other.
        let (t_fast, t_slow) = if ratios.len() % 2 == 0 {
            (run(&fast, i), run(&slow, i))
        } else {
            let t_slow = run(&slow, i);
            (run(&fast, i), t_slow)
        };
        ratios.push(t_fast / t_slow);
        i += ROUND;
    }
    ratios.sort_by(f64::total_cmp);
    let quartile = |q: usize| ratios[(ratios.len() - 1) * q / 4];
    println!(
        "paired {label}: {:.3} (quartiles {:.3}..{:.3}, {} interleaved rounds of {ROUND})",
        quartile(2),
        quartile(1),
        quartile(3),
        ratios.len()
    );
}

fn bench_alg(c: &mut Criterion, d: &Deployment, keys: &Keyset) {
    let alg = keys.public.alg();
    let group_name = format!("verify/{}", alg.jws_name().to_lowercase());
    let mut group = c.benchmark_group(&group_name);
    group
        .throughput(Throughput::Elements(1))
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    // 1. The raw signature check, on the same bytes.
    let raw_name = match keys.public {
        PublicKey::Ed25519(_) => "raw_ed25519",
        PublicKey::P256(_) => "raw_p256",
    };
    let raw = |(message, signature): &Decoded| match &keys.public {
        PublicKey::Ed25519(key) => raw_ed25519(key, message, signature),
        PublicKey::P256(key) => raw_p256(key, message, signature),
    };
    cycle(&mut group, raw_name, &keys.decoded, raw);

    // 2. jsonwebtoken, same tokens, same audience and issuer, no ledger.
    let (algorithm, decoding) = match &keys.public {
        PublicKey::Ed25519(key) => (
            jsonwebtoken::Algorithm::EdDSA,
            jsonwebtoken::DecodingKey::from_ed_der(key.as_bytes()),
        ),
        PublicKey::P256(key) => (
            jsonwebtoken::Algorithm::ES256,
            jsonwebtoken::DecodingKey::from_ec_der(key.to_encoded_point(false).as_bytes()),
        ),
    };
    let mut validation = jsonwebtoken::Validation::new(algorithm);
    validation.set_audience(&[URL]);
    validation.set_issuer(&[format!("{URL}/t/{}", d.tenant)]);
    validation.leeway = 30;
    let jwt = |token: &String| {
        jsonwebtoken::decode::<JwtClaims>(token, &decoding, &validation)
            .map(black_box)
            .is_ok()
    };
    cycle(&mut group, "jsonwebtoken", &keys.tokens, jwt);

    // 3. Uncached: the cache is disabled, so every call takes the full path,
    // with the ledger lookup and the session check, on a distinct token.
    let request = bearer();
    let uncached = |token: &String| d.uncached.verify(token, &request).map(black_box).is_ok();
    cycle(&mut group, "stormproof_uncached", &keys.tokens, uncached);

    // 3b. Uncached, minted elsewhere: the same tokens through a handle that
    // did not record them, so the ledger check is a SQLite read.
    let uncached_sqlite = |token: &String| {
        d.uncached_sqlite
            .verify(token, &request)
            .map(black_box)
            .is_ok()
    };
    cycle(
        &mut group,
        "stormproof_uncached_sqlite",
        &keys.tokens,
        uncached_sqlite,
    );

    // 4. Cached: one token, verified once to fill the cache.
    let token = &keys.tokens[0];
    d.cached.verify(token, &request).unwrap();
    group.bench_function("stormproof_cached", |b| {
        b.iter(|| d.cached.verify(black_box(token), &request).is_ok())
    });

    // The uncached path's non-cryptographic parts, separately.
    cycle(&mut group, "ledger_only", &keys.jtis, |jti| {
        let record = d.store.ledger_entry(&d.tenant, jti).unwrap();
        black_box(record).is_some_and(|r| r.kid.as_deref() == Some(keys.kid) && r.session.is_some())
    });
    cycle(&mut group, "snapshot_only", &keys.jtis, |jti| {
        let snapshot = d.store.recorded_ledger_entry(&d.tenant, jti);
        black_box(snapshot).is_some_and(|s| s.entry.kid.as_deref() == Some(keys.kid))
    });
    cycle(&mut group, "parse_only", &keys.tokens, |token| {
        let compact = Compact::parse(token).unwrap();
        let header = Header::parse(&compact.header_json).unwrap();
        let claims = AccessClaims::parse(&compact.payload).unwrap();
        black_box((&compact, &header, &claims));
        true
    });
    group.finish();

    // The ratios, once more, measured interleaved. Skipped when criterion
    // only lists or smoke-tests the benchmarks.
    if std::env::args().any(|arg| matches!(arg.as_str(), "--test" | "--list" | "--profile-time")) {
        return;
    }
    let mask = POOL - 1;
    paired(
        &format!("{group_name} stormproof_uncached/{raw_name}"),
        |i| raw(&keys.decoded[i & mask]),
        |i| uncached(&keys.tokens[i & mask]),
    );
    paired(
        &format!("{group_name} stormproof_uncached_sqlite/{raw_name}"),
        |i| raw(&keys.decoded[i & mask]),
        |i| uncached_sqlite(&keys.tokens[i & mask]),
    );
    paired(
        &format!("{group_name} stormproof_uncached/jsonwebtoken"),
        |i| jwt(&keys.tokens[i & mask]),
        |i| uncached(&keys.tokens[i & mask]),
    );
}

fn benches(c: &mut Criterion) {
    let d = Deployment::new();
    bench_alg(c, &d, &d.eddsa);
    bench_alg(c, &d, &d.es256);
}

criterion_group!(verify, benches);
criterion_main!(verify);
