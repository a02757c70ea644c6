//! The conditions of one access control context (`acco` element): time window (`actw`),
//! peer address (`acip`), originator location (`aclr`) and, as a secure-cse extension, the
//! credential level of the peer (`scl`). Every condition the context has must hold; an
//! absent one holds. A fact the CSE does not know (no peer address, no location, no
//! credential level) fails the condition that needs it.

use super::decision::AccessRequest;
use super::explain::{Condition, Failure};
use model::resources::acp::AccessContext;

/// `actw`: the request time is in one of the windows.
pub(crate) fn window_ok(ctx: &AccessContext, req: &AccessRequest) -> bool {
    ctx.windows.is_empty() || ctx.windows.iter().any(|w| w.matches(req.time))
}

/// `acip`: the peer's address is in one of the blocks.
pub(crate) fn ip_ok(ctx: &AccessContext, req: &AccessRequest) -> bool {
    match &ctx.addresses {
        None => true,
        Some(blocks) => req
            .ip
            .is_some_and(|ip| blocks.iter().any(|b| b.contains(ip))),
    }
}

/// `aclr`: the originator's known location is in the region.
pub(crate) fn location_ok(ctx: &AccessContext, req: &AccessRequest) -> bool {
    match &ctx.region {
        None => true,
        Some(region) => req.location.as_ref().is_some_and(|l| region.contains(l)),
    }
}

/// `scl`: the peer's credential level is at least the minimum.
pub(crate) fn level_ok(ctx: &AccessContext, req: &AccessRequest) -> bool {
    ctx.min_level
        .is_none_or(|min| req.credential_level.is_some_and(|l| l >= min))
}

/// Whether every condition of the context holds.
pub(crate) fn context_ok(ctx: &AccessContext, req: &AccessRequest) -> bool {
    window_ok(ctx, req) && ip_ok(ctx, req) && location_ok(ctx, req) && level_ok(ctx, req)
}

/// The conditions of context number `n` that fail, described for the explainer. Uses the
/// same checks as [`context_ok`], so the trace cannot disagree with the decision.
pub(crate) fn failures(ctx: &AccessContext, n: usize, req: &AccessRequest, out: &mut Vec<Failure>) {
    if !window_ok(ctx, req) {
        let windows: Vec<&str> = ctx.windows.iter().map(|w| w.as_str()).collect();
        out.push(Failure::new(
            Condition::TimeWindow,
            format!(
                "acco {n}: {} is outside actw [{}]",
                model::time::format(req.time),
                windows.join("; ")
            ),
        ));
    }
    if !ip_ok(ctx, req) {
        let blocks: Vec<String> = ctx
            .addresses
            .iter()
            .flatten()
            .map(ToString::to_string)
            .collect();
        let ip = req
            .ip
            .map_or_else(|| "unknown address".to_owned(), |ip| ip.to_string());
        out.push(Failure::new(
            Condition::IpAddress,
            format!("acco {n}: {ip} is not in acip [{}]", blocks.join(", ")),
        ));
    }
    if !location_ok(ctx, req) {
        let region = ctx
            .region
            .as_ref()
            .map_or_else(String::new, ToString::to_string);
        let at = req
            .location
            .as_ref()
            .map_or_else(|| "location unknown".to_owned(), |l| format!("at {l}"));
        out.push(Failure::new(
            Condition::Location,
            format!("acco {n}: {at}, aclr wants {region}"),
        ));
    }
    if !level_ok(ctx, req) {
        let have = req
            .credential_level
            .map_or_else(|| "unknown".to_owned(), |l| l.to_string());
        out.push(Failure::new(
            Condition::Level,
            format!(
                "acco {n}: credential level {have}, scl needs {}",
                ctx.min_level.unwrap_or(0)
            ),
        ));
    }
}
