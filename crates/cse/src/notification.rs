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

/// Called once a queued notification is finished with: delivered, or given up (a batch's
/// records are then forgotten).
pub type Done = Arc<dyn Fn() + Send + Sync>;

/// Where one notification goes, and as which release: TS-0004 clause 7.3.1.1 has a request
/// carry the Release Version Indicator unless its receiver is a Release 1 entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Where to send it (`http[s]://host:port/path`).
    pub url: String,
    /// The release the receiver is sent (`X-M2M-RVI`); none for a Release 1 receiver.
    pub rvi: Option<String>,
}

impl Endpoint {
    /// A URL given as a notification target: nothing is known of its receiver, so it gets
    /// this CSE's release.
    pub fn url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            rvi: Some(RELEASE.to_owned()),
        }
    }

    /// A point of access of an AE that declared `srv` (TS-0001 table 9.6.5-1; without
    /// it, the AE is a Release 1 one): the latest release both the AE and this CSE speak.
    pub fn of_ae(url: impl Into<String>, srv: &[String]) -> Self {
        Self {
            url: url.into(),
            rvi: release_for(srv),
        }
    }
}

/// The releases this CSE can address a receiver as, oldest first (TS-0004 table 6.3.3-1,
/// `m2m:releaseVersion`).
const RELEASES: [&str; 4] = ["1", "2", "2a", RELEASE];

/// The release a receiver that supports `srv` is sent: the latest one both speak. A later
/// release than this CSE's (`4`, `5`) counts as this CSE's own (a receiver reads earlier
/// releases' primitives), and so does a list naming no release this CSE knows. No `srv`,
/// or Release 1 as the latest in common: a Release 1 receiver, sent no indicator at all.
fn release_for(srv: &[String]) -> Option<String> {
    if srv.is_empty() {
        return None;
    }
    let later = |s: &str| s.parse::<u32>().is_ok_and(|n| n > 3);
    let best = if srv.iter().any(|s| later(s)) {
        RELEASE
    } else {
        RELEASES
            .iter()
            .rev()
            .find(|r| srv.iter().any(|s| s == **r))
            .copied()
            .unwrap_or(RELEASE)
    };
    (best != "1").then(|| best.to_owned())
}

/// One notification to one target URL.
#[derive(Clone)]
pub struct Notification {
    /// Where to send it (`http[s]://host:port/path`).
    pub url: String,
    /// The release it is sent as (`X-M2M-RVI`); none for a Release 1 receiver.
    pub rvi: Option<String>,
    /// The `m2m:sgn` content.
    pub body: Value,
    /// Checked before each attempt; none: always sent.
    pub guard: Option<Guard>,
    /// Called when it is delivered or given up; none: nothing to do.
    pub done: Option<Done>,
    /// Event Category "latest" (`ln`, TS-0004 clause 7.5.1.2.2 step 2.3): the `ri` of the
    /// subscription it is about. It is sent with `X-M2M-EC: 4`, and while it waits for
    /// delivery a newer one of the same subscription to the same target replaces it.
    pub latest: Option<String>,
}

impl Notification {
    /// This notification is finished with (delivered, given up, or replaced).
    fn finish(&self) {
        if let Some(done) = &self.done {
            done();
        }
    }
}

/// What a target's queue carries: a notification, or the turn of the latest notification
/// of a subscription, which waits in [`Inner::latest`] where a newer one can replace it.
#[derive(Debug)]
enum Queued {
    Now(Notification),
    Latest(String),
}

