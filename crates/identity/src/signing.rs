//! The signing-key life cycle: next → active → retiring → retired, with
//! compromised reachable from any state; and the signers for active keys.
//!
//! A tenant always has one key published ahead of use (`next`), so relying
//! parties that cache the JWKS already know a key before it signs. Rotation
//! promotes `next` after `rotation_period`; the old key keeps verifying only
//! as long as the tokens it signed can live. Every key has a hard `not_after`
//! that no status overrides.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use stormproof_keys::{PublicKey, SecretKey, Signer};
use stormproof_store::{KeyBackend, KeyRecord, KeyStatus};
use stormproof_types::{Alg, TenantName, UnixTime, random_id};

use crate::{ErrorKind, Issuer, KeyBackendChoice, Result, invalid};

/// Extra life after the last token a key signed has expired, for clock skew.
const GRACE: i64 = 300;

/// The instants a generated key moves through, given when it was created
/// (published as `next`): `(activates, retires_signing, not_after)`.
pub fn rotation_schedule(
    created: UnixTime,
    rotation_period: i64,
    max_token_lifetime: i64,
) -> (UnixTime, UnixTime, UnixTime) {
    let activates = created + rotation_period;
    let retires = activates + rotation_period;
    (activates, retires, retires + max_token_lifetime + GRACE)
}

fn sealing_context(tenant: &TenantName, kid: &str) -> String {
    format!("signing-key/{tenant}/{kid}")
}

/// Unsealed signers, by tenant and kid. Rebuilt lazily.
#[derive(Debug, Default)]
pub(crate) struct SignerCache(RwLock<HashMap<(TenantName, String), Arc<dyn Signer>>>);

impl Issuer {
    /// Generates a key record (not yet stored) in the configured backend.
    fn generate_key(
        &self,
        tenant: &TenantName,
        status: KeyStatus,
        now: UnixTime,
    ) -> Result<KeyRecord> {
        let alg = self.config.key_algorithm;
        let kid = format!("{}-{}", alg.jws_name().to_ascii_lowercase(), random_id(9));
        let (public, backend, material) = match self.config.key_backend {
            KeyBackendChoice::Software => {
                let key = SecretKey::generate(alg);
                let sealed = key.seal(&self.master, &sealing_context(tenant, &kid))?;
                (key.public_key(), KeyBackend::Software, sealed)
            }
            KeyBackendChoice::Pkcs11 => {
                let hsm = self
                    .hsm
                    .as_ref()
                    .ok_or_else(|| invalid("no PKCS#11 token configured"))?;
                let object_id = format!("{tenant}/{kid}");
                let public = hsm.generate(alg, &object_id)?;
                (public, KeyBackend::Pkcs11, object_id.into_bytes())
            }
        };
        let (_, _, not_after) = rotation_schedule(
            now,
            self.config.rotation_period,
            self.config.max_token_lifetime,
        );
        Ok(KeyRecord {
            tenant: tenant.clone(),
            kid,
            alg,
            backend,
            material,
            public_key: public.to_bytes(),
            created: now,
            not_before: now,
            not_after,
            status,
            activated_at: (status == KeyStatus::Active).then_some(now),
            retiring_at: None,
            imported: false,
        })
    }

    /// Whether `key` may still sign a token of the longest lifetime at `now`.
    fn can_sign(&self, key: &KeyRecord, now: UnixTime) -> bool {
        key.status == KeyStatus::Active
            && now >= key.not_before
            && now + self.config.max_token_lifetime < key.not_after
    }

    /// Brings a tenant's keys up to date at the current time: retires keys
    /// whose tokens have all expired, promotes `next` when the active key's
    /// period is over (or it can no longer sign), and makes sure a `next`
    /// key is published. Returns whether anything changed.
    pub fn rotate_tenant_keys(&self, tenant: &TenantName) -> Result<bool> {
        self.rotate(tenant, false)
    }

    /// Rotates now, whatever the schedule says.
    pub fn force_rotation(&self, tenant: &TenantName) -> Result<()> {
        self.rotate(tenant, true).map(|_| ())
    }

