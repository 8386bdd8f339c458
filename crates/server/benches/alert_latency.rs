//! Alert latency: from sending a request with a forged token to the
//! critical alert's arrival at a webhook, at idle and under JMAP read load,
//! side by side in one run.
//!
//! The real server (release build) runs with `--alert-webhook` pointing at
//! a receiver in this process, which stamps each POST with the instant its
//! body was read; the sender stamps each request just before sending it, so
//! both ends use one monotonic clock. The path measured is the whole one:
//! the verifier refuses the token and queues a security event, the event
//! writer stores it, the server imports the store's outbox into the audit
//! log (every 200 ms), the detection engine follows the log and raises the
//! alert, and the webhook sink POSTs it.
//!
//! Each forged token names a key id nobody has (`unknown_key`, critical),
//! a different one each time: `token_forgery` deduplicates on reason and
//! key id, so reusing one key would raise one alert and count the rest.
//! Forged tokens are sent at random intervals of 100-300 ms, so they land
//! at every phase of the 200 ms outbox poll. Under load, reader threads
//! send JMAP `Email/get` (20 messages with their bodies) back to back for
//! the whole phase, each read itself an audit record made durable before
//! the response.
//!
//! Run: `cargo bench -p stormproof --bench alert_latency`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The receiver the demo uses; the bench needs only part of it.
#[allow(dead_code)]
#[path = "../src/webhook_receiver.rs"]
mod webhook_receiver;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde_json::{Value, json};
use webhook_receiver::HookReceiver;

const BIN: &str = env!("CARGO_BIN_EXE_stormproof");
const COMMAND: &str = "cargo bench -p stormproof --bench alert_latency";

/// Forged tokens per phase, after [`WARMUP`] unmeasured ones.
const SAMPLES: usize = 100;
const WARMUP: usize = 5;
/// The interval between forged tokens is uniform in this range.
const INTERVAL_MS: (u64, u64) = (100, 300);
/// Reader threads in the loaded phase.
const READERS: usize = 4;
/// Messages in the mailbox, all read by every `Email/get`.
const MESSAGES: usize = 20;
/// An alert that has not arrived this long after its request is missing.
const ALERT_BOUND: Duration = Duration::from_secs(10);
/// No phase runs longer than this.
const PHASE_DEADLINE: Duration = Duration::from_secs(50);
const START_TIMEOUT: Duration = Duration::from_secs(60);
const ALICE: &str = "alice@acme.test";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn cli(data: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "stormproof {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn smtp_deliver(address: &str, index: usize) {
    let stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut expect = |code: &str| loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "SMTP closed");
        if line.as_bytes().get(3) != Some(&b'-') {
            assert!(line.starts_with(code), "SMTP: {line}");
            return;
        }
    };
    expect("220");
    let body = "The quarterly figures are attached below.\r\n".repeat(40);
    let message = format!(
        "From: <bob@globex.test>\r\nTo: <{ALICE}>\r\nSubject: Report {index}\r\n\
         Message-ID: <report-{index}@globex.test>\r\n\r\n{body}."
    );
    for (line, code) in [
        ("EHLO bench.test".to_owned(), "250"),
        ("MAIL FROM:<bob@globex.test>".to_owned(), "250"),
        (format!("RCPT TO:<{ALICE}>"), "250"),
        ("DATA".to_owned(), "354"),
        (message, "250"),
        ("QUIT".to_owned(), "221"),
    ] {
        writer.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        expect(code);
    }
}

/// A token shaped like `genuine`, with a fresh `jti`, naming key `kid`
/// that no tenant has; the signature is never checked, as no key is found.
fn forge(genuine: &str, kid: &str, jti: &str) -> String {
    let payload = genuine.split('.').nth(1).unwrap();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["jti"] = json!(jti);
    let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid});
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode([7u8; 64])
    )
}

struct Phase {
    latencies: Vec<Duration>,
    missing: usize,
    reads: u64,
    seconds: f64,
}

