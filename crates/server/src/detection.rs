//! Detection and response in the server: the engine follows the audit log
//! from where it stopped, each new alert goes to the alert sinks, and the
//! responses the operator allowed (`auto_response`) are carried out at
//! once, followed by notices to the people affected.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use stormproof_audit::{AuditLog, Follower, LogReader};
use stormproof_detect::{Alert, Engine, Response};
use stormproof_identity::Issuer;
use stormproof_mail::Delivery;
use stormproof_respond::alerting::AlertDispatcher;
use stormproof_respond::{ExposureQuery, deliver_notice, exposure, exposure_notices};
use stormproof_store::Store;
use stormproof_types::{Email, TenantName};
use stormproof_verifier::Verifier;

/// The next audit record the engine has not seen, kept in the store so a
/// restart neither skips nor repeats much (alerts are deduplicated).
pub const DETECT_CURSOR_SETTING: &str = "detect_cursor";

/// Records handed to the engine per step.
const BATCH: usize = 1024;

/// What detection and response need.
pub struct DetectionContext {
    /// The store, for the cursor.
    pub store: Arc<dyn Store>,
    /// For revocations.
    pub issuer: Arc<Issuer>,
    /// Told at once about an automatic response's revocation, rather than
    /// at its next poll: until then it would refuse the fresh key's tokens
    /// (as not yet active) and accept cached ones of a revoked session.
    pub verifier: Arc<Verifier>,
    /// For notices.
    pub delivery: Delivery,
    /// Alert sinks.
    pub dispatcher: AlertDispatcher,
    /// Each tenant's security contacts.
    pub contacts: Arc<BTreeMap<String, Vec<Email>>>,
    /// The audit log's directory, for exposure reports.
    pub audit_dir: PathBuf,
}

/// With no new records for this long, learned state and the alerts below
/// critical (which the engine writes in batches, on event time) go to the
/// store, so `alerts list` shows an alert raised just before a quiet spell.
const IDLE_FLUSH: Duration = Duration::from_secs(1);

/// Runs until the log closes.
pub async fn run(mut engine: Engine, log: AuditLog, context: DetectionContext) {
    let context = Arc::new(context);
    let cursor = context
        .store
        .setting(DETECT_CURSOR_SETTING)
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut follower = Follower::new(&log, context.audit_dir.clone(), cursor);
    let mut unflushed = false;
    loop {
        // The wait for records is never cancelled (a catch-up from the
        // files may take longer than the idle period); only the idle timer
        // is, each time it fires.
        let result = {
            let next = follower.next_batch(BATCH);
            tokio::pin!(next);
            loop {
                tokio::select! {
                    result = &mut next => break result,
                    () = tokio::time::sleep(IDLE_FLUSH), if unflushed => {
                        unflushed = false;
                        match flush(engine).await {
                            Some(flushed) => engine = flushed,
                            None => return,
                        }
                    }
                }
            }
        };
        let batch = match result {
            Ok(batch) => batch,
            Err(error) => {
                tracing::info!(message = "detection stopping", %error);
                let _ = flush(engine).await;
                return;
            }
        };
        let next = follower.cursor();
        let store = context.store.clone();
        let step = tokio::task::spawn_blocking(move || {
            // A large batch (catching up, or under load) spreads Sigma
            // over a second core; a small one goes event by event.
            let alerts: Vec<Alert> = engine.process_batch(&batch);
            if let Err(error) = store.set_setting(DETECT_CURSOR_SETTING, &next.to_string()) {
                tracing::warn!(message = "detection cursor not stored", %error);
            }
            (engine, alerts)
        })
        .await;
        let alerts = match step {
            Ok((returned, alerts)) => {
                engine = returned;
                alerts
            }
            Err(error) => {
                tracing::error!(message = "detection step failed; detection stopped", %error);
                return;
            }
        };
        unflushed = true;
        for alert in alerts {
            tracing::warn!(message = "alert", id = %alert.id, detector = %alert.detector, severity = alert.severity.as_str(), summary = %alert.summary);
            context.dispatcher.dispatch(alert.clone());
            if alert.auto_response {
                let context = context.clone();
                tokio::task::spawn_blocking(move || respond(&context, &alert));
            }
        }
    }
}

