//! Access control (TS-0003 clause 7.1): which policies govern a request, the facts about it,
//! the decision, and why.
//!
//! The decision itself is [`decision::decide`], a pure function over compiled policies
//! ([`rule`]) and request facts ([`AccessRequest`]). This module is the part that touches the
//! store: it finds the governing policies (the target's `acpi`, the parent's for types
//! without one, an ACP's own `pvs`, a group's `macp` for fan-out, or the default policy when
//! there is no `acpi`), resolves the `<group>`s that `acor` entries name, and then decides.
//! A refusal is logged with the full trace on one line ([`explain`]) and answered with a
//! bare 4103.
//!
//! Verified tokens and what a DAS grants ([`dynamic`]) are extra rules and roles for the
//! same decision: they can only add privileges, and only after the policies refused.

pub mod cache;
mod context;
pub mod decision;
pub mod distributed;
pub mod dynamic;
pub mod explain;
pub mod pdp;
pub mod repository;
pub mod rule;
pub mod standing;

pub use cache::PolicyCache;
pub use decision::{decide, AccessRequest, Creation, GroupFact};
pub use dynamic::{Consultant, Grant};
pub use explain::{Basis, Explanation};
pub use rule::{Domain, Policy, Principal, RuleSet};

use crate::addressing::{self, Target};
use crate::config::CseConfig;
use crate::originator::{normalize, Claimed, Originator};
use crate::records::StoreRecords;
use crate::SecurityContext;
use model::resources::acp::region::Location;
use model::time::Timestamp;
use model::{AccessOperation, Error, Resource, ResourceType, Result};
use security::token::VerifiedToken;
use std::net::IpAddr;
use std::sync::Arc;
use store::Store;

/// What the CSE knows about a request besides its originator, operation and target.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// `rq_authn`: the originator was authenticated by a security association.
    pub authenticated: bool,
    /// When the request was received.
    pub time: Timestamp,
    /// The peer's address.
    pub ip: Option<IpAddr>,
    /// The originator's location, when the CSE knows it (today it never does).
    pub location: Option<Location>,
    /// Key-store level (1-3) of the credential behind the security association.
    pub credential_level: Option<u8>,
    /// Role-IDs the originator was verified to hold.
    pub roles: Vec<String>,
}

impl RequestContext {
    /// The facts a security context gives, received at `time`.
    pub fn of(ctx: &SecurityContext, authenticated: bool, time: model::time::Timestamp) -> Self {
        Self {
            authenticated,
            time,
            ip: ctx.peer.map(|p| p.ip()),
            location: None,
            // The key-store level of the home behind the peer's credential (our `scl` extension).
            credential_level: ctx.credential_level().map(|l| l.number()),
            // NOTE(acp): roles need verification (TS-0003 7.4). The ones a `<role>` of
            // this CSE assigns are set by the caller (`repository::held_roles`); the ones a
            // verified token grants are added per target by `Gate::gather`
            // (`dynamic::token_grant`).
            roles: Vec::new(),
        }
    }
}

/// What an access check reads: the store, the configuration and the compiled policies.
#[derive(Debug, Clone, Copy)]
pub struct Gate<'a> {
    /// The resource store.
    pub store: &'a dyn Store,
    /// The CSE's configuration (admin originator, SP-ID, CSE-ID).
    pub config: &'a CseConfig,
    /// Compiled policies.
    pub cache: &'a PolicyCache,
    /// The request's verified tokens (none for checks that are not a request's).
    pub tokens: &'a [VerifiedToken],
    /// The Role-IDs the request asked for (`rids`); they count only as far as a token
    /// grants them.
    pub asked_roles: &'a [String],
}

/// A refused check: logged and turned into 4103 by [`Refusal::into_error`], unless a DAS
/// grants the request after all.
#[derive(Debug)]
pub struct Refusal {
    why: Explanation,
    message: String,
}

impl Refusal {
    /// Logs the trace on one line and answers 4103 with a message that names no rule.
    pub fn into_error(self) -> Error {
        tracing::info!(trace = %model::Untrusted(&self.why), "access refused");
        Error::no_privilege(self.message)
    }
}