/// Sends forged tokens at random intervals, with `readers` threads reading
/// mail meanwhile, then collects every alert.
fn phase(
    name: &str,
    url: &str,
    hook: &HookReceiver,
    genuine: &str,
    account: &str,
    readers: usize,
) -> Phase {
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let request = json!({
        "using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
        "methodCalls": [
            ["Email/query", {"accountId": account, "limit": MESSAGES}, "q"],
            ["Email/get", {"accountId": account,
                           "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                           "properties": ["subject", "from", "textBody", "bodyValues"],
                           "fetchAllBodyValues": true}, "g"]
        ]
    })
    .to_string();
    let threads: Vec<_> = (0..readers)
        .map(|_| {
            let (stop, reads, request) = (stop.clone(), reads.clone(), request.clone());
            let (url, token) = (url.to_owned(), genuine.to_owned());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::new();
                let deadline = Instant::now() + PHASE_DEADLINE;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let response = http
                        .post(format!("{url}/jmap/api"))
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(request.clone())
                        .send()
                        .unwrap();
                    assert_eq!(response.status().as_u16(), 200);
                    let _ = response.bytes().unwrap();
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let http = reqwest::blocking::Client::new();
    let mut rng = rand::thread_rng();
    let mut sent = Vec::new();
    let started = Instant::now();
    for i in 0..WARMUP + SAMPLES {
        std::thread::sleep(Duration::from_millis(
            rng.gen_range(INTERVAL_MS.0..=INTERVAL_MS.1),
        ));
        let jti = format!("{name}-{i}-{}", rng.r#gen::<u64>());
        let token = forge(genuine, &format!("stolen-{}", rng.r#gen::<u64>()), &jti);
        let at = Instant::now();
        let status = http
            .get(format!("{url}/api/whoami"))
            .bearer_auth(&token)
            .send()
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 401, "a forged token was accepted");
        if i >= WARMUP {
            sent.push((jti, at));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }

    let mut latencies = Vec::new();
    let mut missing = 0;
    for (jti, at) in &sent {
        let left = ALERT_BOUND.saturating_sub(at.elapsed());
        match hook.wait_for(left, |a| a["token_ids"][0] == jti.as_str()) {
            Some(received) => {
                assert_eq!(received.body["severity"], "critical");
                latencies.push(received.at.saturating_duration_since(*at));
            }
            None => missing += 1,
        }
    }
    latencies.sort();
    Phase {
        latencies,
        missing,
        reads: reads.load(Ordering::Relaxed),
        seconds,
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let tmp = tempfile::Builder::new()
        .prefix("stormproof-alert-bench")
        .tempdir()
        .unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("stormproof.toml"), "[dns]\nnameservers = []\n").unwrap();
    for (tenant, domain, user) in [
        ("acme", "acme.test", ALICE),
        ("globex", "globex.test", "bob@globex.test"),
    ] {
        cli(
            &data,
            &["tenant", "create", tenant, "--domain", domain],
            None,
        );
        cli(
            &data,
            &["user", "create", user, "--password-stdin"],
            Some("correct horse battery staple\n"),
        );
    }
    let hook = HookReceiver::start().unwrap();
    let (http_port, smtp_port) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{http_port}");
    let smtp = format!("127.0.0.1:{smtp_port}");
    let _server = Server(
        Command::new(BIN)
            .arg("--data")
            .arg(&data)
            .args(["serve", "--http", &format!("127.0.0.1:{http_port}")])
            .args([
                "--public-url",
                &url,
                "--smtp",
                &smtp,
                "--hostname",
                "mx.test",
            ])
            .args(["--alert-webhook", &hook.url])
            .env("STORMPROOF_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::blocking::Client::new();
    let deadline = Instant::now() + START_TIMEOUT;
    while !http
        .get(format!("{url}/healthz"))
        .send()
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    for index in 0..MESSAGES {
        smtp_deliver(&smtp, index);
    }
    let genuine = cli(
        &data,
        &["token", "issue", "--user", ALICE, "--lifetime", "1h"],
        None,
    )
    .trim()
    .to_owned();
    let session: Value = http
        .get(format!("{url}/.well-known/jmap"))
        .bearer_auth(&genuine)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let account = session["primaryAccounts"]["urn:ietf:params:jmap:mail"]
        .as_str()
        .unwrap()
        .to_owned();

    println!("alert latency: forged token sent -> critical alert at the webhook");
    println!(
        "{SAMPLES} forged tokens per phase (after {WARMUP} unmeasured), {}-{} ms apart; under load, {READERS} threads each reading {MESSAGES} messages with bodies per request\n",
        INTERVAL_MS.0, INTERVAL_MS.1
    );
    let idle = phase("idle", &url, &hook, &genuine, &account, 0);
    let loaded = phase("load", &url, &hook, &genuine, &account, READERS);

    println!(
        "{:<12} {:>9} {:>9} {:>9} {:>9} {:>8} {:>14}",
        "phase", "p50 ms", "p99 ms", "max ms", "min ms", "missing", "Email/get /s"
    );
    for (name, phase) in [("idle", &idle), ("under load", &loaded)] {
        println!(
            "{:<12} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>8} {:>14.1}",
            name,
            ms(percentile(&phase.latencies, 0.50)),
            ms(percentile(&phase.latencies, 0.99)),
            ms(phase.latencies.last().copied().unwrap_or_default()),
            ms(phase.latencies.first().copied().unwrap_or_default()),
            phase.missing,
            phase.reads as f64 / phase.seconds,
        );
    }
    let ratio = |p: f64| {
        ms(percentile(&loaded.latencies, p))
            / ms(percentile(&idle.latencies, p)).max(f64::MIN_POSITIVE)
    };
    println!(
        "\nunder load / idle: p50 {:.2}x, p99 {:.2}x",
        ratio(0.50),
        ratio(0.99)
    );
    let p99 = percentile(&loaded.latencies, 0.99).max(percentile(&idle.latencies, 0.99));
    println!(
        "target p99 < 1000 ms: {} ({:.1} ms worst phase)",
        if p99 < Duration::from_secs(1) {
            "met"
        } else {
            "MISSED"
        },
        ms(p99)
    );
    println!("\nreproduce: {COMMAND}");
    assert_eq!(idle.missing + loaded.missing, 0, "alerts never arrived");
}
