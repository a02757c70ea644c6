//! Dynamic authorization (TS-0003 clause 7.3): privileges that come from outside the stored
//! access control policies, evaluated by the same decision function as extra rules.
//!
//! * Tokens (indirect dynamic authorization, clause 7.3.2.3): the originator presents signed
//!   JWTs (`tkns`). They are verified once per request ([`verify_tokens`]); a token that does
//!   not verify refuses the whole request (4103, or 4000 when it cannot be read). A verified
//!   token's permissions become a [`Grant`] for the targets its `ris` name: its `pv` rules are
//!   extra rules, its `rids` are verified roles. Role-IDs in the request (`rids`) count only
//!   when a verified token grants them.
//! * Consultation (direct dynamic authorization, clause 7.3.2.2): when the policies refuse a
//!   request on a resource whose `daci` (its own, or its parent's for types without `acpi`)
//!   names an enabled `<dynamicAuthorizationConsultation>` that the resource's policies trust
//!   (its creator holds their self-privileges, `Cse::dac_trusted`), the CSE asks the DAS at
//!   a `dap` the configuration lists ([`crate::config::DasUrls`]) with an `m2m:dynAuthDasRequest` and reads an `m2m:dynAuthDasResponse`. Granted privileges
//!   (`dai/gp`) and the permissions of tokens in the answer become a [`Grant`], kept for its
//!   lifetime (`dai/pl`, bounded by `dal` and by the configured maximum) so repeated requests
//!   do not ask again. A DAS that cannot be reached, is slow or answers anything but a
//!   well-formed response grants nothing: the request stays refused (fail closed).
//!
//! The policies stay the fast path: nothing here runs for a request they grant, and a
//! request without tokens pays nothing for tokens.

use super::rule::{Domain, Policy, Principal, RuleSet};
use crate::config::CseConfig;
use crate::originator::Originator;
use crate::outbound::{Limits, Outbound, Senders};
use model::time::Timestamp;
use model::{AccessOperation, Error, Operation, Request, Resource, ResourceType, Result};
use security::token::{Expectations, TokenPermission, VerifiedToken};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::Store;

/// Privileges from outside the stored policies, for one target: extra rules and verified
/// roles. Evaluated by [`super::decide`] next to the governing policies (permit-overrides).
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// Extra rules (a token's or a DAS's `m2m:setOfAcrs`), compiled like an ACP's `pv`.
    pub policies: Vec<Arc<Policy>>,
    /// Role-IDs verified for the originator.
    pub roles: Vec<String>,
}

impl Grant {
    /// Whether it adds nothing.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty() && self.roles.is_empty()
    }

    fn absorb(&mut self, other: &Grant) {
        self.policies.extend(other.policies.iter().cloned());
        for r in &other.roles {
            if !self.roles.contains(r) {
                self.roles.push(r.clone());
            }
        }
    }
}

/// The names this CSE answers to in a token's audience.
pub fn audience(config: &CseConfig) -> Vec<String> {
    vec![
        config.cse_id.clone(),
        format!("/{}", config.cse_id),
        format!("//{}/{}", config.sp_id, config.cse_id),
    ]
}

/// Every form an originator's ID may take as a token's holder.
pub fn holder_forms(originator: &Originator, config: &CseConfig) -> Vec<String> {
    let domain = Domain::of(config);
    let id = originator.id(config);
    let principal = match originator {
        Originator::RemoteCse(id) => Principal::remote(id, &domain),
        _ => Principal::ae(id, &domain),
    };
    let mut forms = vec![id.to_owned()];
    if matches!(originator, Originator::Ae(_)) {
        forms.push(format!("/{}/{id}", config.cse_id));
    }
    forms.extend(principal.absolute);
    forms
}

/// Verifies every token of a request for its originator. The first token that fails
/// refuses the request with its own status code, and the reason is logged.
pub fn verify_tokens(
    config: &CseConfig,
    originator: &Originator,
    req: &Request,
) -> Result<Vec<VerifiedToken>> {
    verify_token_list(config, originator, &req.tkns)
}

