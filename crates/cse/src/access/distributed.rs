//! Policy Retrieval Points and Policy Information Points (TS-0003 clauses 7.5.3 and 7.5.4).
//!
//! Both sides live here:
//!
//! * **As PRP and PIP** ([`local_policies`], [`local_information`]): what this CSE answers
//!   through its `<authorizationPolicy>` and `<authorizationInformation>` resources. The
//!   policies for a target are the `pv` of the policies governing it when it is hosted here,
//!   and those of the `<accessControlPolicy>`s of the `<CSEBase>` filed for its address with
//!   a `prp-target=<address>` label (the repository for targets on other CSEs). The
//!   information for an originator is the `<role>`s and `<token>`s of the `<CSEBase>` whose
//!   holder it is.
//! * **As the PDP that asks them** ([`retrieve`]): when the rules of a target refuse and the
//!   policies governing it name PRPs (`apri`) or PIPs (`airi`), this CSE asks them in order,
//!   local resources in-process and remote ones by an UPDATE, and evaluates what they return
//!   as extra rules and roles, like a DAS grant: they can only add to what the rules grant.
//!   Only an answer with status OK counts; NOT_APPLICABLE moves to the next point; silence,
//!   an error or anything malformed is logged and moves on too, so whatever goes wrong
//!   leaves the refusal as it was (fail closed).
//!
//! Only URLs the operator lists in `dynamic_authorization.prp_urls` and `pip_urls` are ever
//! contacted (checked when `apri`/`airi` are written and again before each request).

use super::dynamic::{audience, holder_forms, Grant};
use super::repository;
use super::rule::{Domain, Policy, RuleSet};
use crate::addressing::{self, Target};
use crate::config::CseConfig;
use crate::originator::Originator;
use crate::outbound::{Limits, Outbound, Senders};
use model::resources::auds::Status;
use model::resources::aupy::{covers, PERMIT_OVERRIDES, TARGET_LABEL};
use model::time::Timestamp;
use model::{Error, Operation, Request, Resource, ResourceType, ResponseStatusCode, Result};
use security::token::{Expectations, VerifiedToken};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use store::Store;

/// The most PRPs and the most PIPs one refused request asks, so that a policy naming many
/// cannot make one request wait for many timeouts.
pub const MAX_ASKED: usize = 4;

/// Whether an `apri`/`airi` entry names a remote point (an http(s) URL) rather than a
/// resource of this CSE.
fn is_url(entry: &str) -> bool {
    entry.starts_with("http://") || entry.starts_with("https://")
}

