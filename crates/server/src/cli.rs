//! The command line: `stormproof serve` and the administration commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Stormproof: a mail server with its own identity provider.
#[derive(Debug, Parser)]
#[command(name = "stormproof", version, about)]
pub struct Cli {
    /// Data directory: the database, the master key and mail.
    #[arg(long, global = true, env = "STORMPROOF_DATA", default_value = "data")]
    pub data: PathBuf,

    /// Configuration file. Defaults to `<data>/stormproof.toml`, then
    /// `./stormproof.toml`, when they exist.
    #[arg(long, global = true, env = "STORMPROOF_CONFIG")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the server.
    Serve(ServeArgs),
    /// Manages tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manages users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manages OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Mints tokens through the issuance ledger.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manages signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manages sign-in sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Reads, checks and exports the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Runs the detection engine over a log file and prints its alerts as
    /// JSON lines.
    Detect(DetectArgs),
    /// Lists stored alerts.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Revokes sign-in sessions, and every token derived from them, by
    /// user, client, session or source address.
    Revoke(RevokeArgs),
    /// Reports on what happened.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Replays an incident end to end against a throwaway data directory.
    #[command(subcommand)]
    Demo(DemoCommand),
}

/// `detect` options.
#[derive(Debug, Args)]
pub struct DetectArgs {
    /// The log: JSON lines of audit records (`audit search` output, or the
    /// log's segment files), or a Microsoft 365 unified audit log export.
    #[arg(long)]
    pub input: PathBuf,
    /// `stormproof` or `m365`.
    #[arg(long, default_value = "stormproof")]
    pub format: String,
}

/// Alert commands.
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Lists alerts, oldest first.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// Only alerts raised at or after: RFC 3339 or Unix seconds.
        #[arg(long)]
        since: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

/// `revoke` options: exactly one of user, client, session or ip.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["user", "client", "session", "ip"])))]
pub struct RevokeArgs {
    /// Every session of this user (address).
    #[arg(long, allow_hyphen_values = true)]
    pub user: Option<String>,
    /// Every session of this OAuth client.
    #[arg(long, allow_hyphen_values = true)]
    pub client: Option<String>,
    /// This session (`sid`).
    #[arg(long, allow_hyphen_values = true)]
    pub session: Option<String>,
    /// Every session that signed in from, or was used from, this address.
    #[arg(long)]
    pub ip: Option<String>,
    /// Limit `--client` and `--session` to one tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Then deliver notices to the owners of the mail those sessions read
    /// and to the tenant's security contacts.
    #[arg(long)]
    pub notify: bool,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Report commands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Every item of mail a session, token, client, address or user read:
    /// account, mailbox, Message-ID, subject, time and operation.
    Exposure(ExposureArgs),
}

/// `report exposure` options.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("whose").required(true).multiple(true).args(["session", "token", "client", "ip", "user"])))]
pub struct ExposureArgs {
    /// A sign-in session (`sid`).
    #[arg(long, allow_hyphen_values = true)]
    pub session: Option<String>,
    /// An access token (`jti`).
    #[arg(long, allow_hyphen_values = true)]
    pub token: Option<String>,
    /// An OAuth client.
    #[arg(long, allow_hyphen_values = true)]
    pub client: Option<String>,
    /// A source address.
    #[arg(long)]
    pub ip: Option<String>,
    /// The reader (address or user id).
    #[arg(long, allow_hyphen_values = true)]
    pub user: Option<String>,
    /// Only this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// At or after: RFC 3339 or Unix seconds.
    #[arg(long)]
    pub since: Option<String>,
    /// Before: RFC 3339 or Unix seconds.
    #[arg(long)]
    pub until: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Deliver notices to the owners whose mail was read and to the
    /// tenant's security contacts.
    #[arg(long)]
    pub notify: bool,
}

/// Demonstrations.
#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// The 2023 forged-token intrusion, replayed: stolen keys, forged
    /// tokens, token replay, a never-seen application reading mail; prints
    /// the timeline with each alert's latency. Exits non-zero if any step
    /// misbehaves.
    #[command(name = "storm-0558")]
    Storm0558,
}

