//! Security associations: what a finished handshake proved, bound to one identity
//! (TS-0003 clause 8.2.1), and the registry of live associations.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::watch;

use crate::refusals::{Observed, RefusalWindow, Summary};
use model::clock::Clock;

mod bootstrap;
pub use bootstrap::{BootstrapExporter, BOOTSTRAP_EXPORTER_LABEL, BOOTSTRAP_EXPORTER_LEN};

/// The security level of a key's home (1 software, 2 TPM, 3 HSM; seed 6.3.1.x), as the key
/// store defines it. Re-exported so that users of associations need not name the key store.
pub use keystore::Level;

/// The security association establishment framework a handshake used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    /// Mutual TLS with X.509 certificates (TS-0003 clause 8.2.2.2).
    Certificate,
    /// TLS with a provisioned symmetric key, `psk_identity` = KpsaID (clause 8.2.2.1).
    Psk,
}

impl Framework {
    /// A short name for logs and listings.
    pub fn name(self) -> &'static str {
        match self {
            Self::Certificate => "certificate",
            Self::Psk => "psk",
        }
    }
}

/// What an association is bound to (TS-0003 clause 8.2.1: one AE-ID, one CSE-ID, or a list
/// of allowed AE-IDs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerIdentity {
    /// Exactly one AE-ID (as in the certificate or the credential binding).
    Ae(String),
    /// A CSE, by its CSE-ID (SP-relative, `/id-mn`).
    Cse(String),
    /// AE-IDs the credential may use, as patterns: `C*` allows one CSE-assigned AE-ID,
    /// remembered at its first registration; `S*`, `Cabc`, ... literally.
    AllowedAes(Vec<String>),
}

/// What a credential is allowed to be, looked up by Credential-ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialBinding {
    /// The identity the association is bound to.
    pub identity: PeerIdentity,
    /// Whether the credential is an admin credential (the admin originator is honoured only
    /// over such an association).
    pub admin: bool,
    /// App-IDs an AE registering over this credential may use; empty means any.
    pub allowed_apps: Vec<String>,
    /// The security level of the home that holds the peer's key, as the credential store
    /// records it (a PSK entry's `level`, default 1; a certificate entry's `level`). `None`
    /// when nothing records it (a certificate that names its AE-ID or CSE-ID itself and has
    /// no credential entry). Our extension: TS-0003 defines the levels, not their transport
    /// into a request's security context.
    pub level: Option<Level>,
}

/// The outcome of a successful handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Established {
    /// The framework used.
    pub framework: Framework,
    /// The Credential-ID (TS-0003 clause 10.4): `12-<KpsaID>` for a PSK, `3x-<SHA-256 of the
    /// TBSCertificate>` for certificates (the same for every encoding of the signature).
    pub credential_id: String,
    /// What the association is bound to.
    pub binding: CredentialBinding,
    /// Negotiated protocol version (`TLSv1.3`).
    pub protocol: String,
    /// Negotiated cipher suite.
    pub cipher: String,
    /// The server name the client asked for (SNI), if any.
    pub server_name: Option<String>,
    /// Whether the session was resumed rather than fully negotiated.
    pub resumed: bool,
    /// On an enrolment listener only: the `EXPORTER-oneM2M-Bootstrap` output the MEF derives
    /// the Enrolment Key from, usable by one request (TS-0003 clauses 8.3.2.1, 10.3.1).
    /// `None` on every other listener. Never printed.
    pub bootstrap: Option<BootstrapExporter>,
}

impl Established {
    /// The security level of the peer's credential (see [`CredentialBinding::level`]).
    pub fn credential_level(&self) -> Option<Level> {
        self.binding.level
    }

    /// Whether this is an enrolment association (an enrolee authenticated by its Kpm): it
    /// serves the MEF's enrolment request and nothing else.
    pub fn is_enrolment(&self) -> bool {
        self.bootstrap.is_some()
    }
}

/// One live association, shared by every request that travels over it.
#[derive(Debug)]
pub struct SecurityAssociation {
    /// Registry key.
    pub id: u64,
    /// Name of the listener.
    pub listener: String,
    /// The peer's address.
    pub peer: SocketAddr,
    /// What the handshake established.
    pub established: Established,
    /// When the handshake finished.
    pub opened: SystemTime,
    requests: AtomicU64,
    /// The store's key for the credential's remembered AE-ID: the pseudonym vault's lookup
    /// of the Credential-ID, or the Credential-ID itself without a vault; `None` when the
    /// vault failed (then nothing is looked up or remembered for this association).
    binding_key: Option<String>,
    /// Set once when the association is withdrawn (its credential revoked or suspended);
    /// the connection serving it watches this and ends.
    closing: watch::Sender<Option<String>>,
}

impl SecurityAssociation {
    /// Counts one request.
    pub fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The store's key for this credential's remembered AE-ID (see the field).
    pub fn binding_key(&self) -> Option<&str> {
        self.binding_key.as_deref()
    }

