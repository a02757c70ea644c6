//! The CSE's audit trail: every security event goes to the security manager's hash-chained
//! audit log (`manager::audit`), the supervision record of seed 3.1.
//!
//! Association events arrive on connection tasks by the thousand, so they are queued to one
//! writer thread that appends them in order (its appends share syncs); a full queue drops
//! events and says so in the log and in the trail itself, rather than stall handshakes.
//! Administrative events (revocations, resolutions) are written durably before the admin
//! gets an answer.
//!
//! The audit log is the authorised record: it names real peers (addresses, Credential-IDs),
//! unlike the tagged operational log (see `security::privacy`). Keep it readable by the
//! operator only.

use manager::audit::{AuditLog, Event};
use model::{Error, Result};
use security::association::{AssociationEvents, SecurityAssociation};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

/// Pending association events before the trail starts dropping them.
const QUEUE: usize = 4096;

/// The CSE's handle on its audit log.
#[derive(Debug, Clone)]
pub struct AuditTrail {
    log: Arc<AuditLog>,
    queue: SyncSender<Event>,
    dropped: Arc<AtomicU64>,
}

impl AuditTrail {
    /// Starts the writer thread for `log`.
    pub fn start(log: AuditLog) -> std::io::Result<Self> {
        let log = Arc::new(log);
        let (queue, pending) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let (writer_log, writer_dropped) = (log.clone(), dropped.clone());
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_queued(&writer_log, &pending, &writer_dropped))?;
        Ok(Self {
            log,
            queue,
            dropped,
        })
    }

    /// Queues an event; never blocks.
    pub fn record(&self, event: Event) {
        match self.queue.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::error!("audit queue full: security events are being dropped");
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!("the audit writer stopped: security event lost");
            }
        }
    }

    /// Appends an event and returns once it is on disk.
    pub async fn record_durably(&self, event: Event) -> Result<()> {
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || log.append(event))
            .await
            .map_err(|e| Error::internal(format!("audit writer: {e}")))?
            .map(drop)
            .map_err(|e| Error::internal(format!("audit log: {e}")))
    }
}

fn write_queued(log: &AuditLog, pending: &Receiver<Event>, dropped: &AtomicU64) {
    for event in pending {
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let note = Event::AdminAction {
                actor: "cse".into(),
                action: "audit-events-dropped".into(),
                target: Some(lost.to_string()),
            };
            if let Err(e) = log.append(note) {
                tracing::error!(error = %e, "cannot write to the audit log");
            }
        }
        if let Err(e) = log.append(event) {
            tracing::error!(error = %e, "cannot write to the audit log");
        }
    }
}

fn identity(sa: &SecurityAssociation) -> String {
    use security::association::PeerIdentity;
    match &sa.established.binding.identity {
        PeerIdentity::Ae(id) | PeerIdentity::Cse(id) => id.clone(),
        PeerIdentity::AllowedAes(patterns) => patterns.join(" "),
    }
}

impl AssociationEvents for AuditTrail {
    fn opened(&self, sa: &SecurityAssociation) {
        self.record(Event::AssociationOpened {
            peer: sa.peer.to_string(),
            identity: identity(sa),
            credential: sa.established.credential_id.clone(),
            framework: format!("tls-{}", sa.established.framework.name()),
        });
    }

    fn refused(&self, _listener: &str, peer: SocketAddr, credential: Option<&str>, reason: &str) {
        self.record(Event::AssociationRefused {
            peer: peer.to_string(),
            credential: credential.map(str::to_owned),
            reason: reason.to_owned(),
        });
    }

    fn closed(&self, sa: &SecurityAssociation, reason: &str) {
        self.record(Event::AssociationClosed {
            peer: sa.peer.to_string(),
            identity: identity(sa),
            reason: reason.to_owned(),
        });
    }
}
