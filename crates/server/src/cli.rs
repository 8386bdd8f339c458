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
        #[arg(long)]
        client: String,
    },
    /// Unblocks a client.
    Unblock {
        /// Tenant.
        #[arg(long)]
        tenant: String,
        /// Client id.
        #[arg(long)]
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
        #[arg(long, default_value = stormproof_identity::ADMIN_CLIENT_ID)]
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
        #[arg(long)]
        sid: String,
    },
}
