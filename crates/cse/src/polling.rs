//! Polling channels (TS-0001 clauses 10.2.5.13-10.2.5.19; TS-0004 clauses 7.4.21, 7.4.22):
//! how a request-unreachable AE (`rr` false) gets the requests addressed to it.
//!
//! * **Routing.** A request for an AE whose `rr` is false is not sent to its points of
//!   access: [`route`] turns the AE into the address of its `<pollingChannel>` (or into
//!   nothing, when it has none). That address has the internal scheme [`SCHEME`], whose
//!   sender ([`ChannelSender`]) sits in the door out beside the bindings' senders, so every
//!   path that sends (notifications, batches, deletion notices, verification requests, a
//!   NOTIFY to the AE) reaches the channel without knowing about it. Only [`route`] makes
//!   such addresses: one given from outside (`nu`, `poa`) reaches nothing.
//! * **Queue.** A request is queued durably (records of the store tied to the channel, so
//!   they go with it; `records::POLLING_QUEUE`) before it counts as delivered, at most
//!   `queue_limit` per channel (a request that finds the channel full is not queued), each
//!   until its lifetime ends.
//! * **Long poll.** The channel's owner RETRIEVEs `pcu`: the oldest request not yet
//!   delivered is the answer, `{"m2m:rqp": ...}`; with none, the poll waits on the
//!   channel's [`Notify`] (no thread, no sleep loop) until one is queued or the poll's
//!   time is up (4008). It waits outside the pipeline, once every check has passed, and
//!   without its binding's place for requests in progress ([`crate::waiting`]).
//! * **Answers.** The owner answers each request with a NOTIFY to `pcu` whose content is an
//!   `m2m:rsp`; its `rqi` names the request, which is then removed. A verification request
//!   waits for that answer; other requests count as delivered once queued. A delivered
//!   request not answered within `redelivery` is delivered again: at least once.

use crate::config::Polling;
use crate::originator::Originator;
use crate::outbound::{Delivery, DeliveryError, Limits, Outbound};
use crate::records::{QueueFull, StoreRecords, TxnRecords};
use crate::waiting::Waiting;
use crate::{Caller, Cse, Reply};
use model::resources::pch::{self, ResponsePrimitive};
use model::{
    time, AccessOperation, Error, Operation, Request, Resource, ResourceType, Response,
    ResponseStatusCode, Result,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use store::Store;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

/// The scheme of a polling channel's address in the door out. Not a URI scheme any binding
/// speaks: only [`route`] produces it.
pub(crate) const SCHEME: &str = "x-polling-channel";

/// The address of a channel in the door out.
fn channel_address(channel: &str) -> String {
    format!("{SCHEME}://{channel}")
}

/// The channel an address names, if it is a channel address.
fn channel_of(address: &str) -> Option<&str> {
    let (scheme, rest) = address.split_once("://")?;
    scheme.eq_ignore_ascii_case(SCHEME).then_some(rest)
}

/// Whether `address` is a channel address (which only [`route`] may hand out).
pub(crate) fn is_channel_address(address: &str) -> bool {
    channel_of(address).is_some()
}

/// Where requests for `ae` go when it cannot receive them (`rr` false): its polling
/// channel, or nowhere when it has none (TS-0004 clause 7.3.3.9.1 re-targets to the points
/// of access only an AE without a channel; one that says it is unreachable is not sent
/// there). `None`: the AE is reachable, use its points of access.
pub(crate) fn route(cse: &Cse, ae: &Resource) -> Result<Option<Vec<String>>> {
    if ae.attrs.get("rr").and_then(Value::as_bool) != Some(false) {
        return Ok(None);
    }
    let channel = cse
        .store
        .children(ae.ri(), Some(ResourceType::PollingChannel))?
        .into_iter()
        .next();
    Ok(Some(match channel {
        Some(channel) => vec![channel_address(channel.ri())],
        None => {
            tracing::info!(
                ae = ae.ri(),
                "not sent: the AE is request-unreachable (rr false) and has no polling channel"
            );
            Vec::new()
        }
    }))
}

/// What any operation but RETRIEVE and NOTIFY on a `<pollingChannelURI>` gets (4005).
pub(crate) fn not_allowed() -> Error {
    Error::operation_not_allowed(
        "a <pollingChannelURI> is only long-polled (RETRIEVE) and answered through (NOTIFY)",
    )
}

/// The owner rule of a `<pollingChannel>` (TS-0004 clauses 7.4.21.2.1-7.4.21.2.4): only
/// the AE it belongs to (its parent) may create, retrieve, update or delete it, whatever
/// the policies say (4103). `parent` is the channel's parent.
pub(crate) fn owned_by_originator(caller: &Caller<'_>, parent_ri: &str) -> Result<()> {
    match &caller.originator {
        Originator::Ae(id) if id == parent_ri => Ok(()),
        _ => Err(Error::no_privilege(
            "only the AE a polling channel belongs to may use it",
        )),
    }
}

/// The owner rule for a request whose target is `r` (no effect unless `r` is a
/// `<pollingChannel>`).
pub(crate) fn check_owner(caller: &Caller<'_>, r: &Resource) -> Result<()> {
    if r.ty == ResourceType::PollingChannel {
        owned_by_originator(caller, r.pi())?;
    }
    Ok(())
}

/// One request on a channel's queue, as stored.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Queued {
    /// The request primitive (`m2m:rqp` members).
    rqp: Value,
    /// Until when it is of use (a oneM2M timestamp); then it is dropped.
    exp: String,
}

