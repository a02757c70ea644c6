//! This CSE as its own Role and Token Repository (TS-0003 clause 7.4.1): the `<role>` and
//! `<token>` resources under its `<CSEBase>`, read by its access decisions acting as PIP and
//! PDP (clause 7.4.3 steps 2 to 4).
//!
//! * A Role-ID the request names in `rids` is verified when a `<role>` of this CSE assigns
//!   it to the originator: its issuer (`tkis`) is this CSE, its holder (`tkhd`) is the
//!   originator in any form of its ID, now is within `tknb`..`tkna`, and the resource has
//!   not expired. Such roles are facts of the decision, matched against `acor` like a
//!   token's roles. Deleting the `<role>` revokes it at the next request.
//! * A Token-ID the request names in `tids` is looked up among the `<token>`s of this CSE
//!   and its `tkob` verified exactly as a token carried in `tkns` (issuer key, period,
//!   audience, holder). An unknown Token-ID refuses the request (4103): the originator
//!   asked for privileges that no longer exist, as after a deletion.
//!
//! Only `<role>`s and `<token>`s directly under the `<CSEBase>` count: those are the ones
//! only the admin can create (`resources::rol`, `resources::tk`). Both are found through
//! records written with them (by Role-ID, by Token-ID), so a request reads the resources it
//! names and no others, however many roles and tokens the CSE keeps.

use super::dynamic::{audience, holder_forms};
use crate::config::CseConfig;
use crate::originator::Originator;
use model::time::Timestamp;
use model::{Error, Resource, ResourceType, Result};
use security::token::{Expectations, VerifiedToken};
use serde_json::Value;
use store::Store;

/// The Role-IDs among `asked` that a `<role>` of this CSE assigns to `originator` at `now`
/// (each once, in the order asked).
pub fn held_roles(
    store: &dyn Store,
    config: &CseConfig,
    originator: &Originator,
    asked: &[String],
    now: Timestamp,
) -> Result<Vec<String>> {
    if asked.is_empty() || matches!(originator, Originator::Registering(_)) {
        return Ok(Vec::new());
    }
    let holders = holder_forms(originator, config);
    let ours = audience(config);
    let mut held: Vec<String> = Vec::new();
    for rlid in asked {
        if held.contains(rlid) {
            continue;
        }
        let prefix = crate::records::role_prefix(rlid);
        for (_, ri) in store.table_prefix(crate::records::ROLE_ID, &prefix)? {
            let Some(role) = store.get_shared(&String::from_utf8_lossy(&ri))? else {
                continue;
            };
            let assigned = role.ty == ResourceType::Role
                && role.pi() == config.cse_id
                && not_expired(&role, now)
                && text(&role, "rlid") == Some(rlid.as_str())
                && text(&role, "tkhd").is_some_and(|h| holders.iter().any(|f| f == h))
                && text(&role, "tkis").is_some_and(|i| ours.iter().any(|o| o == i))
                && model::resources::rol::in_period(&role.attrs, now);
            if assigned {
                tracing::debug!(role = %model::Untrusted(rlid), via = role.ri(), "role verified");
                held.push(rlid.clone());
                break;
            }
        }
    }
    Ok(held)
}

/// The tokens of this CSE that `tids` name, each verified for `originator` as a token it
/// carried would be. The first that is unknown or fails refuses the request.
pub fn named_tokens(
    store: &dyn Store,
    config: &CseConfig,
    originator: &Originator,
    tids: &[String],
) -> Result<Vec<VerifiedToken>> {
    if tids.is_empty() || matches!(originator, Originator::Registering(_)) {
        return Ok(Vec::new());
    }
    let now = config.clock.now();
    let audience = audience(config);
    let holder = holder_forms(originator, config);
    let expect = Expectations {
        audience: &audience,
        holder: &holder,
        now: now.timestamp(),
    };
    let mut out = Vec::with_capacity(tids.len());
    for tid in tids {
        let Some(token) = stored_token(store, tid, now)? else {
            tracing::info!(originator = originator.id(config), token = %model::Untrusted(tid), "token ID refused: no such token");
            return Err(Error::no_privilege(format!("token '{tid}' is not known")));
        };
        let object = text(&token, "tkob").unwrap_or_default();
        match config.dynamic_authorization.issuers.verify(object, &expect) {
            Ok(t) => out.push(t),
            Err(e) => {
                tracing::info!(originator = originator.id(config), token = %model::Untrusted(tid), via = token.ri(), reason = %model::Untrusted(&e), rsc = e.rsc().code(), "token ID refused");
                return Err(Error::from(e));
            }
        }
    }
    Ok(out)
}

/// The `<token>` holding Token-ID `tid`, unless it has expired.
pub(crate) fn stored_token(
    store: &dyn Store,
    tid: &str,
    now: Timestamp,
) -> Result<Option<Resource>> {
    let Some(ri) = store.record(crate::records::TOKEN_ID, tid)? else {
        return Ok(None);
    };
    let ri = String::from_utf8_lossy(&ri);
    Ok(store
        .get(&ri)?
        .filter(|r| r.ty == ResourceType::Token && not_expired(r, now)))
}

fn not_expired(r: &Resource, now: Timestamp) -> bool {
    r.attrs
        .get("et")
        .and_then(Value::as_str)
        .is_none_or(|et| model::time::parse(et).is_ok_and(|et| et > now))
}

fn text<'a>(r: &'a Resource, name: &str) -> Option<&'a str> {
    r.attrs.get(name).and_then(Value::as_str)
}
