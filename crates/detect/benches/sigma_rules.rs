//! The Sigma rules the throughput bench loads beside the shipped ones, also
//! used by the test that checks the prefilter against a full evaluation.
//!
//! Shaped like a real rule set over an audit log: nearly every rule names
//! the operation it is about, as SigmaHQ's cloud and mail rules name an
//! `Operation` or `eventName`, and adds conditions on addresses, user
//! agents, clients, reasons or counts; a few correlations count such
//! rules' matches; a minority look at every mail read (by address or user
//! agent) or at every event (scanner user agents, a keyword). The mix of
//! the 93 documents:
//!
//! | kind | documents |
//! |---|---|
//! | one operation (or a few) plus conditions | 63 |
//! | correlations and the rules they count | 8 |
//! | every read: `access` plus an address or a user agent | 15 |
//! | any event: a user agent, an address suffix, a keyword | 7 |

/// One document per entry, each a rule or a correlation.
pub fn generated() -> Vec<String> {
    let mut docs = Vec::new();
    let mut n = 0;
    let mut rule = |docs: &mut Vec<String>, level: &str, detection: &str| {
        n += 1;
        docs.push(format!(
            "title: Generated rule {n}\nid: gen-{n}\nlogsource:\n    product: stormproof\n    service: audit\ndetection:\n{detection}\nlevel: {level}\n"
        ));
    };

    // One operation, plus conditions (63).
    let tools = [
        "python-requests",
        "curl/",
        "Go-http-client",
        "okhttp",
        "PowerShell",
        "libwww-perl",
        "axios/",
        "Apache-HttpClient",
    ];
    for tool in tools {
        rule(
            &mut docs,
            "medium",
            &format!(
                "    sel:\n        operation: sign_in\n        actor.user_agent|contains: '{tool}'\n    condition: sel"
            ),
        );
    }
    for i in 0..6 {
        rule(
            &mut docs,
            "high",
            &format!(
                "    sel:\n        operation: sign_in\n        outcome: success\n        actor.ip|cidr:\n            - 192.0.2.{}/32\n            - 203.0.113.{}/30\n            - 2001:db8:{:x}::/48\n    condition: sel",
                i * 7,
                i * 8,
                0xbad0 + i
            ),
        );
    }
    for reason in ["locked", "mfa_failed", "totp_invalid", "unknown_user"] {
        rule(
            &mut docs,
            "low",
            &format!(
                "    sel:\n        operation: sign_in_failed\n        reason: {reason}\n    condition: sel"
            ),
        );
    }
    for client in [
        "reporting-bot",
        "legacy-sync",
        "crm-connector",
        "backup-agent",
    ] {
        rule(
            &mut docs,
            "medium",
            &format!(
                "    sel:\n        operation: token_issued\n        reason: client_credentials\n    known:\n        actor.client_id: {client}\n    condition: sel and not known"
            ),
        );
    }
    for grant in ["device_code", "admin_cli"] {
        rule(
            &mut docs,
            "medium",
            &format!(
                "    sel:\n        operation: token_issued\n        reason: {grant}\n    condition: sel"
            ),
        );
    }
    for reasons in [
        "alg_none",
        "hmac_alg",
        "embedded_key",
        "cross_tenant_key",
        "ledger_mismatch",
        "key_compromised",
    ] {
        rule(
            &mut docs,
            "critical",
            &format!(
                "    sel:\n        operation: token_rejected\n        reason: {reasons}\n    condition: sel"
            ),
        );
    }
    for ua in ["Client=RESTSystem", "MailSniper", "ruler/", "AADInternals"] {
        rule(
            &mut docs,
            "high",
            &format!(
                "    sel:\n        operation:\n            - Email/get\n            - download\n            - Thread/get\n        actor.user_agent|contains: '{ua}'\n    condition: sel"
            ),
        );
    }
    for client in ["exporter", "mailbox-migrator"] {
        rule(
            &mut docs,
            "medium",
            &format!(
                "    sel:\n        operation: Email/get\n        access: content\n        actor.client_id: {client}\n    condition: sel"
            ),
        );
    }
    for threshold in [1000, 5000] {
        rule(
            &mut docs,
            "high",
            &format!(
                "    sel:\n        operation:\n            - Email/get\n            - download\n        count|gte: {threshold}\n    condition: sel"
            ),
        );
    }
    for threshold in [50, 200, 1000] {
        rule(
            &mut docs,
            "medium",
            &format!(
                "    sel:\n        operation: smtp.submission\n        count|gte: {threshold}\n    condition: sel"
            ),
        );
    }
    for reason in ["bad_credentials", "locked"] {
        rule(
            &mut docs,
            "low",
            &format!(
                "    sel:\n        operation: smtp.auth_failed\n        reason: {reason}\n    internal:\n        actor.ip|cidr:\n            - 10.0.0.0/8\n            - 172.16.0.0/12\n            - 192.168.0.0/16\n            - 198.51.0.0/16\n    condition: sel and not internal"
            ),
        );
    }
    let admin = [
        "user_created",
        "user_disabled",
        "app_password_created",
        "client_created",
        "client_blocked",
        "totp_disabled",
        "key_imported",
        "key_compromised",
        "key_rotated",
        "password_changed",
        "session_revoked",
    ];
    for operation in admin {
        rule(
            &mut docs,
            "low",
            &format!(
                "    sel:\n        operation: {operation}\n        actor.protocol: cli\n    condition: sel"
            ),
        );
    }
    for detail in ["replyTo", "bcc"] {
        rule(
            &mut docs,
            "medium",
            &format!(
                "    sel:\n        operation: Identity/set\n        detail.changed|contains: {detail}\n    condition: sel"
            ),
        );
    }
    for operation in [
        "refresh_token_reused",
        "auth_code_reused",
        "client_auth_failed",
    ] {
        rule(
            &mut docs,
            "high",
            &format!(
                "    sel:\n        operation: {operation}\n        outcome: failure\n    condition: sel"
            ),
        );
    }
    rule(
        &mut docs,
        "medium",
        "    sel:\n        operation: sign_in\n        detail.amr: pwd\n    mfa:\n        detail.amr: otp\n    condition: sel and not mfa",
    );
    rule(
        &mut docs,
        "medium",
        "    sel:\n        operation: EmailSubmission/set\n        count|gte: 100\n    condition: sel",
    );
    for block in ["198.18.0.0/15", "100.64.0.0/10"] {
        rule(
            &mut docs,
            "medium",
            &format!(
                "    sel:\n        operation: device_approved\n        actor.ip|cidr: {block}\n    condition: sel"
            ),
        );
    }

    // Correlations and the rules they count (8).
    let counted = [
        (
            "sign_in_failed",
            "    sel:\n        operation: sign_in_failed\n    condition: sel",
            "event_count",
            "actor.user",
            "10m",
            "        gte: 10",
        ),
        (
            "downloads",
            "    sel:\n        operation: download\n        outcome: success\n    condition: sel",
            "event_count",
            "actor.user",
            "10m",
            "        gte: 200",
        ),
        (
            "sign_ins",
            "    sel:\n        operation: sign_in\n        outcome: success\n    condition: sel",
            "value_count",
            "actor.user",
            "1h",
            "        field: actor.ip\n        gte: 6",
        ),
        (
            "refusals",
            "    sel:\n        operation: token_rejected\n        reason:\n            - revoked\n            - wrong_audience\n            - malformed\n    condition: sel",
            "event_count",
            "actor.ip",
            "5m",
            "        gte: 5",
        ),
    ];
    for (k, (name, detection, kind, group, span, condition)) in counted.into_iter().enumerate() {
        let n = 1000 + k;
        docs.push(format!(
            "title: Generated base {n}\nid: gen-base-{n}\nname: gen_{name}\nlogsource:\n    product: stormproof\n    service: audit\ndetection:\n{detection}\nlevel: low\n"
        ));
        docs.push(format!(
            "title: Generated correlation {n}\nid: gen-corr-{n}\ncorrelation:\n    type: {kind}\n    rules:\n        - gen_{name}\n    group-by:\n        - {group}\n    timespan: {span}\n    condition:\n{condition}\nlevel: high\n"
        ));
    }

    // Every read (15).
    for i in 0..8 {
        rule(
            &mut docs,
            "high",
            &format!(
                "    read:\n        access:\n            - content\n            - metadata\n        outcome: success\n        actor.ip|cidr:\n            - 185.220.{}.0/22\n            - 2a0b:f4c{i}::/32\n    condition: read",
                100 + i * 4
            ),
        );
    }
    for ua in [
        "Client=REST",
        "MSRPC",
        "EWS-Export",
        "python",
        "Outlook-iOS/1.0",
        "NetExec",
        "Go-http-client",
    ] {
        rule(
            &mut docs,
            "medium",
            &format!(
                "    read:\n        access: content\n        actor.user_agent|contains: '{ua}'\n    condition: read"
            ),
        );
    }

    // Any event (7).
    for scanner in ["sqlmap", "nikto", "nuclei", "zgrab", "masscan"] {
        rule(
            &mut docs,
            "low",
            &format!(
                "    sel:\n        actor.user_agent|contains: '{scanner}'\n    condition: sel"
            ),
        );
    }
    rule(
        &mut docs,
        "low",
        "    sel:\n        actor.user|endswith:\n            - '@gmail.com'\n            - '@outlook.com'\n    condition: sel",
    );
    rule(
        &mut docs,
        "low",
        "    keywords:\n        - 'evil-token-marker'\n    condition: keywords",
    );
    docs
}
