//! `stormproof.toml`, merged with command-line flags.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use stormproof_identity::{IssuerConfig, KeyBackendChoice};
use stormproof_keys::Pkcs11Config;
use stormproof_types::Alg;
use zeroize::Zeroizing;

/// The configuration file's name, looked for in the data directory and
/// then the working directory.
pub const CONFIG_FILE: &str = "stormproof.toml";

/// The whole file. Unknown keys are errors, so a typo cannot silently
/// leave a security setting at its default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`.
    #[serde(default)]
    pub server: ServerSection,
    /// `[tokens]`.
    #[serde(default)]
    pub tokens: TokensSection,
    /// `[keys]`.
    #[serde(default)]
    pub keys: KeysSection,
    /// `[log]`.
    #[serde(default)]
    pub log: LogSection,
    /// `[dns]`.
    #[serde(default)]
    pub dns: DnsSection,
    /// `[audit]`.
    #[serde(default)]
    pub audit: AuditSection,
    /// `[detect]`: the detection engine and its detectors.
    #[serde(default)]
    pub detect: stormproof_detect::DetectConfig,
    /// `[alerts]`.
    #[serde(default)]
    pub alerts: AlertsSection,
    /// `[response]`.
    #[serde(default)]
    pub response: ResponseSection,
}

/// `[alerts]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// `[[alerts.sinks]]`: `url` is a webhook (`https://`), syslog
    /// (`syslog+udp://`, `syslog+tcp://`) or `mailbox:` (the tenant's
    /// security contacts).
    #[serde(default)]
    pub sinks: Vec<stormproof_respond::alerting::AlertSinkConfig>,
}

/// `[response]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseSection {
    /// Each tenant's security contacts, who receive alerts and notices in
    /// their mailboxes: `security_contacts = { acme = ["secops@acme.example"] }`.
    #[serde(default)]
    pub security_contacts: std::collections::BTreeMap<String, Vec<String>>,
}

impl ResponseSection {
    /// The contacts as parsed addresses.
    pub fn contacts(
        &self,
    ) -> anyhow::Result<std::collections::BTreeMap<String, Vec<stormproof_types::Email>>> {
        self.security_contacts
            .iter()
            .map(|(tenant, list)| {
                let parsed = list
                    .iter()
                    .map(|a| {
                        stormproof_types::Email::parse(a)
                            .with_context(|| format!("response.security_contacts.{tenant}: {a:?}"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Ok((tenant.clone(), parsed))
            })
            .collect()
    }
}

/// `[audit]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// How long records are kept, e.g. `"400d"` (the default); at least
    /// `"180d"`.
    #[serde(default, with = "humantime_serde_opt")]
    pub retention: Option<Duration>,
    /// Streaming sinks, `[[audit.sinks]]`: `url` (`syslog+udp://`,
    /// `syslog+tcp://`, `https://`) and `format` (`json` or `ocsf`).
    #[serde(default)]
    pub sinks: Vec<stormproof_audit::sinks::SinkConfig>,
}

/// The default audit retention: 400 days.
pub const DEFAULT_AUDIT_RETENTION: Duration = Duration::from_secs(400 * 86_400);

/// The shortest audit retention accepted: 180 days.
pub const MIN_AUDIT_RETENTION: Duration = Duration::from_secs(180 * 86_400);

impl AuditSection {
    /// The retention in force, refusing one below the minimum.
    pub fn retention(&self) -> anyhow::Result<Duration> {
        let retention = self.retention.unwrap_or(DEFAULT_AUDIT_RETENTION);
        if retention < MIN_AUDIT_RETENTION {
            bail!("audit.retention must be at least 180d");
        }
        Ok(retention)
    }
}

/// `[dns]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSection {
    /// Recursive resolvers for the SPF, DKIM and DMARC checks of inbound
    /// mail, e.g. `["127.0.0.1:53"]`. Absent: the system's
    /// (`/etc/resolv.conf`). Empty: no checks.
    pub nameservers: Option<Vec<std::net::SocketAddr>>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// HTTP listen address.
    pub http: Option<String>,
    /// Public base URL.
    pub public_url: Option<String>,
    /// Inbound SMTP listen address.
    pub smtp: Option<String>,
    /// SMTP submission listen address.
    pub submission: Option<String>,
    /// Host name for SMTP.
    pub hostname: Option<String>,
    /// How long an HTTP client may take to send a request's headers, e.g.
    /// `"30s"` (the default).
    #[serde(default, with = "humantime_serde_opt")]
    pub header_read_timeout: Option<Duration>,
}

/// `[tokens]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensSection {
    /// Default access-token lifetime, e.g. `"10m"`.
    #[serde(default, with = "humantime_serde_opt")]
    pub access_lifetime: Option<Duration>,
    /// The cap on any access token's lifetime, at most `"1h"`.
    #[serde(default, with = "humantime_serde_opt")]
    pub max_lifetime: Option<Duration>,
    /// Refresh-token lifetime.
    #[serde(default, with = "humantime_serde_opt")]
    pub refresh_lifetime: Option<Duration>,
}

/// `[keys]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// `"EdDSA"` (default) or `"ES256"`.
    pub algorithm: Option<String>,
    /// How long each key signs, e.g. `"30d"`.
    #[serde(default, with = "humantime_serde_opt")]
    pub rotation_period: Option<Duration>,
    /// `"software"` (default) or `"pkcs11"`.
    pub backend: Option<String>,
    /// `[keys.pkcs11]`.
    pub pkcs11: Option<Pkcs11Section>,
}

