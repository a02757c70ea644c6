//! The M2M Authentication Function (MAF) hosted by the CSE, for trust scenario 2: the
//! service provider distributes symmetric keys between applications (TS-0003 clause 8.8,
//! MAF Key Registration 8.8.2.7 and MAF Key Retrieval 8.8.2.8).
//!
//! Every request travels over the requester's own security association (a TLS listener,
//! certificate or PSK), and its `From` must be the identity that association is bound to
//! (the originator check of every request). The MAF handshake of clause 8.8.2.2 is thus the
//! CSE's normal TLS handshake.
//!
//! | request | who | answer |
//! |---|---|---|
//! | `POST /.maf/keys` with `{"m2m:mafKeyRegReq": {...}}` | any authenticated AE (the Source MAF Client) | 2001 with the key identifier and the key |
//! | `GET /.maf/keys/<key id>` | the source, or an AE in `targetIDs` | 2000 with the key |
//! | `DELETE /.maf/keys/<key id>` | the source | 2002 |
//!
//! `<key id>` is the MAF key identifier `HEX@maf-fqdn` (clause 10.3.5) or its relative part.
//!
//! ```text
//! {"m2m:mafKeyRegReq": {"suid": 32, "targetIDs": ["Cb"], "expirationTime": "20300101T000000",
//!                       "labels": ["demo"]}}                     labels, expirationTime optional
//! {"m2m:mafKeyRegRsp": {"keyId": "...@id-in.sp", "relativeKeyId": "...", "key": "<64 hex>",
//!                       "expirationTime": "...", "sourceId": "Ca", "suid": 32,
//!                       "targetIDs": ["Cb"], "labels": ["demo"]}}
//! {"m2m:mafKeyRetRsp": {same fields}}
//! ```
//!
//! NOTE(maf-key): clause 8.8.2.7 lets the key come from the TLS exporter of the MAF
//! handshake or from the Source MAF Client. Our TLS listeners do not compute the
//! `EXPORTER-oneM2M-Connection` value, so the MAF generates the key from the operating
//! system's random source and returns it to the source over its association; the relative
//! key identifier is 16 fresh random bytes (an unused KcID), so the key identifier is
//! `manager::kdf::MafKeyId`. A key value the source sends itself (`keyValue`) is refused
//! (5001): the MAF vouches only for keys it made.
//!
//! | refusal | status |
//! |---|---|
//! | plain HTTP (no security association) | 4107 |
//! | `From` other than the association's identity | 4106 |
//! | a body that is not a complete, valid request; an SUID other than 32-35; `targetIDs` empty, too long, or (SUID 32, 33) not exactly one; an expiration in the past | 4000 |
//! | `keyValue` given | 5001 |
//! | retrieval by an AE that is neither the source nor in `targetIDs`; deletion by anyone but the source | 4103 |
//! | an unknown, deleted or expired key identifier | 4004 |
//! | the store is full (in all, or for this source) | 5000 / 4000 |
//!
//! Every registration, retrieval and deletion, and every refused retrieval or deletion, is
//! written to the audit log before the answer leaves; a key is never handed out without its
//! record.

use crate::originator::{self, Originator};
use crate::{Cse, SecurityContext};
use manager::audit::Event;
use manager::kdf::{ExportedKeyId, Fqdn, MafKeyId};
use model::{Error, Operation, Request, Response, ResponseStatusCode, Result};
use security::credentials::SecretBytes;
use security::maf_store::{MafKeys, MafStoreError, Registration, KEY_LEN};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Path prefix of the MAF's requests.
pub const MAF_PREFIX: &str = "/.maf/";

/// Most target IDs one registration may name.
pub const MAX_TARGETS: usize = 16;

/// Most labels one registration may carry, and their longest length.
const MAX_LABELS: usize = 8;
const MAX_LABEL_LEN: usize = 64;

/// The HTTP method of a request to one of the CSE's key functions, as far as they care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyMethod {
    /// GET: retrieve.
    Get,
    /// POST: register.
    Post,
    /// DELETE: delete.
    Delete,
    /// Anything else (refused with 4005).
    Other,
}