    fn rotate(&self, tenant: &TenantName, force: bool) -> Result<bool> {
        let now = self.now();
        let keys = self.store.keys(tenant)?;
        let mut changes: Vec<(String, KeyStatus)> = Vec::new();
        let lifetime = self.config.max_token_lifetime;

        for key in &keys {
            let past_use = key
                .retiring_at
                .is_some_and(|at| now >= at + lifetime + self.config.leeway);
            let dead = now >= key.not_after;
            match key.status {
                KeyStatus::Retiring if past_use || dead => {
                    changes.push((key.kid.clone(), KeyStatus::Retired))
                }
                KeyStatus::Next if dead => changes.push((key.kid.clone(), KeyStatus::Retired)),
                _ => {}
            }
        }
        let active = keys.iter().find(|k| k.status == KeyStatus::Active);
        let due = match active {
            None => true,
            Some(key) => {
                force
                    || !self.can_sign(key, now)
                    || key.activated_at.unwrap_or(key.created) + self.config.rotation_period <= now
            }
        };
        let mut published_next = keys
            .iter()
            .find(|k| k.status == KeyStatus::Next && now + lifetime < k.not_after)
            .cloned();
        if due {
            let incoming = match published_next.take() {
                Some(next) => next,
                None => {
                    // Nothing was published ahead (a new tenant, or after a
                    // compromise): generate and activate at once.
                    let key = self.generate_key(tenant, KeyStatus::Next, now)?;
                    self.store.insert_key(&key)?;
                    key
                }
            };
            if let Some(old) = active {
                // A key already past its hard lifetime verifies nothing, so
                // there is nothing for it to do as a retiring key.
                let status = if now >= old.not_after {
                    KeyStatus::Retired
                } else {
                    KeyStatus::Retiring
                };
                changes.push((old.kid.clone(), status));
            }
            changes.push((incoming.kid.clone(), KeyStatus::Active));
            tracing::info!(message = "rotating signing key", %tenant, new = %incoming.kid, old = active.map(|k| k.kid.as_str()).unwrap_or("-"));
        }
        if !changes.is_empty() {
            self.store.set_key_statuses(tenant, &changes, now)?;
            self.invalidate_signers();
        }
        if published_next.is_none() {
            let next = self.generate_key(tenant, KeyStatus::Next, now)?;
            self.store.insert_key(&next)?;
            self.admin_event(
                tenant,
                "key_created",
                serde_json::json!({"kid": next.kid, "status": "next", "alg": next.alg}),
            );
        }
        if due {
            self.admin_event(tenant, "key_rotated", serde_json::json!({"changes": changes.iter().map(|(k, s)| serde_json::json!({"kid": k, "status": s})).collect::<Vec<_>>()}));
        }
        Ok(due || !changes.is_empty() || published_next.is_none())
    }

    /// Rotates every tenant's keys as their schedules require.
    pub fn rotate_all(&self) -> Result<()> {
        for tenant in self.store.tenants()? {
            if let Err(error) = self.rotate_tenant_keys(&tenant.name) {
                tracing::error!(message = "key rotation failed", tenant = %tenant.name, %error);
            }
        }
        Ok(())
    }

