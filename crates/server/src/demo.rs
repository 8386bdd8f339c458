//! `stormproof demo storm-0558`: the 2023 intrusion, replayed end to end
//! against a throwaway data directory, with this very binary as the server
//! and the admin command line, and a webhook receiver in this process as
//! the security team's alert endpoint.
//!
//! Two tenants: `consumer` (the consumer accounts, whose signing key was
//! stolen in 2023) and `state` (the government victim). The server first
//! runs a "normal week" in which the detectors learn the department's mail
//! app, then restarts with no learning window for the attack:
//!
//! 1. a token for a `state` mailbox signed with the stolen consumer key;
//! 2. a token signed with `state`'s own key that no issuer ever minted, which
//!    makes the server mark the key compromised by itself;
//! 3. a genuine token replayed from another network;
//! 4. an application that never read mail in the tenant reading mail;
//! 5. the exposure report for the replayed session, its revocation, and the
//!    notices in the owner's and the security contact's mailboxes.
//!
//! Every step is checked; the first that misbehaves (a forged token
//! accepted, an alert missing after a bounded wait, a key not revoked, a
//! report that does not match) ends the demo with an error.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use base64::Engine as _;
use serde_json::{Value, json};
use stormproof_keys::{SecretKey, Signer as _};
use stormproof_store::{DetectionStore, SqliteStore};
use stormproof_types::{Alg, random_id};

use crate::webhook_receiver::{HookReceiver, Received};

/// The consumer tenant, whose key the attacker stole.
const CONSUMER: &str = "consumer";
/// The government victim.
const VICTIM: &str = "state";
const AMBASSADOR: &str = "ambassador@state.test";
const SOC: &str = "soc@state.test";
const PAT: &str = "pat@consumer.test";
const PASSWORD: &str = "a long demo passphrase, never used";

/// The network the attacker replays tokens from: another loopback /24.
const ATTACKER_IP: [u8; 4] = [127, 1, 0, 1];
/// The user agent seen in 2023 (CISA AA23-193A).
const ATTACKER_AGENT: &str = "Client=REST;Client=RESTSystem;;";

const MAIL: &str = "urn:ietf:params:jmap:mail";
const CORE: &str = "urn:ietf:params:jmap:core";

/// The longest any step waits for the server: an alert, a revocation.
const BOUND: Duration = Duration::from_secs(15);
/// How long the server may take to start.
const START_BOUND: Duration = Duration::from_secs(30);

/// The department's mail, as delivered over SMTP: (Message-ID, subject).
const CABLES: [(&str, &str); 3] = [
    (
        "cable-0611@state.test",
        "Talking points for the Beijing visit",
    ),
    (
        "cable-0612@state.test",
        "Delegation travel and security arrangements",
    ),
    ("cable-0613@state.test", "Staff lunch on Friday"),
];