/// A request to the MAF (`/.maf/...`), as the binding
/// hands it over: the path after the function's prefix, percent-decoded.
#[derive(Debug)]
pub struct KeyRequest {
    /// The method.
    pub method: KeyMethod,
    /// The path after the prefix (e.g. `keys/ABCD...@fqdn`).
    pub path: String,
    /// `X-M2M-Origin`.
    pub fr: Option<String>,
    /// `X-M2M-RI`.
    pub rqi: String,
    /// The body as received (bounded by the binding's limit).
    pub body: Vec<u8>,
}

/// The MAF's state: where registrations live, its FQDN, and the longest lifetime it grants.
#[derive(Debug)]
pub struct Maf {
    keys: Arc<MafKeys>,
    fqdn: Fqdn,
    max_lifetime: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegEnvelope {
    #[serde(rename = "m2m:mafKeyRegReq")]
    request: RegRequest,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RegRequest {
    suid: u8,
    #[serde(rename = "targetIDs")]
    target_ids: Vec<String>,
    #[serde(default)]
    expiration_time: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default, rename = "adminFQDN")]
    admin_fqdn: Option<String>,
    #[serde(default, rename = "mafFQDN")]
    maf_fqdn: Option<String>,
    #[serde(default)]
    key_value: Option<serde::de::IgnoredAny>,
}

impl Maf {
    /// A MAF whose key identifiers end in `@fqdn`, granting at most `max_lifetime` per key
    /// (also the lifetime of a registration that asks for none).
    pub fn new(
        keys: Arc<MafKeys>,
        fqdn: &str,
        max_lifetime: Duration,
    ) -> std::result::Result<Self, String> {
        if max_lifetime.is_zero() {
            return Err("the longest lifetime of a MAF key must not be zero".into());
        }
        let fqdn = Fqdn::new(fqdn).map_err(|e| e.to_string())?;
        Ok(Self {
            keys,
            fqdn,
            max_lifetime,
        })
    }

    /// The registrations (for tests and administration).
    pub fn keys(&self) -> &Arc<MafKeys> {
        &self.keys
    }

    /// The relative key identifier named by `id`: the whole MAF key identifier (its FQDN
    /// must be this MAF's) or its 32 hex digits. Upper case, as stored.
    fn relative_of(&self, id: &str) -> Result<String> {
        let not_ours = || Error::not_found(format!("no MAF key {id:?} here"));
        if id.contains('@') {
            let parsed = MafKeyId::parse(id).map_err(|_| not_ours())?;
            if parsed.fqdn() != &self.fqdn {
                return Err(not_ours());
            }
            return Ok(parsed.relative().hex_binary());
        }
        MafKeyId::parse(&format!("{id}@{}", self.fqdn))
            .map(|k| k.relative().hex_binary())
            .map_err(|_| not_ours())
    }

    fn key_id(&self, relative: &str) -> String {
        format!("{relative}@{}", self.fqdn)
    }

