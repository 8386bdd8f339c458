//! Durable delivery: messages per second received and made durable, with
//! 1, 8 and 64 concurrent senders, Stormproof over SMTP side by side with
//! Dovecot's LMTP delivery (Debian `dovecot-lmtpd`) on the same machine, in
//! one run.
//!
//! Both servers acknowledge a message only once it is on stable storage:
//! Stormproof by design (blob and record synced before the 250), Dovecot
//! with `mail_fsync = always`. Stormproof's SPF/DKIM/DMARC checks are off
//! (`[dns] nameservers = []`): LMTP does none. Every sender is a thread
//! with its own connection sending the same ~4 KiB messages to both
//! servers, one transaction at a time. The levels run interleaved, Stormproof and
//! Dovecot back to back, in alternating order, for a few rounds, all into
//! one mailbox that grows over the run; the summary shows the median round.
//!
//! Run: `cargo bench -p stormproof --bench delivery`
//!
//! Needs `/usr/sbin/dovecot`; when it is missing the harness installs
//! `dovecot-lmtpd` with apt-get (as root), and measures Stormproof alone if
//! that fails. Everything listens on 127.0.0.1 only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use stormproof_store::{MailStore, SqliteStore, Store};
use stormproof_types::{Email, TenantName};

const BIN: &str = env!("CARGO_BIN_EXE_stormproof");
const DOVECOT: &str = "/usr/sbin/dovecot";
const COMMAND: &str = "cargo bench -p stormproof --bench delivery";

/// (concurrent senders, messages per round), split evenly between senders.
const LEVELS: [(usize, usize); 3] = [(1, 300), (8, 1200), (64, 1600)];
/// Rounds of every level on both servers; the table shows the median.
const ROUNDS: usize = 3;
/// Messages sent on one connection before measuring, to each server.
const WARMUP: usize = 16;
/// Size of every message as sent (header and body, without the final dot).
const MESSAGE_SIZE: usize = 4096;
/// No level runs longer than this; a sender stops sending once it is over.
const LEVEL_DEADLINE: Duration = Duration::from_secs(120);
/// Socket timeouts: a wedged server fails the bench instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(60);

const FROM: &str = "bob@globex.test";
const TO: &str = "alice@acme.test";
const PASSWORD: &str = "correct horse battery staple";

