//! fetchCredentials (TS-0003 clause 8.3.2.1, "Use of Remotely Provisioned Credential"): an
//! Enrolment Target fetches, from the MEF, the usage-constrained key (clause 10.3.7) that the
//! MEF derives for an enrolee from its Enrolment Key Ke.
//!
//! 1. **Enrolment.** The enrolment request may name the Enrolment Targets it enrols towards
//!    (`"enrolmentTargets": ["Cmaf1"]`, AE-IDs or CSE-IDs). Only then does the MEF keep Ke,
//!    sealed and durable ([`security::enrolment_keys`]), under its KeID until the
//!    enrolment's expiry; an enrolment that names no target keeps nothing beyond its Kpsa.
//! 2. **Fetch.** The target sends `POST /.mef/fetch-credentials` over its own security
//!    association on a normal `[[tls]]` listener; `From` must be the identity that
//!    association is bound to (the originator check of every request), and that identity is
//!    the Enrolment Target. The MEF answers with the key only when the enrolment named this
//!    target and the configuration (`[[enrolment.target]]`) allows it this SUID.
//!
//! ```text
//! {"m2m:fetchCredReq": {"keId": "HEX@id-in.sp", "suid": 23}}
//! {"m2m:fetchCredRsp": {"status": true, "credential": "<64 hex>", "keyId": "HEX@id-in.sp",
//!                       "credentialId": "13-HEX@id-in.sp", "suid": 23,
//!                       "enroleeId": "<KpmID>", "lifetime": "2030-01-01T00:00:00Z"}}   2000
//! ```
//!
//! The key is `HMAC-SHA-256(Ke, label || SUID || Enrolment-Target-ID)` (`manager::kdf::
//! usage_constrained_key`). NOTE(fetch): clause 10.3.7 calls for the FQDN form of the target's
//! absolute ID, which TS-0003 does not spell out; we use the identity the target's
//! association is bound to (`Cmaf1`, or a CSE-ID), the form the enrolee names it by, so both
//! ends hash the same string. The key is named by the KeID (the `psk_identity` the target
//! sees from the enrolee); its Credential-ID type follows the SUID (21: 11, 22: 12, 23: 13,
//! 24: 14, 25: 16). `enroleeId` is the enrolee's KpmID. The key is deterministic, so a fetch
//! is not one-time: every fetch is answered alike and audited (`credential-issued`, holder
//! the target, parent the KeID).
//!
//! | refusal | status |
//! |---|---|
//! | plain HTTP (no security association) | 4107 |
//! | `From` other than the association's identity | 4106 |
//! | an enrolment association | 4005 |
//! | a method other than POST | 4005 |
//! | a body that is not a complete request; a KeID that does not parse; an SUID other than 21-25 | 4000 |
//! | a KeID this MEF does not keep, or whose enrolment expired | 4004 |
//! | the enrolment did not name this target | 4103 |
//! | the target may not fetch this SUID (`[[enrolment.target]]`) | 4103 |
//!
//! Every refusal is logged and written to the audit log (`key-request-refused`,
//! `credential-fetch-refused`) before the answer leaves; nothing changes.

use crate::originator;
use crate::security_manager::maf::{KeyMethod, KeyRequest};
use crate::{Cse, SecurityContext};
use manager::audit::Event;
use manager::kdf::{self, EnrolmentKey, EnrolmentTargetId, KeId, Suid};
use model::{Error, Response, ResponseStatusCode, Result};
use security::credentials::SecretBytes;
use security::enrolment::rfc3339;
use security::enrolment_keys::{EnrolmentKeyError, EnrolmentKeys, EnrolmentRecord, KE_LEN};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// The path of the fetchCredentials request.
pub const FETCH_PATH: &str = "/.mef/fetch-credentials";

/// Most Enrolment Targets one enrolment may name.
pub const MAX_NAMED_TARGETS: usize = 8;

/// Longest identifier of a named Enrolment Target.
const MAX_TARGET_LEN: usize = 128;

/// Which SUIDs one Enrolment Target may fetch (`[[enrolment.target]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRule {
    /// The target's AE-ID or CSE-ID (as its association is bound to).
    pub id: String,
    /// The SUIDs it may fetch (21-25).
    pub suids: Vec<u8>,
}

/// The MEF's side of fetchCredentials: the kept Enrolment Keys and the targets' rules.
#[derive(Debug)]
pub struct CredentialFetch {
    keys: Arc<EnrolmentKeys>,
    rules: Vec<TargetRule>,
}

impl CredentialFetch {
    /// Fetching from `keys` under `rules`; refused when a rule names no target, no SUID, or
    /// an SUID that is not a usage-constrained one (21-25).
    pub fn new(
        keys: Arc<EnrolmentKeys>,
        rules: Vec<TargetRule>,
    ) -> std::result::Result<Self, String> {
        for rule in &rules {
            if rule.id.trim().is_empty() {
                return Err("an enrolment target needs an id".into());
            }
            if rule.suids.is_empty() {
                return Err(format!("enrolment target {}: suids is empty", rule.id));
            }
            if let Some(bad) = rule.suids.iter().find(|s| !(21..=25).contains(*s)) {
                return Err(format!(
                    "enrolment target {}: suid {bad} is not a usage-constrained key (21-25)",
                    rule.id
                ));
            }
        }
        Ok(Self { keys, rules })
    }

