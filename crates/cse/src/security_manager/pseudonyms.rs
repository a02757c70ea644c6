//! Pseudonyms and their resolution (seed 6.4; TS-0003 clause 11): the AE-IDs the CSE assigns
//! stand for credentials, and only an authorised role may learn which.
//!
//! The store knows a credential only by the pseudonym vault's keyed lookup, and the
//! Credential-ID itself only sealed for its AE-ID (`security::privacy::PseudonymVault`).
//! Resolving a pseudonym opens those seals, for the admin, and is written to the audit
//! trail (who, which pseudonym, why) before the answer goes out.

use crate::originator::{self, Originator};
use crate::records::{StoreRecords, TxnRecords};
use crate::{Cse, SecurityContext};
use manager::audit::Event;
use model::{Error, Operation, Request, ResourceType, Result};
use security::association::PeerIdentity;
use security::privacy::PseudonymVault;
use serde_json::{json, Map, Value};

/// Where a registered AE asks for a fresh AE-ID (`POST`, with its current AE-ID as
/// `X-M2M-Origin`, over its own security association).
pub const ROTATE_PATH: &str = "/.privacy/rotate-ae-id";

/// When each credential last rotated its AE-ID (by the store's key of its binding).
#[derive(Debug, Default)]
pub(crate) struct Rotations(
    tokio::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
);

/// Attributes that hold identifiers, where a rotated AE-ID is rewritten. Content (`con`),
/// labels and everything else an application wrote stay as they were.
const NAMING_ATTRIBUTES: [&str; 5] = ["pi", "cr", "nu", "mid", "su"];

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

    /// Gives the registered AE that sends this request a fresh random AE-ID (pseudonym
    /// rotation, seed 6.4), keeping everything it has: its resource (same resource name
    /// unless the name was the AE-ID itself), its children and their subtree, and every
    /// reference to it in identifier attributes (`cr`, subscription `nu`, group `mid`, ACP
    /// `acor`, ...) and the creator records of what it created, all in one durable write. The credential's binding and the sealed
    /// identity follow, so the AE keeps its association and an authorised resolution of
    /// either AE-ID leads to the same credential. The answer carries the new AE-ID.
    ///
    /// Only an AE-ID the CSE assigned to the credential in use (or, without any security
    /// association, on a trusted listener, any AE-ID) can rotate: one that a certificate
    /// or a configured binding fixes would lock its AE out (4005).
    pub async fn rotate_ae_id(&self, ctx: &SecurityContext, fr: Option<String>) -> Result<Value> {
        if let Some(sa) = ctx.security_association() {
            sa.count_request();
        }
        ctx.admit(crate::Service::Rotation)?;
        let probe = Request::new(Operation::Update, self.config.cse_name.clone(), fr);
        let old = match originator::check(ctx, &probe, &self.config, self.store.as_ref())? {
            Originator::Ae(id) => id,
            _ => {
                return Err(Error::operation_not_allowed(
                    "only a registered AE rotates its own AE-ID",
                ))
            }
        };
        let fixed = || {
            Error::operation_not_allowed(
                "this AE-ID is fixed by the credential; only an AE-ID the CSE assigned can rotate",
            )
        };
        let (binding_key, actor) = match ctx.security_association() {
            None => (None, "an AE on a trusted listener".to_owned()),
            Some(sa) => match (&sa.established.binding.identity, sa.binding_key()) {
                (PeerIdentity::AllowedAes(_), Some(key))
                    if self.store.credential_ae(key)?.as_deref() == Some(old.as_str()) =>
                {
                    let tag = security::privacy::credential_tag(&sa.established.credential_id);
                    (Some(key.to_owned()), format!("the AE of credential {tag}"))
                }
                _ => return Err(fixed()),
            },
        };
        // One rotation at a time, and at most one per credential per interval: each one
        // scans the whole tree.
        let mut last = self.rotations.0.lock().await;
        if let Some(key) = &binding_key {
            let now = self.config.clock.instant();
            last.retain(|_, at| now.duration_since(*at) < self.config.rotation_interval);
            if last.contains_key(key) {
                return Err(Error::operation_not_allowed(format!(
                    "this credential rotated its AE-ID less than {} s ago",
                    self.config.rotation_interval.as_secs()
                )));
            }
        }
        let new = loop {
            let id = model::id::new_ae_id();
            if self.store.get(&id)?.is_none() {
                break id;
            }
        };
        // The sealed identities, sealed again for the new AE-ID (it is their associated data).
        let mut resealed = Vec::new();
        if let Some(vault) = self.associations().pseudonyms() {
            let vault_error = |e| Error::internal(format!("pseudonym vault: {e}"));
            for sealed in self.store.sealed_identities(&old)? {
                let credential = vault.open(&sealed, &old).map_err(vault_error)?;
                resealed.push(vault.seal(&credential, &new).map_err(vault_error)?);
            }
        }
        // Audited first: an entry for a rotation that then failed is better than a rotation
        // the log does not show.
        if let Some(audit) = self.audit() {
            audit
                .record_durably(Event::PseudonymRotated {
                    actor: actor.clone(),
                })
                .await?;
        }
        let (from, to) = (old.clone(), new.clone());
        let binding_key_for_limit = binding_key.clone();
        let rewritten = store::write(self.store.as_ref(), move |t| {
            let Some(ae) = t.get(&from)? else {
                return Err(Error::not_found("the AE deregistered meanwhile"));
            };
            let mut renamed = ae.clone();
            renamed.attrs.insert("ri".into(), json!(to));
            renamed.attrs.insert("aei".into(), json!(to));
            if ae.rn() == from {
                renamed.attrs.insert("rn".into(), json!(to));
                let parent = ae.srn.rsplit_once('/').map_or("", |(p, _)| p);
                renamed.srn = format!("{parent}/{to}");
            }
            t.rename(&from, &renamed)?;
            // A bound AE stays bound under its new AE-ID; its old one stays bound too, so
            // nobody else can take it up.
            if let Some(credential) = t.ae_credential(&from)? {
                t.bind_ae(&to, &credential)?;
            }
            let mut rewritten = t.reassign_instance_creator(&from, &to)?;
            // The creator records of what it created: its default access policy, the
            // `<dac>`s it speaks through and its subscriptions follow it.
            rewritten += t.reassign_creator(&from, &to)?;
            for mut r in t.mentioning(&from)? {
                if rewrite_references(&mut r.attrs, &from, &to) {
                    t.update(&r)?;
                    rewritten += 1;
                }
            }
            if let Some(key) = &binding_key {
                t.remember_credential_ae(key, &to)?;
            }
            for sealed in &resealed {
                t.seal_identity(&to, sealed)?;
            }
            Ok(rewritten)
        })
        .await?;
        if let Some(key) = binding_key_for_limit {
            last.insert(key, self.config.clock.instant());
        }
        drop(last);
        // No AE-ID in the log: it would link the two pseudonyms.
        tracing::info!(actor = %model::Untrusted(&actor), references = rewritten, "an AE rotated its AE-ID");
        let ae = self
            .store
            .get(&new)?
            .ok_or_else(|| Error::internal("the rotated AE vanished"))?;
        Ok(json!({ "m2m:ae": ae.attrs }))
    }
}