    fn answer(&self, name: &str, r: &Registration, key: &[u8]) -> Value {
        json!({ name: {
            "keyId": self.key_id(&r.relative_id),
            "relativeKeyId": r.relative_id,
            "key": to_hex(key),
            "expirationTime": model::time::format(timestamp(r.expires)),
            "sourceId": r.source,
            "suid": r.suid,
            "targetIDs": r.targets,
            "labels": r.labels,
        }})
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

fn timestamp(secs: u64) -> model::time::Timestamp {
    chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX), 0)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

/// The Credential-ID type of a MAF-distributed key by its SUID (TS-0003 clause 12.2):
/// 12 SAEF, 13 ESPrim, 14 ESData encryption, 16 ESData HMAC.
fn credential_id(suid: u8, key_id: &str) -> String {
    let kind = match suid {
        33 => 13,
        34 => 14,
        35 => 16,
        _ => 12,
    };
    format!("{kind}-{key_id}")
}

impl Cse {
    /// Answers a MAF request (see [`crate::security_manager::maf`]); always a response.
    pub async fn maf(&self, ctx: &SecurityContext, req: KeyRequest) -> Response {
        let rqi = req.rqi.clone();
        if let Err(e) = ctx.admit(crate::Service::KeyFunctions) {
            tracing::info!(rqi, peer = %security::privacy::peer_tag(ctx.peer), rsc = e.rsc.code(), reason = %e.message, "MAF request refused");
            return Response::error(&e, rqi);
        }
        let Some(maf) = self.maf.clone() else {
            return Response::error(&Error::not_found("this CSE hosts no MAF"), rqi);
        };
        if let Some(sa) = ctx.security_association() {
            sa.count_request();
        }
        let outcome = match self.key_client(ctx, req.fr.clone()) {
            Err(e) => Err(e),
            Ok(client) => match (req.method, req.path.split_once('/')) {
                (KeyMethod::Post, None) if req.path == "keys" => self
                    .maf_register(&maf, &client, &req.body)
                    .await
                    .map(|pc| (ResponseStatusCode::Created, pc)),
                (KeyMethod::Get, Some(("keys", id))) => self
                    .maf_retrieve(&maf, &client, id)
                    .await
                    .map(|pc| (ResponseStatusCode::Ok, pc)),
                (KeyMethod::Delete, Some(("keys", id))) => self
                    .maf_delete(&maf, &client, id)
                    .await
                    .map(|pc| (ResponseStatusCode::Deleted, pc)),
                (_, None) if req.path == "keys" => Err(Error::operation_not_allowed(
                    "/.maf/keys takes POST (register)",
                )),
                (_, Some(("keys", _))) => Err(Error::operation_not_allowed(
                    "/.maf/keys/<id> takes GET (retrieve) or DELETE",
                )),
                _ => Err(Error::not_found(format!("no MAF function '{}'", req.path))),
            },
        };
        match outcome {
            Ok((rsc, pc)) => Response::new(rsc, rqi, Some(pc)),
            Err(e) => {
                if e.rsc == ResponseStatusCode::InternalServerError {
                    tracing::error!(rqi, peer = %security::privacy::peer_tag(ctx.peer), reason = %model::Untrusted(&e.message), "MAF request failed");
                } else {
                    tracing::info!(rqi, peer = %security::privacy::peer_tag(ctx.peer), rsc = e.rsc.code(), reason = %model::Untrusted(&e.message), "MAF request refused");
                }
                Response::error(&e, rqi)
            }
        }
    }

    /// The authenticated identity of a key function's caller: an established association
    /// (4107 without one) whose identity `fr` is (4106 otherwise, the originator check of
    /// every request). An AE by its AE-ID, a CSE by its CSE-ID, the admin as the admin.
    pub(crate) fn key_client(&self, ctx: &SecurityContext, fr: Option<String>) -> Result<String> {
        if ctx.security_association().is_none() {
            return Err(Error::security_association_required(
                "key functions need a security association (TLS with a certificate or a PSK)",
            ));
        }
        ctx.admit(crate::Service::KeyFunctions)?;
        let probe = Request::new(Operation::Retrieve, self.config.cse_name.clone(), fr);
        match originator::check(ctx, &probe, &self.config, self.store.as_ref())? {
            Originator::Ae(id) | Originator::RemoteCse(id) => Ok(id),
            Originator::Admin => Ok(self.config.admin.clone()),
            Originator::Cse | Originator::Registering(_) => Err(Error::no_privilege(
                "only an authenticated AE or CSE may use the key functions",
            )),
        }
    }

    /// Records `event` durably when the CSE keeps an audit log.
    pub(crate) async fn audit_durably(&self, event: Event) -> Result<()> {
        match &self.audit {
            Some(audit) => audit.record_durably(event).await,
            None => Ok(()),
        }
    }

    /// Refuses with `error` after recording why, durably.
    async fn maf_refuse(&self, client: &str, action: &str, key: &str, error: Error) -> Error {
        let event = Event::KeyRequestRefused {
            actor: client.to_owned(),
            action: action.to_owned(),
            target: Some(format!("{key}: {}", error.message)),
        };
        match self.audit_durably(event).await {
            Ok(()) => error,
            Err(e) => e,
        }
    }

