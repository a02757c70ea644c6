//! The CSE's audit trail: every security event goes to the security manager's hash-chained
//! audit log (`manager::audit`), the supervision record of seed 3.1.
//!
//! Association events arrive on connection tasks by the thousand, so they are queued to one
//! writer thread, which takes everything queued at once and appends it with one sync
//! (`AuditLog::append_batch`): it keeps up with whatever rate the disk allows, so the queue
//! never drops an event. Events about authenticated parties (associations opened and
//! closed, anomalies, key requests, administrative actions) are therefore never lost while
//! the CSE runs; their number is bounded by what authenticated parties can do.
//! Refused associations come from anyone who can reach a port, so they are counted per
//! source and reason over a window (`security::refusals`): the first of each is written, the
//! rest become one `associations-refused` entry with the count when the window ends. A
//! flood of any size thus writes a bounded number of entries.
//! Administrative events (revocations, resolutions) are written durably before the admin
//! gets an answer.
//!
//! The audit log is the authorised record: it names real peers (addresses, Credential-IDs),
//! unlike the tagged operational log (see `security::privacy`). Keep it readable by the
//! operator only.

use manager::audit::{AuditLog, Event};
use model::clock::Clock;
use model::{Error, Result};
use security::association::{AssociationEvents, SecurityAssociation};
use security::refusals::{Observed, RefusalWindow, Summary};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How long the writer sleeps when nothing is queued and no refusal window is open.
const IDLE_WAKE: Duration = Duration::from_secs(3600);

/// The CSE's handle on its audit log.
#[derive(Debug, Clone)]
pub struct AuditTrail {
    log: Arc<AuditLog>,
    queue: Arc<Queue>,
}

/// What waits for the writer thread.
#[derive(Debug)]
struct Queue {
    state: Mutex<Pending>,
    wake: Condvar,
    /// Signalled whenever the writer has appended a batch.
    written: Condvar,
    /// Decides when a refusal window ends (the CSE's clock).
    clock: Clock,
}

#[derive(Debug)]
struct Pending {
    events: Vec<Event>,
    refusals: RefusalWindow,
    /// A batch taken from `events` is being appended.
    writing: bool,
}