/// `serve` options; each overrides the configuration file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address for HTTP (OpenID Connect, JMAP, administration).
    #[arg(long)]
    pub http: Option<String>,
    /// The URL clients reach the HTTP listener at; issuers are `<url>/t/<tenant>`.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Address for inbound SMTP (mail for local users, port 25).
    #[arg(long)]
    pub smtp: Option<String>,
    /// Address for SMTP submission (authenticated users, port 587).
    #[arg(long)]
    pub submission: Option<String>,
    /// The server's host name in SMTP greetings and `Received:` fields;
    /// defaults to the public URL's host.
    #[arg(long)]
    pub hostname: Option<String>,
    /// POSTs each alert as JSON to this URL, retrying until accepted; in
    /// addition to `[[alerts.sinks]]`.
    #[arg(long)]
    pub alert_webhook: Option<String>,
    /// How long first-seen detectors learn a new tenant before alerting,
    /// e.g. `7d` (the default) or `0s`; overrides `[detect] learning_window`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub detect_learning: Option<std::time::Duration>,
}

/// Tenant commands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Creates a tenant with its mail domains, its admin client and its first keys.
    Create {
        /// Tenant name: lowercase letters, digits and '-'.
        name: String,
        /// A mail domain the tenant owns; repeat for several.
        #[arg(long = "domain", required = true)]
        domains: Vec<String>,
    },
    /// Lists tenants.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// User commands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Creates a user in the tenant that owns the address's domain.
    Create {
        /// The user's address.
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Disables a user: sign-in refused and every token stops at once.
    Disable {
        /// The user's address.
        email: String,
    },
    /// Enables a disabled user.
    Enable {
        /// The user's address.
        email: String,
    },
    /// Lists a tenant's users.
    List {
        /// Tenant.
        #[arg(long)]
        tenant: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Manages the TOTP second factor.
    #[command(subcommand)]
    Totp(TotpCommand),
    /// Manages app passwords for mail clients that cannot do OAuth.
    #[command(subcommand, name = "app-password")]
    AppPassword(AppPasswordCommand),
}

/// TOTP commands.
#[derive(Debug, Subcommand)]
pub enum TotpCommand {
    /// Enrols TOTP and prints the secret and an otpauth:// URI, once.
    Enroll {
        /// The user's address.
        email: String,
    },
    /// Removes TOTP.
    Disable {
        /// The user's address.
        email: String,
    },
}

/// App-password commands.
#[derive(Debug, Subcommand)]
pub enum AppPasswordCommand {
    /// Creates an app password and prints it, once.
    Create {
        /// The user's address.
        email: String,
        /// The application it is for.
        #[arg(long)]
        name: String,
    },
    /// Lists a user's app passwords.
    List {
        /// The user's address.
        email: String,
    },
    /// Revokes an app password.
    Revoke {
        /// The user's address.
        email: String,
        /// The app password's id.
        #[arg(long)]
        id: String,
    },
}

/// Client commands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Registers a client and prints its client_id alone on the last line.
    Create {
        /// Tenant.
        #[arg(long)]
        tenant: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// A redirect URI, compared exactly; repeat for several.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A confidential client with a secret (printed once, before the id).
        #[arg(long)]
        confidential: bool,
        /// Every token for this client must be DPoP-bound.
        #[arg(long)]
        require_dpop: bool,
    },
    /// Lists a tenant's clients.
    List {
        /// Tenant.
        #[arg(long)]
        tenant: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Blocks a client: no new tokens, and its tokens stop at once.
    Block {
        /// Tenant.
        #[arg(long)]
        tenant: String,
        /// Client id.
        #[arg(long, allow_hyphen_values = true)]
        client: String,
    },
    /// Unblocks a client.
    Unblock {
        /// Tenant.
        #[arg(long)]
        tenant: String,
        /// Client id.
        #[arg(long, allow_hyphen_values = true)]
        client: String,
    },
}

/// Token commands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mints an access token for a user and prints it alone on stdout.
    Issue {
        /// The user's address.
        #[arg(long)]
        user: String,
        /// The client to mint for; defaults to the tenant's admin client.
        #[arg(long, allow_hyphen_values = true, default_value = stormproof_identity::ADMIN_CLIENT_ID)]
        client: String,
        /// Space-separated scope.
        #[arg(long, default_value = "openid email mail")]
        scope: String,
        /// Lifetime, e.g. `10m`; capped by the configured maximum.
        #[arg(long, value_parser = humantime::parse_duration)]
        lifetime: Option<std::time::Duration>,
    },
}

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Lists a tenant's signing keys.
    List {
        /// Tenant.
        #[arg(long)]
        tenant: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Rotates now: the published next key signs, the active key retires.
    Rotate {
        /// Tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Marks a key compromised: every token it signed is refused at once.
    Revoke {
        /// Tenant.
        #[arg(long)]
        tenant: String,
        /// Key id.
        #[arg(long)]
        kid: String,
    },
    /// Imports a PKCS#8 PEM private key (Ed25519 or P-256) as the active key.
    Import {
        /// Tenant.
        #[arg(long)]
        tenant: String,
        /// The PEM file.
        #[arg(long)]
        pem: PathBuf,
    },
}

/// Session commands.
#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Revokes a sign-in session and every token derived from it.
    Revoke {
        /// Tenant.
        #[arg(long)]
        tenant: String,
        /// Session id (`sid`).
        #[arg(long, allow_hyphen_values = true)]
        sid: String,
    },
}