/// Which check to make (they differ in which policies govern).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// An ordinary operation on the target.
    Operation,
    /// An UPDATE of the target's `acpi` or of another attribute that decides who may access
    /// it ([`defines_access`]): governed by `pvs` of the ACPs it names now, or by the
    /// default policy (its creator) when it names none.
    AcpiUpdate,
    /// A request to the target `<group>`'s fan-out point: governed by its `macp`, or by the
    /// group's own policies when `macp` is not set.
    FanOut,
}

/// The policies (or the default policy) that govern a check.
enum Governing {
    Default {
        owner: String,
        holder: String,
        granted: bool,
    },
    Policies {
        via: &'static str,
        policies: Vec<Arc<Policy>>,
        missing: Vec<String>,
    },
}

impl<'a> Gate<'a> {
    /// Decides whether `originator` may do `op` on `target`: `Ok` or 4103, with the refusal
    /// and its trace logged on one line.
    pub fn authorize(
        &self,
        originator: &Originator,
        ctx: &RequestContext,
        target: &Resource,
        op: AccessOperation,
        create_ty: Option<ResourceType>,
        check: Check,
    ) -> Result<()> {
        self.check(originator, ctx, target, op, create_ty, check, None)?
            .map_err(Refusal::into_error)
    }

    /// The decision, with `granted` (a DAS's grant) as extra rules and roles: `Ok(Ok(()))`
    /// when granted, `Ok(Err(refusal))` when refused (nothing logged yet).
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &self,
        originator: &Originator,
        ctx: &RequestContext,
        target: &Resource,
        op: AccessOperation,
        create_ty: Option<ResourceType>,
        check: Check,
        granted: Option<&Grant>,
    ) -> Result<std::result::Result<(), Refusal>> {
        if originator.is_privileged() {
            return Ok(Ok(()));
        }
        let (governing, req, extra) =
            self.gather(originator, ctx, target, op, create_ty, check, granted)?;
        if decided(&governing, &extra, &req) {
            return Ok(Ok(()));
        }
        let why = explanation(governing, &extra, &req, target);
        Ok(Err(Refusal {
            why,
            message: match check {
                Check::AcpiUpdate => format!(
                    "{} may not change who may access {}",
                    req.originator.id,
                    target.ri()
                ),
                _ => format!(
                    "{} has no {} privilege on {}",
                    req.originator.id,
                    explain::op_name(op),
                    target.ri()
                ),
            },
        }))
    }

    /// This gate with a request's verified tokens and asked-for roles.
    pub fn with_tokens(self, tokens: &'a [VerifiedToken], asked_roles: &'a [String]) -> Self {
        Self {
            tokens,
            asked_roles,
            ..self
        }
    }

    /// The resource whose `acpi` (and `daci`) govern `target`: itself, or its parent for
    /// types without `acpi`.
    pub fn owner(&self, target: &Resource) -> Result<Arc<Resource>> {
        if target.ty.has_acpi() {
            return self.shared(target);
        }
        self.store
            .get_shared(target.pi())?
            .ok_or_else(|| Error::no_privilege("the resource has no parent"))
    }

    /// Whether the check passes, without logging (for filtering discovery results).
    pub fn permits(
        &self,
        originator: &Originator,
        ctx: &RequestContext,
        target: &Resource,
        op: AccessOperation,
    ) -> bool {
        if originator.is_privileged() {
            return true;
        }
        match self.gather(originator, ctx, target, op, None, Check::Operation, None) {
            Ok((governing, req, extra)) => decided(&governing, &extra, &req),
            Err(_) => false,
        }
    }

    /// The decision with its trace, for the admin's "why".
    pub fn explain(
        &self,
        originator: &Originator,
        ctx: &RequestContext,
        target: &Resource,
        op: AccessOperation,
        create_ty: Option<ResourceType>,
        check: Check,
    ) -> Result<Explanation> {
        if originator.is_privileged() {
            return Ok(Explanation {
                originator: originator.id(self.config).to_owned(),
                op,
                target: target.ri().to_owned(),
                granted: true,
                basis: Basis::Privileged,
                policies: Vec::new(),
            });
        }
        let (governing, req, extra) =
            self.gather(originator, ctx, target, op, create_ty, check, None)?;
        Ok(explanation(governing, &extra, &req, target))
    }

    /// The governing policies, the request's facts, and the extra rules of tokens and of
    /// a DAS grant. Verified roles (the context's, the tokens', the grant's) are facts.
    #[allow(clippy::too_many_arguments)]
    fn gather(
        &self,
        originator: &Originator,
        ctx: &RequestContext,
        target: &Resource,
        op: AccessOperation,
        create_ty: Option<ResourceType>,
        check: Check,
        granted: Option<&Grant>,
    ) -> Result<(Governing, AccessRequest, Vec<Arc<Policy>>)> {
        let domain = self.cache.domain();
        let principal = match originator {
            Originator::RemoteCse(id) => Principal::remote(id, domain),
            other => Principal::ae(other.id(self.config), domain),
        };
        let governing = self.governing(&principal, target, op, check)?;
        let groups = match &governing {
            Governing::Policies { policies, .. } => self.group_facts(policies, &principal, op),
            _ => Vec::new(),
        };
        let mut extra = Grant::default();
        if !self.tokens.is_empty() {
            let owner = match target.ty.has_acpi() {
                true => None,
                false => self.store.get_shared(target.pi())?,
            };
            extra = dynamic::token_grant(
                self.tokens,
                self.asked_roles,
                target,
                owner.as_deref(),
                domain,
            );
        }
        if let Some(g) = granted {
            extra.policies.extend(g.policies.iter().cloned());
            extra.roles.extend(g.roles.iter().cloned());
        }
        let mut roles = ctx.roles.clone();
        roles.extend(extra.roles);
        let req = AccessRequest {
            originator: principal,
            op,
            target_ty: target.ty,
            create: create_ty.map(|ty| Creation { ty, spty: None }),
            authenticated: ctx.authenticated,
            time: ctx.time,
            ip: ctx.ip,
            location: ctx.location.clone(),
            credential_level: ctx.credential_level,
            roles,
            groups,
        };
        Ok((governing, req, extra.policies))
    }

    fn governing(
        &self,
        who: &Principal,
        target: &Resource,
        op: AccessOperation,
        check: Check,
    ) -> Result<Governing> {
        if target.ty == ResourceType::AccessControlPolicy && check == Check::Operation {
            let own = self.shared(target)?;
            return Ok(Governing::Policies {
                via: "pvs",
                policies: vec![self.cache.policy(&own, RuleSet::SelfPrivileges)],
                missing: Vec::new(),
            });
        }
        if check == Check::FanOut {
            let macp = target.str_list("macp");
            if !macp.is_empty() {
                return self.policies("macp", &macp, RuleSet::Privileges);
            }
        }
        let parent;
        let owner = if target.ty.has_acpi() {
            target
        } else {
            parent = self
                .store
                .get_shared(target.pi())?
                .ok_or_else(|| Error::no_privilege("the resource has no parent"))?;
            &*parent
        };
        let acpi = owner.str_list("acpi");
        if acpi.is_empty() {
            let creator = match owner.ty {
                ResourceType::Ae | ResourceType::CseBase => None,
                _ => self.store.creator_of(owner),
            };
            let (holder, granted) = default_policy(owner, creator.as_deref(), &who.id, op);
            return Ok(Governing::Default {
                owner: owner.ri().to_owned(),
                holder,
                granted,
            });
        }
        match check {
            Check::AcpiUpdate => self.policies("acpi (update)", &acpi, RuleSet::SelfPrivileges),
            _ => self.policies("acpi", &acpi, RuleSet::Privileges),
        }
    }

    fn policies(&self, via: &'static str, ids: &[String], set: RuleSet) -> Result<Governing> {
        let mut policies = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match self.find_acp(id)? {
                Some(acp) => policies.push(self.cache.policy(&acp, set)),
                None => missing.push(id.clone()),
            }
        }
        Ok(Governing::Policies {
            via,
            policies,
            missing,
        })
    }

    /// An ACP by resource ID (the common case, served from the store's cache) or by any
    /// address form.
    fn find_acp(&self, id: &str) -> Result<Option<Arc<Resource>>> {
        let found = match self.store.get_shared(id)? {
            Some(r) => Some(r),
            None => match addressing::resolve(id, self.config, self.store) {
                Ok(Target::Resource(r)) => self.store.get_shared(r.ri())?,
                _ => None,
            },
        };
        Ok(found.filter(|r| r.ty == ResourceType::AccessControlPolicy))
    }

    fn shared(&self, r: &Resource) -> Result<Arc<Resource>> {
        Ok(self
            .store
            .get_shared(r.ri())?
            .unwrap_or_else(|| Arc::new(r.clone())))
    }

    /// For each `acor` entry of a rule that could grant `op` and that names neither an ID nor
    /// `all`: whether it is a `<group>` and whether the originator is a member.
    fn group_facts(
        &self,
        policies: &[Arc<Policy>],
        who: &Principal,
        op: AccessOperation,
    ) -> Vec<GroupFact> {
        let mut facts: Vec<GroupFact> = Vec::new();
        let named = policies
            .iter()
            .flat_map(|p| &p.rules)
            .filter_map(|r| r.as_ref().ok())
            .filter(|r| op.granted_by(u64::from(r.operations)))
            .flat_map(|r| &r.originators)
            .filter_map(|(_, e)| match e {
                rule::OriginatorEntry::Named(n) => Some(n),
                _ => None,
            });
        for name in named {
            if facts.iter().any(|f| f.entry == *name) {
                continue;
            }
            if let Ok(Target::Resource(g)) = addressing::resolve(name, self.config, self.store) {
                if g.ty == ResourceType::Group {
                    facts.push(GroupFact {
                        entry: name.clone(),
                        member: self.is_member(&g, who),
                    });
                }
            }
        }
        facts
    }

    /// Whether the group's `mid` holds the originator (by AE-ID in any form, by the AE's
    /// address, or by the exact CSE-relative ID of a remote originator). Not transitive:
    /// a member that is itself a group does not make its members members.
    fn is_member(&self, group: &Resource, who: &Principal) -> bool {
        group.str_list("mid").iter().any(|m| {
            if *m == who.id {
                return true;
            }
            match normalize(m, self.config) {
                Ok(Claimed::AeId(id)) if id == who.id => return true,
                _ => {}
            }
            matches!(
                addressing::resolve(m, self.config, self.store),
                Ok(Target::Resource(r)) if r.ty == ResourceType::Ae && r.ri() == who.id
            )
        })
    }
}