/// The polling channels' live state: the polls waiting on each channel, when each queued
/// request was last delivered, the senders waiting for an answer. What is queued is in the
/// store.
#[derive(Debug, Clone)]
pub(crate) struct Channels {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    clock: model::clock::Clock,
    settings: Polling,
    /// Channel `ri` -> what wakes its waiting polls; present while a poll waits.
    waiting: Mutex<HashMap<String, Arc<Notify>>>,
    /// Queue key -> when it was last given to a poll.
    delivered: Mutex<HashMap<String, Instant>>,
    /// `rqi` of a queued request -> the sender waiting for its answer.
    answers: Mutex<HashMap<String, oneshot::Sender<Response>>>,
}

/// Locks a map; a panic elsewhere does not make its data wrong, so poison is ignored.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a look at a channel's queue found.
enum Next {
    /// A request to deliver now.
    Request(Value),
    /// Nothing now; a delivered request becomes due again at this instant, if any.
    Nothing(Option<Instant>),
}

impl Channels {
    /// The channels over `store`, with the configuration's settings.
    pub(crate) fn new(config: &crate::CseConfig, store: Arc<dyn Store>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                clock: config.clock.clone(),
                settings: config.polling.clone(),
                waiting: Mutex::new(HashMap::new()),
                delivered: Mutex::new(HashMap::new()),
                answers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The sender of channel addresses, for the door out.
    pub(crate) fn sender(&self) -> ChannelSender {
        ChannelSender(self.clone())
    }

    /// Queues `req` on `channel` (durably) for the AE `to`, and wakes the channel's polls.
    async fn queue(
        &self,
        channel: &str,
        to: &str,
        req: &Request,
        lifetime: Duration,
    ) -> Result<std::result::Result<(), QueueFull>> {
        let exp = self.inner.clock.now()
            + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::MAX);
        let exp = time::format(exp);
        let item = Queued {
            rqp: pch::request_primitive(req, to, &exp),
            exp,
        };
        let bytes = serde_json::to_vec(&item)
            .map_err(|e| Error::internal(format!("cannot encode a queued request: {e}")))?;
        let limit = self.inner.settings.queue_limit;
        let ch = channel.to_owned();
        let queued = store::write(self.inner.store.as_ref(), move |t| {
            if t.resource_type(&ch)? != Some(ResourceType::PollingChannel) {
                return Err(Error::not_found("the polling channel is gone"));
            }
            t.queue_polled(&ch, &bytes, limit)
        })
        .await?;
        if queued.is_ok() {
            self.wake(channel);
        }
        Ok(queued.map(|_| ()))
    }

    /// Wakes every poll waiting on `channel`.
    fn wake(&self, channel: &str) {
        if let Some(notify) = lock(&self.inner.waiting).get(channel) {
            notify.notify_waiters();
        }
    }

