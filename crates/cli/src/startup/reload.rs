//! `reload-tls` and SIGHUP: the `[[tls]]` listeners' material re-read from the configuration.

use crate::config::FileConfig;
use crate::keyhomes::KeyHomes;
use security::provisioned::ProvisionedKeys;
use security::revocation::Revocations;
use security::tls::AcceptorSlot;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::parts::{published_crls, tls_acceptors};

/// Rebuilds the `[[tls]]` listeners' acceptors from the configuration file, for `reload-tls`
/// and SIGHUP. Key homes, journals and the audit trail are the running ones; adding, removing
/// or moving a listener needs a restart (and is refused here).
#[derive(Debug)]
pub struct Reloader {
    /// The configuration file the CSE started with (`--config`), re-read on each reload.
    pub config: Option<PathBuf>,
    /// The `--http` override it started with.
    pub http: Option<SocketAddr>,
    /// The `--data` override it started with.
    pub data: Option<PathBuf>,
    /// The running key homes (never reopened).
    pub homes: Option<Arc<KeyHomes>>,
    /// The running journal of withdrawn credentials.
    pub revocations: Arc<Revocations>,
    /// The running journal of keys the MEF issued.
    pub provisioned: Arc<ProvisionedKeys>,
    /// The running audit trail (the GBA NAF writes to it).
    pub audit: Option<cse::audit::AuditTrail>,
    /// Each `[[tls]]` listener: its name, its address and the slot its acceptor is replaced in.
    pub listeners: Vec<(String, SocketAddr, Arc<AcceptorSlot>)>,
    /// The device enrolment listener (`[enrolment] device_listen`): its manufacturer CAs and
    /// CRLs are re-read too.
    pub device: Option<Arc<AcceptorSlot>>,
}

impl cse::reload::TlsReload for Reloader {
    fn reload(&self) -> Result<cse::reload::Reloaded, String> {
        let file = match self.config.as_deref().map(FileConfig::load).transpose() {
            Ok(f) => f.unwrap_or_default(),
            Err(e) => return Err(e.to_string()),
        };
        let settings = file
            .resolve(self.http, self.data.clone())
            .map_err(|e| e.to_string())?;
        let now: Vec<(String, SocketAddr)> = settings
            .tls
            .iter()
            .map(|t| (t.name.clone(), t.listen))
            .collect();
        let before: Vec<(String, SocketAddr)> = self
            .listeners
            .iter()
            .map(|(n, l, _)| (n.clone(), *l))
            .collect();
        if now != before {
            return Err(
                "the [[tls]] listeners were added, removed, renamed or moved: restart the CSE"
                    .into(),
            );
        }
        let acceptors = tls_acceptors(
            &settings,
            self.homes.as_deref(),
            &self.revocations,
            &self.provisioned,
            self.audit.as_ref(),
        )
        .map_err(|e| format!("{e:#}"))?;
        let device =
            crate::cert_enrolment::acceptor(&settings, self.homes.as_deref(), &self.revocations)
                .map_err(|e| format!("{e:#}"))?;
        let device = match (&self.device, device) {
            (Some(slot), Some(acceptor)) => Some((slot, acceptor)),
            (None, None) => None,
            _ => {
                return Err(
                    "[enrolment] device_listen was added or removed: restart the CSE".into(),
                )
            }
        };
        let published_crls = published_crls(&settings).map_err(|e| format!("{e:#}"))?;
        // Everything was built: only now is anything replaced.
        let mut names: Vec<String> = self.listeners.iter().map(|(n, _, _)| n.clone()).collect();
        for ((name, _, slot), acceptor) in self.listeners.iter().zip(acceptors) {
            slot.replace(acceptor);
            tracing::info!(listener = %name, "TLS listener reloaded");
        }
        if let Some((slot, acceptor)) = device {
            slot.replace(Arc::new(acceptor));
            tracing::info!(
                listener = %cse::cert_enrolment::DEVICE_ENROLMENT_LISTENER,
                "TLS listener reloaded"
            );
            names.push(cse::cert_enrolment::DEVICE_ENROLMENT_LISTENER.to_owned());
        }
        Ok(cse::reload::Reloaded {
            listeners: names,
            published_crls,
        })
    }
}