/// Checks the `apri` and `airi` of an `<accessControlPolicy>` about to be written (`attrs`:
/// its attributes after the write): every entry is either an `<authorizationPolicy>`
/// (`apri`) or `<authorizationInformation>` (`airi`) of this CSE, or a URL the configuration
/// lists; and `adri` and `apri` are not both present (TS-0001 clause 9.6.2.0). 4000
/// otherwise: the CSE would never ask it, so accepting it would hide the mistake.
pub fn check_links(
    config: &CseConfig,
    store: &dyn Store,
    attrs: &Map<String, Value>,
) -> Result<()> {
    let list = |name: &str| -> Vec<&str> {
        attrs
            .get(name)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    if !list("adri").is_empty() && !list("apri").is_empty() {
        return Err(Error::bad_request(
            "adri and apri cannot both be present: a policy either asks a PDP or retrieves policies",
        ));
    }
    let d = &config.dynamic_authorization;
    for (name, ty, listed, option) in [
        (
            "apri",
            ResourceType::AuthorizationPolicy,
            &d.prp_urls,
            "prp_urls",
        ),
        (
            "airi",
            ResourceType::AuthorizationInformation,
            &d.pip_urls,
            "pip_urls",
        ),
    ] {
        for entry in list(name) {
            let ok = if is_url(entry) {
                listed.lists(entry)
            } else {
                local_point(config, store, entry, ty).is_some()
            };
            if !ok {
                return Err(Error::bad_request(format!(
                    "{name} entry '{entry}' is neither a {} of this CSE nor a URL listed in \
                     dynamic_authorization.{option}",
                    ty.short_name()
                )));
            }
        }
    }
    Ok(())
}

/// The live resource of type `ty` that `entry` addresses on this CSE.
fn local_point(
    config: &CseConfig,
    store: &dyn Store,
    entry: &str,
    ty: ResourceType,
) -> Option<Resource> {
    match addressing::resolve(entry, config, store) {
        Ok(Target::Resource(r)) if r.ty == ty => Some(r),
        _ => None,
    }
}

/// The `apri` and `airi` entries of the policies `owner` names, in order, each once, at
/// most [`MAX_ASKED`] of each.
pub fn named_points(store: &dyn Store, owner: &Resource) -> (Vec<String>, Vec<String>) {
    let (mut prps, mut pips): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for acp in owner.str_list("acpi") {
        let Ok(Some(acp)) = store.get_shared(&acp) else {
            continue;
        };
        if acp.ty != ResourceType::AccessControlPolicy {
            continue;
        }
        for (name, out) in [("apri", &mut prps), ("airi", &mut pips)] {
            for entry in acp.str_list(name) {
                if !out.contains(&entry) {
                    out.push(entry);
                }
            }
        }
    }
    prps.truncate(MAX_ASKED);
    pips.truncate(MAX_ASKED);
    (prps, pips)
}

/// What a PRP answers: its status and, with OK, the `m2m:setOfAcrs` of each policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyAnswer {
    /// How the retrieval ended.
    pub status: Status,
    /// The privileges of each applicable policy (non-empty only with OK).
    pub privileges: Vec<Value>,
}

/// This CSE as PRP: the policies that apply to `to` (TS-0003 clause 7.5.3). A target hosted
/// here contributes the `pv` of the policies that govern it; the `<accessControlPolicy>`s
/// of the `<CSEBase>` labelled `prp-target=<address>` contribute theirs for every `to`
/// that address covers, compared with `to` as given and, for a target hosted here, with its
/// SP-relative forms. Policies that grant nothing are left out; none left is
/// NOT_APPLICABLE.
pub fn local_policies(config: &CseConfig, store: &dyn Store, to: &str) -> PolicyAnswer {
    match gather_policies(config, store, to) {
        Ok(privileges) if privileges.is_empty() => PolicyAnswer {
            status: Status::NotApplicable,
            privileges,
        },
        Ok(privileges) => PolicyAnswer {
            status: Status::Ok,
            privileges,
        },
        Err(e) => {
            tracing::warn!(error = %e, "PRP: retrieval failed");
            PolicyAnswer {
                status: Status::ProcessingError,
                privileges: Vec::new(),
            }
        }
    }
}

fn gather_policies(config: &CseConfig, store: &dyn Store, to: &str) -> Result<Vec<Value>> {
    let mut forms = vec![to.to_owned()];
    let mut privileges: Vec<Value> = Vec::new();
    let mut push = |pv: Option<&Value>| {
        if let Some(pv) = pv {
            let grants = model::resources::acp::rules_of(pv).is_ok_and(|r| !r.is_empty());
            if grants && !privileges.contains(pv) {
                privileges.push(pv.clone());
            }
        }
    };
    if let Ok(target) = addressing::resolve(to, config, store) {
        let target = match target {
            Target::Resource(r)
            | Target::PollingChannelUri(r)
            | Target::NotificationTargetSelfReference(r) => r,
            Target::Edge { container, .. } => container,
            Target::FanOut { group, .. } => group,
        };
        forms.push(format!("/{}/{}", config.cse_id, target.ri()));
        forms.push(format!("/{}/{}", config.cse_id, target.srn));
        let owner = if target.ty.has_acpi() {
            Some(target)
        } else {
            store.get(target.pi())?
        };
        if let Some(owner) = owner {
            for acp in super::load_policies(store, config, &owner.str_list("acpi"))? {
                push(acp.attrs.get("pv"));
            }
        }
    }
    let now = model::time::format(config.clock.now());
    for acp in store.children(&config.cse_id, Some(ResourceType::AccessControlPolicy))? {
        if acp.et().is_some_and(|et| et <= now.as_str()) {
            continue;
        }
        let filed = acp.str_list("lbl").into_iter().any(|l| {
            l.strip_prefix(TARGET_LABEL)
                .is_some_and(|addr| forms.iter().any(|f| covers(addr, f)))
        });
        if filed {
            push(acp.attrs.get("pv"));
        }
    }
    Ok(privileges)
}