fn main() {
    let tmp = tempfile::Builder::new()
        .prefix("stormproof-delivery-bench")
        .tempdir()
        .expect("tempdir");
    let device = disk_of(tmp.path());
    print_machine(tmp.path());

    let mut stormproof = Stormproof::start(&tmp.path().join("stormproof"));
    let mut dovecot = if ensure_dovecot() {
        Some(Dovecot::start(&tmp.path().join("dovecot")))
    } else {
        println!(
            "\n**{DOVECOT} is missing and `apt-get install -y dovecot-lmtpd` failed: \
             measuring Stormproof alone.**\n"
        );
        None
    };

    let servers: Vec<Target> = std::iter::once(Target {
        name: "stormproof",
        address: stormproof.smtp,
        proto: Proto::Smtp,
    })
    .chain(dovecot.as_ref().map(|d| Target {
        name: "dovecot",
        address: d.lmtp,
        proto: Proto::Lmtp,
    }))
    .collect();

    // Warm both up: first connection, mailbox creation, indexes.
    for server in &servers {
        let warm = run_level(server, 1, WARMUP, "warmup", device);
        assert_eq!(
            warm.acked, WARMUP,
            "{} warmup failed: {:?}",
            server.name, warm.first_error
        );
    }

    // results[level][server] = one Outcome per round.
    let mut results: Vec<Vec<Vec<Outcome>>> = LEVELS
        .iter()
        .map(|_| servers.iter().map(|_| Vec::new()).collect())
        .collect();
    // Messages each server holds for alice so far: per-message cost may
    // grow with the mailbox, so every row says how full it was.
    let mut inbox: Vec<usize> = servers.iter().map(|_| WARMUP).collect();
    println!(
        "| round | senders | server | inbox before | acked | failed | wall s | msgs/s | p50 ms | p99 ms | disk flushes/msg |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for round in 0..ROUNDS {
        for (level, &(senders, total)) in LEVELS.iter().enumerate() {
            let tag = format!("r{round}-c{senders}");
            // Alternate which server goes first, so neither always runs on
            // the warmer (or busier) machine.
            let mut order: Vec<usize> = (0..servers.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for index in order {
                let server = &servers[index];
                let outcome = run_level(server, senders, total, &tag, device);
                println!(
                    "| {} | {senders} | {} | {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {} |",
                    round + 1,
                    server.name,
                    inbox[index],
                    outcome.acked,
                    outcome.failed,
                    outcome.wall.as_secs_f64(),
                    outcome.rate(),
                    outcome.latency_ms(0.50),
                    outcome.latency_ms(0.99),
                    outcome
                        .flushes
                        .map(|f| format!("{:.2}", f as f64 / outcome.acked.max(1) as f64))
                        .unwrap_or_else(|| "n/a".into()),
                );
                if let Some(error) = &outcome.first_error {
                    println!("  {} first error: {error}", server.name);
                }
                inbox[index] += outcome.acked;
                results[level][index].push(outcome);
            }
        }
    }

    let acked = inbox;

    // Stop both before counting what they stored.
    stormproof.process.stop();
    if let Some(d) = dovecot.as_mut() {
        d.process.stop();
    }

    println!("\n## Durable delivery (median of {ROUNDS} rounds)\n");
    println!("| senders | stormproof msgs/s | dovecot msgs/s | ratio |");
    println!("|---|---|---|---|");
    for (level, &(senders, _)) in LEVELS.iter().enumerate() {
        let stormproof_rate = median(results[level][0].iter().map(Outcome::rate).collect());
        let dovecot_rate = results[level]
            .get(1)
            .map(|rounds| median(rounds.iter().map(Outcome::rate).collect()));
        match dovecot_rate {
            Some(d) => println!(
                "| {senders} | {stormproof_rate:.0} | {d:.0} | {:.2} |",
                stormproof_rate / d
            ),
            None => println!("| {senders} | {stormproof_rate:.0} | n/a | n/a |"),
        }
    }
    println!("\nratio = stormproof msgs/s / dovecot msgs/s; reproduce with `{COMMAND}`");
    println!(
        "alice's mailbox grows from {WARMUP} to {} messages on each server over the run \
         (see \"inbox before\" above)",
        acked[0]
    );

    // Every acknowledged message must be there.
    let mut lost = false;
    let stored = stormproof.inbox_count();
    println!(
        "\nstormproof: {} acknowledged (incl. {WARMUP} warmup), {stored} in alice's inbox",
        acked[0]
    );
    lost |= stored < acked[0];
    if let Some(d) = &dovecot {
        let stored = d.maildir_count();
        println!(
            "dovecot: {} acknowledged (incl. {WARMUP} warmup), {stored} in alice's Maildir (new/ + cur/)",
            acked[1]
        );
        lost |= stored < acked[1];
    }
    assert!(!lost, "a server lost acknowledged messages");
}

/// Which protocol to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Smtp,
    Lmtp,
}

struct Target {
    name: &'static str,
    address: SocketAddr,
    proto: Proto,
}

/// One level on one server.
#[derive(Debug, Default)]
struct Outcome {
    acked: usize,
    failed: usize,
    wall: Duration,
    first_error: Option<String>,
    /// Per-transaction latency, MAIL to the final reply, sorted.
    latencies: Vec<Duration>,
    /// Cache flushes the data disk completed during the level.
    flushes: Option<u64>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 {
            self.acked as f64 / secs
        } else {
            0.0
        }
    }

    fn latency_ms(&self, quantile: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies.len() - 1) as f64 * quantile).round() as usize;
        self.latencies[index].as_secs_f64() * 1000.0
    }
}

/// What one sender thread did.
struct SenderResult {
    first_mail: Option<Instant>,
    last_reply: Option<Instant>,
    acked: usize,
    failed: usize,
    error: Option<String>,
    latencies: Vec<Duration>,
}

