//! Sender authentication for inbound mail: SPF (RFC 7208), DKIM (RFC 6376)
//! and DMARC (RFC 7489) through mail-auth, recorded in one
//! `Authentication-Results` field (RFC 8601).
//!
//! The results are recorded, never enforced: nothing here refuses a
//! message. Every check is bounded by the authenticator's timeout, and a
//! check that could not finish is recorded as `temperror`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mail_auth::common::headers::Header;
use mail_auth::dkim::{DkimError, Signature};
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcOutput, DmarcResult,
    DnsError, MessageAuthenticator, SpfOutput, SpfResult, dmarc::verify::DmarcParameters,
};
use tokio::time::{Instant, timeout_at};

use crate::{Error, ErrorKind};

/// How long all the checks of one message may take together. The client
/// waits for its reply meanwhile, and RFC 5321 section 4.5.3.2.6 gives it
/// ten minutes for the whole DATA: five seconds is far inside that.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one DNS query may take on a configured nameserver: two tries
/// fit inside [`AUTH_TIMEOUT`], so a silent server yields mail-auth's own
/// `temperror` rather than our cut-off.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// Checks SPF, DKIM and DMARC over DNS. Cloning shares the resolver and its
/// cache.
#[derive(Clone)]
pub struct Authenticator {
    inner: MessageAuthenticator,
    timeout: Duration,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl From<MessageAuthenticator> for Authenticator {
    fn from(inner: MessageAuthenticator) -> Self {
        Self {
            inner,
            timeout: AUTH_TIMEOUT,
        }
    }
}

impl Authenticator {
    /// The same resolver with another bound on the checks of one message.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bound on the checks of one message.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// An authenticator asking only `nameservers` (recursive resolvers), over
/// UDP and, for truncated answers, TCP.
pub fn authenticator(nameservers: &[SocketAddr]) -> Result<Authenticator, Error> {
    if nameservers.is_empty() {
        return Err(ErrorKind::Resolver("no nameservers given".into()).into());
    }
    let servers = nameservers
        .iter()
        .map(|address| {
            let mut udp = ConnectionConfig::udp();
            udp.port = address.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = address.port();
            NameServerConfig::new(address.ip(), true, vec![udp, tcp])
        })
        .collect();
    let mut options = ResolverOpts::default();
    options.timeout = QUERY_TIMEOUT;
    // Answers come from the named servers only, never from /etc/hosts.
    options.use_hosts_file = ResolveHosts::Never;
    let inner = MessageAuthenticator::new(ResolverConfig::from_name_servers(servers), options)
        .map_err(|e| ErrorKind::Resolver(e.to_string()))?;
    Ok(inner.into())
}

/// An authenticator using the system's resolver configuration
/// (`/etc/resolv.conf`).
pub fn authenticator_from_system() -> Result<Authenticator, Error> {
    let inner =
        MessageAuthenticator::new_system_conf().map_err(|e| ErrorKind::Resolver(e.to_string()))?;
    Ok(inner.into())
}

/// What the checks need to know about the SMTP transaction.
pub(crate) struct Envelope<'a> {
    /// Our name: the authserv-id, and SPF's `%{r}`.
    pub hostname: &'a str,
    /// The client's address.
    pub ip: IpAddr,
    /// The `EHLO`/`HELO` argument.
    pub helo: &'a str,
    /// The `MAIL FROM` address; empty for the null reverse-path.
    pub mail_from: &'a str,
}

/// The value of an `Authentication-Results` field (after the colon and
/// space, without the final CR LF) for `message` as received.
pub(crate) async fn check(auth: &Authenticator, envelope: &Envelope<'_>, message: &[u8]) -> String {
    let deadline = Instant::now() + auth.timeout;
    let resolver = &auth.inner;
    let Envelope {
        hostname,
        ip,
        helo,
        mail_from,
    } = *envelope;
    let Some(parsed) = AuthenticatedMessage::parse(message) else {
        // No header section: delivery refuses such a message anyway.
        return format!("{hostname}; none");
    };

    // RFC 7208 section 2.3: the HELO identity is checked only when it is a
    // domain name, not an address literal.
    let helo_is_name = !helo.is_empty() && !helo.starts_with('[');
    // RFC 7208 section 2.4: with a null reverse-path, the MAIL FROM
    // identity is postmaster@ the HELO name.
    let mail_from_domain = match mail_from.rsplit_once('@') {
        Some((_, domain)) => domain,
        None => helo,
    };
    let spf_helo = async {
        if !helo_is_name {
            return None;
        }
        let params = SpfParameters::verify_ehlo(ip, helo, hostname);
        Some(
            timeout_at(deadline, resolver.check_host(params.into()))
                .await
                .unwrap_or_else(|_| spf_temperror(helo)),
        )
    };
    let spf_mail_from = async {
        if mail_from.is_empty() && !helo_is_name {
            return SpfOutput::new(String::new()).with_result(SpfResult::None);
        }
        let params = SpfParameters::verify_mail_from(ip, helo, hostname, mail_from);
        timeout_at(deadline, resolver.check_host(params.into()))
            .await
            .unwrap_or_else(|_| spf_temperror(mail_from_domain))
    };
    let dkim = async {
        match timeout_at(deadline, resolver.verify_dkim(&parsed)).await {
            Ok(outputs) => outputs
                .into_iter()
                .map(|o| body_hash_mismatch_fails(o, &parsed.dkim_headers))
                .collect(),
            Err(_) => parsed
                .dkim_headers
                .iter()
                .map(|h| DkimOutput::temp_err(timed_out()).with_signature(&h.header))
                .collect::<Vec<_>>(),
        }
    };
    let (spf_helo, spf_mail_from, dkim) = tokio::join!(spf_helo, spf_mail_from, dkim);

    let dmarc = timeout_at(
        deadline,
        resolver.verify_dmarc(DmarcParameters::new(
            &parsed,
            &dkim,
            mail_from_domain,
            &spf_mail_from,
        )),
    )
    .await
    .unwrap_or_else(|_| {
        let domain = parsed.from().rsplit_once('@').map_or("", |(_, d)| d);
        DmarcOutput::default()
            .with_domain(domain)
            .with_spf_result(DmarcResult::TempError(timed_out()))
            .with_dkim_result(DmarcResult::TempError(timed_out()))
    });

    // mail-auth writes the authserv-id, then `;\r\n\t` before each result.
    let mut results = AuthenticationResults::new(hostname);
    if let Some(spf_helo) = &spf_helo {
        results = results.with_spf_ehlo_result(spf_helo, ip, helo);
    }
    let mut value = results
        .with_spf_mailfrom_result(&spf_mail_from, ip, mail_from, helo)
        .with_dkim_results(&dkim, parsed.from())
        .to_string();
    if dkim.is_empty() {
        // RFC 8601 section 2.7.1: "none" when the message was not signed;
        // mail-auth leaves the method out instead.
        value.push_str(";\r\n\tdkim=none");
    }
    // An empty authserv-id leaves just the `;\r\n\tdmarc=...` part.
    value.push_str(
        &AuthenticationResults::new("")
            .with_dmarc_result(&dmarc)
            .to_string(),
    );
    value
}

fn spf_temperror(domain: &str) -> SpfOutput {
    SpfOutput::new(domain.to_owned()).with_result(SpfResult::TempError)
}

fn timed_out() -> mail_auth::Error {
    mail_auth::Error::Dns(DnsError::Resolver("timed out".into()))
}

/// mail-auth calls a body that no longer matches its signed hash
/// "neutral"; RFC 6376 section 6.1.3 makes it a failed verification, which
/// RFC 8601 section 2.7.1 records as "fail".
fn body_hash_mismatch_fails<'x>(
    output: DkimOutput<'x>,
    signatures: &'x [Header<'x, Signature>],
) -> DkimOutput<'x> {
    let DkimResult::Neutral(mail_auth::Error::Dkim(DkimError::FailedBodyHashMatch)) =
        output.result()
    else {
        return output;
    };
    // The output lends its signature only for as long as itself: find the
    // same one in the message, which lives long enough.
    let Some(signature) = output
        .signature()
        .and_then(|s| signatures.iter().find(|h| std::ptr::eq(&h.header, s)))
    else {
        return output;
    };
    DkimOutput::fail(mail_auth::Error::Dkim(DkimError::FailedBodyHashMatch))
        .with_signature(&signature.header)
}