/// [`verify_tokens`] for tokens given apart from a request (a PDP's decision request).
pub fn verify_token_list(
    config: &CseConfig,
    originator: &Originator,
    tkns: &[String],
) -> Result<Vec<VerifiedToken>> {
    if tkns.is_empty() || matches!(originator, Originator::Registering(_)) {
        return Ok(Vec::new());
    }
    let audience = audience(config);
    let holder = holder_forms(originator, config);
    let expect = Expectations {
        audience: &audience,
        holder: &holder,
        now: config.clock.now().timestamp(),
    };
    let mut out = Vec::with_capacity(tkns.len());
    for (i, token) in tkns.iter().enumerate() {
        match config.dynamic_authorization.issuers.verify(token, &expect) {
            Ok(t) => {
                tracing::debug!(token = %model::Untrusted(&t.id), issuer = %model::Untrusted(&t.issuer), "token verified");
                out.push(t);
            }
            Err(e) => {
                tracing::info!(originator = originator.id(config), token = i + 1, reason = %model::Untrusted(&e), rsc = e.rsc().code(), "token refused");
                return Err(Error::from(e));
            }
        }
    }
    Ok(out)
}

/// What the verified tokens grant on `target` (whose policies are those of `owner`): the
/// permissions whose `ris` is empty or names either. Of the roles, only those the request
/// asked for in `rids`, when it asked for any.
pub fn token_grant(
    tokens: &[VerifiedToken],
    asked_roles: &[String],
    target: &Resource,
    owner: Option<&Resource>,
    domain: &Domain,
) -> Grant {
    let mut grant = Grant::default();
    for token in tokens {
        for (i, p) in token.permissions.iter().enumerate() {
            if !applies(p, target, owner) {
                continue;
            }
            if let Some(pv) = &p.privileges {
                grant.policies.push(Arc::new(Policy::compile(
                    &format!("token:{}#{}", token.id, i + 1),
                    RuleSet::Privileges,
                    Some(pv),
                    domain,
                )));
            }
            for r in &p.role_ids {
                if (asked_roles.is_empty() || asked_roles.contains(r)) && !grant.roles.contains(r) {
                    grant.roles.push(r.clone());
                }
            }
        }
    }
    grant
}

fn applies(p: &TokenPermission, target: &Resource, owner: Option<&Resource>) -> bool {
    p.resource_ids.is_empty()
        || std::iter::once(target)
            .chain(owner)
            .any(|r| p.resource_ids.iter().any(|id| id == r.ri() || *id == r.srn))
}

/// The facts a consultation sends, besides the target.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The originator in absolute form.
    pub originator: String,
    /// Every form of the originator's ID a token's holder may be written in.
    pub holders: &'a [String],
    /// The access operation asked for.
    pub op: AccessOperation,
    /// The peer's address.
    pub ip: Option<IpAddr>,
    /// Role-IDs the request named.
    pub roles: &'a [String],
}

/// Asks DASs and keeps what they grant for its lifetime.
#[derive(Debug)]
pub struct Consultant {
    outbound: Senders,
    limits: Limits,
    origin: String,
    max_grant: chrono::Duration,
    cache: Mutex<HashMap<CacheKey, Cached>>,
}

/// Grants kept before the cache starts over (a bound, not a tuning knob).
const CAPACITY: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    originator: String,
    target: String,
    op: u8,
    dac: String,
}

#[derive(Debug, Clone)]
struct Cached {
    grant: Grant,
    until: Timestamp,
}