/// Writes the engine's pending state and alerts to the store, off the
/// reactor. `None` if the task died, which stops detection.
async fn flush(mut engine: Engine) -> Option<Engine> {
    let flushed = tokio::task::spawn_blocking(move || {
        if let Err(error) = engine.flush() {
            tracing::warn!(message = "detection state not stored; will retry", %error);
        }
        engine
    })
    .await;
    match flushed {
        Ok(engine) => Some(engine),
        Err(error) => {
            tracing::error!(message = "detection flush failed; detection stopped", %error);
            None
        }
    }
}

/// Carries out an alert's response, then tells the people affected.
pub fn respond(context: &DetectionContext, alert: &Alert) {
    let (Some(response), Some(tenant)) = (
        &alert.response,
        alert
            .tenant
            .as_deref()
            .and_then(|t| TenantName::parse(t).ok()),
    ) else {
        return;
    };
    let issuer = &context.issuer;
    let (done, query) = match response {
        Response::RevokeKey { kid } => {
            // The verifier resolves a key only among the keys of the tenant
            // the token names, so the key is looked for there first; another
            // tenant's key of that id only if that tenant has none.
            let keys = context.store.all_keys().unwrap_or_default();
            let owner = if keys.iter().any(|k| k.kid == *kid && k.tenant == tenant) {
                tenant.clone()
            } else {
                keys.into_iter()
                    .find(|k| &k.kid == kid)
                    .map_or_else(|| tenant.clone(), |k| k.tenant)
            };
            match issuer.revoke_key(&owner, kid) {
                Ok(revoked) => (
                    format!(
                        "Signing key {kid} of tenant {owner} was marked compromised; {revoked} tokens it signed were revoked, and a fresh key took over."
                    ),
                    None,
                ),
                Err(error) => {
                    tracing::error!(message = "automatic key revocation failed", %kid, %error);
                    return;
                }
            }
        }
        Response::RevokeSession { session } => match issuer.revoke_session(&tenant, session) {
            Ok(()) => (
                format!("Sign-in session {session} and every token derived from it were revoked."),
                Some(ExposureQuery {
                    tenant: Some(tenant.to_string()),
                    session: Some(session.clone()),
                    ..ExposureQuery::default()
                }),
            ),
            Err(error) => {
                tracing::error!(message = "automatic session revocation failed", %session, %error);
                return;
            }
        },
        Response::BlockClient { client_id } => {
            match issuer.set_client_blocked(&tenant, client_id, true) {
                Ok(()) => (
                    format!("The application {client_id} was blocked; its tokens no longer work."),
                    Some(ExposureQuery {
                        tenant: Some(tenant.to_string()),
                        client: Some(client_id.clone()),
                        ..ExposureQuery::default()
                    }),
                ),
                Err(error) => {
                    tracing::error!(message = "automatic client block failed", %client_id, %error);
                    return;
                }
            }
        }
    };
    if let Err(error) = context.verifier.refresh() {
        tracing::warn!(message = "verifier not refreshed after an automatic response; it polls again shortly", %error);
    }
    tracing::warn!(message = "automatic response carried out", alert = %alert.id, action = %done);
    let Some(query) = query else {
        return;
    };
    notify(context, &query, &alert.summary, &[done]);
}

/// Builds the exposure report for `query` and delivers the notices.
pub fn notify(context: &DetectionContext, query: &ExposureQuery, what: &str, done: &[String]) {
    let report = match LogReader::open(&context.audit_dir)
        .map_err(stormproof_respond::Error::from)
        .and_then(|reader| exposure(&reader, context.store.as_ref(), query))
    {
        Ok(report) => report,
        Err(error) => {
            tracing::error!(message = "exposure report failed; no notices sent", %error);
            return;
        }
    };
    let now = stormproof_types::Clock::now(&stormproof_types::SystemClock);
    for notice in exposure_notices(&report, what, done, &context.contacts) {
        if let Err(error) = deliver_notice(context.store.as_ref(), &context.delivery, &notice, now)
        {
            tracing::error!(message = "notice not delivered", %error);
        }
    }
}
