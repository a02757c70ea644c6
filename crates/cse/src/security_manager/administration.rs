//! The one audit path of the security administration resources: `<role>` and `<token>`
//! (who holds which privileges) and `<m2mServiceSubscriptionProfile>`,
//! `<serviceSubscribedNode>` and `<serviceSubscribedAppRule>` (who may register), and the
//! distributed-authorization points `<authorizationDecision>`, `<authorizationPolicy>` and
//! `<authorizationInformation>` (with the answers of their procedures). Each of
//! their creations, updates, deletions and expiries is an `admin-action` entry of the audit
//! log, written durably *before* the change is written to the store: an audit log that
//! cannot be written refuses the change (5000) with nothing changed, so no acknowledged
//! change is missing from the log. An entry is therefore the record of a change allowed and
//! about to be written; when the store write fails after it, the originator is told so.
//!
//! Actions are named `<short type name>-<verb>`: `rol-create`, `tk-update`, `mssp-delete`,
//! `asar-expire`... The target names the resource (`ri`, then its structured name) and the
//! attributes that decide what it grants, never a token itself (`tkob`).

use crate::Cse;
use manager::audit::Event;
use model::{Resource, ResourceType, Result};
use serde_json::{Map, Value};

/// A change of a security administration resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// A CREATE (or a resource seeded from the configuration).
    Create,
    /// An UPDATE.
    Update,
    /// A DELETE, of the resource or of an ancestor.
    Delete,
    /// The expiry sweep removing it (or an ancestor).
    Expire,
}

impl Change {
    fn verb(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Expire => "expire",
        }
    }
}

/// Whether changes of resources of `ty` are audited here.
pub(crate) fn administers(ty: ResourceType) -> bool {
    matches!(
        ty,
        ResourceType::Role
            | ResourceType::Token
            | ResourceType::M2mServiceSubscriptionProfile
            | ResourceType::ServiceSubscribedNode
            | ResourceType::ServiceSubscribedAppRule
            | ResourceType::AuthorizationDecision
            | ResourceType::AuthorizationPolicy
            | ResourceType::AuthorizationInformation
    )
}

/// The attributes of a resource of `ty` that decide what it grants, shown in its entry.
fn deciding(ty: ResourceType) -> &'static [&'static str] {
    match ty {
        ResourceType::Role => &["rlid", "tkis", "tkhd", "tknb", "tkna", "acpi"],
        ResourceType::Token => &["tkid", "tkis", "tkhd", "tknb", "tkna", "acpi"],
        ResourceType::ServiceSubscribedNode => &["ni", "csi", "rlk", "acpi"],
        ResourceType::ServiceSubscribedAppRule => &["apci", "aai", "aae", "acpi"],
        _ => &["acpi"],
    }
}

/// Writes `change` of `r` (as it will be after the change) by `actor` to the audit log and
/// returns once it is on disk; no effect for other types or without an audit log. Call it
/// before the store write: its error (5000) refuses the change.
pub(crate) async fn record(cse: &Cse, actor: &str, change: Change, r: &Resource) -> Result<()> {
    if !administers(r.ty) {
        return Ok(());
    }
    let shown: Map<String, Value> = deciding(r.ty)
        .iter()
        .filter_map(|k| r.attrs.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    let action = format!("{}-{}", r.ty.short_name(), change.verb());
    let target = format!("{} ({}) {}", r.ri(), r.srn, Value::Object(shown));
    write(cse, actor, action, target).await
}

/// An answer of a procedure bound to the authorization resource `r` (a PDP's decision, a
/// PRP's policies, a PIP's roles and tokens): action `<short name>-<verb>` (`auds-decide`,
/// `aupy-retrieve`, `auif-retrieve`), with `detail` (the question and the answer, never a
/// token). Answers grant or refuse privileges like the resources above, so they are in the
/// same log, on disk before the answer.
pub(crate) async fn record_procedure(
    cse: &Cse,
    actor: &str,
    r: &Resource,
    verb: &str,
    detail: &str,
) -> Result<()> {
    let action = format!("{}-{verb}", r.ty.short_name());
    let target = format!("{} ({}) {detail}", r.ri(), r.srn);
    write(cse, actor, action, target).await
}

/// Writes one `admin-action` entry durably (no effect without an audit log).
async fn write(cse: &Cse, actor: &str, action: String, target: String) -> Result<()> {
    tracing::info!(
        actor,
        action,
        target = %model::Untrusted(&target),
        "security administration resource changing"
    );
    let Some(trail) = cse.audit() else {
        return Ok(());
    };
    trail
        .record_durably(Event::AdminAction {
            actor: actor.to_owned(),
            action,
            target: Some(target),
        })
        .await
        .inspect_err(
            |e| tracing::error!(error = %e, "security administration change not audited: refused"),
        )
}

/// Before `r` and its subtree are removed (a DELETE or an expiry): [`record`]s `change` for
/// `r` and for every administered resource below it. Only an administered resource can have
/// administered descendants (a `<serviceSubscribedNode>` under its profile), so other
/// removals read nothing more.
pub(crate) async fn record_removal(
    cse: &Cse,
    actor: &str,
    change: Change,
    r: &Resource,
) -> Result<()> {
    if !administers(r.ty) {
        return Ok(());
    }
    record(cse, actor, change, r).await?;
    for below in cse.store.descendants(&r.srn, None)? {
        record(cse, actor, change, &below).await?;
    }
    Ok(())
}
