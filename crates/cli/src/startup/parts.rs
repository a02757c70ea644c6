//! The parts a CSE is assembled from, each opened from the settings and checked before
//! anything listens: key homes, journals, the audit log, the TLS acceptors, the MEF and MAF.

use crate::config::Settings;
use crate::keyhomes::KeyHomes;
use anyhow::Context;
use security::credentials::{CredentialStore, FileCredentials};
use security::enrolment::EnroleeKeys;
use security::provisioned::{EnrolledBy, ProvisionedKeys, WithProvisioned};
use security::revocation::{DerivedCredentials, DerivedRules};
use security::revocation::{Revocations, Withdrawable};
use security::tls::{LocalIdentity, TlsAcceptor};
use std::sync::Arc;

/// Opens the configured key homes and checks the keys the CSE needs outside TLS (the CA
/// key); `None` without a `[keystore]` home.
pub fn key_homes(settings: &Settings) -> Result<Option<KeyHomes>, crate::keyhomes::KeyHomeError> {
    if settings.keystore.is_empty() {
        return Ok(None);
    }
    let homes = KeyHomes::open(&settings.keystore, false)?;
    for home in homes.store().homes() {
        tracing::info!(home = %home.id(), level = home.level().number(), "key home opened");
    }
    if let Some(key) = &settings.keystore.ca_key {
        let ca = homes.signing_key("keystore.ca_key", key, keystore::KeyRole::CaSigning)?;
        tracing::info!(key = %key, level = ca.level().number(), "CA key checked");
    }
    Ok(Some(homes))
}

/// The pseudonym vault: over `[privacy] mapping_key` in its key home, or the default
/// level-1 home in the data folder.
pub fn pseudonym_vault(
    settings: &Settings,
    homes: Option<&KeyHomes>,
) -> anyhow::Result<Arc<security::privacy::PseudonymVault>> {
    use security::privacy::PseudonymVault;
    let vault = match (&settings.mapping_key, homes) {
        (Some(key), Some(homes)) => {
            let handle = homes.open_key(
                "privacy.mapping_key",
                key,
                keystore::KeyRole::PseudonymMapping,
            )?;
            let home = homes.store().home(handle.home())?.clone();
            let store = keystore::KeyStore::new(homes.store().policy().clone()).with_home(home);
            PseudonymVault::new(store, handle)?
        }
        (Some(key), None) => {
            anyhow::bail!("privacy.mapping_key: {key}, but no key home is configured")
        }
        (None, _) => PseudonymVault::in_data_folder(&settings.data)?,
    };
    tracing::info!(key = %vault.describe(), "pseudonym vault open");
    Ok(Arc::new(vault))
}

/// Opens the journal of withdrawn credentials in the data folder.
pub fn open_revocations(settings: &Settings) -> anyhow::Result<Arc<Revocations>> {
    Ok(Arc::new(
        Revocations::open(&settings.data.join("revocations.jsonl"))?
            .with_clock(settings.cse.clock.clone()),
    ))
}

/// The MAF (`[maf]`): its sealed registrations in the data folder, keys named
/// `HEX@<cse public domain name>`.
pub fn maf(settings: &Settings) -> anyhow::Result<Option<Arc<cse::security_manager::maf::Maf>>> {
    use security::maf_store::{KeySeal, MafKeys};
    let Some(m) = &settings.maf else {
        return Ok(None);
    };
    let seal = KeySeal::in_data_folder(&settings.data).context("[maf] sealing key")?;
    let described = seal.describe();
    let keys = Arc::new(MafKeys::open(
        &settings.data.join("maf-keys.jsonl"),
        seal,
        m.limits,
        settings.cse.clock.clone(),
    )?);
    let local = LocalIdentity {
        sp_id: settings.cse.sp_id.clone(),
        cse_id: settings.cse.cse_id.clone(),
    };
    let maf = cse::security_manager::maf::Maf::new(
        keys.clone(),
        &local.public_domain_name(),
        m.max_lifetime,
    )
    .map_err(|e| anyhow::anyhow!("[maf]: {e}"))?;
    tracing::info!(registrations = keys.len(), seal = %described, "key distribution function (MAF) configured");
    Ok(Some(Arc::new(maf)))
}