impl std::fmt::Debug for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notification")
            .field("url", &self.url)
            .field("rvi", &self.rvi)
            .field("body", &self.body)
            .field("guarded", &self.guard.is_some())
            .field("done", &self.done.is_some())
            .field("latest", &self.latest)
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
    queues: Mutex<HashMap<String, mpsc::Sender<Queued>>>,
    /// The pending notifications with Event Category "latest", by (target, subscription).
    latest: Mutex<HashMap<(String, String), Notification>>,
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
                latest: Mutex::new(HashMap::new()),
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

    /// Sends one notification and waits for the answer (verification requests, blocked
    /// updates, relayed NOTIFYs).
    pub async fn send_now(&self, to: &Endpoint, body: &Value) -> Result<ResponseStatusCode> {
        self.inner
            .post(&to.url, to.rvi.as_deref(), None, body)
            .await
    }

    /// Queues a notification for asynchronous delivery. A full queue drops the notification
    /// with a warning rather than blocking. A notification with Event Category "latest"
    /// replaces a pending one of the same subscription to the same target.
    pub fn enqueue(&self, n: Notification) {
        let url = n.url.clone();
        let item = match n.latest.clone() {
            None => Queued::Now(n),
            Some(sub) => {
                let Ok(mut latest) = self.inner.latest.lock() else {
                    return;
                };
                if let Some(older) = latest.insert((url.clone(), sub.clone()), n) {
                    // Its turn in the queue is taken by the newer one.
                    older.finish();
                    return;
                }
                Queued::Latest(sub)
            }
        };
        self.queue(&url, item);
    }

    fn queue(&self, url: &str, item: Queued) {
        let Ok(mut queues) = self.inner.queues.lock() else {
            return;
        };
        let sender = queues.entry(url.to_owned()).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(self.inner.queue_size);
            tokio::spawn(deliver_loop(self.inner.clone(), url.to_owned(), rx));
            tx
        });
        match sender.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(item)) => {
                tracing::warn!(target_url = %model::Untrusted(url), "notification queue full; notification dropped");
                if let Some(n) = self.inner.take(url, item) {
                    n.finish();
                }
            }
            Err(mpsc::error::TrySendError::Closed(item)) => {
                queues.remove(url);
                drop(queues);
                self.queue(url, item);
            }
        }
    }
}

/// The release this CSE speaks: Release 3.
const RELEASE: &str = "3";

/// The largest answer to a notification that is read (the HTTP client's former default).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

async fn deliver_loop(inner: Arc<Inner>, url: String, mut rx: mpsc::Receiver<Queued>) {
    // An idle queue ends its task after a while; the next notification starts a new one.
    while let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
        let Some(mut n) = inner.take(&url, item) else {
            continue;
        };
        let mut backoff = Duration::from_millis(100);
        for attempt in 1..=inner.attempts {
            // A newer "latest" notification replaces this one between attempts.
            if let Some(newer) = n
                .latest
                .clone()
                .and_then(|sub| inner.take(&url, Queued::Latest(sub)))
            {
                n.finish();
                n = newer;
            }
            if n.guard.as_ref().is_some_and(|still| !still()) {
                tracing::warn!(target_url = %n.url, "queued notification dropped: its subscriber was cut off");
                break;
            }
            let ec = n
                .latest
                .is_some()
                .then_some(model::primitive::EVENT_CATEGORY_LATEST);
            match inner.post(&n.url, n.rvi.as_deref(), ec, &n.body).await {
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
        n.finish();
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
    /// The notification a queued item stands for: itself, or the pending latest one of its
    /// subscription (none if a newer one already took its place and was sent).
    fn take(&self, url: &str, item: Queued) -> Option<Notification> {
        match item {
            Queued::Now(n) => Some(n),
            Queued::Latest(sub) => self.latest.lock().ok()?.remove(&(url.to_owned(), sub)),
        }
    }

    /// Sends one NOTIFY as the CSE. A receiver that accepts it without a response
    /// primitive (a simple webhook's plain HTTP 2xx) counts as having accepted it.
    async fn post(
        &self,
        url: &str,
        rvi: Option<&str>,
        ec: Option<u16>,
        body: &Value,
    ) -> Result<ResponseStatusCode> {
        let mut req = Request::new(Operation::Notify, "", Some(self.origin.clone()));
        req.pc = Some(body.clone());
        req.ec = ec;
        // TS-0004 clause 7.3.1.1: every request to a Release 2 or later entity carries the
        // release it complies with (X-M2M-RVI, TS-0009 clause 6.4.22); none to Release 1.
        req.rvi = rvi.map(str::to_owned);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receiver_gets_the_latest_release_both_speak() {
        let srv = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let cases: [(&[&str], Option<&str>); 7] = [
            (&["3"], Some("3")),
            (&["2a", "2"], Some("2a")),
            (&["2", "3", "1"], Some("3")),
            (&["1"], None),
            (&[], None),
            (&["4", "2"], Some("3")),
            (&["x"], Some("3")),
        ];
        for (declared, sent) in cases {
            assert_eq!(
                Endpoint::of_ae("http://h/n", &srv(declared)).rvi.as_deref(),
                sent,
                "{declared:?}"
            );
        }
        assert_eq!(Endpoint::url("http://h/n").rvi.as_deref(), Some("3"));
    }
}
