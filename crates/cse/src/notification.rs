//! Notification delivery over HTTP or HTTPS: each target has a bounded queue served by its
//! own task, which delivers in order and retries with exponential backoff. Enqueuing never waits, so a slow
//! or dead notification target can never slow down the request path.

use crate::config::{CseConfig, NotificationTls};
use client::{Client, ClientError, TlsOptions};
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

/// Delivers notifications over HTTP, and over HTTPS when [`CseConfig::notification_tls`] is set.
#[derive(Debug, Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    queues: Mutex<HashMap<String, mpsc::Sender<Notification>>>,
    origin: String,
    queue_size: usize,
    attempts: u32,
}

impl Notifier {
    /// A notifier that sends as the CSE (`X-M2M-Origin: /<cse-id>`).
    pub fn new(config: &CseConfig) -> Result<Self> {
        let timeout = Duration::from_millis(config.notification_timeout_ms.max(1));
        // The base URL is never used: notifications go to absolute URLs (`send_to_url`).
        let client = match &config.notification_tls {
            None => Client::new("http://127.0.0.1"),
            Some(tls) => Client::with_tls("http://127.0.0.1", tls_options(tls)),
        }
        .map_err(|e| Error::internal(format!("notification client: {e}")))?
        .with_timeout(timeout);
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                queues: Mutex::new(HashMap::new()),
                origin: format!("/{}", config.cse_id),
                queue_size: config.notification_queue.max(1),
                attempts: config.notification_attempts.max(1),
            }),
        })
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

/// Reads the files of `tls` and builds the client configuration, so a configuration error
/// shows at start-up rather than at the first notification.
pub fn check_tls(tls: &NotificationTls) -> std::result::Result<(), ClientError> {
    Client::with_tls("http://127.0.0.1", tls_options(tls)).map(drop)
}

/// The client TLS options for `https://` targets: only the configured CAs vouch for a
/// target, whose host name must match its certificate.
pub(crate) fn tls_options(tls: &NotificationTls) -> TlsOptions {
    let mut options = TlsOptions::new();
    for ca in &tls.trust_anchors {
        options = options.trust_anchor_file(ca);
    }
    if let Some((chain, key)) = &tls.client_certificate {
        options = options.client_cert_files(chain, key);
    }
    options
}

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
    /// Sends one NOTIFY as the CSE. A receiver that answers a plain 2xx without `X-M2M-RSC`
    /// (a simple webhook) counts as having accepted it.
    async fn post(&self, url: &str, body: &Value) -> Result<ResponseStatusCode> {
        let mut req = Request::new(Operation::Notify, "", Some(self.origin.clone()));
        req.pc = Some(body.clone());
        match self.client.send_to_url(url, &req).await {
            Ok(resp) => Ok(resp.rsc),
            Err(ClientError::MissingRsc { status }) if (200..300).contains(&status) => {
                Ok(ResponseStatusCode::Ok)
            }
            Err(e) => Err(Error::new(
                ResponseStatusCode::TargetNotReachable,
                format!("notification to {url} failed: {e}"),
            )),
        }
    }
}
