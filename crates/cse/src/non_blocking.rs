//! Non-blocking requests (`rt` 1 and 2; TS-0004 clauses 7.3.2.2 to 7.3.2.5, 7.5.1.2.5;
//! TS-0001 clause 8.2.2): accepted at once with a reference to a `<request>` resource,
//! executed later on a task, their result recorded in that resource and, for `rt` 2, sent
//! as a notification.
//!
//! * Acceptance first verifies each `rt` 2 result target that is not the originator itself,
//!   with the verification request a subscription's `nu` gets (5204 when one does not
//!   agree), then writes the `<request>` (status PENDING), its creator (the originator: the
//!   holder of its default access policy, so only the originator and the admin reach it)
//!   and a pending record, durably, before the 1001/1002 answer.
//! * The task holds the request and the security context it arrived with, waits for the
//!   Operation Execution Time by the CSE's clock, and runs the request through the same
//!   pipeline as a blocking one: originator check, access control and the handler decide
//!   exactly as they would have for that association (its credential, its key level), at
//!   the moment of execution. A credential withdrawn meanwhile has its association closed,
//!   so the request is then refused (4106) like any other on it.
//! * The result (status COMPLETED, `ors` the response) and the end of the pending record
//!   are one write. A restart finds the pending records of requests that were interrupted:
//!   their security context is gone, so they are not re-run but marked FAILED (and, for
//!   `rt` 2, that failure is notified).

use crate::records::PENDING_REQUEST;
use crate::{Caller, Cse, SecurityContext};
use model::resources::req::{self, RequestStatus};
use model::time::{self, Timestamp};
use model::{Error, Request, Resource, ResourceType, Response, ResponseStatusCode};
use serde_json::{json, Map, Value};

/// A string attribute of `r`, empty when absent.
fn text<'a>(r: &'a Resource, name: &str) -> &'a str {
    r.attrs
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
}
use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::Duration;

/// The non-blocking requests accepted and not finished, by `<request>` `ri`: what bounds
/// each originator's share and what a DELETE of a `<request>` can still cancel.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    originator: String,
    running: bool,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        match self.entries.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Takes a place for `ri` of `originator`, unless the originator already has `limit`
    /// requests pending: 5207 NOT_ACCEPTABLE, nothing accepted.
    fn reserve(&self, ri: &str, originator: &str, limit: usize) -> model::Result<()> {
        let mut entries = self.lock();
        let held = entries
            .values()
            .filter(|e| e.originator == originator)
            .count();
        if held >= limit {
            return Err(Error::new(
                ResponseStatusCode::NotAcceptable,
                format!("the originator already has {held} non-blocking requests pending"),
            ));
        }
        entries.insert(
            ri.to_owned(),
            Entry {
                originator: originator.to_owned(),
                running: false,
            },
        );
        Ok(())
    }

    /// Frees the place of `ri`.
    fn release(&self, ri: &str) {
        self.lock().remove(ri);
    }

    /// Marks `ri` as running; false when it was recalled (deleted) meanwhile.
    fn start(&self, ri: &str) -> bool {
        match self.lock().get_mut(ri) {
            Some(e) => {
                e.running = true;
                true
            }
            None => false,
        }
    }

    /// Cancels `ri` if it has not started (TS-0004 clause 7.4.12.2.4); one that runs
    /// cannot be recalled: 5220.
    pub(crate) fn recall(&self, ri: &str) -> model::Result<()> {
        let mut entries = self.lock();
        if entries.get(ri).is_some_and(|e| e.running) {
            return Err(Error::new(
                ResponseStatusCode::UnableToRecallRequest,
                "the operation of this request has started; it cannot be recalled",
            ));
        }
        entries.remove(ri);
        Ok(())
    }

    /// How many requests are pending.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// When a non-blocking request runs, until when its result is of use, and until when its
/// `<request>` lives.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    /// The Operation Execution Time, when still ahead.
    start: Option<Timestamp>,
    /// The Result Expiration Timestamp.
    rset: Option<Timestamp>,
    /// The `<request>`'s expiration time.
    et: Timestamp,
}