/// Runs `total` messages through `senders` concurrent connections.
fn run_level(
    server: &Target,
    senders: usize,
    total: usize,
    tag: &str,
    device: Option<(u64, u64)>,
) -> Outcome {
    let per_sender = total / senders;
    let barrier = Arc::new(Barrier::new(senders + 1));
    let threads: Vec<_> = (0..senders)
        .map(|sender| {
            let barrier = barrier.clone();
            let address = server.address;
            let proto = server.proto;
            let tag = format!("{tag}-s{sender}");
            std::thread::spawn(move || {
                // Connection and message bytes ready before the clock starts.
                let client = Client::connect(address, proto);
                let messages: Vec<Vec<u8>> = (0..per_sender).map(|n| message(&tag, n)).collect();
                barrier.wait();
                let mut result = SenderResult {
                    first_mail: None,
                    last_reply: None,
                    acked: 0,
                    failed: 0,
                    error: None,
                    latencies: Vec::with_capacity(per_sender),
                };
                let mut client = match client {
                    Ok(client) => client,
                    Err(e) => {
                        result.error = Some(format!("connect: {e}"));
                        return result;
                    }
                };
                let started = Instant::now();
                for data in &messages {
                    if started.elapsed() > LEVEL_DEADLINE {
                        result
                            .error
                            .get_or_insert_with(|| "level deadline reached".into());
                        break;
                    }
                    let begin = Instant::now();
                    result.first_mail.get_or_insert(begin);
                    match client.send(FROM, TO, data) {
                        Ok(reply) => {
                            let end = Instant::now();
                            result.last_reply = Some(end);
                            if reply.starts_with("250") {
                                result.acked += 1;
                                result.latencies.push(end - begin);
                            } else {
                                result.failed += 1;
                                result.error.get_or_insert(reply);
                            }
                        }
                        Err(e) => {
                            result.failed += 1;
                            result.error.get_or_insert_with(|| format!("i/o: {e}"));
                            break;
                        }
                    }
                }
                client.quit();
                result
            })
        })
        .collect();
    barrier.wait();
    let flushes_before = device.and_then(disk_flushes);
    let results: Vec<SenderResult> = threads
        .into_iter()
        .map(|t| t.join().expect("sender thread"))
        .collect();
    let flushes_after = device.and_then(disk_flushes);

    let first = results.iter().filter_map(|r| r.first_mail).min();
    let last = results.iter().filter_map(|r| r.last_reply).max();
    let mut latencies: Vec<Duration> = results
        .iter()
        .flat_map(|r| r.latencies.iter().copied())
        .collect();
    latencies.sort();
    Outcome {
        acked: results.iter().map(|r| r.acked).sum(),
        failed: results.iter().map(|r| r.failed).sum(),
        wall: match (first, last) {
            (Some(first), Some(last)) => last.saturating_duration_since(first),
            _ => Duration::ZERO,
        },
        first_error: results.iter().find_map(|r| r.error.clone()),
        latencies,
        flushes: flushes_before
            .zip(flushes_after)
            .map(|(before, after)| after.saturating_sub(before)),
    }
}

/// A ~4 KiB message (exactly [`MESSAGE_SIZE`] bytes before the final dot),
/// the same bytes for both servers, with a Message-ID unique in the run.
/// Returned with the terminating `.` line, ready to write after `354`.
fn message(tag: &str, n: usize) -> Vec<u8> {
    let mut text = format!(
        "From: Bob <{FROM}>\r\n\
         To: Alice <{TO}>\r\n\
         Subject: Delivery bench {tag} message {n}\r\n\
         Date: Sat, 01 Mar 2025 12:00:00 +0000\r\n\
         Message-ID: <{tag}-{n}@globex.test>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n"
    );
    let mut line = 0;
    while text.len() + 72 <= MESSAGE_SIZE {
        text.push_str(&format!(
            "{line:04} The quick brown fox jumps over the lazy dog, {tag} #{n:<6}"
        ));
        // Pad every line to 70 characters plus CRLF.
        let start = text.rfind('\n').map_or(0, |i| i + 1);
        while text.len() - start < 70 {
            text.push('-');
        }
        text.truncate(start + 70);
        text.push_str("\r\n");
        line += 1;
    }
    let rest = MESSAGE_SIZE - text.len();
    if rest >= 3 {
        text.push_str(&"x".repeat(rest - 2));
        text.push_str("\r\n");
    }
    debug_assert!(!text.contains("\n."), "no line may need dot-stuffing");
    text.push_str(".\r\n");
    text.into_bytes()
}