    /// Withdraws the association: its connection ends and no further request on it is
    /// served. The first reason given is kept.
    pub fn close(&self, reason: &str) {
        self.closing.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(reason.to_owned());
            }
            first
        });
    }

    /// Why the association was withdrawn, if it was.
    pub fn closed_because(&self) -> Option<String> {
        self.closing.borrow().clone()
    }

    /// Resolves once the association is withdrawn (at once if it already was).
    pub async fn closed(&self) {
        let mut rx = self.closing.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }
}

/// Hears about the life of every association, for the audit log (the security manager's
/// supervision, seed 3.1). Called on the connection's task: implementations must not block.
pub trait AssociationEvents: Send + Sync + fmt::Debug {
    /// A handshake succeeded and the association is live.
    fn opened(&self, association: &SecurityAssociation);
    /// A handshake failed. `credential` is the Credential-ID the peer offered when the
    /// handshake got far enough to name a credential the CSE knows (a known PSK identity
    /// with the wrong key); `None` otherwise.
    fn refused(&self, listener: &str, peer: SocketAddr, credential: Option<&str>, reason: &str);
    /// The association ended: its connection closed, or it was withdrawn (`reason`).
    fn closed(&self, association: &SecurityAssociation, reason: &str);
}

/// The name of the enrolment listener (TS-0003 clause 8.3.2.1): its PSK identities are
/// KpmIDs, whose Credential-ID is `10-<KpmID>` rather than `12-<KpsaID>`.
pub const ENROLMENT_LISTENER: &str = "enrolment";

/// The Credential-ID of a PSK identity on `listener`: `10-<KpmID>` on the enrolment
/// listener, `12-<KpsaID>` elsewhere.
pub fn psk_credential_id(listener: &str, identity: &str) -> String {
    let prefix = if listener == ENROLMENT_LISTENER {
        "10"
    } else {
        "12"
    };
    format!("{prefix}-{identity}")
}

/// Tells several listeners about every association event, in order (the audit trail first,
/// then the supervision), so that the registry keeps one `events` slot.
#[derive(Debug)]
pub struct EventFanout(pub Vec<Arc<dyn AssociationEvents>>);

impl AssociationEvents for EventFanout {
    fn opened(&self, association: &SecurityAssociation) {
        self.0.iter().for_each(|e| e.opened(association));
    }

    fn refused(&self, listener: &str, peer: SocketAddr, credential: Option<&str>, reason: &str) {
        self.0
            .iter()
            .for_each(|e| e.refused(listener, peer, credential, reason));
    }

    fn closed(&self, association: &SecurityAssociation, reason: &str) {
        self.0.iter().for_each(|e| e.closed(association, reason));
    }
}

/// The live associations of the CSE.
#[derive(Debug, Default)]
pub struct Registry {
    next: AtomicU64,
    live: Mutex<HashMap<u64, Arc<SecurityAssociation>>>,
    events: Option<Arc<dyn AssociationEvents>>,
    pseudonyms: Option<Arc<crate::privacy::PseudonymVault>>,
    /// Refusals counted for the operational log, so a flood of refused handshakes writes a
    /// bounded number of log lines (`crate::refusals`).
    logged_refusals: Mutex<RefusalWindow>,
    /// Times the refusal windows and the associations' opening.
    clock: Clock,
}

/// One log line for the refusals counted in a window.
fn log_summary(s: &Summary) {
    let source = s.source.addr().map_or_else(
        || s.source.to_string(),
        |ip| crate::privacy::log_tags().peer(ip).to_string(),
    );
    tracing::warn!(
        listener = %model::Untrusted(&s.listener),
        source = %source,
        credential = %s.credential.as_deref().map_or_else(|| "-".to_owned(), |c| crate::privacy::credential_tag(c).to_string()),
        reason = %model::Untrusted(&s.reason),
        count = s.count,
        seconds = s.last.duration_since(s.first).unwrap_or_default().as_secs(),
        "security associations refused (counted over the window)"
    );
}

/// Keeps an association in the registry for as long as its connection lives.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<Registry>,
    /// The association.
    pub association: Arc<SecurityAssociation>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut live) = self.registry.live.lock() {
            live.remove(&self.association.id);
        }
        tracing::info!(
            sa = self.association.id,
            peer = %crate::privacy::log_tags().peer(self.association.peer.ip()),
            credential = %crate::privacy::credential_tag(&self.association.established.credential_id),
            requests = self.association.requests(),
            "security association closed"
        );
        if let Some(events) = &self.registry.events {
            let reason = self
                .association
                .closed_because()
                .unwrap_or_else(|| "connection ended".to_owned());
            events.closed(&self.association, &reason);
        }
    }
}

impl Registry {
    /// A registry that tells `events` about every association opened, refused and closed.
    pub fn with_events(events: Arc<dyn AssociationEvents>) -> Self {
        Self {
            events: Some(events),
            ..Self::default()
        }
    }

