//! The administration commands. They open the same data directory as a
//! running server; SQLite's WAL lets both write, and the server notices
//! their changes within its poll interval.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::json;
use stormproof_identity::Issuer;
use stormproof_store::{ClientKind, Store};
use stormproof_types::{Email, SystemClock, TenantName};

use crate::cli::{
    AppPasswordCommand, ClientCommand, Command, KeysCommand, SessionCommand, TenantCommand,
    TokenCommand, TotpCommand, UserCommand,
};
use crate::config::Config;
use crate::serve::{PUBLIC_URL_SETTING, open_issuer};

/// Mail quota of a new account: 10 GiB.
const DEFAULT_QUOTA_BYTES: i64 = 10 << 30;

fn tenant(name: &str) -> anyhow::Result<TenantName> {
    TenantName::parse(name).with_context(|| format!("tenant {name:?}"))
}

fn email(address: &str) -> anyhow::Result<Email> {
    Email::parse(address).with_context(|| format!("address {address:?}"))
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The public URL tokens are minted for: the configuration's, else the one
/// the server last ran with, else the default listener's.
fn public_url(data: &Path, config: &Config) -> anyhow::Result<String> {
    if let Some(url) = &config.server.public_url {
        return Ok(url.clone());
    }
    let store = stormproof_store::SqliteStore::open(data)?;
    Ok(store
        .setting(PUBLIC_URL_SETTING)?
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned()))
}

pub fn run(data: &Path, config: &Config, command: Command) -> anyhow::Result<()> {
    let url = public_url(data, config)?;
    let (store, issuer) = open_issuer(data, config, &url, Arc::new(SystemClock))?;
    match command {
        Command::Serve(_) => bail!("serve is not an admin command"),
        Command::Tenant(command) => tenants(&issuer, &store, command),
        Command::User(command) => users(&issuer, &store, command),
        Command::Client(command) => clients(&issuer, &store, command),
        Command::Token(command) => tokens(&issuer, command),
        Command::Keys(command) => keys(&issuer, command),
        Command::Session(SessionCommand::Revoke { tenant: t, sid }) => {
            issuer.revoke_session(&tenant(&t)?, &sid)?;
            println!("revoked session {sid}");
            Ok(())
        }
        Command::Alerts(command) => crate::incident::alerts(&store, command),
        Command::Revoke(args) => crate::incident::revoke(data, config, &issuer, args),
        Command::Report(crate::cli::ReportCommand::Exposure(args)) => {
            crate::incident::exposure_report(data, config, &issuer, args)
        }
        Command::Audit(_) | Command::Detect(_) | Command::Demo(_) => {
            bail!("not an admin command")
        }
    }
}

fn tenants(issuer: &Issuer, store: &Arc<dyn Store>, command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create { name, domains } => {
            issuer.create_tenant(&tenant(&name)?, &domains)?;
            println!(
                "created tenant {name} ({}); issuer {}",
                domains.join(", "),
                issuer.issuer_url(&tenant(&name)?)
            );
        }
        TenantCommand::List { json } => {
            let tenants = store.tenants()?;
            if json {
                print_json(&serde_json::to_value(&tenants)?)?;
            } else {
                for t in tenants {
                    println!("{}\t{}", t.name, t.domains.join(","));
                }
            }
        }
    }
    Ok(())
}

fn read_password() -> anyhow::Result<zeroize::Zeroizing<String>> {
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = zeroize::Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    if password.is_empty() {
        bail!("no password on stdin");
    }
    Ok(password)
}