/// `message` without the `Authentication-Results` fields that claim to be
/// ours: only we may say what we checked (RFC 8601 section 5).
pub(crate) fn strip_own_results<'a>(
    message: &'a [u8],
    hostname: &str,
) -> std::borrow::Cow<'a, [u8]> {
    let fields = header_fields(message);
    let forged: Vec<(usize, usize)> = fields
        .into_iter()
        .filter(|&(start, end)| claims(&message[start..end], hostname))
        .collect();
    if forged.is_empty() {
        return std::borrow::Cow::Borrowed(message);
    }
    let mut kept = Vec::with_capacity(message.len());
    let mut at = 0;
    for (start, end) in forged {
        kept.extend_from_slice(&message[at..start]);
        at = end;
    }
    kept.extend_from_slice(&message[at..]);
    std::borrow::Cow::Owned(kept)
}

/// The byte ranges of the header fields of `message`, each with its folded
/// lines and final CR LF.
fn header_fields(message: &[u8]) -> Vec<(usize, usize)> {
    let mut fields: Vec<(usize, usize)> = Vec::new();
    let mut at = 0;
    while at < message.len() {
        let end = message[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(message.len(), |p| at + p + 2);
        let line = &message[at..end];
        if line == b"\r\n" {
            break;
        }
        match (line.first(), fields.last_mut()) {
            (Some(b' ' | b'\t'), Some(field)) => field.1 = end,
            _ => fields.push((at, end)),
        }
        at = end;
    }
    fields
}

/// Whether `field` is an `Authentication-Results` field whose authserv-id
/// is `hostname`.
fn claims(field: &[u8], hostname: &str) -> bool {
    const NAME: &[u8] = b"authentication-results";
    let Some(colon) = field.iter().position(|&b| b == b':') else {
        return false;
    };
    if !field[..colon].trim_ascii_end().eq_ignore_ascii_case(NAME) {
        return false;
    }
    let value = skip_cfws(&field[colon + 1..]);
    let id_end = value
        .iter()
        .position(|&b| b == b';' || b == b'(' || b.is_ascii_whitespace())
        .unwrap_or(value.len());
    let id = &value[..id_end];
    // The authserv-id may be a quoted-string (RFC 8601 section 2.2).
    let id = id
        .strip_prefix(b"\"")
        .and_then(|id| id.strip_suffix(b"\""))
        .unwrap_or(id);
    id.eq_ignore_ascii_case(hostname.as_bytes())
}

/// `value` after leading whitespace and (nested) comments.
fn skip_cfws(mut value: &[u8]) -> &[u8] {
    loop {
        value = value.trim_ascii_start();
        if value.first() != Some(&b'(') {
            return value;
        }
        let mut depth = 0usize;
        let mut end = value.len();
        let mut escaped = false;
        for (i, &b) in value.iter().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        value = &value[end..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_results_claiming_our_name_are_removed() {
        let cases: [(&str, &str); 7] = [
            (
                "Authentication-Results: mx.test; dkim=pass\r\nSubject: x\r\n\r\nbody\r\n",
                "Subject: x\r\n\r\nbody\r\n",
            ),
            (
                "Authentication-Results: MX.TEST;\r\n\tdkim=pass\r\n\tdmarc=pass\r\nSubject: x\r\n\r\n",
                "Subject: x\r\n\r\n",
            ),
            (
                "authentication-results : (forged) \"mx.test\"; spf=pass\r\nSubject: x\r\n\r\n",
                "Subject: x\r\n\r\n",
            ),
            (
                "Authentication-Results: mx.example; dkim=pass\r\nSubject: x\r\n\r\n",
                "Authentication-Results: mx.example; dkim=pass\r\nSubject: x\r\n\r\n",
            ),
            (
                "Authentication-Results: mx.test.example; dkim=pass\r\n\r\n",
                "Authentication-Results: mx.test.example; dkim=pass\r\n\r\n",
            ),
            (
                "Subject: x\r\n\r\nAuthentication-Results: mx.test; in the body\r\n",
                "Subject: x\r\n\r\nAuthentication-Results: mx.test; in the body\r\n",
            ),
            (
                "X-Authentication-Results: mx.test; dkim=pass\r\n\r\n",
                "X-Authentication-Results: mx.test; dkim=pass\r\n\r\n",
            ),
        ];
        for (input, expect) in cases {
            let output = strip_own_results(input.as_bytes(), "mx.test");
            assert_eq!(String::from_utf8_lossy(&output), expect, "{input:?}");
        }
    }
}