/// Which records `audit search` and `audit export` print.
#[derive(Debug, Args, Default)]
pub struct AuditFilterArgs {
    /// Tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// The acting user: email address or user id.
    #[arg(long, allow_hyphen_values = true)]
    pub user: Option<String>,
    /// Whose mail was read: email address or account id.
    #[arg(long, allow_hyphen_values = true)]
    pub owner: Option<String>,
    /// Sign-in session id (`sid`).
    #[arg(long, allow_hyphen_values = true)]
    pub session: Option<String>,
    /// OAuth client id.
    #[arg(long, allow_hyphen_values = true)]
    pub client: Option<String>,
    /// Source IP address.
    #[arg(long)]
    pub ip: Option<String>,
    /// Operation, e.g. `Email/get`.
    #[arg(long)]
    pub operation: Option<String>,
    /// At or after: RFC 3339 or Unix seconds.
    #[arg(long)]
    pub since: Option<String>,
    /// Before: RFC 3339 or Unix seconds.
    #[arg(long)]
    pub until: Option<String>,
}

/// Audit log commands. They read the log's files and need no running server.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Checks every record against the signed checkpoints; exits non-zero,
    /// naming the first bad record, if anything was edited, deleted,
    /// inserted or reordered.
    Verify {
        /// A checkpoint kept elsewhere (from `audit checkpoint`): the log
        /// must still contain the tree it signs.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Prints the latest signed checkpoint, to keep elsewhere.
    Checkpoint,
    /// Prints matching records, oldest first.
    Search {
        /// Filters.
        #[command(flatten)]
        filter: AuditFilterArgs,
        /// One JSON object per line (the default output).
        #[arg(long)]
        json: bool,
        /// At most this many records.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Exports matching records as JSON lines, in Stormproof's form or OCSF.
    Export {
        /// Filters.
        #[command(flatten)]
        filter: AuditFilterArgs,
        /// `json` or `ocsf`.
        #[arg(long, default_value = "json")]
        format: String,
    },
    /// Removes records older than the retention period (`[audit]
    /// retention`, default 400 days, never under 180), whole segments at a
    /// time, keeping the rest verifiable. Needs the server stopped.
    Prune,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: session, token and user ids are base64url, so one in 64
    /// starts with '-', and clap took such an id for an unknown flag
    /// (`revoke --session -Zq...` failed with "unexpected argument").
    #[test]
    fn ids_starting_with_a_hyphen_are_values() {
        let cases: &[&[&str]] = &[
            &["revoke", "--session", "-Zq4"],
            &["revoke", "--user", "-Zq4"],
            &["revoke", "--client", "-Zq4", "--tenant", "acme"],
            &["report", "exposure", "--session", "-Zq4", "--json"],
            &["report", "exposure", "--token", "-Zq4"],
            &["report", "exposure", "--user", "-Zq4"],
            &["session", "revoke", "--tenant", "acme", "--sid", "-Zq4"],
            &["audit", "search", "--session", "-Zq4", "--user", "-Zq4"],
            &["token", "issue", "--user", "a@b.test", "--client", "-Zq4"],
        ];
        for args in cases {
            let parsed =
                Cli::try_parse_from(std::iter::once("stormproof").chain(args.iter().copied()));
            assert!(parsed.is_ok(), "{args:?}: {:?}", parsed.err());
        }
    }
}