    async fn maf_register(&self, maf: &Maf, source: &str, body: &[u8]) -> Result<Value> {
        let request: RegEnvelope = serde_json::from_slice(body)
            .map_err(|e| Error::bad_request(format!("not a MAF key registration: {e}")))?;
        let request = request.request;
        if request.key_value.is_some() {
            return Err(Error::new(
                ResponseStatusCode::NotImplemented,
                "this MAF generates the key itself; keyValue is not accepted",
            ));
        }
        if !(32..=35).contains(&request.suid) {
            return Err(Error::bad_request(format!(
                "suid {} is not a MAF-distributed symmetric key (32-35)",
                request.suid
            )));
        }
        if let Some(fqdn) = &request.maf_fqdn {
            if Fqdn::new(fqdn).ok().as_ref() != Some(&maf.fqdn) {
                return Err(Error::bad_request(format!(
                    "this MAF is {}, not {fqdn}",
                    maf.fqdn
                )));
            }
        }
        if request
            .admin_fqdn
            .as_deref()
            .is_some_and(|a| Fqdn::new(a).is_err())
        {
            return Err(Error::bad_request("adminFQDN is not an FQDN"));
        }
        let one_target = matches!(request.suid, 32 | 33);
        match request.target_ids.len() {
            0 => {
                return Err(Error::bad_request(
                    "targetIDs must name at least one target",
                ))
            }
            n if n > MAX_TARGETS => {
                return Err(Error::bad_request(format!(
                    "targetIDs may name at most {MAX_TARGETS} targets"
                )))
            }
            n if one_target && n != 1 => {
                return Err(Error::bad_request(
                    "for the SAEF and ESPrim (suid 32, 33) targetIDs names exactly one target",
                ))
            }
            _ => {}
        }
        let mut targets = Vec::with_capacity(request.target_ids.len());
        for t in &request.target_ids {
            let id = match originator::normalize(t, &self.config)? {
                originator::Claimed::AeId(id) => id,
                originator::Claimed::CseOrRemote(id) => id,
            };
            if !targets.contains(&id) {
                targets.push(id);
            }
        }
        if request.labels.len() > MAX_LABELS
            || request
                .labels
                .iter()
                .any(|l| l.is_empty() || l.len() > MAX_LABEL_LEN || l.chars().any(char::is_control))
        {
            return Err(Error::bad_request(format!(
                "at most {MAX_LABELS} labels of 1-{MAX_LABEL_LEN} printable characters"
            )));
        }
        let now = self.config.clock.unix();
        let longest = now.saturating_add(maf.max_lifetime.as_secs());
        let expires = match &request.expiration_time {
            None => longest,
            Some(t) => {
                let asked = model::time::parse(t)?.timestamp();
                let asked = u64::try_from(asked).unwrap_or(0);
                if asked <= now {
                    return Err(Error::bad_request("expirationTime is in the past"));
                }
                // The MAF may assign another value (clause 8.8.2.7): never beyond its limit.
                asked.min(longest)
            }
        };

        let mut relative = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut relative);
        let key = {
            let mut bytes = vec![0u8; KEY_LEN];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
            SecretBytes::new(bytes)
        };
        let key_id = MafKeyId::new(&ExportedKeyId::from_bytes(relative), &maf.fqdn);
        let registration = Registration {
            relative_id: key_id.relative().hex_binary(),
            source: source.to_owned(),
            targets,
            suid: request.suid,
            expires,
            labels: request.labels,
        };
        // The audit record comes first: a key is never issued without its record.
        self.audit_durably(Event::CredentialIssued {
            credential: credential_id(registration.suid, &key_id.to_string()),
            holder: source.to_owned(),
            parent: None,
        })
        .await?;
        let keys = maf.keys.clone();
        let (stored, registration, key) = tokio::task::spawn_blocking(move || {
            let stored = match <&[u8; KEY_LEN]>::try_from(key.expose()) {
                Ok(bytes) => keys.register(registration.clone(), bytes),
                Err(_) => Err(MafStoreError::Seal),
            };
            (stored, registration, key)
        })
        .await
        .map_err(|e| Error::internal(format!("storing the MAF key: {e}")))?;
        match stored {
            Ok(()) => {}
            Err(MafStoreError::Full(what)) => {
                let _ = self
                    .audit_durably(Event::KeyRequestRefused {
                        actor: source.to_owned(),
                        action: "maf-key-registration-failed".into(),
                        target: Some(format!("{key_id}: the store is full {what}")),
                    })
                    .await;
                return Err(Error::bad_request(format!(
                    "too many MAF key registrations {what}; delete some first"
                )));
            }
            Err(e) => {
                tracing::error!(error = %e, "a MAF key could not be stored: registration failed");
                let _ = self
                    .audit_durably(Event::KeyRequestRefused {
                        actor: source.to_owned(),
                        action: "maf-key-registration-failed".into(),
                        target: Some(key_id.to_string()),
                    })
                    .await;
                return Err(Error::internal("the MAF key could not be stored"));
            }
        }
        tracing::info!(
            suid = registration.suid,
            targets = registration.targets.len(),
            "MAF: registered a key"
        );
        Ok(maf.answer("m2m:mafKeyRegRsp", &registration, key.expose()))
    }

