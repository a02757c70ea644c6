//! The CSE's side of certificate-based enrolment (`[enrolment] device_*`): the device
//! enrolment listener's acceptor (mutual TLS, the manufacturer CAs as trust anchors, the
//! server certificate of the first certificate `[[tls]]` listener) and the MEF that has the
//! CSE's CA (opened like `m2m ca` does: `[keystore] ca_key`, the CA directory the `[[tls]]`
//! listeners trust) issue AE-ID certificates.

use crate::config::Settings;
use crate::keyhomes::KeyHomes;
use anyhow::{anyhow, Context};
use cse::security_manager::enrolment::certificate::DeviceMef;
use manager::ca::CertificateAuthority;
use security::credentials::CredentialStore;
use security::revocation::{Revocations, Withdrawable};
use security::tls::{
    AnyDeviceCertificate, CertificateConfig, LocalIdentity, TlsAcceptor, TlsPolicy,
};
use std::sync::Arc;

/// The device enrolment acceptor and its MEF, when `[enrolment] device_listen` is set.
pub fn open(
    settings: &Settings,
    homes: Option<&KeyHomes>,
    revocations: &Arc<Revocations>,
) -> anyhow::Result<Option<(TlsAcceptor, Arc<DeviceMef>)>> {
    let Some(d) = &settings.device_enrolment else {
        return Ok(None);
    };
    let acceptor = acceptor(settings, homes, revocations)?
        .ok_or_else(|| anyhow!("[enrolment] device_listen: no acceptor"))?;
    // The CA, as `m2m ca` opens it.
    let key =
        settings.keystore.ca_key.clone().ok_or_else(|| {
            anyhow!("[enrolment] device_listen needs [keystore] ca_key (the CA key)")
        })?;
    let homes =
        homes.ok_or_else(|| anyhow!("[enrolment] device_listen needs a [keystore] home"))?;
    let handle = homes.open_key("keystore.ca_key", &key, keystore::KeyRole::CaSigning)?;
    let dir = crate::ca_cmd::trusted_ca_dir(settings).context("[enrolment] device_listen")?;
    // The CSE's clock: what it issues starts at the CSE's time.
    let config = manager::ca::CaConfig {
        clock: settings.cse.clock.clone(),
        ..crate::ca_cmd::ca_config(&settings.cse.sp_id, &settings.cse.cse_id)
    };
    let ca = CertificateAuthority::open(&dir, config, homes.shared_store(), handle)
        .with_context(|| format!("the CA in {}", dir.display()))?;
    let mef = DeviceMef::new(
        Arc::new(ca),
        d.policy.clone(),
        d.validity,
        &local_identity(settings).public_domain_name(),
    )
    .map_err(|m| anyhow!("[enrolment]: {m}"))?;
    tracing::info!(
        ca = %dir.display(),
        manufacturer_cas = d.device_cas.len(),
        devices = d.policy.devices.len(),
        any_device = d.policy.any_device,
        "certificate-based enrolment configured"
    );
    Ok(Some((acceptor, Arc::new(mef))))
}

/// The device enrolment listener's acceptor alone (at start-up, and again when the TLS
/// material is re-read: new manufacturer CAs or CRLs), when `[enrolment] device_listen` is
/// set.
pub fn acceptor(
    settings: &Settings,
    homes: Option<&KeyHomes>,
    revocations: &Arc<Revocations>,
) -> anyhow::Result<Option<TlsAcceptor>> {
    let Some(d) = &settings.device_enrolment else {
        return Ok(None);
    };
    // The server side: the CSE's own certificate, from its first certificate listener.
    let listener = settings
        .tls
        .iter()
        .find(|t| t.certificate.is_some())
        .ok_or_else(|| {
            anyhow!("[enrolment] device_listen needs a [[tls]] listener with a certificate (the CSE's own)")
        })?;
    let server = listener
        .policy(homes)?
        .certificate
        .ok_or_else(|| anyhow!("[[tls]] {} has no certificate", listener.name))?;
    let policy = TlsPolicy {
        certificate: Some(CertificateConfig {
            trust_anchors: d.device_cas.clone(),
            crls: d.device_crls.clone(),
            ..server
        }),
        psk: false,
        clock: settings.cse.clock.clone(),
        ..TlsPolicy::default()
    };
    // A device certificate can be withdrawn like any credential (`31-<digest>`).
    let devices: Arc<dyn CredentialStore> = Arc::new(Withdrawable::new(
        Arc::new(AnyDeviceCertificate),
        revocations.clone(),
    ));
    TlsAcceptor::device_enrolment(&policy, devices, local_identity(settings))
        .context("[enrolment] device listener")
        .map(Some)
}

fn local_identity(settings: &Settings) -> LocalIdentity {
    LocalIdentity {
        sp_id: settings.cse.sp_id.clone(),
        cse_id: settings.cse.cse_id.clone(),
    }
}