    /// The kept Enrolment Keys (for tests and administration).
    pub fn keys(&self) -> &Arc<EnrolmentKeys> {
        &self.keys
    }
}

/// Checks the Enrolment Targets an enrolment request names (4000 when malformed; 5001 when
/// the MEF keeps no Enrolment Keys: no `fetch`); the list without repeats.
pub(crate) fn named_targets(
    fetch: Option<&CredentialFetch>,
    given: Vec<String>,
) -> Result<Vec<String>> {
    if given.is_empty() {
        return Ok(given);
    }
    if fetch.is_none() {
        return Err(Error::new(
            ResponseStatusCode::NotImplemented,
            "this MEF keeps no enrolment keys: enrolmentTargets is not supported",
        ));
    }
    if given.len() > MAX_NAMED_TARGETS {
        return Err(Error::bad_request(format!(
            "enrolmentTargets names at most {MAX_NAMED_TARGETS} targets"
        )));
    }
    let mut targets: Vec<String> = Vec::with_capacity(given.len());
    for t in given {
        if t.is_empty()
            || t.len() > MAX_TARGET_LEN
            || t.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(Error::bad_request(
                "each of enrolmentTargets is an AE-ID or CSE-ID (1-128 printable characters)",
            ));
        }
        if !targets.contains(&t) {
            targets.push(t);
        }
    }
    Ok(targets)
}