/// A minimal SMTP/LMTP client: one transaction at a time, every reply read.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(address: SocketAddr, proto: Proto) -> std::io::Result<Self> {
        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(10))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let mut client = Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        let greeting = client.reply()?;
        if !greeting.starts_with("220") {
            return Err(std::io::Error::other(format!("greeting: {greeting}")));
        }
        let hello = match proto {
            Proto::Smtp => "EHLO client.test",
            Proto::Lmtp => "LHLO client.test",
        };
        let reply = client.command(hello)?;
        if !reply.starts_with("250") {
            return Err(std::io::Error::other(format!("{hello}: {reply}")));
        }
        Ok(client)
    }

    /// Reads one (possibly multi-line) reply; returns its last line.
    fn reply(&mut self) -> std::io::Result<String> {
        // Bounded: no reply we expect has more than a few dozen lines.
        for _ in 0..100 {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(line.trim_end().to_owned());
            }
        }
        Err(std::io::Error::other("reply too long"))
    }

    fn command(&mut self, line: &str) -> std::io::Result<String> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// One transaction with one recipient; returns the final reply (for
    /// LMTP, the one per-recipient reply after the data).
    fn send(&mut self, from: &str, to: &str, data: &[u8]) -> std::io::Result<String> {
        let mail = self.command(&format!("MAIL FROM:<{from}>"))?;
        if !mail.starts_with("250") {
            return Ok(mail);
        }
        let rcpt = self.command(&format!("RCPT TO:<{to}>"))?;
        if !rcpt.starts_with("250") {
            self.command("RSET")?;
            return Ok(rcpt);
        }
        let go = self.command("DATA")?;
        if !go.starts_with("354") {
            return Ok(go);
        }
        // Message and final dot in one write.
        self.writer.write_all(data)?;
        self.reply()
    }

    fn quit(mut self) {
        let _ = self.command("QUIT");
    }
}

/// A child server process, stopped (SIGTERM, then SIGKILL) when dropped.
struct Process {
    name: &'static str,
    child: Option<Child>,
}