    /// The next request of `channel` to deliver, if any, marking it delivered now; drops
    /// what has expired (or cannot be read).
    async fn next(&self, channel: &str) -> Result<Next> {
        let queue = self.inner.store.polled_queue(channel)?;
        let now = time::format(self.inner.clock.now());
        let redelivery = self.inner.settings.redelivery;
        let mut gone = Vec::new();
        let mut next = Next::Nothing(None);
        {
            let at = Instant::now();
            let mut delivered = lock(&self.inner.delivered);
            for (key, bytes) in queue {
                let item = match serde_json::from_slice::<Queued>(&bytes) {
                    Ok(item) if item.exp > now => item,
                    Ok(_) => {
                        tracing::info!(
                            channel,
                            key,
                            "queued request expired before it was polled; dropped"
                        );
                        gone.push(key);
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(channel, key, error = %e, "unreadable queued request dropped");
                        gone.push(key);
                        continue;
                    }
                };
                if let Some(due) = delivered.get(&key).map(|d| *d + redelivery) {
                    if due > at {
                        if let Next::Nothing(earliest) = &mut next {
                            *earliest = Some(earliest.map_or(due, |e| e.min(due)));
                        }
                        continue;
                    }
                }
                delivered.insert(key, at);
                next = Next::Request(item.rqp);
                break;
            }
            for key in &gone {
                delivered.remove(key);
            }
        }
        if !gone.is_empty() {
            self.remove(channel, gone).await?;
        }
        Ok(next)
    }