fn users(issuer: &Issuer, store: &Arc<dyn Store>, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create {
            email: address,
            password_stdin: _,
        } => {
            let password = read_password()?;
            let user = issuer.create_user(&email(&address)?, &password)?;
            let account = store.create_mail_account(&user.tenant, &user.id, DEFAULT_QUOTA_BYTES)?;
            println!(
                "created user {} in tenant {} (id {}, mail account {})",
                user.email, user.tenant, user.id, account.account_id
            );
        }
        UserCommand::Disable { email: address } => {
            issuer.set_user_enabled(&email(&address)?, false)?;
            println!("disabled {address}");
        }
        UserCommand::Enable { email: address } => {
            issuer.set_user_enabled(&email(&address)?, true)?;
            println!("enabled {address}");
        }
        UserCommand::List { tenant: t, json } => {
            let users = store.users(&tenant(&t)?)?;
            if json {
                let list: Vec<_> = users
                    .iter()
                    .map(|u| json!({"id": u.id, "email": u.email, "enabled": u.enabled, "totp": u.totp_sealed.is_some(), "created": u.created}))
                    .collect();
                print_json(&json!(list))?;
            } else {
                for u in users {
                    println!(
                        "{}\t{}\t{}",
                        u.email,
                        u.id,
                        if u.enabled { "enabled" } else { "disabled" }
                    );
                }
            }
        }
        UserCommand::Totp(TotpCommand::Enroll { email: address }) => {
            let enrollment = issuer.enroll_totp(&email(&address)?)?;
            println!("secret: {}", enrollment.secret_base32.as_str());
            println!("{}", enrollment.uri.as_str());
        }
        UserCommand::Totp(TotpCommand::Disable { email: address }) => {
            issuer.disable_totp(&email(&address)?)?;
            println!("removed TOTP for {address}");
        }
        UserCommand::AppPassword(AppPasswordCommand::Create {
            email: address,
            name,
        }) => {
            let created = issuer.create_app_password(&email(&address)?, &name)?;
            eprintln!(
                "app password {} for {name}; it is shown once:",
                created.record.id
            );
            println!("{}", created.password.as_str());
        }
        UserCommand::AppPassword(AppPasswordCommand::List { email: address }) => {
            print_json(&serde_json::to_value(
                issuer.app_passwords(&email(&address)?)?,
            )?)?;
        }
        UserCommand::AppPassword(AppPasswordCommand::Revoke { email: address, id }) => {
            issuer.revoke_app_password(&email(&address)?, &id)?;
            println!("revoked app password {id}");
        }
    }
    Ok(())
}

fn clients(issuer: &Issuer, store: &Arc<dyn Store>, command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::Create {
            tenant: t,
            name,
            redirect_uris,
            confidential,
            require_dpop,
        } => {
            let kind = if confidential {
                ClientKind::Confidential
            } else {
                ClientKind::Public
            };
            let created =
                issuer.create_client(&tenant(&t)?, &name, kind, &redirect_uris, require_dpop)?;
            if let Some(secret) = &created.secret {
                println!("client_secret: {}", secret.as_str());
            }
            println!("{}", created.record.client_id);
        }
        ClientCommand::List { tenant: t, json } => {
            let clients = store.clients(&tenant(&t)?)?;
            if json {
                print_json(&serde_json::to_value(&clients)?)?;
            } else {
                for c in clients {
                    println!(
                        "{}\t{}\t{:?}\t{}",
                        c.client_id,
                        c.name,
                        c.kind,
                        if c.blocked { "blocked" } else { "active" }
                    );
                }
            }
        }
        ClientCommand::Block { tenant: t, client } => {
            issuer.set_client_blocked(&tenant(&t)?, &client, true)?;
            println!("blocked client {client}");
        }
        ClientCommand::Unblock { tenant: t, client } => {
            issuer.set_client_blocked(&tenant(&t)?, &client, false)?;
            println!("unblocked client {client}");
        }
    }
    Ok(())
}

fn tokens(issuer: &Issuer, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Issue {
            user,
            client,
            scope,
            lifetime,
        } => {
            let lifetime = lifetime.map(|d| d.as_secs() as i64);
            let issued = issuer.issue_for_user(&email(&user)?, &client, &scope, lifetime)?;
            println!("{}", issued.token);
        }
    }
    Ok(())
}

fn keys(issuer: &Issuer, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::List { tenant: t, json } => {
            let keys = issuer.keys(&tenant(&t)?)?;
            if json {
                print_json(&serde_json::to_value(&keys)?)?;
            } else {
                for k in keys {
                    println!(
                        "{}\t{}\t{:?}\t{:?}\tnot_after={}",
                        k.kid, k.alg, k.status, k.backend, k.not_after
                    );
                }
            }
        }
        KeysCommand::Rotate { tenant: t } => {
            let t = tenant(&t)?;
            issuer.force_rotation(&t)?;
            let active = issuer
                .keys(&t)?
                .into_iter()
                .find(|k| k.status == stormproof_store::KeyStatus::Active);
            println!(
                "rotated; active key {}",
                active.map(|k| k.kid).unwrap_or_default()
            );
        }
        KeysCommand::Revoke { tenant: t, kid } => {
            let revoked = issuer.revoke_key(&tenant(&t)?, &kid)?;
            println!("key {kid} marked compromised; {revoked} live tokens revoked");
        }
        KeysCommand::Import { tenant: t, pem } => {
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(&pem)
                    .with_context(|| format!("reading {}", pem.display()))?,
            );
            let record = issuer.import_key(&tenant(&t)?, &text)?;
            println!("{}", record.kid);
        }
    }
    Ok(())
}