impl Schedule {
    /// TS-0004 table 7.3.2.2-1: the `<request>` lives until the result is due (the Result
    /// Expiration Timestamp, else the Operation Execution Time, else now) plus the Result
    /// Persistence (a duration from then, or an absolute time after it; default
    /// `[non_blocking] result_persistence_secs`); a lifetime beyond
    /// `max_lifetime_secs` is refused (4000), as is a result that would expire before the
    /// operation runs.
    fn of(req: &Request, now: Timestamp, cfg: &crate::config::NonBlocking) -> model::Result<Self> {
        let at = |v: &Option<String>| {
            v.as_deref()
                .map(|s| time::parse_abs_rel(s, now))
                .transpose()
        };
        let start = at(&req.oet)?.filter(|t| *t > now);
        let rset = at(&req.rset)?;
        if let (Some(start), Some(rset)) = (start, rset) {
            if rset <= start {
                return Err(Error::bad_request(
                    "the result expiration timestamp is not after the operation execution time",
                ));
            }
        }
        let due = rset.or(start).unwrap_or(now);
        let after = |d: Duration| {
            chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| due.checked_add_signed(d))
                .ok_or_else(|| Error::bad_request("result persistence out of range"))
        };
        let et = match req.rp.as_deref() {
            None => after(cfg.result_persistence)?,
            Some(rp) if rp.starts_with('P') => after(time::parse_duration(rp)?)?,
            Some(rp) if rp.contains('T') => {
                let until = time::parse(rp)?;
                if until <= due {
                    return Err(Error::bad_request(
                        "the result persistence ends before the result is due",
                    ));
                }
                until
            }
            Some(rp) => {
                let ms: u64 = rp.parse().map_err(|_| {
                    Error::bad_request(format!(
                        "result persistence '{}' is not a duration, a number of milliseconds or a timestamp",
                        model::Untrusted(rp)
                    ))
                })?;
                after(Duration::from_millis(ms))?
            }
        };
        let longest = chrono::Duration::from_std(cfg.max_lifetime).unwrap_or(chrono::Duration::MAX);
        if et - now > longest {
            return Err(Error::bad_request(format!(
                "the request would be kept longer than this CSE allows ({} s)",
                cfg.max_lifetime.as_secs()
            )));
        }
        Ok(Self { start, rset, et })
    }
}

impl Cse {
    /// Accepts a non-blocking request: checks what can be checked now, writes its
    /// `<request>` durably, starts its task, and answers 1001 (`rt` 1) or 1002 (`rt` 2)
    /// with the `<request>`'s reference.
    pub(crate) async fn accept_non_blocking(
        &self,
        caller: &Caller<'_>,
        req: Request,
    ) -> model::Result<Response> {
        if matches!(
            caller.originator,
            crate::originator::Originator::Registering(_)
        ) {
            return Err(Error::bad_request(
                "an AE registration is answered blocking: its originator has no identity to fetch a result with yet",
            ));
        }
        // TS-0004 clauses 7.4.12.2.2 to 7.4.12.2.4: a `<request>` is addressed blocking.
        match crate::addressing::resolve(&req.to, &self.config, self.store.as_ref()) {
            Ok(crate::addressing::Target::Resource(r)) if r.ty == ResourceType::Request => {
                return Err(Error::bad_request(
                    "a <request> is not addressed with a non-blocking request",
                ))
            }
            Ok(crate::addressing::Target::PollingChannelUri(_)) => {
                return Err(Error::bad_request("a long poll cannot be non-blocking"))
            }
            _ => {}
        }
        let now = self.config.clock.now();
        let schedule = Schedule::of(&req, now, &self.config.non_blocking)?;
        let originator = caller.originator.id(&self.config).to_owned();
        let ri = model::id::new_resource_id(ResourceType::Request.short_name());
        let rsc = if req.rt == Some(2) {
            ResponseStatusCode::AcceptedNonBlockingAsynch
        } else {
            ResponseStatusCode::AcceptedNonBlockingSynch
        };
        self.requests.reserve(
            &ri,
            &originator,
            self.config.non_blocking.max_pending_per_originator,
        )?;
        // Each result target other than the originator itself agrees to be one before the
        // request is accepted, as a subscription's `nu` does: nobody makes this CSE send
        // results to an endpoint that did not ask for them (5204, nothing accepted). After
        // the reservation, so an originator at its bound triggers no verification either.
        if let Err(e) = self.verify_result_targets(&ri, &req, &originator).await {
            self.requests.release(&ri);
            return Err(e);
        }
        let resource = self.request_resource(&ri, &req, &originator, rsc, now, schedule.et);
        let record = originator.clone();
        let written = store::write(self.store.as_ref(), move |t| {
            crate::records::TxnRecords::remember_creator(t, resource.ri(), &record)?;
            t.insert(&resource)?;
            t.put_record(
                PENDING_REQUEST,
                resource.ri(),
                record.as_bytes(),
                Some(resource.ri()),
            )?;
            Ok(())
        })
        .await;
        if let Err(e) = written {
            self.requests.release(&ri);
            return Err(e);
        }
        tracing::debug!(ri, rt = ?req.rt, "non-blocking request accepted");
        let rqi = req.rqi.clone();
        let task = Execution {
            cse: self.me.clone(),
            ri: ri.clone(),
            ctx: caller.ctx.clone(),
            req,
            schedule,
        };
        tokio::spawn(task.run());
        Ok(Response::new(rsc, rqi, Some(req::acknowledgement(&ri))))
    }

