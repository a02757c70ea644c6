//! Security associations: what a finished handshake proved, bound to one identity
//! (TS-0003 clause 8.2.1), and the registry of live associations.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

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
}

/// The outcome of a successful handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Established {
    /// The framework used.
    pub framework: Framework,
    /// The Credential-ID (TS-0003 clause 10.4): `12-<KpsaID>` for a PSK, `3x-<SHA-256 of the
    /// certificate>` for certificates.
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
}

/// The live associations of the CSE.
#[derive(Debug, Default)]
pub struct Registry {
    next: AtomicU64,
    live: Mutex<HashMap<u64, Arc<SecurityAssociation>>>,
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
            peer = %self.association.peer,
            credential = %self.association.established.credential_id,
            requests = self.association.requests(),
            "security association closed"
        );
    }
}

impl Registry {
    /// Records a new association; it leaves the registry when the returned guard drops.
    pub fn open(
        self: &Arc<Self>,
        listener: &str,
        peer: SocketAddr,
        established: Established,
    ) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let association = Arc::new(SecurityAssociation {
            id,
            listener: listener.to_owned(),
            peer,
            established,
            opened: SystemTime::now(),
            requests: AtomicU64::new(0),
        });
        if let Ok(mut live) = self.live.lock() {
            live.insert(id, association.clone());
        }
        Registration {
            registry: self.clone(),
            association,
        }
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