impl Consultant {
    /// A consultant that asks through `outbound` within the configured timeout.
    pub fn new(config: &CseConfig, outbound: Senders) -> Self {
        let limits = Limits {
            timeout: Duration::from_millis(config.dynamic_authorization.timeout_ms.max(1)),
            max_body_bytes: 64 * 1024,
        };
        let max_secs =
            i64::try_from(config.dynamic_authorization.max_grant_secs).unwrap_or(i64::MAX);
        Self {
            outbound,
            limits,
            origin: format!("/{}", config.cse_id),
            max_grant: chrono::Duration::try_seconds(max_secs).unwrap_or(chrono::Duration::MAX),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The door out it asks through, shared with the consultation of remote PDPs
    /// ([`super::pdp`]), which is bounded by the same timeout.
    pub fn outbound(&self) -> &Senders {
        &self.outbound
    }

    /// How many grants are kept (for tests and the admin).
    pub fn cached(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.len())
    }

    /// What the DAS of `dac` (an enabled `<dynamicAuthorizationConsultation>` the caller
    /// found trusted, see [`enabled_dacs`]) grants, from the cache while it lasts. Only
    /// `dap` entries the configuration lists ([`crate::config::DasUrls`]) are contacted. `None`: the
    /// DAS granted nothing or could not be asked (logged).
    pub async fn consult(
        &self,
        config: &CseConfig,
        target: &Resource,
        dac: &Resource,
        facts: &Facts<'_>,
    ) -> Option<Grant> {
        let key = CacheKey {
            originator: facts.originator.clone(),
            target: target.ri().to_owned(),
            op: facts.op.0,
            dac: dac.ri().to_owned(),
        };
        let now = config.clock.now();
        if let Ok(cache) = self.cache.lock() {
            if let Some(c) = cache.get(&key).filter(|c| c.until > now) {
                tracing::debug!(dac = dac.ri(), "dynamic authorization: cached grant");
                return Some(c.grant.clone());
            }
        }
        let dal_end = dac
            .attrs
            .get("dal")
            .and_then(|v| model::resources::dac::lifetime_end(v, now));
        let body = request_body(config, target, facts, dac.attrs.get("dal"));
        let mut answer = None;
        for url in dac.str_list("dap") {
            if let Err(why) = config.dynamic_authorization.das_urls.check(&url).await {
                tracing::warn!(dac = dac.ri(), das = %url, reason = %why, "dynamic authorization: DAS not contacted");
                continue;
            }
            match self.ask(&url, &body).await {
                Ok(dres) => {
                    answer = Some((url, dres));
                    break;
                }
                Err(why) => {
                    tracing::warn!(dac = dac.ri(), das = %model::Untrusted(&url), reason = %model::Untrusted(&why), "dynamic authorization: no usable answer; refusing")
                }
            }
        }
        let (url, dres) = answer?;
        let (grant, lifetime) = match read_response(config, &dres, facts, target, now) {
            Ok(g) => g,
            Err(why) => {
                tracing::warn!(dac = dac.ri(), das = %model::Untrusted(&url), reason = %model::Untrusted(&why), "dynamic authorization: unusable answer; refusing");
                return None;
            }
        };
        if grant.is_empty() {
            tracing::info!(dac = dac.ri(), das = %model::Untrusted(&url), "dynamic authorization: DAS granted nothing");
            return None;
        }
        let until = [lifetime, dal_end, now.checked_add_signed(self.max_grant)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now);
        tracing::info!(dac = dac.ri(), das = %model::Untrusted(&url), until = %model::time::format(until), "dynamic authorization: DAS granted privileges");
        if until > now {
            if let Ok(mut cache) = self.cache.lock() {
                if cache.len() >= CAPACITY {
                    cache.retain(|_, c| c.until > now);
                    if cache.len() >= CAPACITY {
                        cache.clear();
                    }
                }
                cache.insert(
                    key,
                    Cached {
                        grant: grant.clone(),
                        until,
                    },
                );
            }
        }
        Some(grant)
    }

    /// Sends the consultation and returns the `dres`, or why not.
    async fn ask(&self, url: &str, body: &Value) -> std::result::Result<Value, String> {
        let mut req = Request::new(Operation::Notify, "", Some(self.origin.clone()));
        req.pc = Some(body.clone());
        let resp = self
            .outbound
            .send(url, &req, self.limits)
            .await
            .map_err(|e| e.to_string())?;
        if !resp.rsc.is_success() {
            return Err(format!("DAS answered {}", resp.rsc.code()));
        }
        let seci = resp
            .pc
            .as_ref()
            .and_then(|pc| pc.get("m2m:seci"))
            .ok_or("no m2m:seci in the answer")?;
        if seci.get("sit").and_then(Value::as_u64) != Some(2) {
            return Err("m2m:seci is not a dynamic authorization response (sit 2)".into());
        }
        seci.get("dres")
            .filter(|d| d.is_object())
            .cloned()
            .ok_or_else(|| "no dres object".into())
    }
}

/// The `<dynamicAuthorizationConsultation>`s named in `owner`'s `daci` that exist and are
/// enabled, in `daci` order. Whether each may be trusted is the caller's decision.
pub fn enabled_dacs(store: &dyn Store, owner: &Resource) -> Vec<Arc<Resource>> {
    owner
        .str_list("daci")
        .iter()
        .filter_map(|id| store.get_shared(id).ok().flatten())
        .filter(|d| d.ty == ResourceType::DynamicAuthorizationConsultation)
        .filter(|d| d.attrs.get("dae").and_then(Value::as_bool) == Some(true))
        .collect()
}

/// The operation a consultation names (`m2m:operation`); discovery is a RETRIEVE.
fn operation_code(op: AccessOperation) -> u8 {
    match op {
        AccessOperation::CREATE => 1,
        AccessOperation::UPDATE => 3,
        AccessOperation::DELETE => 4,
        AccessOperation::NOTIFY => 5,
        _ => 2,
    }
}

/// `m2m:securityInfo` of type 1 holding an `m2m:dynAuthDasRequest`.
fn request_body(
    config: &CseConfig,
    target: &Resource,
    facts: &Facts<'_>,
    dal: Option<&Value>,
) -> Value {
    let mut dreq = json!({
        "or": facts.originator,
        "trt": target.ty.code(),
        "op": operation_code(facts.op),
        "rts": model::time::format(config.clock.now()),
        "trid": format!("/{}/{}", config.cse_id, target.ri()),
    });
    if let Some(obj) = dreq.as_object_mut() {
        match facts.ip {
            Some(IpAddr::V4(ip)) => {
                obj.insert("oip".into(), json!({ "ip4": ip.to_string() }));
            }
            Some(IpAddr::V6(ip)) => {
                obj.insert("oip".into(), json!({ "ip6": ip.to_string() }));
            }
            None => {}
        }
        if !facts.roles.is_empty() {
            obj.insert("orid".into(), json!(facts.roles));
        }
        if let Some(dal) = dal {
            obj.insert("ppl".into(), dal.clone());
        }
    }
    json!({ "m2m:seci": { "sit": 1, "dreq": dreq } })
}

/// Reads `m2m:dynAuthDasResponse`: the granted privileges (validated like an ACP's `pv`)
/// and the tokens (verified like a request's, for this originator). Anything malformed
/// makes the whole answer unusable. Returns the grant and when it ends (`pl`, and no later
/// than the earliest token expiry).
fn read_response(
    config: &CseConfig,
    dres: &Value,
    facts: &Facts<'_>,
    target: &Resource,
    now: Timestamp,
) -> std::result::Result<(Grant, Option<Timestamp>), String> {
    let domain = Domain::of(config);
    let mut grant = Grant::default();
    let mut until: Option<Timestamp> = None;
    if let Some(dai) = dres.get("dai") {
        if let Some(gp) = dai.get("gp") {
            model::resources::acp::validate_acrs("gp", gp).map_err(|e| e.message)?;
            grant.policies.push(Arc::new(Policy::compile(
                &format!("das:{}", target.ri()),
                RuleSet::Privileges,
                Some(gp),
                &domain,
            )));
        }
        if let Some(pl) = dai.get("pl") {
            until = Some(
                model::resources::dac::lifetime_end(pl, now)
                    .ok_or("pl is not a timestamp or milliseconds")?,
            );
        }
    }
    if let Some(tkns) = dres.get("tkns") {
        let list = tkns.as_array().ok_or("tkns must be a list")?;
        let audience = audience(config);
        let expect = Expectations {
            audience: &audience,
            holder: facts.holders,
            now: now.timestamp(),
        };
        let mut tokens = Vec::with_capacity(list.len());
        for t in list {
            let t = t.as_str().ok_or("tkns must hold strings")?;
            let verified = config
                .dynamic_authorization
                .issuers
                .verify(t, &expect)
                .map_err(|e| format!("token from the DAS refused: {e}"))?;
            let end = chrono::DateTime::from_timestamp(verified.not_after, 0).unwrap_or(now);
            until = Some(until.map_or(end, |u| u.min(end)));
            tokens.push(verified);
        }
        grant.absorb(&token_grant(&tokens, &[], target, None, &domain));
    }
    Ok((grant, until))
}

#[cfg(test)]
mod tests {
    use super::*;
    use security::token::TokenPermission;

