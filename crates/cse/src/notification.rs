//! Notification delivery through the door out ([`crate::outbound`]): each target has a
//! bounded queue served by its own task, which delivers in order and retries with
//! exponential backoff. Enqueuing never waits, so a slow or dead notification target can
//! never slow down the request path.

use crate::config::CseConfig;
use crate::outbound::{DeliveryError, Limits, Outbound, Senders};
use model::{Error, Operation, Request, ResponseStatusCode, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// A check a queued notification must still pass right before each delivery attempt (its
/// subscriber may have been cut off while it waited); `false` drops it.
pub type Guard = Arc<dyn Fn() -> bool + Send + Sync>;

/// One notification to one target URL.
#[derive(Clone)]
pub struct Notification {
    /// Where to send it (`http[s]://host:port/path`).
    pub url: String,
    /// The `m2m:sgn` content.
    pub body: Value,
    /// Checked before each attempt; none: always sent.
    pub guard: Option<Guard>,
}

impl std::fmt::Debug for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notification")
            .field("url", &self.url)
            .field("body", &self.body)
            .field("guarded", &self.guard.is_some())
            .finish()
    }
}

/// Delivers notifications through the binding that serves each target's scheme.
#[derive(Debug, Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    outbound: Senders,
    limits: Limits,
    queues: Mutex<HashMap<String, mpsc::Sender<Notification>>>,
    origin: String,
    queue_size: usize,
    attempts: u32,
}

impl Notifier {
    /// A notifier that sends as the CSE (`From: /<cse-id>`) through `outbound`.
    pub fn new(config: &CseConfig, outbound: Senders) -> Self {
        let limits = Limits {
            timeout: Duration::from_millis(config.notification_timeout_ms.max(1)),
            max_body_bytes: MAX_ANSWER_BYTES,
        };
        Self {
            inner: Arc::new(Inner {
                outbound,
                limits,
                queues: Mutex::new(HashMap::new()),
                origin: format!("/{}", config.cse_id),
                queue_size: config.notification_queue.max(1),
                attempts: config.notification_attempts.max(1),
            }),
        }
    }

    /// Whether some binding sends to `target` (a point of access worth notifying).
    pub fn reaches(&self, target: &str) -> bool {
        self.inner.outbound.reaches(target)
    }

    /// Sends one notification and waits for the answer (used for verification requests).
    pub async fn send_now(&self, url: &str, body: &Value) -> Result<ResponseStatusCode> {
        self.inner.post(url, body).await
    }

    /// Queues a notification for asynchronous delivery. A full queue drops the notification
    /// with a warning rather than blocking.
    pub fn enqueue(&self, n: Notification) {
        let Ok(mut queues) = self.inner.queues.lock() else {
            return;
        };
        let sender = queues.entry(n.url.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(self.inner.queue_size);
            tokio::spawn(deliver_loop(self.inner.clone(), n.url.clone(), rx));
            tx
        });
        match sender.try_send(n) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(n)) => {
                tracing::warn!(target_url = %model::Untrusted(&n.url), "notification queue full; notification dropped")
            }
            Err(mpsc::error::TrySendError::Closed(n)) => {
                queues.remove(&n.url);
                drop(queues);
                self.enqueue(n);
            }
        }
    }
}

/// The release version indicator of the requests the CSE sends: Release 3.
const RELEASE: &str = "3";

/// The largest answer to a notification that is read (the HTTP client's former default).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

async fn deliver_loop(inner: Arc<Inner>, url: String, mut rx: mpsc::Receiver<Notification>) {
    // An idle queue ends its task after a while; the next notification starts a new one.
    while let Ok(Some(n)) = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
        let mut backoff = Duration::from_millis(100);
        for attempt in 1..=inner.attempts {
            if n.guard.as_ref().is_some_and(|still| !still()) {
                tracing::warn!(target_url = %n.url, "queued notification dropped: its subscriber was cut off");
                break;
            }
            match inner.post(&n.url, &n.body).await {
                Ok(rsc) if rsc.is_success() => break,
                outcome => {
                    tracing::debug!(target_url = %model::Untrusted(&n.url), attempt, ?outcome, "notification not accepted");
                    if attempt == inner.attempts {
                        tracing::warn!(target_url = %model::Untrusted(&n.url), "notification dropped after {attempt} attempts");
                    } else {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        }
    }
    if let Ok(mut queues) = inner.queues.lock() {
        if queues
            .get(&url)
            .is_some_and(|s| s.is_closed() || s.capacity() == s.max_capacity())
        {
            queues.remove(&url);
        }
    }
}

impl Inner {
    /// Sends one NOTIFY as the CSE. A receiver that accepts it without a response
    /// primitive (a simple webhook's plain HTTP 2xx) counts as having accepted it.
    async fn post(&self, url: &str, body: &Value) -> Result<ResponseStatusCode> {
        let mut req = Request::new(Operation::Notify, "", Some(self.origin.clone()));
        req.pc = Some(body.clone());
        // TS-0004 clause 7.3.1.1: every request to a Release 2 or later entity carries the
        // release it complies with (X-M2M-RVI, TS-0009 clause 6.4.22).
        req.rvi = Some(RELEASE.to_owned());
        match self.outbound.send(url, &req, self.limits).await {
            Ok(resp) => Ok(resp.rsc),
            Err(DeliveryError::NoPrimitive { accepted: true, .. }) => Ok(ResponseStatusCode::Ok),
            Err(e) => Err(Error::new(
                e.rsc(),
                format!("notification to {url} failed: {e}"),
            )),
        }
    }
}