/// `[keys.pkcs11]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Section {
    /// Module path, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// Token label.
    pub token_label: String,
    /// A file holding the user PIN. Otherwise `STORMPROOF_PKCS11_PIN` is read.
    pub pin_file: Option<PathBuf>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `"text"` (default) or `"json"`.
    pub format: Option<String>,
}

mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl Config {
    /// Loads the file named by `--config`, or the first default that exists.
    pub fn load(explicit: Option<&Path>, data: &Path) -> anyhow::Result<Self> {
        let path = match explicit {
            Some(path) => Some(path.to_path_buf()),
            None => [data.join(CONFIG_FILE), PathBuf::from(CONFIG_FILE)]
                .into_iter()
                .find(|p| p.exists()),
        };
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The issuer settings, given the public URL in force.
    pub fn issuer(&self, public_url: &str) -> anyhow::Result<IssuerConfig> {
        let mut config = IssuerConfig {
            public_url: public_url.trim_end_matches('/').to_owned(),
            ..IssuerConfig::default()
        };
        let secs = |d: Duration| d.as_secs() as i64;
        if let Some(d) = self.tokens.max_lifetime {
            if d > Duration::from_secs(3600) {
                bail!("tokens.max_lifetime may be at most 1h");
            }
            config.max_token_lifetime = secs(d);
        }
        if let Some(d) = self.tokens.access_lifetime {
            config.access_token_lifetime = secs(d);
        }
        if let Some(d) = self.tokens.refresh_lifetime {
            config.refresh_token_lifetime = secs(d);
        }
        if let Some(d) = self.keys.rotation_period {
            if d < Duration::from_secs(3600) {
                bail!("keys.rotation_period must be at least 1h");
            }
            config.rotation_period = secs(d);
        }
        if let Some(alg) = &self.keys.algorithm {
            config.key_algorithm = Alg::from_jws_name(alg)
                .with_context(|| format!("keys.algorithm {alg:?}: use EdDSA or ES256"))?;
        }
        config.key_backend = match self.keys.backend.as_deref() {
            None | Some("software") => KeyBackendChoice::Software,
            Some("pkcs11") => KeyBackendChoice::Pkcs11,
            Some(other) => bail!("keys.backend {other:?}: use software or pkcs11"),
        };
        Ok(config)
    }

    /// The PKCS#11 token settings, when the backend is PKCS#11.
    pub fn pkcs11(&self) -> anyhow::Result<Option<Pkcs11Config>> {
        if self.keys.backend.as_deref() != Some("pkcs11") {
            return Ok(None);
        }
        let section = self
            .keys
            .pkcs11
            .as_ref()
            .context("keys.backend is pkcs11 but [keys.pkcs11] is missing")?;
        let pin: Zeroizing<String> = match &section.pin_file {
            Some(path) => Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => Zeroizing::new(
                std::env::var("STORMPROOF_PKCS11_PIN")
                    .context("set keys.pkcs11.pin_file or STORMPROOF_PKCS11_PIN")?,
            ),
        };
        Ok(Some(Pkcs11Config {
            module: section.module.clone(),
            token_label: section.token_label.clone(),
            pin,
        }))
    }
}