    /// Verifies the `rt` 2 result targets (`rtu`) of the request to be held as `ri` that are
    /// not its originator (see [`crate::resources::sub::verify_target`]).
    async fn verify_result_targets(
        &self,
        ri: &str,
        req: &Request,
        originator: &str,
    ) -> model::Result<()> {
        if req.rt != Some(2) {
            return Ok(());
        }
        let sur = format!("{}/{ri}", self.config.cse_name);
        for nu in req.rtu.iter().flatten().filter(|nu| *nu != originator) {
            crate::resources::sub::verify_target(self, nu, &sur, originator).await?;
        }
        Ok(())
    }

    /// The `<request>` of a request just accepted (TS-0004 tables 7.3.2.2-1 and -2).
    fn request_resource(
        &self,
        ri: &str,
        req: &Request,
        originator: &str,
        accepted: ResponseStatusCode,
        now: Timestamp,
        et: Timestamp,
    ) -> Resource {
        let stamp = time::format(now);
        let mut attrs = Map::new();
        attrs.insert("ri".into(), json!(ri));
        attrs.insert("rn".into(), json!(ri));
        attrs.insert("pi".into(), json!(self.config.cse_id));
        attrs.insert("ty".into(), json!(ResourceType::Request.code()));
        attrs.insert("ct".into(), json!(stamp));
        attrs.insert("lt".into(), json!(stamp));
        attrs.insert("et".into(), json!(time::format(et)));
        attrs.insert("lbl".into(), json!([originator]));
        attrs.insert("op".into(), json!(req.op.code()));
        attrs.insert("tg".into(), json!(req.to));
        attrs.insert("org".into(), json!(originator));
        attrs.insert("rid".into(), json!(req.rqi));
        attrs.insert("mi".into(), req::meta_information(req));
        if let Some(pc) = &req.pc {
            attrs.insert("pc".into(), pc.clone());
        }
        attrs.insert("rs".into(), json!(RequestStatus::Pending.code()));
        attrs.insert("ors".into(), req::accepted_result(accepted, &req.rqi));
        Resource {
            ty: ResourceType::Request,
            srn: format!("{}/{ri}", self.config.cse_name),
            attrs,
        }
    }

    /// Runs an accepted request now, unless it was recalled, and records its result.
    async fn execute(
        &self,
        ri: &str,
        ctx: &SecurityContext,
        mut req: Request,
        rset: Option<Timestamp>,
    ) {
        if !self.requests.start(ri) {
            tracing::debug!(ri, "non-blocking request recalled before it ran");
            return;
        }
        let rqi = req.rqi.clone();
        let (status, resp) = if rset.is_some_and(|t| t < self.config.clock.now()) {
            let e = Error::new(
                ResponseStatusCode::RequestTimeout,
                "the result expiration timestamp passed before the operation could run",
            );
            (RequestStatus::Failed, Response::error(&e, rqi))
        } else {
            // Served as a blocking request now: the time parameters were met at acceptance.
            req.rt = None;
            req.rtu = None;
            req.rp = None;
            req.oet = None;
            req.rqet = None;
            req.rset = None;
            // Counted on its association when it was accepted, not again now.
            (
                RequestStatus::Completed,
                self.handle_uncounted(ctx, req).await,
            )
        };
        self.record_result(ri, status, resp).await;
    }

