//! Notification target removal (TS-0001 clauses 10.2.10.8 and 10.2.10.9; TS-0004 clause
//! 7.4.33): a notification target that no longer wants a subscription's notifications
//! DELETEs the subscription's virtual `<notificationTargetSelfReference>` (`<sub>/ntsr`),
//! and the `<notificationTargetPolicy>` that applies to the subscription decides: remove
//! the target from `nu` at once, refuse, ask the subscription's creator first, or only tell
//! the creator.
//!
//! Being one of the subscription's notification targets is what entitles the originator:
//! it asks to stop receiving what is sent to itself, whatever the subscription's policies
//! say about DELETE. Anyone else is refused (4103) with nothing changed.
//!
//! Which policy applies: the subscription creator's own default policy (`plbl` "default",
//! created by the same originator), else the service provider's (created by the
//! administrator); a default policy some other originator created never governs another's
//! subscription. Without either, the CSE's built-in default accepts (the provider configures
//! it by creating its own). A subscription whose last target leaves is deleted, and its
//! subscriber (`su`) told.
//!
//! NOTE(ntp): TS-0001 lets the rules of a policy fail without saying what happens then; here
//! the removal is refused (4103) with nothing changed, so a rule can only narrow when the
//! action (accept, say) is taken.

use crate::notification::Notification;
use crate::records::StoreRecords;
use crate::{Caller, Cse};
use model::resources::{ntp, pdr};
use model::{
    Error, Operation, Request, Resource, ResourceType, Response, ResponseStatusCode, Result,
};
use serde_json::{json, Value};

/// The action the built-in default policy takes when neither the subscription's creator
/// nor the service provider made a default policy.
const BUILT_IN_ACTION: u64 = ntp::action::ACCEPT;

impl Cse {
    /// A request to `<sub>/ntsr`: DELETE removes the originator from `sub`'s targets as
    /// the applicable policy says; any other operation is 4005 (TS-0004 clause 7.4.33.2).
    pub(crate) async fn notification_target_self_reference(
        &self,
        caller: &Caller<'_>,
        req: &Request,
        sub: Resource,
    ) -> Result<Response> {
        if req.op != Operation::Delete {
            return Err(Error::operation_not_allowed(
                "a <notificationTargetSelfReference> is only deleted",
            ));
        }
        let originator = caller.originator.id(&self.config).to_owned();
        let leaving = self.entries_of(&sub, &originator)?;
        if leaving.is_empty() {
            return Err(Error::no_privilege(
                "the originator is not a notification target of this subscription",
            ));
        }
        let sub_creator = self.store.creator_of(&sub);
        let (action, rules_hold) = match self.applicable_policy(sub_creator.as_deref())? {
            Some(policy) => {
                let location = self.request_context(caller).location;
                let now = self.config.clock.now();
                (
                    policy.u64_attr("acn").unwrap_or(BUILT_IN_ACTION),
                    self.rules_hold(&policy, now, location.as_ref())?,
                )
            }
            None => (BUILT_IN_ACTION, true),
        };
        if !rules_hold {
            tracing::info!(
                sub = sub.ri(),
                "target removal refused: the policy's rules do not hold"
            );
            return Err(Error::no_privilege(
                "the notification target policy's rules do not hold now",
            ));
        }
        let notice = json!({ "m2m:sgn": {
            "sur": sub.srn,
            "ntt": originator,
            "trr": true,
        }});
        match action {
            ntp::action::ACCEPT => {}
            ntp::action::SEEK_AUTHORIZATION => {
                if !self.creator_allows(sub_creator.as_deref(), &notice).await {
                    return Err(Error::no_privilege(
                        "the subscription's creator did not allow the removal",
                    ));
                }
            }
            ntp::action::INFORM => {
                self.tell_creator(sub_creator.as_deref(), &notice);
                return Err(Error::no_privilege(
                    "the subscription's creator was told of the removal request",
                ));
            }
            _ => {
                return Err(Error::no_privilege(
                    "the notification target policy rejects the removal",
                ))
            }
        }
        self.drop_targets(&sub, leaving).await?;
        Ok(Response::new(ResponseStatusCode::Deleted, &req.rqi, None))
    }

