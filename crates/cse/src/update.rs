//! UPDATE: attribute changes checked against the type's table, changes of who may access
//! (`acpi`, `daci`, `macp`, a `<dac>`'s `dap`/`dae`) checked against `pvs`, container limits re-applied, subscribers told what changed.

use crate::addressing::Target;
use crate::create::content_under;
use crate::resources;
use crate::subscription::Event;
use crate::{Caller, Cse};
use model::{
    time, AccessOperation, Error, Operation, Request, Resource, ResourceType, Response,
    ResponseStatusCode, Result, ResultContent,
};
use serde_json::{json, Map, Value};

impl Cse {
    pub(crate) async fn update(
        &self,
        caller: &Caller<'_>,
        req: &Request,
        target: Target,
    ) -> Result<Response> {
        let Target::Resource(current) = target else {
            return Err(Error::operation_not_allowed(
                "virtual resources cannot be updated",
            ));
        };
        if current.ty.is_instance() {
            // TS-0004 clauses 7.4.7.2.3 and 7.4.39.2.3.
            return Err(Error::operation_not_allowed(format!(
                "a {} cannot be updated",
                current.ty.short_name()
            )));
        }
        if current.ty == ResourceType::CseBase {
            // TS-0004 clause 7.4.3.2.3: the <CSEBase> is not updated through the API.
            return Err(Error::operation_not_allowed(
                "the CSEBase cannot be updated",
            ));
        }
        if current.ty == ResourceType::Request {
            self.authorize(caller, &current, AccessOperation::UPDATE, None)?;
            return Err(resources::req::not_updated());
        }
        let mut changes = match current.ty {
            ResourceType::FlexContainer => resources::fcnt::update_content(req, &current)?,
            ResourceType::MgmtObj => {
                let changes = content_under(req, current.wrapper(), current.ty.code())?;
                let s = resources::mgo::stored(&current)?;
                model::attributes::validate_specialised(s, Operation::Update, &changes)?;
                s.requested_actions(&changes)?;
                changes
            }
            ty => {
                let changes = content_under(req, current.wrapper(), ty.code())?;
                model::attributes::validate(ty, Operation::Update, &changes)?;
                changes
            }
        };
        if current.ty == ResourceType::Ae {
            resources::nod::check_node_link(self, &changes)?;
        }
        if current.ty == ResourceType::AuthorizationDecision
            && resources::auds::asks_decision(&changes)
        {
            // TS-0004 clause 7.4.43.2.3: the PDP answers; nothing of the request is kept.
            self.authorize_dynamic(caller, &current, AccessOperation::UPDATE, None)
                .await?;
            return resources::auds::decide(self, caller, req, &current, &changes).await;
        }
        if current.ty == ResourceType::AuthorizationPolicy
            && resources::aupy::asks_policies(&changes)
        {
            // TS-0004 clause 7.4.44.2.3: the PRP answers; nothing of the request is kept.
            self.authorize_dynamic(caller, &current, AccessOperation::UPDATE, None)
                .await?;
            return resources::aupy::retrieve(self, caller, req, &current, &changes).await;
        }
        if current.ty == ResourceType::AuthorizationInformation
            && resources::auif::asks_information(&changes)
        {
            // TS-0004 clause 7.4.45.2.3: the PIP answers; nothing of the request is kept.
            self.authorize_dynamic(caller, &current, AccessOperation::UPDATE, None)
                .await?;
            return resources::auif::retrieve(self, caller, req, &current, &changes).await;
        }
        if changes.get("et").is_some_and(Value::is_null) {
            // TS-0001 clause 9.6.1.3.2: `et` set to null asks the CSE for a new lifetime; the
            // resource always has one (multiplicity 1), so it gets the CSE's default.
            let et = crate::create::default_expiration(&self.config, self.config.clock.now());
            changes.insert("et".into(), et);
        }
        if let Some(et) = changes.get("et").and_then(Value::as_str) {
            if time::parse(et)? <= self.config.clock.now() {
                return Err(Error::bad_request("expiration time is in the past"));
            }
        }
        if changes.contains_key("acpi") && changes.len() != 1 {
            return Err(Error::bad_request("acpi must be updated alone"));
        }
        // Attributes that decide who may access the resource are held to the self-privileges
        // of its policies (`pvs` of the ACPs it names now, or its creator by default), like
        // `acpi`; the others to ordinary UPDATE rights (where a DAS or a token may help).
        let defining: Vec<&str> = changes
            .keys()
            .map(String::as_str)
            .filter(|k| crate::access::defines_access(current.ty, k))
            .collect();
        if !defining.is_empty() {
            self.gate()
                .authorize(
                    &caller.originator,
                    &self.request_context(caller),
                    &current,
                    AccessOperation::UPDATE,
                    None,
                    crate::access::Check::AcpiUpdate,
                )
                .inspect_err(|_| {
                    tracing::info!(
                        originator = caller.originator.id(&self.config),
                        target = current.ri(),
                        attributes = ?defining,
                        "update of access-defining attributes refused"
                    )
                })?;
            crate::access::check_references(self.store.as_ref(), &self.config, &changes)?;
        }
        if defining.len() < changes.len() {
            self.authorize_dynamic(caller, &current, AccessOperation::UPDATE, None)
                .await?;
        }

        if current.ty == ResourceType::TimeSeries {
            resources::ts::check_update(&current, &mut changes)?;
        }
        let mut preview = current.clone();
        apply(&mut preview, &changes);
        match current.ty {
            ResourceType::Subscription => {
                model::resources::sub::check_update(&changes)?;
                model::resources::sub::validate(&preview.attrs)?;
                if let Some(parent) = self.store.get(current.pi())? {
                    model::resources::sub::check_child_types(&preview.attrs, parent.ty)?;
                    model::resources::sub::check_event_types(&preview.attrs, parent.ty)?;
                }
            }
            ResourceType::Group => resources::grp::check_members(
                self,
                caller,
                &mut preview,
                changes.contains_key("mid"),
            )?,
            ResourceType::DynamicAuthorizationConsultation => {
                resources::dac::prepare(&self.config, &preview)?
            }
            ResourceType::AccessControlPolicy => {
                crate::access::pdp::check_adri(&self.config, &changes)?;
                crate::access::distributed::check_links(
                    &self.config,
                    self.store.as_ref(),
                    &preview.attrs,
                )?
            }
            ResourceType::TimeSeries => model::resources::ts::check(&preview.attrs)?,
            ResourceType::ServiceSubscribedNode => {
                resources::svsn::check_update(self, &current.attrs, &changes)?
            }
            ResourceType::ServiceSubscribedAppRule => {
                model::resources::asar::validate(&preview.attrs)?
            }
            ResourceType::Role | ResourceType::Token => {
                if let Some(et) = resources::authority::lifetime_within_validity(&preview.attrs)? {
                    preview.attrs.insert("et".into(), et.clone());
                    changes.insert("et".into(), et);
                }
            }
            ResourceType::Schedule => resources::sch::check_update(self, &current, &changes)?,
            ResourceType::SemanticDescriptor => {
                resources::smd::check_update(&mut preview, &mut changes)?
            }
            ResourceType::NotificationTargetPolicy => {
                resources::ntp::check_policy_update(self, &current, &preview)?
            }
            ResourceType::PolicyDeletionRules => resources::ntp::check_rules(&preview.attrs)?,
            ResourceType::LocationPolicy => model::resources::lcp::validate(&preview.attrs)?,
            ResourceType::CrossResourceSubscription => {
                model::resources::crs::validate(&preview.attrs, false)?;
                if changes.contains_key("nu") {
                    let creator = caller.originator.id(&self.config).to_owned();
                    resources::sub::verify(self, &creator, &preview.srn, &preview.str_list("nu"))
                        .await?;
                }
            }
            _ => {}
        }
        let derived: Map<String, Value> = ["cnm", "mtv", "mid", "mt"]
            .iter()
            .filter_map(|k| preview.attrs.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect();

        // A blocking-update subscription approves the change first (TS-0004 7.5.1.2.19);
        // other UPDATEs and DELETEs of this resource wait until this one is written.
        let _held = self.approve_update(&current, &changes).await?;
        if current.ty == ResourceType::MgmtObj {
            resources::mgo::audit_actions(self, caller, &current, &changes).await?;
        }
        // Write-ahead, as for an execution request above.
        crate::security_manager::administration::record(
            self,
            caller.originator.id(&self.config),
            crate::security_manager::administration::Change::Update,
            &preview,
        )
        .await?;
        let ri = current.ri().to_owned();
        let changes_for_write = changes.clone();
        let clock = self.config.clock.clone();
        let max_content_size = self.config.max_content_size;
        let (updated, evicted) = store::write(self.store.as_ref(), move |t| {
            let mut r = t
                .get(&ri)?
                .ok_or_else(|| Error::not_found("the resource was deleted"))?;
            let before = r.clone();
            apply(&mut r, &changes_for_write);
            if changes_for_write.contains_key("et") {
                if let Some(parent) = t.get(r.pi())? {
                    crate::lifetime::within_parent(&mut r, &parent);
                }
                crate::lifetime::check_children(t, &before, &r)?;
            }
            if r.ty == ResourceType::Group {
                r.attrs.extend(derived);
            }
            r.attrs
                .insert("lt".into(), json!(time::format(clock.now())));
            if let Some(st) = r.u64_attr("st") {
                r.attrs.insert("st".into(), json!(st + 1));
            }
            if r.ty == ResourceType::FlexContainer {
                resources::fcnt::refresh_size(&mut r, max_content_size)?;
            }
            let evicted = match r.ty {
                ResourceType::Container => {
                    let mut gone = resources::cnt::drop_hidden_instances(t, &before, &mut r)?;
                    gone.extend(resources::cnt::enforce_limits(t, &mut r)?);
                    gone
                }
                ResourceType::TimeSeries => {
                    resources::ts::restart_detection(t, &changes_for_write, &mut r)?;
                    resources::cnt::enforce_limits(t, &mut r)?
                }
                ResourceType::Subscription => {
                    resources::ts::forget_window(t, &changes_for_write, &r)?;
                    Vec::new()
                }
                ResourceType::LocationPolicy => {
                    resources::lcp::follow_lifetime(t, &r, &changes_for_write)?;
                    Vec::new()
                }
                _ => Vec::new(),
            };
            t.update(&r)?;
            Ok((r, evicted))
        })
        .await?;

        if updated.ty == ResourceType::TimeSeries {
            self.monitors.wake(updated.ri());
        }
        if updated.ty == ResourceType::CrossResourceSubscription
            && (changes.contains_key("twt") || changes.contains_key("tws"))
        {
            if let Some(saved) = self
                .crs_windows
                .restart(updated.ri(), self.config.clock.now())
            {
                saved.save(self.store.as_ref()).await;
            }
        }
        let mut modified = changes.clone();
        // The `et` the CSE set (capped at the parent's) is what the originator learns.
        if let (Some(asked), Some(set)) = (modified.get_mut("et"), updated.attrs.get("et")) {
            *asked = set.clone();
        }
        for k in ["lt", "st", "cni", "cbs", "cnm", "cs", "mdc", "mdlt"] {
            if updated.attrs.get(k) != current.attrs.get(k) {
                if let Some(v) = updated.attrs.get(k) {
                    modified.insert(k.to_owned(), v.clone());
                }
            }
        }
        self.fire(&updated, Event::Updated(&updated, &modified))
            .await;
        for gone in &evicted {
            self.fire(&updated, Event::ChildDeleted(gone)).await;
        }
        let pc = match req.rcn.unwrap_or(ResultContent::Attributes) {
            ResultContent::Nothing => None,
            ResultContent::ModifiedAttributes => Some(json!({ updated.wrapper(): modified })),
            _ => Some(updated.wrapped()),
        };
        Ok(Response::new(ResponseStatusCode::Updated, &req.rqi, pc))
    }
}

/// Applies an UPDATE's attributes: `null` removes an attribute, anything else replaces it.
fn apply(r: &mut Resource, changes: &Map<String, Value>) {
    for (k, v) in changes {
        if v.is_null() {
            r.attrs.remove(k);
        } else {
            r.attrs.insert(k.clone(), v.clone());
        }
    }
}