    /// Records the result of `ri` (status and `ors`, one write that also ends its pending
    /// record), frees its place, and sends the result of an asynchronous request.
    async fn record_result(&self, ri: &str, status: RequestStatus, resp: Response) {
        let ot = time::format(self.config.clock.now());
        let fr = format!("/{}", self.config.cse_id);
        let key = ri.to_owned();
        // The operation is over: its place is free before anyone can read the result, so
        // an originator that sees its request done may send the next one at once.
        self.requests.release(ri);
        let written = store::write(self.store.as_ref(), move |t| {
            t.delete_record(PENDING_REQUEST, &key)?;
            let Some(mut r) = t.get(&key)? else {
                return Ok(None);
            };
            let to = text(&r, "org").to_owned();
            r.attrs
                .insert("ors".into(), req::operation_result(&resp, &to, &fr, &ot));
            r.attrs.insert("rs".into(), json!(status.code()));
            r.attrs.insert("lt".into(), json!(ot));
            t.update(&r)?;
            Ok(Some(r))
        })
        .await;
        match written {
            Ok(Some(r)) => {
                tracing::debug!(ri, rs = status.code(), "non-blocking request finished");
                if req::response_type(&r.attrs) == Some(2) {
                    self.send_result(&r);
                }
            }
            Ok(None) => tracing::debug!(ri, "<request> gone before its result was recorded"),
            Err(e) => {
                tracing::error!(ri, error = %model::Untrusted(&e), "cannot record the result of a non-blocking request")
            }
        }
    }

    /// TS-0004 clause 7.5.1.2.5: the result as `m2m:rsp` to each target the request named,
    /// or to its originator when it named none; an empty list: to nobody. Each target is
    /// resolved as a subscription's `nu` is (a URL, or an AE through its points of access or
    /// its polling channel) and delivered by the notifier, with its retries.
    fn send_result(&self, r: &Resource) {
        let Some(ors) = r.attrs.get("ors") else {
            return;
        };
        let body = req::result_notification(ors);
        let targets =
            req::notification_targets(&r.attrs).unwrap_or_else(|| vec![text(r, "org").to_owned()]);
        for nu in targets {
            for (to, body) in self.targets(&nu, &body) {
                self.notifier.enqueue(crate::notification::Notification {
                    url: to.url,
                    rvi: to.rvi,
                    body,
                    guard: None,
                    done: None,
                    latest: None,
                });
            }
        }
    }

    /// At start-up: the requests a stop interrupted. Their security context did not
    /// survive, so they are not re-run: each is marked FAILED with 5000 and a reason, and an
    /// asynchronous one has that failure notified.
    pub(crate) async fn fail_interrupted_requests(&self) {
        let pending = match self.store.table(PENDING_REQUEST) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the pending non-blocking requests");
                return;
            }
        };
        for (ri, _) in &pending {
            let rid = self
                .store
                .get(ri)
                .ok()
                .flatten()
                .map(|r| text(&r, "rid").to_owned())
                .unwrap_or_default();
            let e = Error::new(
                ResponseStatusCode::InternalServerError,
                "the CSE stopped before this request's result was recorded; it was not run again, and if it had started, whether its operation took effect is unknown",
            );
            self.record_result(ri, RequestStatus::Failed, Response::error(&e, rid))
                .await;
        }
        if !pending.is_empty() {
            tracing::warn!(
                requests = pending.len(),
                "non-blocking requests interrupted by a stop marked failed"
            );
        }
    }
}

/// The task of one accepted request.
struct Execution {
    cse: Weak<Cse>,
    ri: String,
    ctx: SecurityContext,
    req: Request,
    schedule: Schedule,
}