    async fn maf_retrieve(&self, maf: &Maf, client: &str, id: &str) -> Result<Value> {
        const REFUSED: &str = "maf-key-retrieval-refused";
        let relative = match maf.relative_of(id) {
            Ok(r) => r,
            Err(e) => return Err(self.maf_refuse(client, REFUSED, id, e).await),
        };
        let key_id = maf.key_id(&relative);
        let Some((registration, key)) = maf.keys.get(&relative) else {
            let e = Error::not_found(format!(
                "no MAF key {key_id} (never registered, or deleted)"
            ));
            return Err(self.maf_refuse(client, REFUSED, &key_id, e).await);
        };
        if self.config.clock.unix() >= registration.expires {
            let e = Error::not_found(format!("the MAF key {key_id} expired"));
            return Err(self.maf_refuse(client, REFUSED, &key_id, e).await);
        }
        if client != registration.source && !registration.targets.iter().any(|t| t == client) {
            let e =
                Error::no_privilege(format!("{client} is not a target of the MAF key {key_id}"));
            return Err(self.maf_refuse(client, REFUSED, &key_id, e).await);
        }
        self.audit_durably(Event::CredentialIssued {
            credential: credential_id(registration.suid, &key_id),
            holder: client.to_owned(),
            parent: None,
        })
        .await?;
        Ok(maf.answer("m2m:mafKeyRetRsp", &registration, key.expose()))
    }

    async fn maf_delete(&self, maf: &Maf, client: &str, id: &str) -> Result<Value> {
        const REFUSED: &str = "maf-key-deletion-refused";
        let relative = match maf.relative_of(id) {
            Ok(r) => r,
            Err(e) => return Err(self.maf_refuse(client, REFUSED, id, e).await),
        };
        let key_id = maf.key_id(&relative);
        let Some(registration) = maf.keys.registration(&relative) else {
            let e = Error::not_found(format!("no MAF key {key_id}"));
            return Err(self.maf_refuse(client, REFUSED, &key_id, e).await);
        };
        if client != registration.source {
            let e = Error::no_privilege(format!(
                "only the source of the MAF key {key_id} may delete it"
            ));
            return Err(self.maf_refuse(client, REFUSED, &key_id, e).await);
        }
        let keys = maf.keys.clone();
        let rel = relative.clone();
        let deleted = tokio::task::spawn_blocking(move || keys.delete(&rel))
            .await
            .map_err(|e| Error::internal(format!("deleting the MAF key: {e}")))?
            .map_err(|e| Error::internal(format!("deleting the MAF key: {e}")))?;
        if deleted.is_none() {
            return Err(Error::not_found(format!("no MAF key {key_id}")));
        }
        self.audit_durably(Event::Revoked {
            credential: credential_id(registration.suid, &key_id),
            actor: client.to_owned(),
            reason: "MAF key registration deleted by its source".into(),
        })
        .await?;
        Ok(json!({ "m2m:mafKeyDelRsp": { "keyId": key_id } }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_read_in_both_forms_and_only_for_this_maf() {
        let dir = tempfile::tempdir().expect("tmp");
        let seal = security::maf_store::KeySeal::in_data_folder(dir.path()).expect("seal");
        let keys = Arc::new(MafKeys::in_memory(seal, Default::default()));
        let maf = Maf::new(keys, "id-in.sp.example", Duration::from_secs(60)).expect("maf");
        let hex = "00112233445566778899aabbccddeeff";
        let upper = hex.to_ascii_uppercase();
        assert_eq!(maf.relative_of(hex).expect("relative"), upper);
        assert_eq!(
            maf.relative_of(&format!("{hex}@ID-IN.sp.example"))
                .expect("full"),
            upper
        );
        for bad in [
            format!("{hex}@other.example"),
            "00".to_owned(),
            "zz112233445566778899aabbccddeeff".to_owned(),
        ] {
            let e = maf.relative_of(&bad).map(drop).expect_err(&bad);
            assert_eq!(e.rsc, ResponseStatusCode::NotFound);
        }
        assert_eq!(credential_id(33, "K@f"), "13-K@f");
        assert!(Maf::new(maf.keys.clone(), "x", Duration::ZERO).is_err());
    }
}