/// Opens the journal of pre-shared keys the MEF issued, in the data folder.
pub fn open_provisioned(settings: &Settings) -> anyhow::Result<Arc<ProvisionedKeys>> {
    let seal = security::provisioned::seal_in_data_folder(&settings.data)
        .context("the sealing key of provisioned keys")?;
    let described = seal.describe();
    let keys = ProvisionedKeys::open(&settings.data.join("provisioned-psk.jsonl"), seal)?
        .with_clock(settings.cse.clock.clone());
    tracing::debug!(seal = %described, "provisioned keys open");
    Ok(Arc::new(keys))
}

/// The enrolment listener's acceptor (TLS-PSK with the enrolee keys) and the MEF, when
/// `[enrolment]` is configured.
pub fn enrolment(
    settings: &Settings,
    provisioned: &Arc<ProvisionedKeys>,
    revocations: &Arc<Revocations>,
) -> anyhow::Result<
    Option<(
        Arc<TlsAcceptor>,
        Arc<cse::security_manager::enrolment::mef::Mef>,
    )>,
> {
    let Some(e) = &settings.enrolment else {
        return Ok(None);
    };
    let enrolees = Arc::new(
        EnroleeKeys::load(&e.enrolees)
            .context("[enrolment] enrolees")?
            .with_clock(settings.cse.clock.clone()),
    );
    let local = LocalIdentity {
        sp_id: settings.cse.sp_id.clone(),
        cse_id: settings.cse.cse_id.clone(),
    };
    let policy = security::tls::TlsPolicy {
        psk: true,
        clock: settings.cse.clock.clone(),
        ..security::tls::TlsPolicy::default()
    };
    // Enrolee keys can be revoked like any credential (`10-<KpmID>`).
    let guarded: Arc<dyn CredentialStore> = Arc::new(Withdrawable::enrolees(
        enrolees.clone(),
        revocations.clone(),
    ));
    let acceptor =
        TlsAcceptor::enrolment(&policy, guarded, local.clone()).context("[enrolment] listener")?;
    let mef = cse::security_manager::enrolment::mef::Mef::new(
        enrolees.clone(),
        provisioned.clone(),
        e.lifetime,
        &local.public_domain_name(),
        &settings.cse.cse_id,
    )
    .map_err(|m| anyhow::anyhow!("[enrolment]: {m}"))?;
    // fetchCredentials (cse::security_manager::enrolment::fetch): only when some target may fetch.
    let mef = if e.targets.is_empty() {
        mef
    } else {
        use security::enrolment_keys::{seal_in_data_folder, EnrolmentKeys};
        let seal = seal_in_data_folder(&settings.data).context("[enrolment] sealing key")?;
        let kept = Arc::new(EnrolmentKeys::open(
            &settings.data.join("enrolment-keys.jsonl"),
            seal,
            security::enrolment_keys::DEFAULT_MAX_ENROLMENTS,
            settings.cse.clock.clone(),
        )?);
        let fetch =
            cse::security_manager::enrolment::fetch::CredentialFetch::new(kept, e.targets.clone())
                .map_err(|m| anyhow::anyhow!("[[enrolment.target]]: {m}"))?;
        mef.with_credential_fetch(fetch)
    };
    tracing::info!(
        enrolees = enrolees.len(),
        issued = provisioned.len(),
        "enrolment function (MEF) configured"
    );
    Ok(Some((Arc::new(acceptor), Arc::new(mef))))
}