    /// The same registry, keeping credential bindings under `vault`'s lookups (so the store
    /// never holds a Credential-ID in clear).
    pub fn with_pseudonyms(mut self, vault: Arc<crate::privacy::PseudonymVault>) -> Self {
        self.pseudonyms = Some(vault);
        self
    }

    /// The pseudonym vault, when bindings are kept under one.
    pub fn pseudonyms(&self) -> Option<&Arc<crate::privacy::PseudonymVault>> {
        self.pseudonyms.as_ref()
    }

    /// The same registry, counting refusals for the log over `window` rather than writing
    /// a line for each (`crate::refusals`).
    pub fn with_refusal_window(mut self, window: std::time::Duration) -> Self {
        self.logged_refusals =
            Mutex::new(RefusalWindow::new(window).with_clock(self.clock.clone()));
        self
    }

    /// The same registry on `clock` (the CSE's): refusal windows and opening times move
    /// with it.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        let window = self.refusal_window();
        self.clock = clock;
        self.with_refusal_window(window)
    }

    /// Records a refused handshake (it never became an association): the first refusal of
    /// its source and reason in the window is logged at once, the rest are counted and
    /// logged as one line when the window ends ([`Registry::flush_refusals`]).
    /// `offered` is the known PSK identity the client offered, when the refusal is about one
    /// ([`crate::tls::HandshakeError::offered_identity`]).
    pub fn refused(&self, listener: &str, peer: SocketAddr, offered: Option<&str>, reason: &str) {
        let credential = offered.map(|identity| psk_credential_id(listener, identity));
        if let Ok(mut window) = self.logged_refusals.lock() {
            let (ended, observed) = window.observe(
                self.clock.instant(),
                listener,
                peer.ip(),
                credential.as_deref(),
                reason,
            );
            drop(window);
            ended.iter().for_each(log_summary);
            if observed == Observed::First {
                tracing::warn!(
                    listener = %model::Untrusted(listener),
                    peer = %crate::privacy::peer_tag(Some(peer)),
                    reason = %model::Untrusted(reason),
                    "security association refused (further refusals from this source for this reason are counted)"
                );
            }
        }
        if let Some(events) = &self.events {
            events.refused(listener, peer, credential.as_deref(), reason);
        }
    }

    /// Logs the counts of a refusal window that has ended. Called now and then (every
    /// window) so that the count of a flood that stopped is not held back until the next
    /// refusal.
    pub fn flush_refusals(&self) {
        let ended = match self.logged_refusals.lock() {
            Ok(mut window) => window.expire(self.clock.instant()),
            Err(_) => return,
        };
        ended.iter().for_each(log_summary);
    }

    /// The length of the refusal window.
    pub fn refusal_window(&self) -> std::time::Duration {
        self.logged_refusals
            .lock()
            .map_or(crate::refusals::DEFAULT_WINDOW, |w| w.window())
    }

    /// Records a new association; it leaves the registry when the returned guard drops.
    pub fn open(
        self: &Arc<Self>,
        listener: &str,
        peer: SocketAddr,
        established: Established,
    ) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let binding_key = match &self.pseudonyms {
            None => Some(established.credential_id.clone()),
            Some(vault) => match vault.lookup(&established.credential_id) {
                Ok(key) => Some(key),
                Err(e) => {
                    tracing::error!(sa = id, error = %e, "no pseudonym lookup for this association");
                    None
                }
            },
        };
        let association = Arc::new(SecurityAssociation {
            binding_key,
            id,
            listener: listener.to_owned(),
            peer,
            established,
            opened: self.clock.system_time(),
            requests: AtomicU64::new(0),
            closing: watch::channel(None).0,
        });
        if let Ok(mut live) = self.live.lock() {
            live.insert(id, association.clone());
        }
        if let Some(events) = &self.events {
            events.opened(&association);
        }
        Registration {
            registry: self.clone(),
            association,
        }
    }

    /// Withdraws every live association whose Credential-ID `covered` says is withdrawn (the
    /// credential itself, and those derived from it); returns how many there were.
    pub fn close_credentials(&self, covered: impl Fn(&str) -> bool, reason: &str) -> usize {
        let matching: Vec<_> = self
            .list()
            .into_iter()
            .filter(|sa| covered(&sa.established.credential_id))
            .collect();
        for sa in &matching {
            sa.close(reason);
        }
        matching.len()
    }

    /// A snapshot of the live associations, oldest first.
    pub fn list(&self) -> Vec<Arc<SecurityAssociation>> {
        let mut all: Vec<_> = self
            .live
            .lock()
            .map(|l| l.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by_key(|a| a.id);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psk_credential_ids_depend_on_the_listener() {
        assert_eq!(psk_credential_id("https", "s@sp"), "12-s@sp");
        assert_eq!(psk_credential_id(ENROLMENT_LISTENER, "s@sp"), "10-s@sp");
    }
}