/// What a PIP answers: its status and, with OK, the `<role>`s and `<token>`s found.
#[derive(Debug, Clone, PartialEq)]
pub struct InformationAnswer {
    /// How the retrieval ended.
    pub status: Status,
    /// The `<role>`s whose holder is the originator (their attributes).
    pub roles: Vec<Map<String, Value>>,
    /// The `<token>`s named and held by the originator (their attributes).
    pub tokens: Vec<Map<String, Value>>,
}

/// This CSE as PIP: the `<role>`s of its `<CSEBase>` held by `from` now (those with the
/// Role-IDs `rids` when any are named, otherwise all), and its `<token>`s with the
/// Token-IDs `tids` held by `from` (TS-0003 clause 7.5.4). `from` is compared as given and,
/// when it is an originator known here, in each form of its ID. Nothing found is
/// NOT_APPLICABLE.
pub fn local_information(
    config: &CseConfig,
    store: &dyn Store,
    from: &str,
    rids: &[String],
    tids: &[String],
) -> InformationAnswer {
    match gather_information(config, store, from, rids, tids) {
        Ok((roles, tokens)) => InformationAnswer {
            status: if roles.is_empty() && tokens.is_empty() {
                Status::NotApplicable
            } else {
                Status::Ok
            },
            roles,
            tokens,
        },
        Err(e) => {
            tracing::warn!(error = %e, "PIP: retrieval failed");
            InformationAnswer {
                status: Status::ProcessingError,
                roles: Vec::new(),
                tokens: Vec::new(),
            }
        }
    }
}

type Found = (Vec<Map<String, Value>>, Vec<Map<String, Value>>);

fn gather_information(
    config: &CseConfig,
    store: &dyn Store,
    from: &str,
    rids: &[String],
    tids: &[String],
) -> Result<Found> {
    let mut holders = vec![from.to_owned()];
    let local = from
        .strip_prefix(&format!("/{}/", config.cse_id))
        .unwrap_or(from);
    if let Some(o) = super::standing::originator_of_record(local, config, store) {
        holders.extend(holder_forms(&o, config));
    }
    let now = config.clock.now();
    let ours = audience(config);
    let text = |r: &Resource, k: &str| r.attrs.get(k).and_then(Value::as_str).map(str::to_owned);
    let live = |r: &Resource| {
        r.et()
            .is_none_or(|et| et > model::time::format(now).as_str())
    };
    let records = if rids.is_empty() {
        store.table(crate::records::ROLE_ID)?
    } else {
        let mut all = Vec::new();
        for rlid in rids {
            let prefix = crate::records::role_prefix(rlid);
            all.extend(store.table_prefix(crate::records::ROLE_ID, &prefix)?);
        }
        all
    };
    let mut roles = Vec::new();
    for (_, ri) in records {
        let Some(role) = store.get(&String::from_utf8_lossy(&ri))? else {
            continue;
        };
        let held = role.ty == ResourceType::Role
            && role.pi() == config.cse_id
            && live(&role)
            && text(&role, "tkhd").is_some_and(|h| holders.contains(&h))
            && text(&role, "tkis").is_some_and(|i| ours.contains(&i))
            && (rids.is_empty() || text(&role, "rlid").is_some_and(|id| rids.contains(&id)))
            && model::resources::rol::in_period(&role.attrs, now);
        if held {
            roles.push(role.attrs);
        }
    }
    let mut tokens = Vec::new();
    for tid in tids {
        let Some(token) = repository::stored_token(store, tid, now)? else {
            continue;
        };
        if token.pi() == config.cse_id && text(&token, "tkhd").is_some_and(|h| holders.contains(&h))
        {
            tokens.push(token.attrs);
        }
    }
    Ok((roles, tokens))
}