/// Whether the policies of a resource of type `ty` are those of its parent (a type without
/// `acpi`, such as `<contentInstance>`; an `<accessControlPolicy>` is governed by its own
/// `pvs`), so that siblings of that type get the same decision for the same request.
pub fn governed_by_parent(ty: ResourceType) -> bool {
    ty != ResourceType::AccessControlPolicy && !ty.has_acpi()
}

/// Permit-overrides over the governing policies (or the default policy) and the extra
/// rules of tokens and DAS grants. The extra rules are only looked at when the policies
/// refuse, so a request they grant costs what it did before tokens existed.
fn decided(governing: &Governing, extra: &[Arc<Policy>], req: &AccessRequest) -> bool {
    let by_policies = match governing {
        Governing::Default { granted, .. } => *granted,
        Governing::Policies { policies, .. } => decide(policies, req),
    };
    by_policies || (!extra.is_empty() && decide(extra, req))
}

fn explanation(
    governing: Governing,
    extra: &[Arc<Policy>],
    req: &AccessRequest,
    target: &Resource,
) -> Explanation {
    let (granted, basis, policies) = match governing {
        Governing::Default {
            owner,
            holder,
            granted,
        } => {
            let (by_extra, traces) = decision::explain(extra, req);
            (
                granted || by_extra,
                Basis::DefaultPolicy { owner, holder },
                traces,
            )
        }
        Governing::Policies {
            via,
            mut policies,
            missing,
        } => {
            policies.extend(extra.iter().cloned());
            let (granted, traces) = decision::explain(&policies, req);
            (granted, Basis::Policies { via, missing }, traces)
        }
    };
    Explanation {
        originator: req.originator.id.clone(),
        op: req.op,
        target: target.ri().to_owned(),
        granted,
        basis,
        policies,
    }
}