    /// Imports a PKCS#8 PEM private key as the tenant's active signing key.
    /// The previous active key moves to retiring and keeps verifying the
    /// tokens it signed.
    pub fn import_key(&self, tenant: &TenantName, pem: &str) -> Result<KeyRecord> {
        let key = SecretKey::from_pkcs8_pem(pem)?;
        let alg = stormproof_keys::Signer::alg(&key);
        let now = self.now();
        let keys = self.store.keys(tenant)?;
        if keys
            .iter()
            .any(|k| k.public_key == key.public_key().to_bytes())
        {
            return Err(
                ErrorKind::Conflict("this key is already in the tenant's key set".into()).into(),
            );
        }
        let kid = format!(
            "{}-imported-{}",
            alg.jws_name().to_ascii_lowercase(),
            random_id(6)
        );
        let sealed = key.seal(&self.master, &sealing_context(tenant, &kid))?;
        let (_, retires, _) = rotation_schedule(
            now - self.config.rotation_period,
            self.config.rotation_period,
            self.config.max_token_lifetime,
        );
        let record = KeyRecord {
            tenant: tenant.clone(),
            kid: kid.clone(),
            alg,
            backend: KeyBackend::Software,
            material: sealed,
            public_key: key.public_key().to_bytes(),
            created: now,
            not_before: now,
            not_after: retires + self.config.max_token_lifetime + GRACE,
            status: KeyStatus::Next,
            activated_at: None,
            retiring_at: None,
            imported: true,
        };
        self.store.insert_key(&record)?;
        let mut changes: Vec<(String, KeyStatus)> = keys
            .iter()
            .filter(|k| k.status == KeyStatus::Active)
            .map(|k| (k.kid.clone(), KeyStatus::Retiring))
            .collect();
        changes.push((kid.clone(), KeyStatus::Active));
        self.store.set_key_statuses(tenant, &changes, now)?;
        self.invalidate_signers();
        self.admin_event(
            tenant,
            "key_imported",
            serde_json::json!({"kid": kid, "alg": alg}),
        );
        self.store
            .keys(tenant)?
            .into_iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| ErrorKind::NotFound(format!("key {kid}")).into())
    }

    /// Marks a key compromised: it verifies nothing from now on, every token
    /// it signed is revoked in the ledger, and if it was the active key a
    /// fresh key takes over at once. Returns how many live tokens were revoked.
    pub fn revoke_key(&self, tenant: &TenantName, kid: &str) -> Result<u64> {
        let keys = self.store.keys(tenant)?;
        let Some(key) = keys.iter().find(|k| k.kid == kid) else {
            return Err(ErrorKind::NotFound(format!("key {kid} in tenant {tenant}")).into());
        };
        let revoked = self.store.compromise_key(tenant, kid, self.now())?;
        self.invalidate_signers();
        tracing::warn!(message = "signing key marked compromised", %tenant, kid, revoked_tokens = revoked);
        self.admin_event(
            tenant,
            "key_compromised",
            serde_json::json!({"kid": kid, "revoked_tokens": revoked}),
        );
        if key.status == KeyStatus::Active || key.status == KeyStatus::Next {
            self.rotate_tenant_keys(tenant)?;
        }
        Ok(revoked)
    }

    /// The tenant's key records, newest first.
    pub fn keys(&self, tenant: &TenantName) -> Result<Vec<KeyRecord>> {
        Ok(self.store.keys(tenant)?)
    }

    /// The tenant's JWKS: keys that are published (next), signing (active)
    /// or still verifying (retiring), and inside their hard lifetime. Never
    /// another tenant's keys.
    pub fn jwks(&self, tenant: &TenantName) -> Result<serde_json::Value> {
        let now = self.now();
        let keys = self
            .store
            .keys(tenant)?
            .into_iter()
            .filter(|k| {
                matches!(
                    k.status,
                    KeyStatus::Next | KeyStatus::Active | KeyStatus::Retiring
                ) && now < k.not_after
            })
            .filter_map(|k| {
                PublicKey::from_bytes(k.alg, &k.public_key)
                    .ok()
                    .map(|p| p.to_jwk(&k.kid))
            })
            .collect::<Vec<_>>();
        Ok(serde_json::json!({ "keys": keys }))
    }

    /// The active key and its signer, for a token that lives until `exp`.
    pub(crate) fn active_signer(
        &self,
        tenant: &TenantName,
    ) -> Result<(KeyRecord, Arc<dyn Signer>)> {
        let now = self.now();
        let key = self
            .store
            .keys(tenant)?
            .into_iter()
            .find(|k| self.can_sign(k, now))
            .ok_or_else(|| ErrorKind::NoSigningKey(tenant.to_string()))?;
        let cache_key = (tenant.clone(), key.kid.clone());
        if let Some(signer) = self
            .signers
            .0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&cache_key)
        {
            return Ok((key, signer.clone()));
        }
        let signer: Arc<dyn Signer> = match key.backend {
            KeyBackend::Software => Arc::new(SecretKey::unseal(
                &self.master,
                &key.material,
                &sealing_context(tenant, &key.kid),
            )?),
            KeyBackend::Pkcs11 => {
                let hsm = self
                    .hsm
                    .as_ref()
                    .ok_or_else(|| invalid("key is on a PKCS#11 token, but none is configured"))?;
                let object_id = String::from_utf8_lossy(&key.material).into_owned();
                hsm.signer(key.alg, &object_id)?
            }
        };
        if signer.alg() != key.alg {
            return Err(invalid(format!(
                "key {} does not match its record's algorithm",
                key.kid
            )));
        }
        self.signers
            .0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cache_key, signer.clone());
        Ok((key, signer))
    }

    /// Drops unsealed signers, so a revoked or rotated key is never used again.
    pub fn invalidate_signers(&self) {
        self.signers
            .0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The algorithm of newly generated keys.
    pub fn key_algorithm(&self) -> Alg {
        self.config.key_algorithm
    }
}