/// The facts of a refused request that PRPs and PIPs are asked about.
#[derive(Debug)]
pub struct Question<'a> {
    /// The originator.
    pub originator: &'a Originator,
    /// The target.
    pub target: &'a Resource,
    /// The Role-IDs the request named.
    pub rids: &'a [String],
    /// When the request was received.
    pub time: Timestamp,
}

/// What the PRPs and PIPs of a refused request gave: extra rules and roles, and tokens
/// verified for the originator.
#[derive(Debug, Default)]
pub struct Retrieved {
    /// The policies (as rules) and the roles.
    pub grant: Grant,
    /// The tokens the PIPs returned, each verified here.
    pub tokens: Vec<VerifiedToken>,
}

impl Retrieved {
    /// Whether it adds nothing.
    pub fn is_empty(&self) -> bool {
        self.grant.is_empty() && self.tokens.is_empty()
    }
}

/// Asks the PRPs (`prps`) for the policies of `q.target` and the PIPs (`pips`) for the
/// roles and tokens of `q.originator`: each list in order, up to the first answer with
/// status OK.
pub async fn retrieve(
    config: &CseConfig,
    store: &dyn Store,
    outbound: &Senders,
    prps: &[String],
    pips: &[String],
    q: &Question<'_>,
) -> Retrieved {
    let mut out = Retrieved::default();
    let domain = Domain::of(config);
    let to = format!("/{}/{}", config.cse_id, q.target.ri());
    for entry in prps {
        let answer = if is_url(entry) {
            let body = json!({"m2m:aupy": {"to": to}});
            ask_remote(
                config,
                &config.dynamic_authorization.prp_urls,
                outbound,
                entry,
                body,
            )
            .await
            .and_then(|pc| read_policies(pc.as_ref()))
        } else {
            match local_point(config, store, entry, ResourceType::AuthorizationPolicy) {
                Some(_) => Ok(local_policies(config, store, &to)),
                None => Err("no such <authorizationPolicy> on this CSE".to_owned()),
            }
        };
        match answer {
            Ok(a) if a.status == Status::Ok => {
                tracing::info!(prp = %model::Untrusted(entry), target = q.target.ri(), policies = a.privileges.len(), "PRP: policies retrieved");
                for (i, pv) in a.privileges.iter().enumerate() {
                    out.grant.policies.push(Arc::new(Policy::compile(
                        &format!("prp:{entry}#{}", i + 1),
                        RuleSet::Privileges,
                        Some(pv),
                        &domain,
                    )));
                }
                break;
            }
            Ok(a) if a.status == Status::NotApplicable => {
                tracing::info!(prp = %model::Untrusted(entry), "PRP: not applicable; asking the next");
            }
            Ok(a) => {
                tracing::warn!(prp = %model::Untrusted(entry), sus = a.status.code(), "PRP: no policies; the refusal stands unless another point grants");
                break;
            }
            Err(why) => {
                tracing::warn!(prp = %model::Untrusted(entry), reason = %model::Untrusted(&why), "PRP: no usable answer; nothing retrieved from it (fail-safe deny)");
            }
        }
    }
    let from = holder_forms(q.originator, config)
        .into_iter()
        .find(|f| f.starts_with('/'))
        .unwrap_or_else(|| q.originator.id(config).to_owned());
    for entry in pips {
        let answer = if is_url(entry) {
            let mut auif = json!({"fr": from});
            if !q.rids.is_empty() {
                auif["rids"] = json!(q.rids);
            }
            let body = json!({ "m2m:auif": auif });
            ask_remote(
                config,
                &config.dynamic_authorization.pip_urls,
                outbound,
                entry,
                body,
            )
            .await
            .and_then(|pc| read_information(pc.as_ref()))
        } else {
            match local_point(config, store, entry, ResourceType::AuthorizationInformation) {
                Some(_) => Ok(local_information(config, store, &from, q.rids, &[])),
                None => Err("no such <authorizationInformation> on this CSE".to_owned()),
            }
        };
        match answer {
            Ok(a) if a.status == Status::Ok => {
                let (roles, tokens) = admit_information(config, q, &a);
                tracing::info!(pip = %model::Untrusted(entry), roles = roles.len(), tokens = tokens.len(), "PIP: information retrieved");
                for r in roles {
                    if !out.grant.roles.contains(&r) {
                        out.grant.roles.push(r);
                    }
                }
                out.tokens.extend(tokens);
                break;
            }
            Ok(a) if a.status == Status::NotApplicable => {
                tracing::info!(pip = %model::Untrusted(entry), "PIP: not applicable; asking the next");
            }
            Ok(a) => {
                tracing::warn!(pip = %model::Untrusted(entry), sus = a.status.code(), "PIP: no information; the refusal stands unless another point grants");
                break;
            }
            Err(why) => {
                tracing::warn!(pip = %model::Untrusted(entry), reason = %model::Untrusted(&why), "PIP: no usable answer; nothing retrieved from it (fail-safe deny)");
            }
        }
    }
    out
}