    /// Removes queued requests of `channel` by key.
    async fn remove(&self, channel: &str, keys: Vec<String>) -> Result<usize> {
        let ch = channel.to_owned();
        store::write(self.inner.store.as_ref(), move |t| {
            let mut removed = 0;
            for key in &keys {
                if t.unqueue_polled(&ch, key)? {
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
    }

    /// A long poll on `channel` that found nothing to deliver: waits until `until` for the
    /// next request. The wait is a wake-up of the channel's [`Notify`] (or the moment a
    /// delivered request is due again); it holds the channel's address and nothing else.
    async fn poll(&self, channel: &str, until: Instant) -> Result<Option<Value>> {
        let waiter = Waiter::new(self, channel);
        let mut waited = false;
        loop {
            let notified = waiter.notify.notified();
            tokio::pin!(notified);
            // Registered before the queue is read, so a request queued in between wakes it.
            notified.as_mut().enable();
            let due = match self.next(channel).await? {
                Next::Request(rqp) => return Ok(Some(rqp)),
                Next::Nothing(due) => due,
            };
            if Instant::now() >= until {
                return Ok(None);
            }
            if !waited {
                waited = true;
                tracing::debug!(channel, "long poll waiting");
            }
            let at = due.map_or(until, |d| d.min(until));
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(at) => {}
            }
        }
    }

    /// The whole of a parked long poll ([`crate::waiting`]): waits for the next request of
    /// `channel` until `until` and answers request `rqi` with it; 4008 when none came, 4004
    /// when the channel was deleted meanwhile.
    async fn long_poll(self, channel: String, rqi: String, until: Instant) -> Response {
        let error = match self.poll(&channel, until).await {
            Ok(Some(rqp)) => return delivered(rqi, rqp),
            Ok(None) => match self.inner.store.resource_type(&channel) {
                Ok(None) => Error::not_found("the polling channel was deleted"),
                Ok(Some(_)) => timed_out(),
                Err(e) => e,
            },
            Err(e) => e,
        };
        if error.rsc == ResponseStatusCode::InternalServerError {
            tracing::error!(channel, rqi = %model::Untrusted(&rqi), error = %model::Untrusted(&error), "long poll failed");
        } else {
            tracing::debug!(channel, rqi = %model::Untrusted(&rqi), rsc = error.rsc.code(), "long poll ended without a request");
        }
        Response::error(&error, rqi)
    }

    /// Takes the owner's answer to a queued request: removes the request and hands the
    /// answer to whoever waits for it. False: no request with that `rqi` is queued.
    async fn answer(&self, channel: &str, rsp: ResponsePrimitive) -> Result<bool> {
        let key = self
            .inner
            .store
            .polled_queue(channel)?
            .into_iter()
            .find(|(_, bytes)| {
                serde_json::from_slice::<Queued>(bytes)
                    .is_ok_and(|q| q.rqp.get("rqi").and_then(Value::as_str) == Some(&rsp.rqi))
            })
            .map(|(key, _)| key);
        let Some(key) = key else {
            return Ok(false);
        };
        self.remove(channel, vec![key.clone()]).await?;
        lock(&self.inner.delivered).remove(&key);
        tracing::debug!(channel, rqi = %model::Untrusted(&rsp.rqi), rsc = rsp.rsc.code(), "answer to a polled request");
        if let Some(waiting) = lock(&self.inner.answers).remove(&rsp.rqi) {
            // The sender may have stopped waiting; then the answer has no one to go to.
            let _ = waiting.send(Response::new(rsp.rsc, rsp.rqi, rsp.pc));
        }
        Ok(true)
    }

    /// Waits for the answer to request `rqi` (registered before it is queued).
    fn await_answer(&self, rqi: &str) -> AnswerWait {
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.answers).insert(rqi.to_owned(), tx);
        AnswerWait {
            channels: self.clone(),
            rqi: rqi.to_owned(),
            rx: Some(rx),
        }
    }
}

/// The answer to a long poll that got request `rqp`.
fn delivered(rqi: impl Into<String>, rqp: Value) -> Response {
    Response::new(
        ResponseStatusCode::Ok,
        rqi,
        Some(json!({ pch::REQUEST_PRIMITIVE: rqp })),
    )
}

/// A long poll whose time ran out with nothing to deliver (4008).
fn timed_out() -> Error {
    Error::new(
        ResponseStatusCode::RequestTimeout,
        "no request for the AE arrived before the long poll expired",
    )
}

/// A poll's registration on its channel; the channel's entry goes when its last poll ends.
struct Waiter<'a> {
    channels: &'a Channels,
    channel: &'a str,
    notify: Arc<Notify>,
}

impl<'a> Waiter<'a> {
    fn new(channels: &'a Channels, channel: &'a str) -> Self {
        let notify = lock(&channels.inner.waiting)
            .entry(channel.to_owned())
            .or_default()
            .clone();
        Self {
            channels,
            channel,
            notify,
        }
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut waiting = lock(&self.channels.inner.waiting);
        // The map's reference and this one: no other poll waits.
        if Arc::strong_count(&self.notify) <= 2 {
            waiting.remove(self.channel);
        }
    }
}

/// A sender's wait for an answer; forgets the wait when dropped (answered or given up).
struct AnswerWait {
    channels: Channels,
    rqi: String,
    rx: Option<oneshot::Receiver<Response>>,
}

impl AnswerWait {
    async fn answer(mut self) -> Option<Response> {
        self.rx.take()?.await.ok()
    }
}

impl Drop for AnswerWait {
    fn drop(&mut self) {
        lock(&self.channels.inner.answers).remove(&self.rqi);
    }
}

/// Whether `req` is a subscription verification request, which needs the target's answer
/// (TS-0004 clause 7.3.8.2.1): the AE must consent to being notified.
fn is_verification(req: &Request) -> bool {
    req.pc
        .as_ref()
        .and_then(|pc| pc.get("m2m:sgn"))
        .and_then(|sgn| sgn.get("vrq"))
        .and_then(Value::as_bool)
        == Some(true)
}

/// The door out's sender for channel addresses: queues the request on the channel. A
/// verification request waits (within the sender's time limit) for the AE's answer; any
/// other request counts as delivered (2000) once it is on disk.
#[derive(Debug)]
pub(crate) struct ChannelSender(Channels);

impl Outbound for ChannelSender {
    fn send<'a>(&'a self, target: &'a str, req: &'a Request, limits: Limits) -> Delivery<'a> {
        Box::pin(async move {
            let channels = &self.0;
            let unreachable = |why: String| DeliveryError::Unreachable(why);
            let channel = channel_of(target)
                .ok_or_else(|| DeliveryError::Unsendable("not a polling channel".into()))?;
            let ae = match channels.inner.store.get(channel) {
                Ok(Some(r)) if r.ty == ResourceType::PollingChannel => r.pi().to_owned(),
                Ok(_) => return Err(unreachable("the polling channel is gone".into())),
                Err(e) => return Err(unreachable(format!("polling channel: {e}"))),
            };
            let verification = is_verification(req);
            // A verification request is of no use once its sender stopped waiting.
            let lifetime = if verification {
                limits.timeout
            } else {
                channels.inner.settings.lifetime
            };
            let wait = verification.then(|| channels.await_answer(&req.rqi));
            match channels.queue(channel, &ae, req, lifetime).await {
                Ok(Ok(())) => {}
                Ok(Err(QueueFull)) => {
                    tracing::warn!(channel, "polling channel full; request not queued");
                    return Err(unreachable("the polling channel is full".into()));
                }
                Err(e) => return Err(unreachable(format!("polling channel: {e}"))),
            }
            match wait {
                None => Ok(Response::new(ResponseStatusCode::Ok, &req.rqi, None)),
                Some(wait) => wait.answer().await.ok_or_else(|| {
                    DeliveryError::Unreachable("the polling channel's AE did not answer".into())
                }),
            }
        })
    }
}

