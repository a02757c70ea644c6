//! CREATE: the steps every resource type shares; type-specific rules live in `resources`.

use crate::addressing::Target;
use crate::content::for_create;
use crate::originator::Originator;
use crate::records::TxnRecords;
use crate::resources;
use crate::subscription::Event;
use crate::{Caller, Cse};
use model::{
    time, AccessOperation, Error, Request, Resource, ResourceType, Response, ResponseStatusCode,
    Result,
};
use serde_json::{json, Map, Value};

/// The attributes inside `{"m2m:xxx": {...}}`, which must name exactly the type being created.
pub(crate) fn content_of(req: &Request, ty: ResourceType) -> Result<Map<String, Value>> {
    content_under(req, ty.wrapper(), ty.code())
}

/// The attributes inside `{"<wrapper>": {...}}`: [`content_of`] for a key that is not the
/// type's own (a `<mgmtObj>`'s specialisation, `m2m:bat`).
pub(crate) fn content_under(req: &Request, wrapper: &str, code: u16) -> Result<Map<String, Value>> {
    let pc = req
        .pc
        .as_ref()
        .ok_or_else(|| Error::bad_request("missing content"))?;
    let obj = pc
        .as_object()
        .ok_or_else(|| Error::bad_request("content must be an object"))?;
    let mut entries = obj.iter();
    match (entries.next(), entries.next()) {
        (Some((key, Value::Object(attrs))), None) if key == wrapper => Ok(attrs.clone()),
        (Some((key, _)), None) if key == wrapper => {
            Err(Error::bad_request(format!("{key} must be an object")))
        }
        (Some((key, _)), None) => Err(Error::bad_request(format!(
            "content '{key}' does not match resource type {code} ({wrapper})"
        ))),
        _ => Err(Error::bad_request(format!(
            "content must hold exactly one '{wrapper}'"
        ))),
    }
}

/// The `et` of a resource whose originator left the lifetime to the CSE (no `et` on CREATE,
/// `et: null` on UPDATE): the configured default lifetime from `now`.
pub(crate) fn default_expiration(config: &crate::config::CseConfig, now: time::Timestamp) -> Value {
    let et = now + chrono::Duration::seconds(config.default_expiration_secs as i64);
    json!(time::format(et))
}

