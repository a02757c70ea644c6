//! Pseudonyms and their resolution (seed 6.4; TS-0003 clause 11): the AE-IDs the CSE assigns
//! stand for credentials, and only an authorised role may learn which.
//!
//! The store knows a credential only by the pseudonym vault's keyed lookup, and the
//! Credential-ID itself only sealed for its AE-ID (`security::privacy::PseudonymVault`).
//! Resolving a pseudonym opens those seals, for the admin, and is written to the audit
//! trail (who, which pseudonym, why) before the answer goes out.

use crate::Cse;
use manager::audit::Event;
use model::{Error, ResourceType, Result};
use security::privacy::PseudonymVault;
use serde_json::{json, Value};

/// Re-keys bindings an older version kept under the Credential-ID in clear: each gets the
/// vault's lookup and a sealed copy, and the clear one goes, in one durable write.
pub(crate) async fn rekey_clear_bindings(cse: &Cse) -> Result<()> {
    let Some(vault) = cse.associations().pseudonyms().cloned() else {
        return Ok(());
    };
    let vault_error = |e| Error::internal(format!("pseudonym vault: {e}"));
    let mut rekeyed = Vec::new();
    for (key, ae_id) in cse.store.credential_bindings()? {
        if PseudonymVault::is_lookup(&key) {
            continue;
        }
        let lookup = vault.lookup(&key).map_err(vault_error)?;
        let sealed = vault.seal(&key, &ae_id).map_err(vault_error)?;
        rekeyed.push((key, lookup, ae_id, sealed));
    }
    if rekeyed.is_empty() {
        return Ok(());
    }
    let count = rekeyed.len();
    store::write(cse.store.as_ref(), move |t| {
        for (clear, lookup, ae_id, sealed) in &rekeyed {
            t.remember_credential_ae(lookup, ae_id)?;
            t.seal_identity(ae_id, sealed)?;
            t.forget_credential_ae(clear)?;
        }
        Ok(())
    })
    .await?;
    tracing::info!(
        count,
        "credential bindings kept in clear were re-keyed under the pseudonym vault"
    );
    Ok(())
}

/// The party a notification URL reaches: its scheme and authority.
fn party_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    url[after_scheme..]
        .find('/')
        .map_or(url, |i| &url[..after_scheme + i])
}

impl Cse {
    /// `body` as the party at `url` is to see it: with per-target pseudonyms, every AE-ID of
    /// a registered AE in it (a whole string, or one segment of an address) is replaced by
    /// that party's alias. Without them, or without a vault, `body` as it is. `None` when an
    /// alias cannot be made: then nothing is sent rather than the real AE-ID.
    pub(crate) fn as_seen_by(&self, url: &str, body: &Value) -> Option<Value> {
        let vault = match self.associations().pseudonyms() {
            Some(vault) if self.config.per_target_pseudonyms => vault.clone(),
            _ => return Some(body.clone()),
        };
        let party = party_of(url);
        let mut out = body.clone();
        let mut failed = false;
        rewrite_strings(&mut out, &mut |s: &str| {
            let segments: Vec<&str> = s.split('/').collect();
            let mut changed = false;
            let mapped: Vec<String> = segments
                .iter()
                .map(|seg| {
                    let is_ae = seg.len() > 1
                        && (seg.starts_with('C') || seg.starts_with('S'))
                        && self.store.resource_type(seg).ok().flatten() == Some(ResourceType::Ae);
                    if !is_ae {
                        return (*seg).to_owned();
                    }
                    match vault.alias(party, seg) {
                        Ok(alias) => {
                            changed = true;
                            alias
                        }
                        Err(e) => {
                            failed = true;
                            tracing::error!(error = %e, "no alias for a notification");
                            (*seg).to_owned()
                        }
                    }
                })
                .collect();
            changed.then(|| mapped.join("/"))
        });
        (!failed).then_some(out)
    }

    /// Resolves the pseudonym `ae_id` to the Credential-ID(s) it was assigned to, for
    /// `actor`, stating `purpose`; the resolution is audited before the answer.
    pub async fn resolve_pseudonym(
        &self,
        actor: &str,
        ae_id: &str,
        purpose: &str,
    ) -> Result<Value> {
        self.resolve(actor, ae_id, purpose, None).await
    }

    /// Resolves `pseudonym`: an assigned AE-ID, or, with `target`, the alias the party at
    /// `target` was shown (per-target pseudonyms); audited before the answer.
    pub async fn resolve(
        &self,
        actor: &str,
        pseudonym: &str,
        purpose: &str,
        target: Option<&str>,
    ) -> Result<Value> {
        let vault = self.associations().pseudonyms().cloned().ok_or_else(|| {
            Error::new(
                model::ResponseStatusCode::NotImplemented,
                "this CSE keeps no pseudonym vault",
            )
        })?;
        let found;
        let ae_id = match target {
            None => pseudonym,
            Some(target) => {
                let party = party_of(target);
                let mut hit = None;
                for ae in self
                    .store
                    .children(&self.config.cse_id, Some(ResourceType::Ae))?
                {
                    let candidate = vault
                        .alias(party, ae.ri())
                        .map_err(|e| Error::internal(format!("pseudonym vault: {e}")))?;
                    if candidate == pseudonym {
                        hit = Some(ae.ri().to_owned());
                        break;
                    }
                }
                found = hit.ok_or_else(|| {
                    Error::not_found(format!("no AE is shown as {pseudonym} to {party}"))
                })?;
                found.as_str()
            }
        };
        if self.store.resource_type(ae_id)? != Some(ResourceType::Ae) {
            // Deregistered AEs keep their sealed identity; unknown names have none.
            if self.store.sealed_identities(ae_id)?.is_empty() {
                return Err(Error::not_found(format!("no pseudonym {ae_id}")));
            }
        }
        let mut credentials = Vec::new();
        for sealed in self.store.sealed_identities(ae_id)? {
            let credential = vault
                .open(&sealed, ae_id)
                .map_err(|e| Error::internal(format!("pseudonym vault: {e}")))?;
            if !credentials.contains(&credential) {
                credentials.push(credential);
            }
        }
        if let Some(audit) = self.audit() {
            audit
                .record_durably(Event::PseudonymResolved {
                    actor: actor.to_owned(),
                    pseudonym: pseudonym.to_owned(),
                    purpose: purpose.to_owned(),
                })
                .await?;
        }
        tracing::warn!(
            pseudonym,
            "a pseudonym was resolved by the admin (see the audit log)"
        );
        let mut answer = json!({ "pseudonym": pseudonym, "credentials": credentials });
        if target.is_some() {
            answer["aeId"] = json!(ae_id);
        }
        Ok(answer)
    }
}

/// Applies `f` to every string in `v` (values, not keys); `Some` replaces the string.
fn rewrite_strings(v: &mut Value, f: &mut impl FnMut(&str) -> Option<String>) {
    match v {
        Value::String(s) => {
            if let Some(new) = f(s) {
                *s = new;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite_strings(i, f)),
        Value::Object(map) => map.values_mut().for_each(|i| rewrite_strings(i, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::party_of;

    #[test]
    fn the_party_is_the_scheme_and_authority() {
        assert_eq!(
            party_of("https://a.example:8443/notify/x"),
            "https://a.example:8443"
        );
        assert_eq!(party_of("http://10.0.0.1:80"), "http://10.0.0.1:80");
        assert_eq!(party_of("weird"), "weird");
    }
}
