//! DELETE: the target and its subtree go in one durable write; the parent container's
//! counters follow; subscribers of everything deleted are told.

use crate::addressing::Target;
use crate::records::TxnRecords;
use crate::subscription::Event;
use crate::{real_target, Caller, Cse};
use model::{
    AccessOperation, Error, Request, Resource, ResourceType, Response, ResponseStatusCode, Result,
    ResultContent,
};
use serde_json::json;

impl Cse {
    pub(crate) async fn delete(
        &self,
        caller: &Caller<'_>,
        req: &Request,
        target: Target,
    ) -> Result<Response> {
        let r = real_target(target)?;
        if r.ty == ResourceType::CseBase {
            return Err(Error::operation_not_allowed(
                "the CSEBase cannot be deleted",
            ));
        }
        self.authorize_dynamic(caller, &r, AccessOperation::DELETE, None)
            .await?;
        if r.ty == ResourceType::Request {
            // Deleting a pending `<request>` cancels its operation, if it has not started.
            self.requests.recall(r.ri())?;
        }
        // A child-related result is read before the subtree goes, one page of it, each
        // child passing its own RETRIEVE decision as for a RETRIEVE (TS-0001 clause 8.1.2).
        let rcn = req.rcn.unwrap_or(ResultContent::Nothing);
        if rcn == ResultContent::Attributes {
            // The answer would carry the instance: a read, which `disr` forbids.
            crate::resources::cnt::check_instance_retrievable(self.store.as_ref(), &r)?;
        }
        let children = if rcn.is_child_related() {
            Some(self.child_content(caller, req, &r, rcn)?)
        } else {
            None
        };
        // A blocked UPDATE of this resource finishes first (TS-0001 table 9.6.8-2).
        let held = self.hold_for_delete(&r).await?;
        // Write-ahead: every security administration resource of the subtree is in the
        // audit log before it goes (5000 and nothing deleted when the log cannot be written).
        crate::security_manager::administration::record_removal(
            self,
            caller.originator.id(&self.config),
            crate::security_manager::administration::Change::Delete,
            &r,
        )
        .await?;
        let gone = self.remove(&r).await?;
        drop(held);
        let root = gone.into_iter().next().unwrap_or(r);
        let (pc, page) = match (rcn, children) {
            (_, Some((pc, page))) => (Some(pc), Some(page)),
            (ResultContent::Attributes, None) => (Some(root.wrapped()), None),
            _ => (None, None),
        };
        let mut resp = Response::new(ResponseStatusCode::Deleted, &req.rqi, pc);
        if let Some(page) = page {
            page.mark(&mut resp);
        }
        Ok(resp)
    }

    /// Deletes a resource and its subtree (no access check: callers decide), keeps the
    /// parent container's (or time series') counters exact, stops the missing data
    /// detection of a deleted time series, and sends every deletion notification.
    pub(crate) async fn remove(&self, r: &Resource) -> Result<Vec<Resource>> {
        let ri = r.ri().to_owned();
        let (gone, credentials, creators, partners) = store::write(self.store.as_ref(), move |t| {
            let mut credentials = t.subscriber_credentials_below(&ri)?;
            let mut creators = t.creators_below(&ri)?;
            let mut gone = t.delete_subtree(&ri)?;
            crate::resources::crs::cascade(t, &mut gone)?;
            let partners =
                crate::resources::lcp::cascade(t, &mut gone, &mut credentials, &mut creators)?;
            if let Some(root) = gone.first().filter(|g| g.ty.is_instance()) {
                if let Some(mut cnt) = t.get(root.pi())? {
                    let cs = root.u64_attr("cs").unwrap_or(0);
                    cnt.attrs.insert(
                        "cni".into(),
                        json!(cnt.u64_attr("cni").unwrap_or(1).saturating_sub(1)),
                    );
                    cnt.attrs.insert(
                        "cbs".into(),
                        json!(cnt.u64_attr("cbs").unwrap_or(cs).saturating_sub(cs)),
                    );
                    t.update(&cnt)?;
                }
            }
            Ok((gone, credentials, creators, partners))
        })
        .await?;
        let Some(root) = gone.first() else {
            return Ok(gone);
        };
        for series in gone.iter().filter(|g| g.ty == ResourceType::TimeSeries) {
            self.monitors.wake(series.ri());
        }
        tracing::debug!(ri = root.ri(), count = gone.len(), "deleted");
        for res in &gone {
            let subs: Vec<&Resource> = gone
                .iter()
                .filter(|s| s.ty == ResourceType::Subscription && s.pi() == res.ri())
                .collect();
            if !subs.is_empty() {
                self.fire_deleted(res, &subs, &credentials, &creators, &gone);
            }
            if res.ty == ResourceType::Subscription {
                self.subscription_deleted(res, credentials.get(res.ri()));
            }
            if res.ty == ResourceType::CrossResourceSubscription {
                // TS-0004 clause 7.5.1.2.20: its subscriber (`su`) is told.
                self.crs_windows.forget(res.ri());
                self.subscription_deleted(res, credentials.get(res.ri()));
            }
        }
        if let Some(parent) = self.store.get(root.pi())? {
            self.fire(&parent, Event::ChildDeleted(root)).await;
        }
        // A location policy's container (or the policy of one) went too, from a parent
        // that stays.
        for partner in &partners {
            if let Some(parent) = self.store.get(partner.pi())? {
                self.fire(&parent, Event::ChildDeleted(partner)).await;
            }
        }
        Ok(gone)
    }
}