    /// The `nu` entries of `sub` that reach `originator`: its AE-ID, its address, or one of
    /// its points of access.
    fn entries_of(&self, sub: &Resource, originator: &str) -> Result<Vec<String>> {
        let ae = crate::subscription::target_ae(self, originator)?;
        let poa = ae.as_ref().map(|a| a.str_list("poa")).unwrap_or_default();
        let mut out = Vec::new();
        for nu in sub.str_list("nu") {
            let reaches = nu == originator
                || poa.contains(&nu)
                || (!nu.contains("://")
                    && crate::subscription::target_ae(self, &nu)?
                        .is_some_and(|t| ae.as_ref().is_some_and(|a| a.ri() == t.ri())));
            if reaches {
                out.push(nu);
            }
        }
        Ok(out)
    }

    /// The default `<notificationTargetPolicy>` that governs subscriptions of `creator`
    /// (TS-0004 clause 7.4.33.2.4): the creator's own, else the administrator's.
    fn applicable_policy(&self, creator: Option<&str>) -> Result<Option<Resource>> {
        let Some(cb) = self.store.get_by_srn(&self.config.cse_name)? else {
            return Ok(None);
        };
        let now = model::time::format(self.config.clock.now());
        let mut own = None;
        let mut provider = None;
        for policy in self
            .store
            .children(cb.ri(), Some(ResourceType::NotificationTargetPolicy))?
        {
            if !ntp::is_default(&policy.attrs) || policy.et().is_some_and(|et| et <= now.as_str()) {
                continue;
            }
            let made_by = self.store.creator_of(&policy);
            if made_by.is_some() && made_by.as_deref() == creator {
                own.get_or_insert(policy);
            } else if made_by.as_deref() == Some(self.config.admin.as_str()) {
                provider.get_or_insert(policy);
            }
        }
        Ok(own.or(provider))
    }

    /// Whether the policy's groups of rules hold (none: they do), combined by its `rrs`.
    fn rules_hold(
        &self,
        policy: &Resource,
        now: model::time::Timestamp,
        location: Option<&model::resources::acp::region::Location>,
    ) -> Result<bool> {
        let groups = self
            .store
            .children(policy.ri(), Some(ResourceType::PolicyDeletionRules))?;
        let mut results = Vec::with_capacity(groups.len());
        for group in &groups {
            results.push(pdr::Rules::of(&group.attrs)?.hold(now, location));
        }
        Ok(match results.as_slice() {
            [] => true,
            [one] => *one,
            _ if policy.u64_attr("rrs") == Some(ntp::logical::OR) => results.iter().any(|b| *b),
            _ => results.iter().all(|b| *b),
        })
    }

    /// Asks the subscription's creator (a NOTIFY with `trr`) and waits for its answer: a
    /// successful one allows the removal; none, or an unsuccessful one, does not.
    async fn creator_allows(&self, creator: Option<&str>, notice: &Value) -> bool {
        let Some(creator) = creator else {
            return false;
        };
        for (to, body) in self.targets(creator, notice) {
            match self.notifier.send_now(&to, &body).await {
                Ok(rsc) if rsc.is_success() => return true,
                outcome => {
                    tracing::debug!(?outcome, "removal authorization not given");
                }
            }
        }
        false
    }

    /// Tells the subscription's creator of a removal request (a NOTIFY with `trr`).
    fn tell_creator(&self, creator: Option<&str>, notice: &Value) {
        let Some(creator) = creator else {
            return;
        };
        for (to, body) in self.targets(creator, notice) {
            self.notifier.enqueue(Notification {
                url: to.url,
                rvi: to.rvi,
                body,
                guard: None,
                done: None,
                latest: None,
            });
        }
    }

    /// Removes `leaving` from `sub`'s `nu` in one write; a subscription left without
    /// targets is deleted (its subscriber is told).
    async fn drop_targets(&self, sub: &Resource, leaving: Vec<String>) -> Result<()> {
        let ri = sub.ri().to_owned();
        let stamp = model::time::format(self.config.clock.now());
        let emptied = store::write(self.store.as_ref(), move |t| {
            let Some(mut current) = t.get(&ri)? else {
                return Err(Error::not_found("the subscription was deleted"));
            };
            let kept: Vec<String> = current
                .str_list("nu")
                .into_iter()
                .filter(|nu| !leaving.contains(nu))
                .collect();
            if kept.is_empty() {
                return Ok(Some(current));
            }
            current.attrs.insert("nu".into(), json!(kept));
            current.attrs.insert("lt".into(), json!(stamp));
            t.update(&current)?;
            Ok(None)
        })
        .await?;
        if let Some(last) = emptied {
            self.remove(&last).await?;
        }
        Ok(())
    }
}