    fn resource(ri: &str) -> Resource {
        let attrs = json!({"ri": ri});
        Resource {
            ty: ResourceType::Container,
            srn: format!("cse-in/{ri}"),
            attrs: attrs.as_object().cloned().unwrap_or_default(),
        }
    }

    fn token(ris: &[&str], rids: &[&str]) -> VerifiedToken {
        VerifiedToken {
            id: "t".into(),
            issuer: "das".into(),
            holder: "Cx".into(),
            not_after: i64::MAX,
            permissions: vec![TokenPermission {
                resource_ids: ris.iter().map(|s| s.to_string()).collect(),
                privileges: Some(json!({"acr": [{"acor": ["Cx"], "acop": 2}]})),
                role_ids: rids.iter().map(|s| s.to_string()).collect(),
            }],
        }
    }

    #[test]
    fn token_permissions_apply_to_their_resources_only() {
        let d = Domain::of(&CseConfig::default());
        let tokens = [token(&["cnt1"], &["r1", "r2"])];
        let g = token_grant(&tokens, &[], &resource("cnt1"), None, &d);
        assert_eq!((g.policies.len(), g.roles.len()), (1, 2));
        assert!(token_grant(&tokens, &[], &resource("cnt2"), None, &d).is_empty());
        // by the parent (owner) of a content instance
        let g = token_grant(&tokens, &[], &resource("cin9"), Some(&resource("cnt1")), &d);
        assert_eq!(g.policies.len(), 1);
        // rids in the request narrow the roles to those asked for and granted
        let g = token_grant(
            &tokens,
            &["r2".into(), "r9".into()],
            &resource("cnt1"),
            None,
            &d,
        );
        assert_eq!(g.roles, vec!["r2"]);
    }

