//! The M2M Enrolment Function (MEF), hosted by the CSE: the pre-provisioned symmetric enrolee
//! key RSPF of TS-0003 clause 8.3.2.1, provisioning a Kpsa for the PSK-based SAEF with this
//! CSE (clause 10.3.3).
//!
//! 1. **MEF handshake.** The enrolee opens TLS-PSK to the enrolment listener with its Kpm
//!    (`psk_identity` = KpmID). The listener computes the `EXPORTER-oneM2M-Bootstrap` output
//!    and the association carries it ([`security::association::BootstrapExporter`]).
//! 2. **Enrolment key.** [`Mef::enrol`] takes the exporter (once per association) and derives
//!    Ke and KeID (clauses 10.3.1, 10.3.4) with `manager::kdf`.
//! 3. **Enrolment exchange.** One request, `POST /.mef/enrol`, whose JSON body asks for a
//!    symmetric key for the SAEF (SUID 22) with this CSE. The MEF derives
//!    `Kpsa = HMAC-SHA-256(Ke, label || Enrolee-B-ID)` with Enrolee-B-ID = this CSE's
//!    SP-relative CSE-ID, names it `KpsaID = hex(RelativeKeID)@<issuer FQDN>`, writes the
//!    audit events, stores the key durably and answers with KpsaID, KeID and the expiry;
//!    never with the key: the enrolee derives the same Kpsa from its own exporter.
//!
//! Body and answer (our JSON encoding: TS-0003 names the information, not a serialization):
//!
//! ```text
//! {"m2m:enrolReq": {"suid": 22, "target": "/id-in"}}            target optional
//! {"m2m:enrolRsp": {"kpsaId": "...", "keId": "...", "credentialId": "12-...",
//!                   "target": "/id-in", "expires": "2030-01-01T00:00:00Z"}}   2001
//! ```
//!
//! The request may also carry the three indications of Table 8.3.2.1-1
//! (`certificateEnrolment`, `mafEnrolment`, `remoteManagement`); only `false` is supported
//! (5001 otherwise).
//!
//! | refusal | status |
//! |---|---|
//! | not over an enrolment association (plain HTTP, a normal TLS listener) | 4107 |
//! | a second request on the same enrolment association | 4005 |
//! | a body that is not a complete, valid enrolment request | 4000 |
//! | another SUID, or a target other than this CSE | 4000 |
//! | an indication set to `true` | 5001 |
//!
//! `"enrolmentTargets": ["Cmaf1"]` names the Enrolment Targets that may later fetch
//! usage-constrained keys derived from Ke; the MEF then keeps Ke ([`super::fetch`]).
//!
//! Every refusal after the first request consumed the exporter, so an association never gets
//! a second chance; nothing is stored unless the whole exchange succeeds.

use super::fetch::CredentialFetch;
use crate::security_manager::audit::AuditTrail;
use crate::SecurityContext;
use manager::audit::Event;
use manager::kdf::{self, EnroleeId, ExporterLabel, ExporterOutput, Fqdn, KeId, KpsaId, Suid};
use model::{Error, ResponseStatusCode, Result};
use security::enrolment::{rfc3339, EnroleeKeys};
use security::provisioned::{Issued, ProvisionedKeys};
use serde::Deserialize;
use serde_json::json;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The path of the enrolment request.
pub const ENROL_PATH: &str = "/.mef/enrol";

/// The MEF's state: the enrolees it knows, where it stores what it issues, and its names.
pub struct Mef {
    enrolees: Arc<EnroleeKeys>,
    keys: Arc<ProvisionedKeys>,
    lifetime: Duration,
    pub(crate) fqdn: Fqdn,
    target: EnroleeId,
    /// Kept Enrolment Keys and fetchCredentials rules ([`super::fetch`]), if any.
    pub(crate) fetch: Option<Arc<CredentialFetch>>,
}

impl fmt::Debug for Mef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mef")
            .field("enrolees", &self.enrolees.len())
            .field("issued", &self.keys.len())
            .field("lifetime", &self.lifetime)
            .field("fqdn", &self.fqdn)
            .field("target", &self.target)
            .field("fetch", &self.fetch)
            .finish()
    }
}

/// The enrolment request (the body of `POST /.mef/enrol`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[serde(rename = "m2m:enrolReq")]
    request: EnrolRequest,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EnrolRequest {
    suid: u8,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    certificate_enrolment: bool,
    #[serde(default)]
    maf_enrolment: bool,
    #[serde(default)]
    remote_management: bool,
    /// The Enrolment Targets that may fetch keys derived from Ke ([`super::fetch`]).
    #[serde(default)]
    enrolment_targets: Vec<String>,
}

impl Mef {
    /// This MEF keeps the Enrolment Keys of enrolments that name targets, and answers their
    /// fetchCredentials requests (see [`super::fetch`]).
    pub fn with_credential_fetch(mut self, fetch: CredentialFetch) -> Self {
        self.fetch = Some(Arc::new(fetch));
        self
    }

    /// A MEF for the CSE `cse_id` (SP-relative, `/id-in`; a missing slash is added) whose
    /// FQDN (the `@` part of KeID and KpsaID) is `fqdn`. Issued keys live `lifetime`, and
    /// never longer than the enrolee key they were enrolled with.
    pub fn new(
        enrolees: Arc<EnroleeKeys>,
        keys: Arc<ProvisionedKeys>,
        lifetime: Duration,
        fqdn: &str,
        cse_id: &str,
    ) -> std::result::Result<Self, String> {
        if lifetime.is_zero() {
            return Err("the lifetime of enrolled keys must not be zero".into());
        }
        let fqdn = Fqdn::new(fqdn).map_err(|e| e.to_string())?;
        let target = EnroleeId::new(&format!("/{}", cse_id.trim_start_matches('/')))
            .map_err(|e| e.to_string())?;
        Ok(Self {
            enrolees,
            keys,
            lifetime,
            fqdn,
            target,
            fetch: None,
        })
    }