impl Cse {
    pub(crate) async fn create(
        &self,
        caller: &Caller<'_>,
        req: &Request,
        target: Target,
    ) -> Result<Response> {
        let Target::Resource(parent) = target else {
            return Err(Error::operation_not_allowed(
                "cannot create under a virtual resource",
            ));
        };
        let ty = req
            .ty
            .ok_or_else(|| Error::bad_request("CREATE needs a resource type"))?;
        if ty == ResourceType::Request {
            return Err(resources::req::not_created());
        }
        if ty == ResourceType::Subscription && !parent.ty.allowed_children().contains(&ty) {
            // TS-0004 clause 7.4.8.2.1 Recv-6.4: this code instead of INVALID_CHILD_RESOURCE_TYPE.
            return Err(Error::new(
                ResponseStatusCode::TargetNotSubscribable,
                format!("a {} cannot be subscribed to", parent.ty.short_name()),
            ));
        }
        if !parent.ty.allowed_children().contains(&ty) {
            return Err(Error::invalid_child_type(format!(
                "a {} cannot be created under a {}",
                ty.short_name(),
                parent.ty.short_name()
            )));
        }
        // A <mgmtObj>'s specialisation is named by its content's key (`m2m:bat`); a
        // <flexContainer>'s by its key and its `cnd`, checked against its schema.
        let specialisation = if ty == ResourceType::MgmtObj {
            Some(resources::mgo::specialisation_of(req)?)
        } else {
            None
        };
        let mut attrs = match specialisation {
            Some(s) => {
                let attrs = content_under(req, s.wrapper, ty.code())?;
                model::attributes::validate_specialised(s, model::Operation::Create, &attrs)?;
                attrs
            }
            None if ty == ResourceType::FlexContainer => resources::fcnt::create_content(req)?,
            None => {
                let attrs = content_of(req, ty)?;
                model::attributes::validate(ty, model::Operation::Create, &attrs)?;
                attrs
            }
        };
        if let Some(rn) = attrs.get("rn").and_then(Value::as_str) {
            model::id::validate_resource_name(rn)?;
        }
        if ty == ResourceType::Ae {
            resources::nod::check_node_link(self, &attrs)?;
        }
        let now = self.config.clock.now();
        if let Some(et) = attrs.get("et").and_then(Value::as_str) {
            if time::parse(et)? <= now {
                return Err(Error::bad_request("expiration time is in the past"));
            }
        }
        let registering = matches!(caller.originator, Originator::Registering(_));
        if registering != (ty == ResourceType::Ae) {
            return Err(if registering {
                Error::bad_request("missing originator")
            } else {
                Error::operation_not_allowed(
                    "an AE is created by registration, with the AE's own originator",
                )
            });
        }
        if !registering {
            self.authorize_dynamic(caller, &parent, AccessOperation::CREATE, Some(ty))
                .await?;
        }
        // The creator chooses the new resource's policies (it is theirs: the default policy
        // makes them its only holder), but only among resources that exist and have the
        // right type. Whether a named `<dac>` is trusted is decided at each consultation.
        crate::access::check_references(self.store.as_ref(), &self.config, &attrs)?;

        // Attributes every type gets.
        let ri = if ty == ResourceType::Ae {
            resources::ae::assign_id(self, &caller.originator)?
        } else {
            model::id::new_resource_id(ty.short_name())
        };
        let rn = attrs
            .get("rn")
            .and_then(Value::as_str)
            .map_or_else(|| ri.clone(), str::to_owned);
        let stamp = time::format(now);
        attrs.insert("ri".into(), json!(ri));
        attrs.insert("rn".into(), json!(rn));
        attrs.insert("pi".into(), json!(parent.ri()));
        attrs.insert("ty".into(), json!(ty.code()));
        attrs.insert("ct".into(), json!(stamp));
        attrs.insert("lt".into(), json!(stamp));
        if !attrs.contains_key("et") {
            attrs.insert("et".into(), default_expiration(&self.config, now));
        }
        // TS-0004 clause 7.3.3.5: `cr` is part of the resource only when the CREATE asked
        // for it with `cr: null` (any other value was refused by the table check); the
        // creator the security checks rely on is recorded apart from it (`creator` below).
        if attrs.contains_key("cr") {
            attrs.insert("cr".into(), json!(caller.originator.id(&self.config)));
        }
        let mut resource = Resource {
            ty,
            srn: format!("{}/{rn}", parent.srn),
            attrs,
        };

        let mut companions = Vec::new();
        let mut registration_check = None;
        let mut location_container = None;
        match ty {
            ResourceType::Ae => {
                registration_check =
                    resources::ae::prepare(self, caller, req.rvi.as_deref(), &mut resource)?
            }
            ResourceType::Container => resources::cnt::prepare(&mut resource),
            ResourceType::ContentInstance => resources::cin::prepare(self, &parent, &mut resource)?,
            ResourceType::TimeSeries => resources::ts::prepare(&mut resource)?,
            ResourceType::TimeSeriesInstance => {
                resources::tsi::prepare(self, &parent, &mut resource)?
            }
            ResourceType::Subscription => {
                resources::sub::prepare(self, caller, &parent, &mut resource).await?
            }
            ResourceType::Group => resources::grp::prepare(self, caller, &mut resource)?,
            ResourceType::PollingChannel => resources::pch::prepare(self, caller, &parent)?,
            ResourceType::CrossResourceSubscription => {
                companions = resources::crs::prepare(self, caller, &mut resource).await?
            }
            ResourceType::DynamicAuthorizationConsultation => {
                resources::dac::prepare(&self.config, &resource)?
            }
            ResourceType::MgmtObj => {
                if let Some(s) = specialisation {
                    resources::mgo::prepare(s, &mut resource)?
                }
            }
            ResourceType::FlexContainer => {
                resources::fcnt::prepare(&self.config, &parent, &mut resource)?
            }
            ResourceType::ServiceSubscribedNode => resources::svsn::prepare(self, &resource.attrs)?,
            ResourceType::ServiceSubscribedAppRule => {
                model::resources::asar::validate(&resource.attrs)?
            }
            ResourceType::AuthorizationDecision
            | ResourceType::AuthorizationPolicy
            | ResourceType::AuthorizationInformation => {
                resources::authority::only_admin(self, caller, ty)?
            }
            ResourceType::Role => {
                resources::authority::only_admin(self, caller, ty)?;
                resources::rol::prepare(&self.config, &resource)?;
                if let Some(et) = resources::authority::lifetime_within_validity(&resource.attrs)? {
                    resource.attrs.insert("et".into(), et);
                }
            }
            ResourceType::Token => {
                resources::authority::only_admin(self, caller, ty)?;
                resources::tk::prepare(&self.config, &mut resource)?;
                if let Some(et) = resources::authority::lifetime_within_validity(&resource.attrs)? {
                    resource.attrs.insert("et".into(), et);
                }
            }
            ResourceType::AccessControlPolicy => {
                crate::access::pdp::check_adri(&self.config, &resource.attrs)?;
                crate::access::distributed::check_links(
                    &self.config,
                    self.store.as_ref(),
                    &resource.attrs,
                )?
            }
            ResourceType::Schedule => resources::sch::prepare(&parent, &mut resource)?,
            ResourceType::SemanticDescriptor => resources::smd::prepare(&mut resource)?,
            ResourceType::NotificationTargetPolicy => {
                resources::ntp::check_policy(&resource.attrs)?
            }
            ResourceType::PolicyDeletionRules => resources::ntp::check_rules(&resource.attrs)?,
            ResourceType::LocationPolicy => {
                location_container = Some(resources::lcp::prepare(self, &parent, &mut resource)?)
            }
            ResourceType::M2mServiceSubscriptionProfile
            | ResourceType::CseBase
            | ResourceType::Node
            | ResourceType::Request => {}
        }

        // The AE whose AE-ID becomes `cr`: checked again inside the write, since it may have
        // rotated its AE-ID (or deregistered) since the originator check.
        let creator = match &caller.originator {
            Originator::Ae(id) => Some(id.clone()),
            _ => None,
        };
        // Write-ahead: a security administration resource is in the audit log before it
        // exists (5000 and nothing created when the log cannot be written).
        crate::security_manager::administration::record(
            self,
            caller.originator.id(&self.config),
            crate::security_manager::administration::Change::Create,
            &resource,
        )
        .await?;
        let (created, evicted) = if ty.is_instance() {
            resources::cin::insert(self, resource, creator).await?
        } else {
            let mut r = resource.clone();
            let (remember, registration) = match &caller.originator {
                Originator::Registering(reg) => {
                    (reg.remember_for.clone(), Some(reg.bind_to.clone()))
                }
                _ => (None, None),
            };
            // With a pseudonym vault the real identity is kept only sealed for this AE-ID.
            let sealed = match (
                &remember,
                self.associations().pseudonyms(),
                caller.ctx.security_association(),
            ) {
                (Some(_), Some(vault), Some(sa)) => Some(
                    vault
                        .seal(&sa.established.credential_id, r.ri())
                        .map_err(|e| Error::internal(format!("pseudonym vault: {e}")))?,
                ),
                _ => None,
            };
            // A subscription made over an association: which credential made it, kept
            // with it so that withdrawing that credential reaches it after a restart too.
            let subscriber = match caller.ctx.security_association() {
                Some(sa) if ty == ResourceType::Subscription => {
                    Some(sa.established.credential_id.clone())
                }
                _ => None,
            };
            // Who holds the default access policy of the new resource, whom a `<dac>`
            // speaks for, whose standing a subscription's notifications need: recorded for
            // the types with a creator that have policies of their own (a content instance
            // is governed by its container's).
            // A <node>, a <mgmtObj>, a <schedule> and a <policyDeletionRules> have no
            // `cr` attribute, but a creator all the same.
            let with_creator = model::attributes::find(ty, "cr").is_some()
                || matches!(
                    ty,
                    ResourceType::Node
                        | ResourceType::MgmtObj
                        | ResourceType::Schedule
                        | ResourceType::PolicyDeletionRules
                        | ResourceType::LocationPolicy
                );
            let recorded_creator = (ty.has_acpi() && with_creator)
                .then(|| caller.originator.id(&self.config).to_owned());
            let created = store::write(self.store.as_ref(), move |t| {
                resources::ae::still_registered(t, creator.as_deref())?;
                // The service subscription's rules, read in this write (TS-0001 clause
                // 10.2.2.2 step 003): none can change between the check and the AE.
                if let Some(check) = &registration_check {
                    check.decide(t)?;
                }
                if let Some(parent) = t.get(r.pi())? {
                    crate::lifetime::within_parent(&mut r, &parent);
                }
                if let Some(bind_to) = registration {
                    resources::ae::claim(t, r.ri(), bind_to.as_deref(), remember.as_deref())?;
                }
                if r.ty == ResourceType::PollingChannel {
                    resources::pch::only_one(t, r.pi())?;
                }
                if r.ty == ResourceType::MgmtObj {
                    resources::mgo::one_per_node(t, &r)?;
                }
                if r.ty == ResourceType::Token {
                    resources::tk::claim_id(t, &r)?;
                }
                if r.ty == ResourceType::Role {
                    resources::rol::index(t, &r)?;
                }
                if r.ty == ResourceType::Schedule {
                    resources::sch::at_most_one(t, &r)?;
                }
                if r.ty == ResourceType::PolicyDeletionRules {
                    resources::ntp::claim_group(t, &r)?;
                }
                if let Some(container) = location_container {
                    // TS-0004 clause 7.4.10.2.1: the container first, then the policy.
                    resources::lcp::insert_container(
                        t,
                        &r,
                        container,
                        recorded_creator.as_deref(),
                    )?;
                }
                t.insert(&r)?;
                resources::crs::write_companions(t, &companions)?;
                if let Some(key) = remember {
                    t.remember_credential_ae(&key, r.ri())?;
                }
                if let Some(sealed) = sealed {
                    t.seal_identity(r.ri(), &sealed)?;
                }
                if let Some(credential_id) = subscriber {
                    t.remember_subscriber_credential(r.ri(), &credential_id)?;
                }
                if let Some(originator) = recorded_creator {
                    t.remember_creator(r.ri(), &originator)?;
                }
                if r.ty == ResourceType::Subscription
                    && model::resources::sub::is_blocking(&r.attrs)
                {
                    t.claim_blocking_subscription(r.pi(), r.ri())?;
                }
                Ok(r)
            })
            .await?;
            (created, Vec::new())
        };
        tracing::debug!(ri = created.ri(), ty = ty.code(), "created");
        if ty == ResourceType::TimeSeriesInstance {
            // The first data point starts the series' missing data detection.
            self.monitors.wake(parent.ri());
        }
        if let Some(loi) = created.attrs.get("loi").and_then(Value::as_str) {
            // The location container was created first (TS-0004 clause 7.4.10.2.1).
            if let Some(container) = self.store.get(loi)? {
                self.fire(&parent, Event::ChildCreated(&container)).await;
            }
        }
        self.fire(&parent, Event::ChildCreated(&created)).await;
        for gone in &evicted {
            self.fire(&parent, Event::ChildDeleted(gone)).await;
        }
        // What the originator sent, read again only when `rcn` = 9 compares against it.
        let sent = if req.rcn == Some(model::ResultContent::ModifiedAttributes) {
            content_under(req, created.wrapper(), ty.code())?
        } else {
            Map::new()
        };
        let mut resp = Response::new(
            ResponseStatusCode::Created,
            &req.rqi,
            for_create(&created, req.rcn, &sent),
        );
        resp.location = Some(created.srn.clone());
        Ok(resp)
    }
}
