//! Starts the real `stormproof` binary on a free loopback port with a fresh
//! data directory, and runs its admin commands against the same directory.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub const BIN: &str = env!("CARGO_BIN_EXE_stormproof");

/// A running server and its data directory.
pub struct Server {
    child: Option<Child>,
    pub data: tempfile::TempDir,
    pub url: String,
    pub http: reqwest::blocking::Client,
    /// The inbound SMTP address, `127.0.0.1:<port>`.
    pub smtp: String,
    /// The submission address.
    pub submission: String,
    /// Flags added to `serve`, kept for restarts.
    extra_args: Vec<String>,
}

/// A data directory with no server running, for admin commands alone.
pub fn data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("stormproof-test")
        .tempdir()
        .expect("tempdir")
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A data directory with tenants `acme` (acme.test) and `globex`
/// (globex.test) and users alice@acme.test and bob@globex.test, for
/// [`Server::start_with`].
pub fn tenants_data() -> tempfile::TempDir {
    let data = data_dir();
    for (tenant, domain, user) in [
        ("acme", "acme.test", "alice@acme.test"),
        ("globex", "globex.test", "bob@globex.test"),
    ] {
        cli_ok_in(
            data.path(),
            &["tenant", "create", tenant, "--domain", domain],
            None,
        );
        cli_ok_in(
            data.path(),
            &["user", "create", user, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        );
    }
    data
}

/// Runs an admin command on `data`, feeding `stdin`.
pub fn cli_in(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stormproof");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait")
}

/// Runs an admin command that must succeed; returns its stdout.
pub fn cli_ok_in(data: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = cli_in(data, args, stdin);
    assert!(
        out.status.success(),
        "stormproof {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

pub const PASSWORD: &str = "correct horse battery staple";

impl Server {
    /// A server with tenants `acme` (acme.test) and `globex` (globex.test)
    /// and users alice@acme.test and bob@globex.test.
    pub fn with_tenants() -> Self {
        Self::start_in(tenants_data())
    }

    /// Starts the server on an existing data directory.
    pub fn start_in(data: tempfile::TempDir) -> Self {
        Self::start_with(data, &[])
    }

    /// Starts the server on an existing data directory with extra `serve`
    /// flags, such as `--alert-webhook URL`. A `stormproof.toml` already in
    /// the directory is kept; the testkit adds its `[dns]` section to it.
    pub fn start_with(data: tempfile::TempDir, extra_args: &[&str]) -> Self {
        // Tests never reach a real resolver: SPF, DKIM and DMARC checks are
        // exercised against a loopback stub in the smtp crate's own tests.
        let config = data.path().join("stormproof.toml");
        let mut text = std::fs::read_to_string(&config).unwrap_or_default();
        if !text.contains("[dns]") {
            text = format!("[dns]\nnameservers = []\n\n{text}");
        }
        std::fs::write(&config, text).expect("config");
        let http = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        let mut server = Self {
            child: None,
            data,
            url: String::new(),
            http,
            smtp: String::new(),
            submission: String::new(),
            extra_args: extra_args.iter().map(|a| (*a).to_owned()).collect(),
        };
        // A port found free may be taken by another test before the server
        // binds it: the server then exits at once, and new ports are tried.
        for _ in 0..5 {
            let (port, smtp, submission) = (free_port(), free_port(), free_port());
            server.url = format!("http://127.0.0.1:{port}");
            server.smtp = format!("127.0.0.1:{smtp}");
            server.submission = format!("127.0.0.1:{submission}");
            if server.try_spawn() {
                return server;
            }
        }
        panic!("the server did not start on five sets of free ports");
    }

    /// Starts (or restarts) the server process on the same directory and ports.
    pub fn spawn(&mut self) {
        assert!(self.try_spawn(), "server exited early");
    }

    /// Starts the server; false if it exited before answering.
    fn try_spawn(&mut self) -> bool {
        let port = self.url.rsplit(':').next().expect("port").to_owned();
        let child = Command::new(BIN)
            .args([
                "serve",
                "--http",
                &format!("127.0.0.1:{port}"),
                "--public-url",
                &self.url,
            ])
            .args([
                "--smtp",
                &self.smtp,
                "--submission",
                &self.submission,
                "--hostname",
                "mx.test",
                "--data",
            ])
            .arg(self.data.path())
            .args(&self.extra_args)
            .env("STORMPROOF_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn server");
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> bool {
        // Bounded wait for the listener; a server that never comes up fails
        // the test rather than hanging it.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return false;
            }
            if self
                .http
                .get(format!("{}/healthz", self.url))
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not start");
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        cli_in(self.data.path(), args, None)
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        cli_ok_in(self.data.path(), args, None)
    }

    /// Mints a token with `stormproof token issue`.
    pub fn issue(&self, user: &str) -> String {
        self.cli_ok(&["token", "issue", "--user", user])
            .trim()
            .to_owned()
    }

    /// `GET /api/whoami` with a bearer token: status and JSON body.
    pub fn whoami(&self, token: &str) -> (u16, serde_json::Value, Option<String>) {
        let response = self
            .http
            .get(format!("{}/api/whoami", self.url))
            .bearer_auth(token)
            .send()
            .expect("whoami");
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let body = response.json().unwrap_or(serde_json::Value::Null);
        (status, body, challenge)
    }

    /// The security events written so far, as (kind, reason, detail).
    pub fn security_events(&self) -> Vec<(String, String, serde_json::Value)> {
        use stormproof_store::Store;
        let store = stormproof_store::SqliteStore::open(self.data.path()).expect("open store");
        store
            .security_events(0, 10_000)
            .expect("events")
            .into_iter()
            .map(|e| (e.kind, e.reason, e.detail))
            .collect()
    }

    /// Waits (bounded) until a security event with `reason` is recorded; the
    /// server writes them from a background queue.
    pub fn expect_security_event(&self, reason: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some((_, _, detail)) = self
                .security_events()
                .into_iter()
                .find(|(_, r, _)| r == reason)
            {
                return detail;
            }
            assert!(
                Instant::now() < deadline,
                "no security event {reason}: {:?}",
                self.security_events()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The tenant's active key id.
    pub fn active_kid(&self, tenant: &str) -> String {
        let keys: serde_json::Value =
            serde_json::from_str(&self.cli_ok(&["keys", "list", "--tenant", tenant, "--json"]))
                .expect("json");
        keys.as_array()
            .expect("array")
            .iter()
            .find(|k| k["status"] == "active")
            .and_then(|k| k["kid"].as_str())
            .expect("an active key")
            .to_owned()
    }

    /// Stops the server as an operator does, with SIGTERM, and waits for
    /// it to exit on its own.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("kill -TERM");
            assert!(status.success(), "kill -TERM failed");
            let exit = child.wait().expect("wait");
            assert!(exit.success(), "the server did not stop cleanly: {exit}");
        }
    }

    /// Kills the server with SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Decodes a JWT's payload without verifying it.
pub fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

/// Encodes and signs a compact JWS with an Ed25519 key.
pub fn sign_ed25519(
    key: &ed25519_dalek::SigningKey,
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> String {
    use ed25519_dalek::Signer;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// A fresh Ed25519 key and its PKCS#8 PEM, written into `dir`.
pub fn ed25519_pem(dir: &Path) -> (ed25519_dalek::SigningKey, std::path::PathBuf) {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let pem = key.to_pkcs8_pem(Default::default()).expect("pem");
    let path = dir.join(format!("key-{}.pem", rand::random::<u32>()));
    std::fs::write(&path, pem.as_bytes()).expect("write pem");
    (key, path)
}