/// Opens (or starts) the audit log, signed when `[audit] signing_key` names a key.
pub fn audit_trail(
    settings: &Settings,
    homes: Option<&KeyHomes>,
) -> anyhow::Result<Option<cse::security_manager::audit::AuditTrail>> {
    let Some(audit) = &settings.audit else {
        return Ok(None);
    };
    let signer = match (&audit.signing_key, homes) {
        (Some(key), Some(homes)) => {
            Some(homes.signing_key("audit.signing_key", key, keystore::KeyRole::AuditLog)?)
        }
        (Some(key), None) => {
            anyhow::bail!("audit.signing_key: {key}, but no key home is configured")
        }
        (None, _) => None,
    };
    if let Some(dir) = audit.file.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::secret_files::create_private_folder(dir)?;
    }
    // One writer per log: the log holds its lock (manager::audit::WriterLock) for as long as
    // it is open, so `m2m ca` does not fork the chain while the CSE runs.
    let anchoring = match (&audit.head_anchor, homes) {
        (Some(_), Some(homes)) => homes.audit_anchoring(audit)?,
        (Some(anchor), None) => {
            anyhow::bail!("audit.head_anchor: {anchor}, but no key home is configured")
        }
        (None, _) => None,
    };
    let log = match manager::audit::AuditLog::open_with_anchor(
        &audit.file,
        signer,
        audit.layout.clone(),
        anchoring,
    ) {
        Err(e @ manager::audit::AuditError::InUse { .. }) => return Err(e.into()),
        opened => opened.with_context(|| format!("audit log {}", audit.file.display()))?,
    };
    tracing::info!(
        file = %audit.file.display(),
        signed = audit.signing_key.is_some(),
        anchor = %audit.head_anchor.as_ref().map(ToString::to_string).unwrap_or_else(|| "none".into()),
        "audit log open"
    );
    Ok(Some(cse::security_manager::audit::AuditTrail::start(
        log,
        settings.cse.refusal_window,
        settings.cse.clock.clone(),
    )?))
}

/// The CRLs of every TLS listener, DER-encoded by file name, to publish.
pub fn published_crls(settings: &Settings) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for path in settings
        .tls
        .iter()
        .filter_map(|t| t.certificate.as_ref())
        .flat_map(|c| &c.crls)
    {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, security::tls::crl_der(path)?));
        }
    }
    Ok(out)
}