    #[test]
    fn a_das_response_is_read_strictly() {
        let config = CseConfig::default();
        let facts = Facts {
            originator: "//secure-cse.example/id-in/Cx".into(),
            holders: &[],
            op: AccessOperation::RETRIEVE,
            ip: None,
            roles: &[],
        };
        let now = model::time::now();
        let target = resource("cnt1");
        let ok = json!({"dai": {"gp": {"acr": [{"acor": ["Cx"], "acop": 2}]}, "pl": 60000}});
        let (g, until) = read_response(&config, &ok, &facts, &target, now).expect("usable");
        assert_eq!(g.policies.len(), 1);
        assert_eq!(until, Some(now + chrono::Duration::seconds(60)));
        for bad in [
            json!({"dai": {"gp": {"acr": [{"acor": ["Cx"], "acop": 999}]}}}),
            json!({"dai": {"gp": {"acr": []}, "pl": "later"}}),
            json!({"tkns": "x"}),
            json!({"tkns": ["not.a.token"]}),
        ] {
            assert!(
                read_response(&config, &bad, &facts, &target, now).is_err(),
                "{bad}"
            );
        }
        let (nothing, _) =
            read_response(&config, &json!({}), &facts, &target, now).expect("usable");
        assert!(nothing.is_empty());
    }
}
