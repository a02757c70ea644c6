//! This CSE as Policy Enforcement Point asking a Policy Decision Point on another CSE
//! (TS-0003 clause 7.5.2, communication mode a). When the policies of a target refuse a
//! request, the `<authorizationDecision>` resources that those policies name in `adri` are
//! asked, in order, by an UPDATE carrying the request's facts. Only a PERMIT with status OK
//! grants; NOT_APPLICABLE, no answer or an unusable one moves to the next PDP; any other
//! answer ends the consultation. Like a DAS, a PDP can only add to what the policies grant,
//! and whatever goes wrong leaves the refusal as it was (fail closed).
//!
//! Only URLs the operator lists in `dynamic_authorization.pdp_urls` are ever contacted
//! (checked when `adri` is written and again before each consultation). The request's
//! tokens are not forwarded: they are bearer credentials addressed to this CSE.

use super::{dynamic::holder_forms, RequestContext};
use crate::config::CseConfig;
use crate::originator::Originator;
use crate::outbound::{Limits, Outbound, Senders};
use model::resources::auds::{Status, PERMIT};
use model::{
    AccessOperation, Error, Operation, Request, Resource, ResourceType, ResponseStatusCode, Result,
};
use serde_json::{json, Map, Value};
use std::time::Duration;
use store::Store;

/// Checks that every `adri` entry of an ACP being written is a PDP the configuration
/// lists (4000 otherwise: the CSE would never ask it, so accepting it would hide the
/// mistake).
pub fn check_adri(config: &CseConfig, attrs: &Map<String, Value>) -> Result<()> {
    let listed = &config.dynamic_authorization.pdp_urls;
    let urls = attrs.get("adri").and_then(Value::as_array);
    match urls
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|u| !listed.lists(u))
    {
        Some(url) => Err(Error::bad_request(format!(
            "adri entry '{url}' is not a PDP this CSE may ask (dynamic_authorization.pdp_urls)"
        ))),
        None => Ok(()),
    }
}

/// The most PDPs one refused request asks, so that a policy naming many cannot make one
/// request wait for many timeouts.
pub const MAX_ASKED: usize = 4;

/// The `adri` entries of the policies `owner` names, in order, each once, at most
/// [`MAX_ASKED`].
pub fn named_pdps(store: &dyn Store, owner: &Resource) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    for acp in owner.str_list("acpi") {
        let Ok(Some(acp)) = store.get_shared(&acp) else {
            continue;
        };
        if acp.ty != ResourceType::AccessControlPolicy {
            continue;
        }
        for url in acp.str_list("adri") {
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
    }
    urls.truncate(MAX_ASKED);
    urls
}

/// The facts of a refused request that a PDP is told.
#[derive(Debug)]
pub struct Question<'a> {
    /// The originator.
    pub originator: &'a Originator,
    /// The target.
    pub target: &'a Resource,
    /// The operation (DISCOVERY is sent as a RETRIEVE with discovery filter usage).
    pub op: AccessOperation,
    /// The type to create, for a CREATE.
    pub create_ty: Option<ResourceType>,
    /// The Role-IDs the request named.
    pub rids: &'a [String],
    /// The request's context (time, peer address).
    pub ctx: &'a RequestContext,
}