/// The default policy of a resource without `acpi` (TS-0001 clause 9.6.1.3): its creator
/// (`creator`, the record kept apart from the `cr` attribute; for an `<AE>`: the AE itself)
/// has every privilege; every originator that passed the originator check may read the
/// `<CSEBase>`; nobody else gets anything. Returns who holds the privileges, for the
/// explainer, and the decision.
fn default_policy(
    owner: &Resource,
    creator: Option<&str>,
    originator: &str,
    op: AccessOperation,
) -> (String, bool) {
    match owner.ty {
        ResourceType::Ae => (owner.ri().to_owned(), owner.ri() == originator),
        ResourceType::CseBase => (
            "every registered originator, RETRIEVE only".to_owned(),
            op == AccessOperation::RETRIEVE,
        ),
        _ => match creator {
            Some(cr) => (cr.to_owned(), cr == originator),
            None => ("nobody (no creator recorded)".to_owned(), false),
        },
    }
}

/// Whether attribute `attr` of a resource of type `ty` decides who may access it or its
/// data: `acpi`, `daci`; a group's `macp` (fan-out) and `mid` (a group named in `acor`
/// admits its members); a `<dac>`'s `dap` and `dae` (who is asked); a subscription's `nu`
/// (who receives what it reports). An UPDATE of any of them is held to the self-privileges
/// of the resource's policies ([`Check::AcpiUpdate`]), never to `pv` and never to what a DAS
/// or a token grants.
pub fn defines_access(ty: ResourceType, attr: &str) -> bool {
    match attr {
        "acpi" | "daci" => true,
        "adri" | "apri" | "airi" => ty == ResourceType::AccessControlPolicy,
        "macp" | "mid" => ty == ResourceType::Group,
        "dap" | "dae" => ty == ResourceType::DynamicAuthorizationConsultation,
        "nu" => ty == ResourceType::Subscription,
        _ => false,
    }
}