impl Process {
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        // Politely first: Dovecot's master takes its workers down with it.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits (bounded) until `address` greets with 220.
fn wait_for_greeting(address: SocketAddr, process: &mut Process, log: Option<&Path>) {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(status) = process.exited() {
            panic!(
                "{} exited early ({status}){}",
                process.name,
                log.map(|l| format!("; its log:\n{}", fs::read_to_string(l).unwrap_or_default()))
                    .unwrap_or_default()
            );
        }
        if let Ok(stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut line = String::new();
            let mut reader = BufReader::new(&stream);
            if reader.read_line(&mut line).is_ok() && line.starts_with("220") {
                let _ = (&stream).write_all(b"QUIT\r\n");
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{} did not greet on {address} within {START_TIMEOUT:?}{}",
        process.name,
        log.map(|l| format!("; its log:\n{}", fs::read_to_string(l).unwrap_or_default()))
            .unwrap_or_default()
    );
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

struct Stormproof {
    data: PathBuf,
    smtp: SocketAddr,
    process: Process,
}

impl Stormproof {
    fn start(data: &Path) -> Self {
        fs::create_dir_all(data).expect("data dir");
        // No SPF/DKIM/DMARC lookups: Dovecot's LMTP does none either (that
        // is the MTA's job in front of it), and this measures delivery, not
        // the machine's DNS resolver.
        fs::write(data.join("stormproof.toml"), "[dns]\nnameservers = []\n")
            .expect("write stormproof.toml");
        admin(
            data,
            &["tenant", "create", "acme", "--domain", "acme.test"],
            None,
        );
        admin(
            data,
            &["user", "create", TO, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        );
        let (http, smtp) = (free_port(), free_port());
        let child = Command::new(BIN)
            .arg("--data")
            .arg(data)
            .args(["serve", "--http", &http.to_string()])
            .args(["--public-url", &format!("http://{http}")])
            .args(["--smtp", &smtp.to_string(), "--hostname", "mx.test"])
            .env("STORMPROOF_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn stormproof serve");
        let mut process = Process {
            name: "stormproof",
            child: Some(child),
        };
        wait_for_greeting(smtp, &mut process, None);
        Self {
            data: data.to_owned(),
            smtp,
            process,
        }
    }

    /// How many messages alice's inbox holds, read straight from the store.
    fn inbox_count(&self) -> usize {
        let store = SqliteStore::open(&self.data).expect("open store");
        let acme = TenantName::parse("acme").expect("tenant");
        let alice = store
            .user_by_email(&acme, &Email::parse(TO).expect("email"))
            .expect("user lookup")
            .expect("alice exists");
        let account = store
            .mail_account_for_user(&acme, &alice.id)
            .expect("account lookup")
            .expect("alice has a mail account");
        let inbox = store
            .mailboxes(&acme, &account.account_id)
            .expect("mailboxes")
            .into_iter()
            .find(|m| m.role.as_deref() == Some("inbox"))
            .expect("an inbox");
        store
            .mailbox_email_ids(&acme, &account.account_id, &inbox.id)
            .expect("inbox ids")
            .len()
    }
}

/// Runs a `stormproof` admin command that must succeed.
fn admin(data: &Path, args: &[&str], stdin: Option<&str>) {
    let mut child = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .env("STORMPROOF_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stormproof");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "stormproof {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Installs `dovecot-lmtpd` when Dovecot is missing; whether it is there.
fn ensure_dovecot() -> bool {
    if Path::new(DOVECOT).exists() {
        return true;
    }
    println!("{DOVECOT} missing: installing dovecot-lmtpd with apt-get");
    let update = bounded(
        Command::new("apt-get").args(["update"]),
        Duration::from_secs(600),
    );
    let install = update
        && bounded(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "dovecot-lmtpd"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            Duration::from_secs(900),
        );
    install && Path::new(DOVECOT).exists()
}

/// Runs `command` to completion within `limit`; whether it succeeded.
fn bounded(command: &mut Command, limit: Duration) -> bool {
    let Ok(mut child) = command.stdin(Stdio::null()).spawn() else {
        return false;
    };
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

struct Dovecot {
    home: PathBuf,
    lmtp: SocketAddr,
    process: Process,
}

impl Dovecot {
    /// Starts a private Dovecot master in `dir` with only LMTP, delivering
    /// to `<dir>/home/<user>/Maildir` and syncing every write.
    fn start(dir: &Path) -> Self {
        fs::create_dir_all(dir).expect("dovecot dir");
        // Dovecot refuses to deliver as uid 0, so mail is written as an
        // unprivileged user (the package's own `dovecot` user, else
        // `nobody`), who must be able to reach the home directories.
        let (uid, gid) = passwd_ids("dovecot")
            .or_else(|| passwd_ids("nobody"))
            .expect("a dovecot or nobody user in /etc/passwd");
        for path in [Some(dir), dir.parent()].into_iter().flatten() {
            // The bench's own temporary directories only.
            fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        }
        let home = dir.join("home");
        fs::create_dir_all(&home).expect("home dir");
        std::os::unix::fs::chown(&home, Some(uid), Some(gid)).expect("chown home");
        let lmtp = free_port();
        let log = dir.join("dovecot.log");
        let conf = dir.join("dovecot.conf");
        let d = dir.display();
        fs::write(
            &conf,
            format!(
                "# Written by crates/server/benches/delivery.rs\n\
                 base_dir = {d}/run\n\
                 state_dir = {d}/state\n\
                 instance_name = stormproof-delivery-bench\n\
                 protocols = lmtp\n\
                 listen = 127.0.0.1\n\
                 ssl = no\n\
                 log_path = {log}\n\
                 # Per-message info lines off, like Stormproof at warn.\n\
                 info_log_path = /dev/null\n\
                 auth_mechanisms = plain\n\
                 default_internal_user = root\n\
                 default_internal_group = root\n\
                 default_login_user = root\n\
                 first_valid_uid = 1\n\
                 first_valid_gid = 1\n\
                 mail_location = maildir:~/Maildir\n\
                 # Acknowledge only durable mail, like Stormproof.\n\
                 mail_fsync = always\n\
                 lmtp_save_to_detail_mailbox = no\n\
                 passdb {{\n  driver = static\n  args = nopassword=y\n}}\n\
                 userdb {{\n  driver = static\n  \
                 args = uid={uid} gid={gid} home={d}/home/%u allow_all_users=yes\n}}\n\
                 service lmtp {{\n  inet_listener lmtp {{\n    \
                 address = 127.0.0.1\n    port = {port}\n  }}\n}}\n",
                log = log.display(),
                port = lmtp.port(),
            ),
        )
        .expect("write dovecot.conf");
        let out = fs::File::create(dir.join("dovecot.out")).expect("dovecot.out");
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("spawn dovecot");
        let mut process = Process {
            name: "dovecot",
            child: Some(child),
        };
        wait_for_greeting(lmtp, &mut process, Some(&log));
        Self {
            home,
            lmtp,
            process,
        }
    }

    /// Messages in alice's Maildir: files in `new/` and `cur/`.
    fn maildir_count(&self) -> usize {
        let maildir = self.home.join(TO).join("Maildir");
        ["new", "cur"]
            .iter()
            .map(|sub| {
                fs::read_dir(maildir.join(sub))
                    .map(|entries| entries.filter_map(Result::ok).count())
                    .unwrap_or(0)
            })
            .sum()
    }
}

/// A user's uid and gid from /etc/passwd.
fn passwd_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == user).then_some(())?;
        let _password = fields.next()?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The (major, minor) of the block device holding `path`.
fn disk_of(path: &Path) -> Option<(u64, u64)> {
    let dev = fs::metadata(path).ok()?.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    disk_flushes((major, minor)).map(|_| (major, minor))
}

/// Flush requests the device has completed (field 16 of /proc/diskstats,
/// Linux 5.5+). The whole machine's, so only indicative on a busy box.
fn disk_flushes((major, minor): (u64, u64)) -> Option<u64> {
    let stats = fs::read_to_string("/proc/diskstats").ok()?;
    stats.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.first()?.parse::<u64>().ok()? == major
            && fields.get(1)?.parse::<u64>().ok()? == minor)
            .then_some(())?;
        fields.get(3 + 15)?.parse().ok()
    })
}

/// Prints the machine the numbers come from.
fn print_machine(dir: &Path) {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let dovecot = Command::new(DOVECOT)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "not installed yet".into());
    println!("# Durable delivery: Stormproof SMTP vs Dovecot LMTP\n");
    println!("- command: `{COMMAND}`");
    println!("- nproc: {cores}; CPU: {cpu}; Linux {}", kernel.trim());
    println!("- dovecot: {dovecot}");
    println!(
        "- data on {}; fsync of a 4 KiB append there: {}",
        dir.display(),
        fsync_latency(dir)
    );
    println!(
        "- {MESSAGE_SIZE}-byte messages, one recipient, one transaction at a time per connection; \
         levels (senders/messages per round): {LEVELS:?}; {ROUNDS} rounds, interleaved\n"
    );
}

/// Median latency of 50 write+fsync pairs in `dir`.
fn fsync_latency(dir: &Path) -> String {
    let path = dir.join("fsync-probe");
    let Ok(mut file) = fs::File::create(&path) else {
        return "n/a".into();
    };
    let block = [b'x'; 4096];
    let mut samples = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        if file
            .write_all(&block)
            .and_then(|()| file.sync_all())
            .is_err()
        {
            return "n/a".into();
        }
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = fs::remove_file(&path);
    format!("{:.2} ms median", median(samples))
}