/// The roles and tokens of a PIP's answer that count for `q`: a role whose holder is the
/// originator, within its period, with a Role-ID the request named (when it named any); a
/// token that verifies here as one the originator carried would.
fn admit_information(
    config: &CseConfig,
    q: &Question<'_>,
    a: &InformationAnswer,
) -> (Vec<String>, Vec<VerifiedToken>) {
    let holders = holder_forms(q.originator, config);
    let text =
        |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
    let roles = a
        .roles
        .iter()
        .filter(|r| text(r, "tkhd").is_some_and(|h| holders.contains(&h)))
        .filter(|r| model::resources::rol::in_period(r, q.time))
        .filter_map(|r| text(r, "rlid"))
        .filter(|id| q.rids.is_empty() || q.rids.contains(id))
        .collect();
    let audience = audience(config);
    let expect = Expectations {
        audience: &audience,
        holder: &holders,
        now: q.time.timestamp(),
    };
    let tokens = a
        .tokens
        .iter()
        .filter_map(|t| text(t, "tkob"))
        .filter_map(|object| {
            config
                .dynamic_authorization
                .issuers
                .verify(&object, &expect)
                .inspect_err(|e| tracing::info!(reason = %model::Untrusted(e), "PIP token refused"))
                .ok()
        })
        .collect();
    (roles, tokens)
}

/// Sends `body` as an UPDATE to the listed `url`; the content of a 2004 answer.
async fn ask_remote(
    config: &CseConfig,
    listed: &crate::config::DasUrls,
    outbound: &Senders,
    url: &str,
    body: Value,
) -> std::result::Result<Option<Value>, String> {
    listed.check(url).await.map_err(|why| why.to_string())?;
    let limits = Limits {
        timeout: Duration::from_millis(config.dynamic_authorization.timeout_ms.max(1)),
        max_body_bytes: 256 * 1024,
    };
    let mut req = Request::new(Operation::Update, "", Some(format!("/{}", config.cse_id)));
    req.pc = Some(body);
    match outbound.send(url, &req, limits).await {
        Ok(resp) if resp.rsc == ResponseStatusCode::Updated => Ok(resp.pc),
        Ok(resp) => Err(format!("answered {}", resp.rsc.code())),
        Err(e) => Err(e.to_string()),
    }
}

/// The status of an answer wrapped in `wrapper`; unusable without a known one.
fn read_status(pc: Option<&Value>, wrapper: &str) -> std::result::Result<(Value, Status), String> {
    let inner = pc
        .and_then(|pc| pc.get(wrapper))
        .filter(|v| v.is_object())
        .ok_or_else(|| format!("no {wrapper} in the answer"))?;
    let status = match inner.get("sus").and_then(Value::as_u64) {
        Some(1) => Status::Ok,
        Some(2) => Status::NotApplicable,
        Some(3) => Status::MissingAttribute,
        Some(4) => Status::SyntaxError,
        Some(5) => Status::ProcessingError,
        _ => return Err("no status (sus) in the answer".to_owned()),
    };
    Ok((inner.clone(), status))
}