/// Asks the PDPs at `urls` in order; true only when one answers PERMIT with status OK.
pub async fn permits(
    config: &CseConfig,
    outbound: &Senders,
    urls: &[String],
    q: &Question<'_>,
) -> bool {
    let body = question_body(config, q);
    let origin = format!("/{}", config.cse_id);
    let limits = Limits {
        timeout: Duration::from_millis(config.dynamic_authorization.timeout_ms.max(1)),
        max_body_bytes: 64 * 1024,
    };
    for url in urls {
        if let Err(why) = config.dynamic_authorization.pdp_urls.check(url).await {
            tracing::warn!(pdp = %model::Untrusted(url), reason = %why, "remote PDP not asked");
            continue;
        }
        let mut req = Request::new(Operation::Update, "", Some(origin.clone()));
        req.pc = Some(body.clone());
        let answer = match outbound.send(url, &req, limits).await {
            Ok(resp) if resp.rsc == ResponseStatusCode::Updated => read_answer(resp.pc.as_ref()),
            Ok(resp) => Err(format!("the PDP answered {}", resp.rsc.code())),
            Err(e) => Err(e.to_string()),
        };
        match answer {
            Ok((Some(PERMIT), s)) if s == Status::Ok.code() => {
                tracing::info!(pdp = %model::Untrusted(url), target = q.target.ri(), "remote PDP permits");
                return true;
            }
            Ok((_, s)) if s == Status::NotApplicable.code() => {
                tracing::info!(pdp = %model::Untrusted(url), "remote PDP: not applicable; asking the next");
            }
            Ok((dec, sus)) => {
                tracing::info!(pdp = %model::Untrusted(url), ?dec, sus, "remote PDP does not permit");
                return false;
            }
            Err(why) => {
                tracing::warn!(pdp = %model::Untrusted(url), reason = %model::Untrusted(&why), "remote PDP: no usable answer");
            }
        }
    }
    false
}

/// The `m2m:auds` of the UPDATE: `to` as the PDP reaches the target (SP-relative), `fr`
/// as this CSE knows the originator.
fn question_body(config: &CseConfig, q: &Question<'_>) -> Value {
    let fr = holder_forms(q.originator, config)
        .into_iter()
        .find(|f| f.starts_with('/'))
        .unwrap_or_else(|| q.originator.id(config).to_owned());
    let (op, discovery) = match q.op {
        AccessOperation::CREATE => (1, false),
        AccessOperation::UPDATE => (3, false),
        AccessOperation::DELETE => (4, false),
        AccessOperation::NOTIFY => (5, false),
        AccessOperation::DISCOVERY => (2, true),
        _ => (2, false),
    };
    let mut auds = json!({
        "to": format!("/{}/{}", config.cse_id, q.target.ri()),
        "fr": fr,
        "op": op,
        "rtm": model::time::format(q.ctx.time),
    });
    if discovery {
        auds["fu"] = json!({"fu": 1});
    }
    if let Some(ty) = q.create_ty {
        auds["rrt"] = json!(ty.code());
    }
    if !q.rids.is_empty() {
        auds["rids"] = json!(q.rids);
    }
    match q.ctx.ip {
        Some(std::net::IpAddr::V4(ip)) => auds["oip"] = json!({"ipv4Address": ip.to_string()}),
        Some(std::net::IpAddr::V6(ip)) => auds["oip"] = json!({"ipv6Address": ip.to_string()}),
        None => {}
    }
    json!({ "m2m:auds": auds })
}

/// `(dec, sus)` of an answer; an answer without a known `sus` is unusable.
fn read_answer(pc: Option<&Value>) -> std::result::Result<(Option<u64>, u64), String> {
    let auds = pc
        .and_then(|pc| pc.get("m2m:auds"))
        .ok_or("no m2m:auds in the answer")?;
    let sus = auds
        .get("sus")
        .and_then(Value::as_u64)
        .filter(|s| (1..=5).contains(s))
        .ok_or("no status (sus) in the answer")?;
    Ok((auds.get("dec").and_then(Value::as_u64), sus))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_permit_with_status_ok_reads_as_one() {
        let read = |v: Value| read_answer(Some(&v));
        assert_eq!(
            read(json!({"m2m:auds": {"dec": 1, "sus": 1}})),
            Ok((Some(1), 1))
        );
        assert_eq!(read(json!({"m2m:auds": {"sus": 2}})), Ok((None, 2)));
        assert!(read(json!({"m2m:auds": {"dec": 1}})).is_err());
        assert!(read(json!({"m2m:auds": {"dec": 1, "sus": 9}})).is_err());
        assert!(read(json!({"m2m:dac": {"dec": 1, "sus": 1}})).is_err());
        assert!(read_answer(None).is_err());
    }
}