impl AuditTrail {
    /// Starts the writer thread for `log`, counting refused associations over `window` of
    /// `clock` (the CSE's), which also times the log's entries.
    pub fn start(log: AuditLog, window: Duration, clock: Clock) -> std::io::Result<Self> {
        let log = Arc::new(log.with_clock(clock.clone()));
        let queue = Arc::new(Queue {
            state: Mutex::new(Pending {
                events: Vec::new(),
                refusals: RefusalWindow::new(window).with_clock(clock.clone()),
                writing: false,
            }),
            wake: Condvar::new(),
            written: Condvar::new(),
            clock,
        });
        let (writer_log, writer_queue) = (log.clone(), queue.clone());
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_queued(&writer_log, &writer_queue))?;
        Ok(Self { log, queue })
    }

    /// The log this trail writes to.
    pub fn log(&self) -> &Arc<AuditLog> {
        &self.log
    }

    /// Queues an event for the writer; never blocks on the disk and never drops.
    pub fn record(&self, event: Event) {
        match self.queue.state.lock() {
            Ok(mut pending) => pending.events.push(event),
            Err(_) => {
                tracing::error!("the audit queue is unusable after a panic: security event lost");
                return;
            }
        }
        self.queue.wake.notify_one();
    }

    /// Counts a refused association; queues an entry for the first of its source and reason
    /// in the window, and the summaries of a window that has ended.
    fn record_refusal(
        &self,
        listener: &str,
        peer: SocketAddr,
        credential: Option<&str>,
        reason: &str,
    ) {
        {
            let Ok(mut pending) = self.queue.state.lock() else {
                tracing::error!("the audit queue is unusable after a panic: refusal not recorded");
                return;
            };
            let (ended, observed) = pending.refusals.observe(
                self.queue.clock.instant(),
                listener,
                peer.ip(),
                credential,
                reason,
            );
            pending.events.extend(ended.into_iter().map(summary_event));
            if observed == Observed::Counted {
                return;
            }
            pending.events.push(Event::AssociationRefused {
                peer: peer.to_string(),
                credential: credential.map(str::to_owned),
                reason: reason.to_owned(),
            });
        }
        self.queue.wake.notify_one();
    }

    /// At an orderly shutdown: ends the refusal window (its counts are written now) and waits,
    /// at most `within`, until everything queued is on disk. Returns whether it all was.
    pub fn flush(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let Ok(mut pending) = self.queue.state.lock() else {
            return false;
        };
        let counted = pending.refusals.drain();
        pending
            .events
            .extend(counted.into_iter().map(summary_event));
        self.queue.wake.notify_one();
        while !pending.events.is_empty() || pending.writing {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            pending = match self.queue.written.wait_timeout(pending, left) {
                Ok((p, _)) => p,
                Err(_) => return false,
            };
        }
        drop(pending);
        // The last entries are on disk: anchor their checkpoint too, so a stop leaves no
        // window behind (the log is shared with the writer thread and never dropped).
        match self.log.anchor_pending() {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(error = %e, "the last audit checkpoint could not be anchored");
                false
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

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The entry for refusals counted over a window.
fn summary_event(s: Summary) -> Event {
    Event::AssociationsRefused {
        listener: s.listener,
        source: s.source.to_string(),
        credential: s.credential,
        reason: s.reason,
        count: s.count,
        first: rfc3339(s.first),
        last: rfc3339(s.last),
    }
}

/// The writer thread: takes everything queued (and the counts of an ended refusal window)
/// and appends it with one sync.
fn write_queued(log: &AuditLog, queue: &Queue) {
    loop {
        let batch = {
            let Ok(mut pending) = queue.state.lock() else {
                tracing::error!("the audit queue is unusable after a panic: the writer stops");
                return;
            };
            loop {
                let now = queue.clock.instant();
                let ended = pending.refusals.expire(now);
                pending.events.extend(ended.into_iter().map(summary_event));
                if !pending.events.is_empty() {
                    break;
                }
                // A checkpoint the anchor does not cover yet, and its interval has passed.
                let anchor_due = log.anchor_due();
                if anchor_due.is_some_and(|d| d <= now) {
                    break;
                }
                let wait = [pending.refusals.deadline(), anchor_due]
                    .into_iter()
                    .flatten()
                    .min()
                    .map_or(IDLE_WAKE, |d| d.saturating_duration_since(now));
                pending = match queue.wake.wait_timeout(pending, wait) {
                    Ok((p, _)) => p,
                    Err(_) => return,
                };
            }
            pending.writing = true;
            std::mem::take(&mut pending.events)
        };
        if batch.is_empty() {
            // Woken because the anchor fell due.
            if let Err(e) = log.anchor_pending() {
                tracing::error!(error = %e, "the audit checkpoint could not be anchored; trying again later");
            }
        } else {
            let n = batch.len();
            if let Err(e) = log.append_batch(batch) {
                tracing::error!(error = %e, events = n, "cannot write to the audit log: security events lost");
            }
        }
        if let Ok(mut pending) = queue.state.lock() {
            pending.writing = false;
        }
        queue.written.notify_all();
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

    fn refused(&self, listener: &str, peer: SocketAddr, credential: Option<&str>, reason: &str) {
        self.record_refusal(listener, peer, credential, reason);
    }

    fn closed(&self, sa: &SecurityAssociation, reason: &str) {
        self.record(Event::AssociationClosed {
            peer: sa.peer.to_string(),
            identity: identity(sa),
            reason: reason.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds_and_counts(path: &std::path::Path) -> Vec<(String, u64)> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|e| {
                (
                    e["event"]["kind"].as_str().unwrap_or_default().to_owned(),
                    e["event"]["count"].as_u64().unwrap_or(1),
                )
            })
            .collect()
    }

    #[test]
    fn refusals_are_counted_and_everything_else_is_written_before_a_flush_returns() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, None).expect("log");
        let trail =
            AuditTrail::start(log, Duration::from_secs(3600), Clock::system()).expect("trail");
        let peer: SocketAddr = "192.0.2.7:40000".parse().expect("addr");
        for _ in 0..500 {
            trail.record_refusal("https", peer, None, "certificate verify failed");
        }
        for i in 0..200 {
            trail.record(Event::AdminAction {
                actor: "CAdmin".into(),
                action: "test".into(),
                target: Some(i.to_string()),
            });
        }
        assert!(trail.flush(Duration::from_secs(20)), "written in time");
        let written = kinds_and_counts(&path);
        assert_eq!(
            written.iter().filter(|(k, _)| k == "admin-action").count(),
            200
        );
        assert_eq!(
            written
                .iter()
                .filter(|(k, _)| k.starts_with("association"))
                .cloned()
                .collect::<Vec<_>>(),
            vec![
                ("association-refused".to_owned(), 1),
                ("associations-refused".to_owned(), 500)
            ]
        );
    }

    /// The refusal window ends, and entries are timed, by the trail's clock: moved past the
    /// window, the next refusal opens a new one at once (no waiting).
    #[test]
    fn windows_and_entry_times_follow_the_clock() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, None).expect("log");
        let manual = model::clock::ManualClock::new();
        let trail = AuditTrail::start(log, Duration::from_secs(60), manual.clock()).expect("trail");
        let peer: SocketAddr = "192.0.2.7:40000".parse().expect("addr");
        for _ in 0..3 {
            trail.record_refusal("https", peer, None, "certificate verify failed");
        }
        // The first refusal's entry is on disk (bounded wait), timed before the clock moves.
        let deadline = Instant::now() + Duration::from_secs(20);
        while kinds_and_counts(&path).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        manual.advance(Duration::from_secs(61));
        trail.record_refusal("https", peer, None, "certificate verify failed");
        assert!(trail.flush(Duration::from_secs(20)), "written in time");
        let written = kinds_and_counts(&path);
        assert_eq!(
            written[..3],
            [
                ("association-refused".to_owned(), 1),
                ("associations-refused".to_owned(), 3),
                ("association-refused".to_owned(), 1)
            ],
            "{written:?}"
        );
        let times: Vec<chrono::DateTime<chrono::FixedOffset>> = std::fs::read_to_string(&path)
            .expect("log")
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|e| chrono::DateTime::parse_from_rfc3339(e["time"].as_str()?).ok())
            .collect();
        assert!(
            times[2] - times[0] >= chrono::Duration::seconds(60),
            "{times:?}"
        );
    }

    /// A counter in memory for an anchored log.
    #[derive(Debug, Default)]
    struct Counter(std::sync::Mutex<Option<u64>>);

    impl keystore::anchor::MonotonicCounter for Counter {
        fn name(&self) -> String {
            "the test counter".into()
        }
        fn read(&self) -> std::result::Result<Option<u64>, keystore::KeyStoreError> {
            Ok(*self.0.lock().expect("lock"))
        }
        fn create(&self) -> std::result::Result<u64, keystore::KeyStoreError> {
            *self.0.lock().expect("lock") = Some(1);
            Ok(1)
        }
        fn increment(&self) -> std::result::Result<u64, keystore::KeyStoreError> {
            let mut value = self.0.lock().expect("lock");
            let next = value.unwrap_or_default() + 1;
            *value = Some(next);
            Ok(next)
        }
    }

    fn anchored_log(dir: &std::path::Path, counter: &Arc<Counter>, interval: Duration) -> AuditLog {
        use keystore::software::{KekSource, SoftwareConfig, SoftwareHome};
        use keystore::{Algorithm, KeyHome, KeyId, KeyRole, KeyStore, KeyStorePolicy};
        let home = Arc::new(
            SoftwareHome::create(&SoftwareConfig {
                dir: dir.join("keys"),
                kek: KekSource::Passphrase(keystore::SecretSource::Provided(
                    keystore::SecretBytes::from_slice(b"audit writer tests"),
                )),
            })
            .expect("home"),
        );
        let id = home.id().clone();
        let store = KeyStore::new(KeyStorePolicy::default()).with_home(home);
        let handle = store
            .generate(
                &id,
                &KeyId::new("audit").expect("id"),
                KeyRole::AuditLog,
                Algorithm::EcdsaP256Sha256,
            )
            .expect("key");
        let path = dir.join("audit.log");
        AuditLog::open_with_anchor(
            &path,
            Some(store.signing_key(&handle).expect("signer")),
            manager::audit::Layout::for_log(&path),
            Some(manager::audit::Anchoring {
                anchor: manager::audit::HeadAnchor::Counter(counter.clone()),
                interval,
            }),
        )
        .expect("log")
    }

    fn opened() -> Event {
        Event::AssociationOpened {
            peer: "192.0.2.7:40000".into(),
            identity: "Csensor".into(),
            credential: "12-sensor@sp.example".into(),
            framework: "tls-psk".into(),
        }
    }

    #[test]
    fn the_writer_anchors_a_waiting_checkpoint_once_its_interval_has_passed() {
        let dir = tempfile::tempdir().expect("tmp");
        let counter = Arc::new(Counter::default());
        let log = anchored_log(dir.path(), &counter, Duration::from_secs(1));
        let trail =
            AuditTrail::start(log, Duration::from_secs(3600), Clock::system()).expect("trail");
        assert_eq!(*counter.0.lock().expect("lock"), Some(1), "created at open");
        trail.record(opened());
        // No further entry comes: the writer itself moves the anchor when it falls due.
        let deadline = Instant::now() + Duration::from_secs(20);
        while *counter.0.lock().expect("lock") == Some(1) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(*counter.0.lock().expect("lock"), Some(2));
        assert_eq!(trail.log().anchor_due(), None);
    }

    #[test]
    fn a_flush_anchors_what_waits() {
        let dir = tempfile::tempdir().expect("tmp");
        let counter = Arc::new(Counter::default());
        let log = anchored_log(dir.path(), &counter, Duration::from_secs(3600));
        let trail =
            AuditTrail::start(log, Duration::from_secs(3600), Clock::system()).expect("trail");
        trail.record(opened());
        assert!(trail.flush(Duration::from_secs(20)), "written and anchored");
        assert_eq!(*counter.0.lock().expect("lock"), Some(2));
        assert_eq!(trail.log().anchor_due(), None);
    }
}