impl Cse {
    /// A request to a `<pollingChannelURI>`: its owner long-polls it (RETRIEVE) and answers
    /// through it (NOTIFY); it cannot be created, updated or deleted (4005, TS-0004 clauses
    /// 7.4.22.2.1, 7.4.22.2.3, 7.4.22.2.4).
    pub(crate) async fn polling_channel_uri(
        &self,
        caller: &Caller<'_>,
        req: &Request,
        channel: Resource,
    ) -> Result<Reply> {
        let op = match req.op {
            Operation::Retrieve if !req.is_discovery() => AccessOperation::RETRIEVE,
            Operation::Notify => AccessOperation::NOTIFY,
            _ => return Err(not_allowed()),
        };
        self.authorize(caller, &channel, op, None)?;
        owned_by_originator(caller, channel.pi())?;
        if req.op == Operation::Notify {
            return self.polled_answer(req, &channel).await.map(Reply::Now);
        }
        let wait = self.poll_wait(req)?;
        if let Next::Request(rqp) = self.polling.next(channel.ri()).await? {
            return Ok(Reply::Now(delivered(&req.rqi, rqp)));
        }
        if wait.is_zero() {
            return Err(timed_out());
        }
        // Every check has passed and nothing is queued: the poll waits outside the
        // pipeline, holding only what the wait needs (issue 13; `crate::waiting`).
        let wait = self.polling.clone().long_poll(
            channel.ri().to_owned(),
            req.rqi.clone(),
            Instant::now() + wait,
        );
        Ok(Reply::Waiting(Waiting::new(wait)))
    }

    /// How long a long poll waits: until its Request Expiration Timestamp, else the
    /// configured default; never beyond the configured maximum.
    fn poll_wait(&self, req: &Request) -> Result<Duration> {
        let settings = &self.config.polling;
        let wait = match &req.rqet {
            Some(rqet) => {
                let now = self.config.clock.now();
                (time::parse_abs_rel(rqet, now)? - now)
                    .to_std()
                    .unwrap_or(Duration::ZERO)
            }
            None => settings.default_wait,
        };
        Ok(wait.min(settings.max_wait))
    }

    /// A NOTIFY to `pcu`: the owner's answer (`m2m:rsp`) to a request it polled, matched by
    /// `rqi` (TS-0001 clause 10.2.5.19).
    async fn polled_answer(&self, req: &Request, channel: &Resource) -> Result<Response> {
        let rsp = ResponsePrimitive::from_content(req.pc.as_ref())?;
        let rqi = rsp.rqi.clone();
        if self.polling.answer(channel.ri(), rsp).await? {
            Ok(Response::new(ResponseStatusCode::Ok, &req.rqi, None))
        } else {
            Err(Error::bad_request(format!(
                "no request '{}' is queued on this polling channel",
                model::Untrusted(&rqi)
            )))
        }
    }
}