/// Keeps Ke durably and sealed for an enrolment that named `targets`. On `Err` nothing is
/// kept and the enrolment fails.
pub(crate) async fn keep_enrolment_key(
    fetch: Option<Arc<CredentialFetch>>,
    ke: &EnrolmentKey,
    ke_id: &KeId,
    enrolee: &str,
    targets: Vec<String>,
    expires: u64,
) -> Result<()> {
    let Some(fetch) = fetch else {
        return Err(Error::internal("this MEF keeps no enrolment keys"));
    };
    let record = EnrolmentRecord {
        ke_id: ke_id.to_string(),
        enrolee: enrolee.to_owned(),
        targets,
        expires,
    };
    let copy = SecretBytes::new(ke.expose().to_vec());
    let kept =
        tokio::task::spawn_blocking(move || match <&[u8; KE_LEN]>::try_from(copy.expose()) {
            Ok(bytes) => fetch.keys.keep(record, bytes),
            Err(_) => Err(EnrolmentKeyError::Seal),
        })
        .await
        .map_err(|e| Error::internal(format!("keeping the enrolment key: {e}")))?;
    kept.map_err(|e| {
        tracing::error!(error = %e, "the enrolment key could not be kept: enrolment failed");
        Error::internal("the enrolment key could not be kept")
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FetchEnvelope {
    #[serde(rename = "m2m:fetchCredReq")]
    request: FetchRequest,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FetchRequest {
    ke_id: String,
    suid: u8,
}

/// The Credential-ID type of a usage-constrained key by its SUID (TS-0003 clause 12.2).
fn credential_type(suid: u8) -> u8 {
    match suid {
        21 => 11,
        23 => 13,
        24 => 14,
        25 => 16,
        _ => 12,
    }
}

/// Lower-case hex of key bytes, for the answer only.
fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

impl Cse {
    /// Answers a fetchCredentials request (`POST /.mef/fetch-credentials`, see
    /// [`super::fetch`]); always a response.
    pub async fn fetch_credentials(&self, ctx: &SecurityContext, req: KeyRequest) -> Response {
        let rqi = req.rqi.clone();
        if let Err(e) = ctx.admit(crate::Service::KeyFunctions) {
            tracing::info!(rqi, peer = %security::privacy::peer_tag(ctx.peer), rsc = e.rsc.code(), reason = %e.message, "fetchCredentials refused");
            return Response::error(&e, rqi);
        }
        let Some(fetch) = self.mef.as_ref().and_then(|m| m.fetch.clone()) else {
            return Response::error(
                &Error::not_found("this CSE's MEF answers no fetchCredentials"),
                rqi,
            );
        };
        if let Some(sa) = ctx.security_association() {
            sa.count_request();
        }
        let (actor, outcome) = match self.key_client(ctx, req.fr.clone()) {
            // The claimed `From` is not the caller's identity: it goes into the reason only.
            Err(e) => (
                "unauthenticated".to_owned(),
                Err(Error::new(
                    e.rsc,
                    format!("{} (From {:?})", e.message, req.fr.as_deref().unwrap_or("")),
                )),
            ),
            Ok(client) => {
                let outcome = self.fetch_for(&fetch, &client, &req).await;
                (client, outcome)
            }
        };
        match outcome {
            Ok(pc) => Response::new(ResponseStatusCode::Ok, rqi, Some(pc)),
            Err(e) if e.rsc == ResponseStatusCode::InternalServerError => {
                tracing::error!(rqi, peer = %security::privacy::peer_tag(ctx.peer), reason = %model::Untrusted(&e.message), "fetchCredentials failed");
                Response::error(&e, rqi)
            }
            Err(e) => {
                tracing::info!(rqi, peer = %security::privacy::peer_tag(ctx.peer), rsc = e.rsc.code(), reason = %model::Untrusted(&e.message), "fetchCredentials refused");
                let event = Event::KeyRequestRefused {
                    actor,
                    action: "credential-fetch-refused".into(),
                    target: Some(format!("{}: {}", e.rsc.code(), e.message)),
                };
                match self.audit_durably(event).await {
                    Ok(()) => Response::error(&e, rqi),
                    Err(audit) => Response::error(&audit, rqi),
                }
            }
        }
    }

    /// The identifier `id` in the form an association is bound to, if it is one.
    fn canonical_id(&self, id: &str) -> Option<String> {
        match originator::normalize(id, &self.config).ok()? {
            originator::Claimed::AeId(id) | originator::Claimed::CseOrRemote(id) => Some(id),
        }
    }

    async fn fetch_for(
        &self,
        fetch: &CredentialFetch,
        client: &str,
        req: &KeyRequest,
    ) -> Result<Value> {
        if req.method != KeyMethod::Post {
            return Err(Error::operation_not_allowed(
                "/.mef/fetch-credentials takes POST",
            ));
        }
        let request: FetchEnvelope = serde_json::from_slice(&req.body)
            .map_err(|e| Error::bad_request(format!("not a fetchCredentials request: {e}")))?;
        let request = request.request;
        let suid = Suid::try_from(request.suid)
            .ok()
            .filter(|s| s.is_rspf_symmetric())
            .ok_or_else(|| {
                Error::bad_request(format!(
                    "suid {} is not a usage-constrained key (21-25)",
                    request.suid
                ))
            })?;
        let asked =
            KeId::parse(&request.ke_id).map_err(|e| Error::bad_request(format!("keId: {e}")))?;
        let fqdn_ok = self.mef.as_ref().is_some_and(|m| asked.fqdn() == &m.fqdn);
        let ke_id = asked.to_string();
        let unknown = || Error::not_found(format!("no enrolment {ke_id} at this MEF"));
        let (record, ke) = match fqdn_ok.then(|| fetch.keys.get(&ke_id)).flatten() {
            Some(found) => found,
            None => return Err(unknown()),
        };
        if self.config.clock.unix() >= record.expires {
            return Err(Error::not_found(format!("the enrolment {ke_id} expired")));
        }
        let named = record
            .targets
            .iter()
            .any(|t| self.canonical_id(t).as_deref() == Some(client));
        if !named {
            return Err(Error::no_privilege(format!(
                "the enrolment {ke_id} did not name {client} as an enrolment target"
            )));
        }
        let allowed = fetch.rules.iter().any(|r| {
            self.canonical_id(&r.id).as_deref() == Some(client) && r.suids.contains(&suid.code())
        });
        if !allowed {
            return Err(Error::no_privilege(format!(
                "{client} may not fetch credentials for suid {suid}"
            )));
        }
        let internal = |e: kdf::KdfError| Error::internal(format!("key derivation: {e}"));
        let ke = EnrolmentKey::from_slice(ke.expose()).map_err(internal)?;
        let target = EnrolmentTargetId::new(client).map_err(internal)?;
        let key = kdf::usage_constrained_key(&ke, suid, &target).map_err(internal)?;
        drop(ke);
        let credential = format!("{}-{ke_id}", credential_type(suid.code()));
        // The audit record comes first: a key is never handed out without its record.
        self.audit_durably(Event::CredentialIssued {
            credential: credential.clone(),
            holder: client.to_owned(),
            parent: Some(ke_id.clone()),
        })
        .await?;
        tracing::info!(
            suid = suid.code(),
            credential = %security::privacy::credential_tag(&credential),
            "fetchCredentials: handed a usage-constrained key to its enrolment target"
        );
        Ok(json!({ "m2m:fetchCredRsp": {
            "status": true,
            "credential": to_hex(key.expose()),
            "keyId": ke_id,
            "credentialId": credential,
            "suid": suid.code(),
            "enroleeId": record.enrolee,
            "lifetime": rfc3339(record.expires),
        }}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_take_usage_constrained_suids_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let seal = security::enrolment_keys::seal_in_data_folder(dir.path()).expect("seal");
        let keys = Arc::new(EnrolmentKeys::in_memory(seal, 4));
        let rule = |suids: Vec<u8>| TargetRule {
            id: "Cmaf1".into(),
            suids,
        };
        assert!(CredentialFetch::new(keys.clone(), vec![rule(vec![23, 24])]).is_ok());
        for bad in [vec![], vec![22, 32], vec![20]] {
            assert!(
                CredentialFetch::new(keys.clone(), vec![rule(bad.clone())]).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(credential_type(23), 13);
        assert_eq!(credential_type(21), 11);
        assert_eq!(to_hex(&[0, 0xab]), "00ab");
    }
}