/// Rewrites `old` to `new` wherever an identifier attribute names it, as a whole string or
/// as one segment of an address (`/id-in/Cold`, `cse-in/Cold/cnt`). True if anything changed.
fn rewrite_references(attrs: &mut Map<String, Value>, old: &str, new: &str) -> bool {
    let mut changed = false;
    let mut swap = |s: &str| {
        if !s.split('/').any(|seg| seg == old) {
            return None;
        }
        changed = true;
        Some(
            s.split('/')
                .map(|seg| if seg == old { new } else { seg })
                .collect::<Vec<_>>()
                .join("/"),
        )
    };
    for name in NAMING_ATTRIBUTES {
        if let Some(v) = attrs.get_mut(name) {
            rewrite_strings(v, &mut swap);
        }
    }
    // `acor` of every rule in `pv` and `pvs`.
    for set in ["pv", "pvs"] {
        let rules = attrs
            .get_mut(set)
            .and_then(|p| p.get_mut("acr"))
            .and_then(Value::as_array_mut);
        for rule in rules.into_iter().flatten() {
            if let Some(acor) = rule.get_mut("acor") {
                rewrite_strings(acor, &mut swap);
            }
        }
    }
    changed
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
    use super::*;

    #[test]
    fn the_party_is_the_scheme_and_authority() {
        assert_eq!(
            party_of("https://a.example:8443/notify/x"),
            "https://a.example:8443"
        );
        assert_eq!(party_of("http://10.0.0.1:80"), "http://10.0.0.1:80");
        assert_eq!(party_of("weird"), "weird");
    }

    #[test]
    fn references_are_rewritten_in_identifier_attributes_only() {
        let mut attrs = json!({
            "pi": "Cold",
            "cr": "Cold",
            "nu": ["/id-in/Cold", "cse-in/Cold/inbox", "http://10.0.0.1/Coldish"],
            "mid": ["Cother", "//sp.example/id-in/Cold"],
            "pv": {"acr": [{"acor": ["Cold", "C*"], "acop": 63}]},
            "pvs": {"acr": [{"acor": ["CAdmin"], "acop": 63}]},
            "con": "Cold",
            "lbl": ["Cold"],
        });
        let map = attrs.as_object_mut().expect("object");
        assert!(rewrite_references(map, "Cold", "Cnew"));
        assert_eq!(
            Value::Object(map.clone()),
            json!({
                "pi": "Cnew",
                "cr": "Cnew",
                "nu": ["/id-in/Cnew", "cse-in/Cnew/inbox", "http://10.0.0.1/Coldish"],
                "mid": ["Cother", "//sp.example/id-in/Cnew"],
                "pv": {"acr": [{"acor": ["Cnew", "C*"], "acop": 63}]},
                "pvs": {"acr": [{"acor": ["CAdmin"], "acop": 63}]},
                "con": "Cold",
                "lbl": ["Cold"],
            })
        );
        let mut untouched = json!({"cr": "Cother", "con": "Cold"});
        let map = untouched.as_object_mut().expect("object");
        assert!(!rewrite_references(map, "Cold", "Cnew"));
    }
}