/// Loads the credential file and builds one TLS acceptor per `[[tls]]` listener.
pub fn tls_acceptors(
    settings: &Settings,
    homes: Option<&KeyHomes>,
    revocations: &Arc<Revocations>,
    provisioned: &Arc<ProvisionedKeys>,
    audit: Option<&cse::security_manager::audit::AuditTrail>,
) -> anyhow::Result<Vec<Arc<TlsAcceptor>>> {
    // `derive_from` entries open their PSK master keys in the configured homes now.
    let masters: &dyn security::credentials::PskMasterSource = match homes {
        Some(homes) => homes,
        None => &security::credentials::NoKeyHomes,
    };
    let credentials: Arc<dyn CredentialStore> = match &settings.credentials {
        Some(path) => Arc::new(FileCredentials::load_with(path, masters)?),
        None => Arc::new(FileCredentials::default()),
    };
    // The MEF's enrolled keys in front of the file's, both subject to withdrawal.
    let credentials: Arc<dyn CredentialStore> =
        Arc::new(WithProvisioned::new(credentials, provisioned.clone()));
    let local = LocalIdentity {
        sp_id: settings.cse.sp_id.clone(),
        cse_id: settings.cse.cse_id.clone(),
    };
    // Network-provided keys: B-TIDs of the BSF's domain, keys from the BSF (also withdrawable).
    let naf = match &settings.gba {
        Some(g) => Some(Arc::new(
            gba_naf(g, &local, audit)?.with_clock(settings.cse.clock.clone()),
        )),
        None => None,
    };
    let credentials: Arc<dyn CredentialStore> = match &naf {
        Some(naf) => Arc::new(security::gba::WithGba::new(credentials, naf.clone())),
        None => credentials,
    };
    let credentials: Arc<dyn CredentialStore> =
        Arc::new(Withdrawable::new(credentials, revocations.clone()));
    let acceptors = settings
        .tls
        .iter()
        .map(|t| {
            let policy = t.policy(homes)?;
            if let Some(c) = &policy.certificate {
                tracing::info!(listener = %t.name, key = %c.key.describe(), level = c.key.level().number(), "TLS server key");
            }
            TlsAcceptor::new(&policy, credentials.clone(), local.clone())
                .map(Arc::new)
                .with_context(|| format!("[[tls]] {}", t.name))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Withdrawing a GBA gateway withdraws its edge nodes: the NAF names their parent; with
    // `[enrolment] withdraw_enrolled`, withdrawing an enrolee key withdraws what it enrolled.
    // Set once everything was built, so a failed reload leaves the rules of the running
    // listeners.
    let mut rules: Vec<Arc<dyn DerivedCredentials>> = Vec::new();
    if let Some(naf) = naf {
        rules.push(naf);
    }
    if settings
        .enrolment
        .as_ref()
        .is_some_and(|e| e.withdraw_enrolled)
    {
        rules.push(Arc::new(EnrolledBy(provisioned.clone())));
    }
    revocations.set_derived(match rules.len() {
        0 => None,
        _ => Some(Arc::new(DerivedRules(rules))),
    });
    Ok(acceptors)
}

/// The NAF of network-provided keys (`[gba]`): asks the BSF for the keys of B-TIDs, and
/// writes each key it receives to the audit log as `credential-issued` (`12-<B-TID>`), as
/// well as each edge-node key it derives (`12-<node>.<B-TID>`, parent = the gateway B-TID).
pub fn gba_naf(
    g: &crate::config::GbaSettings,
    local: &LocalIdentity,
    audit: Option<&cse::security_manager::audit::AuditTrail>,
) -> anyhow::Result<security::gba::GbaNaf> {
    use manager::kdf::{Fqdn, NafId};
    use security::association::{CredentialBinding, PeerIdentity};
    let zn = security::gba::HttpZn::new(&g.bsf_url, g.timeout)
        .map_err(|m| anyhow::anyhow!("[gba] bsf_url: {m}"))?;
    let config = security::gba::GbaConfig {
        btid_domain: Fqdn::new(&g.btid_domain).context("[gba] btid_domain")?,
        naf: NafId {
            // Clause 8.3.2.3: the NAF FQDN of a CSE is the public domain name of its CSE-ID.
            fqdn: Fqdn::new(&local.public_domain_name()).context("the NAF FQDN (CSE-ID.SP-ID)")?,
            ua_protocol: security::gba::UA_TLS_PSK,
        },
        key: g.key,
        default_binding: CredentialBinding {
            identity: PeerIdentity::AllowedAes(g.allowed_aes.clone()),
            admin: false,
            allowed_apps: Vec::new(),
            level: None,
        },
        max_cached: g.max_cached,
        edge_nodes: g.edge_nodes,
    };
    tracing::info!(bsf = %zn.url(), naf = %config.naf.fqdn.as_str(), btid_domain = %g.btid_domain, edge_nodes = g.edge_nodes, "network-provided keys (GBA NAF) configured");
    let mut naf = security::gba::GbaNaf::new(config, Arc::new(zn));
    if let Some(audit) = audit.cloned() {
        naf = naf.with_events(Arc::new(move |event: &security::gba::GbaEvent| {
            use security::gba::GbaEvent;
            // Both are keys the CSE now holds: `credential-issued`, with the key each one
            // derives from as parent (a B-TID is its own KeID; an edge key's is the gateway's).
            let (holder, parent) = match event {
                GbaEvent::KeyFetched { btid, holder, .. } => (holder, btid),
                GbaEvent::EdgeKeyDerived {
                    gateway, holder, ..
                } => (holder, gateway),
            };
            audit.record(manager::audit::Event::CredentialIssued {
                credential: event.credential(),
                holder: holder.clone(),
                parent: Some(parent.clone()),
            });
        }));
    }
    Ok(naf)
}