/// Checks that what the access-defining attributes among `attrs` name exists: every `acpi`
/// and `macp` entry an `<accessControlPolicy>`, every `daci` entry the resource ID
/// of a `<dynamicAuthorizationConsultation>` (4000 otherwise), so a name cannot be parked now and
/// filled with a resource later.
pub fn check_references(
    store: &dyn Store,
    config: &CseConfig,
    attrs: &serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    let list = |name: &str| -> Vec<String> {
        attrs
            .get(name)
            .and_then(serde_json::Value::as_array)
            .map_or_else(Vec::new, |a| {
                a.iter()
                    .filter_map(serde_json::Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
    };
    for name in ["acpi", "macp"] {
        let wanted = list(name);
        if load_policies(store, config, &wanted)?.len() != wanted.len() {
            return Err(Error::bad_request(format!(
                "{name} names a resource that is not an access control policy"
            )));
        }
    }
    for id in list("daci") {
        // By resource ID, as consultation looks them up.
        let found = store.get_shared(&id)?;
        if found.is_none_or(|r| r.ty != ResourceType::DynamicAuthorizationConsultation) {
            return Err(Error::bad_request(format!(
                "daci entry '{id}' is not a dynamic authorization consultation"
            )));
        }
    }
    Ok(())
}

/// The ACP resources named in an `acpi` list (by resource ID or address). Names that do not
/// resolve to an ACP contribute nothing, so they can only narrow access.
pub fn load_policies(
    store: &dyn Store,
    config: &CseConfig,
    acpi: &[String],
) -> Result<Vec<Resource>> {
    let cache = PolicyCache::new(Domain::of(config));
    let gate = Gate {
        store,
        config,
        cache: &cache,
        tokens: &[],
        asked_roles: &[],
    };
    let mut out = Vec::with_capacity(acpi.len());
    for id in acpi {
        if let Some(r) = gate.find_acp(id)? {
            out.push(Resource::clone(&r));
        }
    }
    Ok(out)
}