/// A PRP's answer: with OK, `ps` (`m2m:setOfPermissions`: `pv`, a list of
/// `m2m:setOfAcrs`, each checked as an ACP's `pv` is) and `ca` PERMIT_OVERRIDES (the only
/// algorithm Release 3 defines, and the one this CSE evaluates with).
fn read_policies(pc: Option<&Value>) -> std::result::Result<PolicyAnswer, String> {
    let (aupy, status) = read_status(pc, "m2m:aupy")?;
    if status != Status::Ok {
        return Ok(PolicyAnswer {
            status,
            privileges: Vec::new(),
        });
    }
    if aupy.get("ca").and_then(Value::as_u64) != Some(PERMIT_OVERRIDES) {
        return Err("combining algorithm (ca) missing or not PERMIT_OVERRIDES".to_owned());
    }
    let sets = aupy
        .get("ps")
        .and_then(|ps| ps.get("pv"))
        .and_then(Value::as_array)
        .ok_or("no policies (ps.pv) in an OK answer")?;
    for pv in sets {
        model::resources::acp::validate_acrs("ps", pv).map_err(|e| e.message)?;
    }
    Ok(PolicyAnswer {
        status,
        privileges: sets.clone(),
    })
}

/// A PIP's answer: with OK, the `<role>`s (`m2m:rol`) and `<token>`s (`m2m:tk`) inside it.
fn read_information(pc: Option<&Value>) -> std::result::Result<InformationAnswer, String> {
    let (auif, status) = read_status(pc, "m2m:auif")?;
    let list = |key: &str| -> std::result::Result<Vec<Map<String, Value>>, String> {
        match auif.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_object()
                        .cloned()
                        .ok_or(format!("{key} holds a non-object"))
                })
                .collect(),
            Some(_) => Err(format!("{key} is not a list")),
        }
    };
    let (roles, tokens) = if status == Status::Ok {
        (list("m2m:rol")?, list("m2m:tk")?)
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(InformationAnswer {
        status,
        roles,
        tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_well_formed_ok_answer_gives_policies() {
        let read = |v: Value| read_policies(Some(&v));
        let acr = json!({"acr": [{"acor": ["Cx"], "acop": 2}]});
        let ok =
            read(json!({"m2m:aupy": {"sus": 1, "ca": 1, "ps": {"pv": [acr]}}})).expect("usable");
        assert_eq!((ok.status, ok.privileges.len()), (Status::Ok, 1));
        let na = read(json!({"m2m:aupy": {"sus": 2}})).expect("usable");
        assert_eq!(na.status, Status::NotApplicable);
        for garbage in [
            json!({"m2m:aupy": {"sus": 1, "ps": {"pv": [acr]}}}),
            json!({"m2m:aupy": {"sus": 1, "ca": 2, "ps": {"pv": [acr]}}}),
            json!({"m2m:aupy": {"sus": 1, "ca": 1}}),
            json!({"m2m:aupy": {"sus": 1, "ca": 1, "ps": {"pv": [{"acr": [{"acop": 2}]}]}}}),
            json!({"m2m:aupy": {"sus": 9}}),
            json!({"m2m:aupy": "x"}),
            json!({"m2m:auds": {"sus": 1}}),
        ] {
            assert!(read(garbage.clone()).is_err(), "{garbage}");
        }
        assert!(read_policies(None).is_err());
    }

    #[test]
    fn only_a_well_formed_answer_gives_information() {
        let read = |v: Value| read_information(Some(&v));
        let ok = read(json!({"m2m:auif": {"sus": 1, "m2m:rol": [{"rlid": "r"}]}})).expect("usable");
        assert_eq!(
            (ok.status, ok.roles.len(), ok.tokens.len()),
            (Status::Ok, 1, 0)
        );
        assert!(read(json!({"m2m:auif": {"sus": 1, "m2m:rol": {"rlid": "r"}}})).is_err());
        assert!(read(json!({"m2m:auif": {"sus": 1, "m2m:tk": ["x"]}})).is_err());
        assert!(read(json!({"m2m:auif": {}})).is_err());
    }
}