impl Execution {
    /// Waits for the Operation Execution Time by the CSE's clock (waking at least every
    /// second, so a clock that moves is followed), then executes. The task holds no
    /// strong reference to the CSE while it waits.
    async fn run(self) {
        if let Some(start) = self.schedule.start {
            loop {
                let Some(cse) = self.cse.upgrade() else {
                    return;
                };
                let left = (start - cse.config.clock.now())
                    .to_std()
                    .unwrap_or_default();
                drop(cse);
                if left.is_zero() {
                    break;
                }
                tokio::time::sleep(left.min(Duration::from_secs(1))).await;
            }
        }
        let Some(cse) = self.cse.upgrade() else {
            return;
        };
        if !matches!(cse.store.get(&self.ri), Ok(Some(_))) {
            // Deleted or expired while it waited.
            cse.requests.release(&self.ri);
            return;
        }
        cse.execute(&self.ri, &self.ctx, self.req, self.schedule.rset)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NonBlocking;
    use model::Operation;

    fn schedule(
        oet: Option<&str>,
        rset: Option<&str>,
        rp: Option<&str>,
    ) -> model::Result<Schedule> {
        let now = time::parse("20261207T120000").expect("valid");
        let mut req = Request::new(Operation::Retrieve, "cse-in", Some("Cae".into()));
        req.rt = Some(1);
        req.oet = oet.map(str::to_owned);
        req.rset = rset.map(str::to_owned);
        req.rp = rp.map(str::to_owned);
        let cfg = NonBlocking {
            max_pending_per_originator: 4,
            result_persistence: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
        };
        Schedule::of(&req, now, &cfg)
    }

    fn et(s: model::Result<Schedule>) -> Option<String> {
        s.ok().map(|s| s.et.format("%Y%m%dT%H%M%S").to_string())
    }

    #[test]
    fn the_request_lives_until_its_result_is_due_plus_the_persistence() {
        assert_eq!(
            et(schedule(None, None, None)).as_deref(),
            Some("20261207T121000")
        );
        assert_eq!(
            et(schedule(Some("60000"), None, Some("PT1M"))).as_deref(),
            Some("20261207T120200")
        );
        assert_eq!(
            et(schedule(None, Some("20261207T120500"), Some("1000"))).as_deref(),
            Some("20261207T120501")
        );
        assert_eq!(
            et(schedule(None, None, Some("20261207T123000"))).as_deref(),
            Some("20261207T123000")
        );
        // A past execution time runs now.
        assert!(schedule(Some("-5000"), None, None).is_ok_and(|s| s.start.is_none()));
    }

    #[test]
    fn impossible_or_too_long_schedules_are_refused() {
        let code = |s: model::Result<Schedule>| s.map(|_| ()).map_err(|e| e.rsc);
        let bad = Err(ResponseStatusCode::BadRequest);
        assert_eq!(code(schedule(Some("60000"), Some("30000"), None)), bad);
        assert_eq!(code(schedule(None, None, Some("P1D"))), bad);
        assert_eq!(code(schedule(None, None, Some("P1Y"))), bad);
        assert_eq!(code(schedule(None, None, Some("-5"))), bad);
        assert_eq!(code(schedule(None, None, Some("soon"))), bad);
        assert_eq!(code(schedule(None, None, Some("20261207T115900"))), bad);
    }

    #[test]
    fn places_are_bounded_per_originator_and_running_ones_are_not_recalled() {
        let p = Pending::default();
        assert!(p.reserve("r1", "Ca", 2).is_ok());
        assert!(p.reserve("r2", "Ca", 2).is_ok());
        assert_eq!(
            p.reserve("r3", "Ca", 2).map_err(|e| e.rsc),
            Err(ResponseStatusCode::NotAcceptable)
        );
        assert!(p.reserve("r3", "Cb", 2).is_ok());
        assert!(p.start("r1"));
        assert_eq!(
            p.recall("r1").map_err(|e| e.rsc),
            Err(ResponseStatusCode::UnableToRecallRequest)
        );
        assert!(p.recall("r2").is_ok());
        assert!(!p.start("r2"), "a recalled request does not run");
        p.release("r1");
        assert_eq!(p.len(), 1);
    }
}