    /// The keys issued so far (for tests and administration).
    pub fn issued(&self) -> &Arc<ProvisionedKeys> {
        &self.keys
    }

    /// Runs one enrolment exchange (see the module documentation); returns the content of
    /// the 2001 answer, or the refusal.
    pub async fn enrol(
        &self,
        ctx: &SecurityContext,
        audit: Option<&AuditTrail>,
        body: &[u8],
        clock: &model::clock::Clock,
    ) -> Result<serde_json::Value> {
        let sa = ctx.security_association().ok_or_else(not_enrolment)?;
        let bootstrap = sa
            .established
            .bootstrap
            .as_ref()
            .ok_or_else(not_enrolment)?;
        // Taken before anything else: whatever happens next, this association is spent.
        let ekm = bootstrap.take().ok_or_else(|| {
            Error::operation_not_allowed(
                "this association already made its enrolment request (one per MEF handshake)",
            )
        })?;
        let request: Envelope = serde_json::from_slice(body)
            .map_err(|e| Error::bad_request(format!("not an enrolment request: {e}")))?;
        let request = request.request;
        if request.certificate_enrolment || request.maf_enrolment || request.remote_management {
            return Err(Error::new(
                ResponseStatusCode::NotImplemented,
                "this MEF provisions symmetric keys only (no certificate, MAF or remote management enrolment)",
            ));
        }
        if request.suid != Suid::RSPF_SAEF.code() {
            return Err(Error::bad_request(format!(
                "this MEF provisions keys for the PSK-based SAEF only (suid {}), not suid {}",
                Suid::RSPF_SAEF,
                request.suid
            )));
        }
        if let Some(target) = &request.target {
            if target.trim_start_matches('/') != self.target.as_str().trim_start_matches('/') {
                return Err(Error::bad_request(format!(
                    "this MEF provisions keys with {} only",
                    self.target
                )));
            }
        }
        let named = super::fetch::named_targets(self.fetch.as_deref(), request.enrolment_targets)?;
        let kpm_id = sa
            .established
            .credential_id
            .strip_prefix("10-")
            .ok_or_else(|| Error::internal("enrolment association without a KpmID"))?
            .to_owned();
        let enrolee = self
            .enrolees
            .info(&kpm_id)
            .ok_or_else(|| Error::internal("the enrolee of this association is not configured"))?;

        let internal = |e: kdf::KdfError| Error::internal(format!("key derivation: {e}"));
        let ekm = ExporterOutput::new(ExporterLabel::Bootstrap, &ekm[..]).map_err(internal)?;
        let (ke, relative) = kdf::enrolment_key(ekm).map_err(internal)?;
        let ke_id = KeId::new(&relative, &self.fqdn);
        let kpsa = kdf::provisioned_secure_connection_key(&ke, &self.target).map_err(internal)?;
        let kpsa_id = KpsaId::new(&relative.hex_binary(), &self.fqdn).map_err(internal)?;
        let credential = format!("12-{kpsa_id}");
        let now = clock.unix();
        let mut expires = now.saturating_add(self.lifetime.as_secs().max(1));
        if let Some(limit) = enrolee.expires {
            // Keys derived from Ke do not outlive the enrolment (TS-0003 clause 10.7).
            expires = expires.min(limit);
        }

        // The audit record comes first: a key is never issued without its record.
        if let Some(audit) = audit {
            audit
                .record_durably(Event::Enrolled {
                    enrolee: kpm_id.clone(),
                    ke_id: ke_id.to_string(),
                })
                .await?;
            audit
                .record_durably(Event::CredentialIssued {
                    credential: credential.clone(),
                    holder: kpm_id.clone(),
                    parent: Some(ke_id.to_string()),
                })
                .await?;
        }
        if !named.is_empty() {
            super::fetch::keep_enrolment_key(
                self.fetch.clone(),
                &ke,
                &ke_id,
                &kpm_id,
                named,
                expires,
            )
            .await?;
        }
        drop(ke);
        let issued = Issued {
            kpsa_id: kpsa_id.to_string(),
            expires,
            enrolee: kpm_id.clone(),
            ke_id: ke_id.to_string(),
            binding: enrolee.binding,
        };
        let keys = self.keys.clone();
        let stored = tokio::task::spawn_blocking(move || keys.issue(issued, kpsa.expose()))
            .await
            .map_err(|e| Error::internal(format!("storing the provisioned key: {e}")))?;
        if let Err(e) = stored {
            tracing::error!(error = %e, "the enrolled key could not be stored: enrolment failed");
            if let Some(audit) = audit {
                audit.record(Event::AdminAction {
                    actor: "mef".into(),
                    action: "credential-issue-failed".into(),
                    target: Some(credential.clone()),
                });
            }
            return Err(Error::internal("the enrolled key could not be stored"));
        }
        tracing::info!(
            enrolee = %security::privacy::credential_tag(&format!("10-{kpm_id}")),
            credential = %security::privacy::credential_tag(&credential),
            "enrolment: provisioned a pre-shared key"
        );
        Ok(json!({"m2m:enrolRsp": {
            "kpsaId": kpsa_id.to_string(),
            "keId": ke_id.to_string(),
            "credentialId": credential,
            "target": self.target.as_str(),
            "expires": rfc3339(expires),
        }}))
    }
}

fn not_enrolment() -> Error {
    Error::security_association_required(
        "enrolment needs an enrolment association (TLS-PSK with the enrolee key, on the enrolment listener)",
    )
}