/// Replays the 2023 intrusion against a throwaway data directory.
pub fn storm_0558() -> anyhow::Result<()> {
    let mut demo = Demo::new()?;
    let result = demo.run();
    if result.is_err() {
        demo.server = None;
        let log = std::fs::read_to_string(demo.dir.path().join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        eprintln!("--- the server's last log lines ---");
        for line in tail.iter().rev() {
            eprintln!("{line}");
        }
    }
    result
}

/// The server process; killed when dropped.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An alert the timeline has shown, for the summary.
struct Shown {
    detector: String,
    severity: String,
    latency: Option<Duration>,
    summary: String,
}

struct Demo {
    exe: PathBuf,
    dir: tempfile::TempDir,
    data: PathBuf,
    hook: HookReceiver,
    start: Instant,
    http: reqwest::blocking::Client,
    attacker: reqwest::blocking::Client,
    url: String,
    http_address: String,
    smtp_address: String,
    server: Option<ServerProcess>,
    shown: Vec<(String, Shown)>,
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn millis(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

impl Demo {
    fn new() -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the stormproof binary")?;
        let dir = tempfile::Builder::new()
            .prefix("stormproof-storm-0558")
            .tempdir()
            .context("creating the throwaway directory")?;
        let data = dir.path().join("data");
        let hook = HookReceiver::start().context("starting the webhook receiver")?;
        let http = reqwest::blocking::Client::builder()
            .timeout(BOUND)
            .build()?;
        let attacker = reqwest::blocking::Client::builder()
            .timeout(BOUND)
            .local_address(IpAddr::from(ATTACKER_IP))
            .user_agent(ATTACKER_AGENT)
            .build()?;
        let http_address = format!("127.0.0.1:{}", free_port()?);
        Ok(Self {
            exe,
            url: format!("http://{http_address}"),
            http_address,
            smtp_address: format!("127.0.0.1:{}", free_port()?),
            dir,
            data,
            hook,
            start: Instant::now(),
            http,
            attacker,
            server: None,
            shown: Vec::new(),
        })
    }

    // --- the timeline ---------------------------------------------------

    fn say(&self, text: &str) {
        println!("[{:>7.3}s] {text}", self.start.elapsed().as_secs_f64());
    }

    fn heading(&self, text: &str) {
        println!("\n{text}\n{}", "-".repeat(text.chars().count()));
    }

    fn refused(&self, what: &str, status: u16) -> anyhow::Result<()> {
        ensure!(
            status == 401,
            "{what} was answered {status}, not refused with 401"
        );
        self.say(&format!("REFUSED 401  {what}"));
        Ok(())
    }

    /// Waits for the alert that `matches`, caused by a request sent at
    /// `sent`, and shows it with its latency.
    fn expect_alert(
        &mut self,
        what: &str,
        sent: Instant,
        matches: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let Some(Received { at, body }) = self.hook.wait_for(BOUND, matches) else {
            bail!("no {what} alert reached the webhook within {BOUND:?}");
        };
        let latency = at.saturating_duration_since(sent);
        self.show(&body, Some(latency));
        Ok(body)
    }

    fn show(&mut self, alert: &Value, latency: Option<Duration>) {
        let id = alert["id"].as_str().unwrap_or_default().to_owned();
        if self.shown.iter().any(|(shown, _)| *shown == id) {
            return;
        }
        let text = |field: &str| alert[field].as_str().unwrap_or("-").to_owned();
        let shown = Shown {
            detector: text("detector"),
            severity: text("severity"),
            latency,
            summary: text("summary"),
        };
        let when = match latency {
            Some(latency) => format!("{} after the request", millis(latency)),
            None => "as a side effect".to_owned(),
        };
        self.say(&format!(
            "ALERT {} {}  at the webhook {when}\n             {}",
            shown.severity.to_uppercase(),
            shown.detector,
            shown.summary
        ));
        self.shown.push((id, shown));
    }

    /// Shows the alerts that arrived without a step waiting for them.
    fn show_others(&mut self) {
        for alert in self.hook.bodies() {
            self.show(&alert, None);
        }
    }

    // --- the binary: admin commands and the server ------------------------

    fn cli_in(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let mut child = Command::new(&self.exe)
            .arg("--data")
            .arg(&self.data)
            .args(args)
            .env("STORMPROOF_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running stormproof {}", args.join(" ")))?;
        if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
            input.write_all(text.as_bytes())?;
        }
        drop(child.stdin.take());
        let output = child.wait_with_output()?;
        ensure!(
            output.status.success(),
            "stormproof {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(String::from_utf8(output.stdout)?)
    }

    fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        self.cli_in(args, None)
    }

    fn start_server(&mut self, extra: &[&str]) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))?;
        let child = Command::new(&self.exe)
            .arg("--data")
            .arg(&self.data)
            .args([
                "serve",
                "--http",
                &self.http_address,
                "--public-url",
                &self.url,
            ])
            .args(["--smtp", &self.smtp_address, "--hostname", "mx.state.test"])
            .args(["--alert-webhook", &self.hook.url])
            .args(extra)
            .env("STORMPROOF_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting stormproof serve")?;
        let mut server = ServerProcess(child);
        let deadline = Instant::now() + START_BOUND;
        loop {
            if let Some(status) = server.0.try_wait()? {
                bail!("the server exited at start: {status}");
            }
            let up = self
                .http
                .get(format!("{}/healthz", self.url))
                .send()
                .is_ok_and(|r| r.status().is_success());
            if up {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "the server did not start within {START_BOUND:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.server = Some(server);
        Ok(())
    }

    // --- tokens -----------------------------------------------------------

    fn issue(&self, user: &str, client: &str) -> anyhow::Result<String> {
        Ok(self
            .cli(&["token", "issue", "--user", user, "--client", client])?
            .trim()
            .to_owned())
    }

    fn user_id(&self, tenant: &str, email: &str) -> anyhow::Result<String> {
        let users: Value =
            serde_json::from_str(&self.cli(&["user", "list", "--tenant", tenant, "--json"])?)?;
        users
            .as_array()
            .and_then(|list| list.iter().find(|u| u["email"] == email))
            .and_then(|u| u["id"].as_str())
            .map(str::to_owned)
            .with_context(|| format!("no user {email} in {tenant}"))
    }

    /// A token such as the issuer of `tenant` would mint for `sub`, with a
    /// fresh `jti` nobody issued, signed by `key` under `kid`.
    fn forge(
        &self,
        key: &SecretKey,
        kid: &str,
        tenant: &str,
        sub: &str,
        client_id: &str,
    ) -> anyhow::Result<(String, String)> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let jti = format!("forged-{}", random_id(9));
        let claims = json!({
            "iss": format!("{}/t/{tenant}", self.url),
            "sub": sub,
            "aud": self.url,
            "exp": now + 600,
            "iat": now,
            "jti": jti,
            "tid": tenant,
            "sid": random_id(16),
            "client_id": client_id,
            "scope": "openid email mail",
        });
        let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid});
        let token = stormproof_jws::encode(&header, &claims, |input| key.sign(input))?;
        Ok((token, jti))
    }

    // --- mail -------------------------------------------------------------

    fn jmap(
        &self,
        http: &reqwest::blocking::Client,
        token: &str,
        calls: Value,
    ) -> anyhow::Result<(u16, Value)> {
        let response = http
            .post(format!("{}/jmap/api", self.url))
            .bearer_auth(token)
            .json(&json!({"using": [CORE, MAIL], "methodCalls": calls}))
            .send()?;
        let status = response.status().as_u16();
        Ok((status, response.json().unwrap_or(Value::Null)))
    }

    fn account(&self, token: &str) -> anyhow::Result<String> {
        let session: Value = self
            .http
            .get(format!("{}/.well-known/jmap", self.url))
            .bearer_auth(token)
            .send()?
            .error_for_status()?
            .json()?;
        session["primaryAccounts"][MAIL]
            .as_str()
            .map(str::to_owned)
            .context("the JMAP session names no mail account")
    }

    /// Email/query, then Email/get of `properties` for the first `take`
    /// ids, with bodies if asked; returns the status and the emails.
    fn read_mail(
        &self,
        http: &reqwest::blocking::Client,
        token: &str,
        account: &str,
        take: usize,
        properties: &[&str],
    ) -> anyhow::Result<(u16, Vec<Value>)> {
        let (status, body) = self.jmap(
            http,
            token,
            json!([["Email/query", {"accountId": account}, "q"]]),
        )?;
        if status != 200 {
            return Ok((status, Vec::new()));
        }
        let ids: Vec<Value> = body["methodResponses"][0][1]["ids"]
            .as_array()
            .map(|ids| ids.iter().take(take).cloned().collect())
            .unwrap_or_default();
        if ids.is_empty() {
            return Ok((status, Vec::new()));
        }
        let (status, body) = self.jmap(
            http,
            token,
            json!([["Email/get", {"accountId": account, "ids": ids, "properties": properties,
                                  "fetchAllBodyValues": true}, "g"]]),
        )?;
        let list = body["methodResponses"][0][1]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok((status, list))
    }

    fn status_of(&self, token: &str) -> anyhow::Result<u16> {
        Ok(self
            .http
            .get(format!("{}/api/whoami", self.url))
            .bearer_auth(token)
            .send()?
            .status()
            .as_u16())
    }

    /// Waits until `token` is refused; returns how long that took.
    fn until_refused(&self, token: &str, since: Instant) -> anyhow::Result<Duration> {
        let deadline = Instant::now() + BOUND;
        loop {
            if self.status_of(token)? == 401 {
                return Ok(since.elapsed());
            }
            ensure!(
                Instant::now() < deadline,
                "a revoked token still works after {BOUND:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn key_status(&self, tenant: &str, kid: &str) -> anyhow::Result<String> {
        let keys: Value =
            serde_json::from_str(&self.cli(&["keys", "list", "--tenant", tenant, "--json"])?)?;
        keys.as_array()
            .and_then(|list| list.iter().find(|k| k["kid"] == kid))
            .and_then(|k| k["status"].as_str())
            .map(str::to_owned)
            .with_context(|| format!("no key {kid} in {tenant}"))
    }

    /// A stolen copy of a signing key: a fresh Ed25519 key imported as the
    /// tenant's active key, whose PEM the attacker keeps.
    fn steal_key(&self, tenant: &str) -> anyhow::Result<(SecretKey, String)> {
        let key = SecretKey::generate(Alg::EdDsa);
        let der = key.to_pkcs8_der()?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(der.as_slice());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line)?);
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        let path = self.dir.path().join(format!("stolen-{tenant}.pem"));
        std::fs::write(&path, pem)?;
        let path = path
            .to_str()
            .context("a temporary path that is not UTF-8")?;
        let kid = self.cli(&["keys", "import", "--tenant", tenant, "--pem", path])?;
        Ok((key, kid.trim().to_owned()))
    }

    // --- the story --------------------------------------------------------

    fn run(&mut self) -> anyhow::Result<()> {
        println!("Storm-0558, replayed against a throwaway Stormproof");
        println!("====================================================");
        println!(
            "Data directory (removed at the end): {}",
            self.data.display()
        );
        println!("Times are since the start. An alert's latency runs from the request");
        println!("that caused it to its arrival at the security team's webhook.");

        let app = self.setup()?;
        self.normal_week(&app)?;
        self.intrusion(&app)
    }

    /// Tenants, users, the department's mail app, the simulated theft.
    fn setup(&mut self) -> anyhow::Result<String> {
        self.heading("Setup");
        let password = format!("{PASSWORD}\n");
        self.cli(&["tenant", "create", CONSUMER, "--domain", "consumer.test"])?;
        self.cli_in(
            &["user", "create", PAT, "--password-stdin"],
            Some(&password),
        )?;
        self.say(&format!(
            "tenant {CONSUMER} (consumer.test), the consumer accounts: {PAT}"
        ));
        self.cli(&["tenant", "create", VICTIM, "--domain", "state.test"])?;
        for user in [AMBASSADOR, SOC] {
            self.cli_in(
                &["user", "create", user, "--password-stdin"],
                Some(&password),
            )?;
        }
        let app = last_line(&self.cli(&[
            "client",
            "create",
            "--tenant",
            VICTIM,
            "--name",
            "State mail",
        ])?)?;
        self.say(&format!(
            "tenant {VICTIM} (state.test), the government victim: {AMBASSADOR}, and {SOC} as its security contact; its mail app is client {app}"
        ));
        std::fs::create_dir_all(&self.data)?;
        std::fs::write(
            self.data.join(crate::config::CONFIG_FILE),
            format!(
                "[dns]\nnameservers = []\n\n\
                 # A validly signed token nobody issued means the key is in other hands.\n\
                 [detect.token_forgery]\nauto_response = true\n\n\
                 [response]\nsecurity_contacts = {{ {VICTIM} = [\"{SOC}\"] }}\n"
            ),
        )?;
        self.say("config: token_forgery auto_response = true; alerts and notices also to the security contact's mailbox");
        Ok(app)
    }

    /// The server learns what normal looks like: the department's app
    /// reading the ambassador's mail.
    fn normal_week(&mut self, app: &str) -> anyhow::Result<()> {
        self.heading("A normal week, compressed: the detectors learn the usual applications");
        self.start_server(&[])?;
        self.say(&format!(
            "server up: HTTP {}, SMTP {}; alerts to {}",
            self.url, self.smtp_address, self.hook.url
        ));
        for (message_id, subject) in CABLES {
            smtp_deliver(&self.smtp_address, PAT, AMBASSADOR, message_id, subject)?;
        }
        smtp_deliver(
            &self.smtp_address,
            AMBASSADOR,
            PAT,
            "reply-0614@consumer.test",
            "Re: your question",
        )?;
        self.say(&format!(
            "4 messages delivered over SMTP: 3 to {AMBASSADOR}, 1 to {PAT}"
        ));
        let token = self.issue(AMBASSADOR, app)?;
        let account = self.account(&token)?;
        let (status, read) = self.read_mail(&self.http, &token, &account, 3, &["subject"])?;
        ensure!(
            status == 200 && read.len() == 3,
            "the ambassador could not read mail: {status}"
        );
        self.say(&format!(
            "{AMBASSADOR} reads 3 messages with the mail app, from 127.0.0.1"
        ));
        let token = self.issue(SOC, app)?;
        let account = self.account(&token)?;
        let (status, _) = self.read_mail(&self.http, &token, &account, 3, &["subject"])?;
        ensure!(
            status == 200,
            "the security contact could not read mail: {status}"
        );
        self.say(&format!(
            "{SOC} checks the security mailbox with the mail app"
        ));
        // The detectors write what they learn to the store in batches; the
        // restart below keeps it. The last thing learned: this user with
        // this app.
        let deadline = Instant::now() + BOUND;
        let learned = format!("u:{SOC}\u{1f}{app}");
        loop {
            let store = SqliteStore::open(&self.data)?;
            let known = store
                .detector_state_scan("first_seen_app")?
                .iter()
                .any(|r| {
                    r.tenant.as_ref().is_some_and(|t| t.as_str() == VICTIM) && r.key == learned
                });
            if known {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "the detectors did not store what they learned"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.show_others();
        self.say("learned and stored: client State mail reads mail in tenant state");
        Ok(())
    }

    fn intrusion(&mut self, app: &str) -> anyhow::Result<()> {
        // The keys the attacker holds. Importing them is how the demo
        // simulates the theft; the persistence detector notices imports.
        self.heading("The theft (simulated)");
        let (consumer_key, consumer_kid) = self.steal_key(CONSUMER)?;
        self.say(&format!("the attacker holds consumer signing key {consumer_kid} (imported into {CONSUMER}; PEM kept)"));
        let (victim_key, victim_kid) = self.steal_key(VICTIM)?;
        self.say(&format!("the attacker holds {VICTIM}'s own signing key {victim_kid} (imported into {VICTIM}; PEM kept)"));

        self.heading("The intrusion (server restarted with --detect-learning 0s)");
        self.server = None;
        self.start_server(&["--detect-learning", "0s"])?;
        self.say("server restarted; the learning period is over");
        let ambassador_id = self.user_id(VICTIM, AMBASSADOR)?;
        let before = self.issue(AMBASSADOR, app)?;
        ensure!(
            self.status_of(&before)? == 200,
            "a genuine token was refused"
        );
        self.say(&format!(
            "{AMBASSADOR} holds a genuine token, signed by the active key {victim_kid}"
        ));
        let account = self.account(&before)?;

        // 1. The 2023 bug: a consumer key accepted for an enterprise mailbox.
        let (forged, jti) =
            self.forge(&consumer_key, &consumer_kid, VICTIM, &ambassador_id, app)?;
        let sent = Instant::now();
        let (status, _) = self.read_mail(&self.attacker, &forged, &account, 3, &["subject"])?;
        self.refused(
            &format!("read of {AMBASSADOR}'s mail with a token signed by the consumer key (cross_tenant_key)"),
            status,
        )?;
        let alert = self.expect_alert("cross-tenant forgery", sent, |a| {
            a["detector"] == "token_forgery" && a["token_ids"][0] == jti.as_str()
        })?;
        ensure!(alert["severity"] == "critical", "not critical: {alert}");

        // 2. The victim's own key, signing a token no issuer minted.
        let (forged, jti) = self.forge(&victim_key, &victim_kid, VICTIM, &ambassador_id, app)?;
        let sent = Instant::now();
        let (status, _) = self.read_mail(&self.attacker, &forged, &account, 3, &["subject"])?;
        self.refused(
            &format!("read with a token validly signed by {VICTIM}'s key {victim_kid} but never issued (never_issued)"),
            status,
        )?;
        let alert = self.expect_alert("never-issued forgery", sent, |a| {
            a["detector"] == "token_forgery" && a["token_ids"][0] == jti.as_str()
        })?;
        ensure!(
            alert["severity"] == "critical"
                && alert["auto_response"] == true
                && alert["response"]["kid"] == victim_kid.as_str(),
            "the alert does not ask for the key's revocation: {alert}"
        );
        let deadline = Instant::now() + BOUND;
        loop {
            if self.key_status(VICTIM, &victim_kid)? == "compromised" {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "key {victim_kid} was not revoked within {BOUND:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.say(&format!(
            "AUTOMATIC RESPONSE  key {victim_kid} marked compromised {} after the request (keys list: compromised); a fresh key signs",
            millis(sent.elapsed())
        ));
        let took = self.until_refused(&before, sent)?;
        self.refused(
            &format!("{AMBASSADOR}'s genuine token, signed by {victim_kid}: every token of the key dies ({} after the request)", millis(took)),
            401,
        )?;
        self.show_others();

        // 3. A genuine token, replayed from the attacker's network.
        let token = self.issue(AMBASSADOR, app)?;
        let sid = claim(&token, "sid")?;
        let (status, _) = self.jmap(
            &self.http,
            &token,
            json!([["Email/query", {"accountId": account}, "q"]]),
        )?;
        ensure!(
            status == 200,
            "the ambassador's new token was refused: {status}"
        );
        self.say(&format!(
            "{AMBASSADOR} signs in again (session {sid}) and lists the inbox from 127.0.0.1"
        ));
        let sent = Instant::now();
        let (status, stolen) = self.read_mail(
            &self.attacker,
            &token,
            &account,
            2,
            &["messageId", "subject", "textBody", "bodyValues"],
        )?;
        ensure!(
            status == 200 && stolen.len() == 2,
            "the replayed read returned {status}"
        );
        let stolen_ids: BTreeSet<String> = stolen
            .iter()
            .filter_map(|email| email["messageId"][0].as_str().map(str::to_owned))
            .collect();
        self.say(&format!(
            "the attacker replays the token from 127.1.0.1 ({ATTACKER_AGENT}) and reads 2 messages: accepted, the token is genuine"
        ));
        self.expect_alert("token replay", sent, |a| {
            a["detector"] == "token_replay" && a["session"] == sid.as_str()
        })?;

        // 4. An application that never read mail in the tenant.
        let tool = last_line(&self.cli(&[
            "client",
            "create",
            "--tenant",
            VICTIM,
            "--name",
            "Mail export tool",
        ])?)?;
        let tool_token = self.issue(AMBASSADOR, &tool)?;
        let sent = Instant::now();
        let (status, _) = self.read_mail(&self.attacker, &tool_token, &account, 3, &["subject"])?;
        ensure!(
            status == 200,
            "the new application's read returned {status}"
        );
        self.say(&format!("application {tool}, registered a moment ago, reads the ambassador's mail from 127.1.0.1"));
        self.expect_alert("first-seen application", sent, |a| {
            a["detector"] == "first_seen_app" && a["client_id"] == tool.as_str()
        })?;
        let blocked = Instant::now();
        self.cli(&["client", "block", "--tenant", VICTIM, "--client", &tool])?;
        let took = self.until_refused(&tool_token, blocked)?;
        self.refused(
            &format!(
                "the application's token, after client block ({} after the command)",
                millis(took)
            ),
            401,
        )?;
        self.show_others();

        self.exposure_and_notices(&sid, &token, &stolen_ids, app)?;
        self.summary();
        Ok(())
    }

    fn exposure_and_notices(
        &mut self,
        sid: &str,
        token: &str,
        stolen: &BTreeSet<String>,
        app: &str,
    ) -> anyhow::Result<()> {
        self.heading("Exposure report: what the replayed session read");
        let report: Value = serde_json::from_str(&self.cli(&[
            "report",
            "exposure",
            "--session",
            sid,
            "--json",
        ])?)?;
        let read: BTreeSet<String> = report["message_ids"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        ensure!(
            read == *stolen,
            "the report lists {read:?}, but the attacker read {stolen:?}"
        );
        for item in report["items"].as_array().into_iter().flatten() {
            let text = |field: &str| item[field].as_str().unwrap_or("-").to_owned();
            self.say(&format!(
                "{}  {:11} {:8} from {:9}  <{}>  {:?}",
                text("time"),
                text("operation"),
                text("access"),
                text("ip"),
                text("message_id"),
                text("subject"),
            ));
        }
        self.say(&format!(
            "content read by the session: exactly {} messages, as the attacker's requests returned",
            read.len()
        ));

        self.heading("Containment and notices");
        let out: Value = serde_json::from_str(&self.cli(&[
            "revoke",
            "--session",
            sid,
            "--notify",
            "--json",
        ])?)?;
        let revoked = Instant::now();
        ensure!(
            out["revoked_sessions"] == json!([{"tenant": VICTIM, "session": sid}]),
            "revoke --session revoked {out}"
        );
        let took = self.until_refused(token, revoked)?;
        self.refused(
            &format!(
                "the replayed token, after revoke --session {sid} --notify ({} after the command)",
                millis(took)
            ),
            401,
        )?;
        for (user, what) in [(AMBASSADOR, "the owner"), (SOC, "the security contact")] {
            let reader = self.issue(user, app)?;
            let account = self.account(&reader)?;
            let (_, mail) = self.read_mail(
                &self.http,
                &reader,
                &account,
                100,
                &["subject", "textBody", "bodyValues"],
            )?;
            let notice = mail
                .iter()
                .find(|m| {
                    m["subject"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("Security notice"))
                })
                .with_context(|| format!("no notice in {user}'s mailbox"))?;
            let body = body_text(notice);
            for id in stolen {
                ensure!(
                    body.contains(id.as_str()),
                    "the notice to {user} does not name {id}"
                );
            }
            let alerts = mail
                .iter()
                .filter(|m| {
                    m["subject"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("Stormproof alert"))
                })
                .count();
            self.say(&format!(
                "{user} ({what}) has the notice \"{}\", naming the {} messages read{}",
                notice["subject"].as_str().unwrap_or_default(),
                stolen.len(),
                if alerts > 0 {
                    format!(", and {alerts} alert emails")
                } else {
                    String::new()
                }
            ));
        }
        self.show_others();
        Ok(())
    }

    fn summary(&self) {
        self.heading("Alerts");
        let mut table = String::new();
        for (_, shown) in &self.shown {
            let latency = shown.latency.map_or_else(|| "-".to_owned(), millis);
            let _ = writeln!(
                table,
                "  {:9} {:15} {:>9}  {}",
                shown.severity, shown.detector, latency, shown.summary
            );
        }
        print!("{table}");
        println!("\nEvery step behaved as it should. In 2023 the first alert took a month.");
    }
}

/// The last line of a command's output (`client create` prints the id there).
fn last_line(output: &str) -> anyhow::Result<String> {
    output
        .lines()
        .last()
        .map(|line| line.trim().to_owned())
        .filter(|line| !line.is_empty())
        .context("the command printed nothing")
}

/// A claim of a token, read without verifying it.
fn claim(token: &str, name: &str) -> anyhow::Result<String> {
    let payload = token.split('.').nth(1).context("not a JWT")?;
    let claims: Value = serde_json::from_slice(&stormproof_jws::b64_decode(payload)?)?;
    claims[name]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the token has no {name}"))
}

fn body_text(email: &Value) -> String {
    email["bodyValues"]
        .as_object()
        .map(|values| {
            values
                .values()
                .filter_map(|v| v["value"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// Delivers one message over plain SMTP, checking every reply.
fn smtp_deliver(
    address: &str,
    from: &str,
    to: &str,
    message_id: &str,
    subject: &str,
) -> anyhow::Result<()> {
    let stream =
        TcpStream::connect(address).with_context(|| format!("connecting to SMTP {address}"))?;
    stream.set_read_timeout(Some(BOUND))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut expect = |code: &str| -> anyhow::Result<()> {
        loop {
            let mut line = String::new();
            ensure!(
                reader.read_line(&mut line)? > 0,
                "the SMTP server closed the connection"
            );
            if line.as_bytes().get(3) != Some(&b'-') {
                ensure!(
                    line.starts_with(code),
                    "SMTP: expected {code}, got {}",
                    line.trim_end()
                );
                return Ok(());
            }
        }
    };
    expect("220")?;
    let message = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
         Date: Mon, 15 May 2023 09:00:00 +0000\r\n\r\n{subject}.\r\nPlease handle accordingly.\r\n"
    );
    for (line, code) in [
        ("EHLO demo.test".to_owned(), "250"),
        (format!("MAIL FROM:<{from}>"), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_owned(), "354"),
        (format!("{message}."), "250"),
        ("QUIT".to_owned(), "221"),
    ] {
        writer.write_all(format!("{line}\r\n").as_bytes())?;
        expect(code)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_line_is_the_client_id() {
        let cases = [
            ("client_secret: s\nabc\n", Some("abc")),
            ("abc", Some("abc")),
            ("", None),
        ];
        for (output, expected) in cases {
            assert_eq!(last_line(output).ok().as_deref(), expected, "{output:?}");
        }
    }
}
