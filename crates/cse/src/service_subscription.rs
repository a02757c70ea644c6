//! The service subscription as the source of truth for AE registration (TS-0001 clause
//! 10.2.2.2 step 003, TS-0004 clause 7.3.2.7): the `<serviceSubscribedAppRule>`s linked
//! (`rlk`) from the `<serviceSubscribedNode>`s that name this CSE (`csi`) decide which
//! App-IDs and AE-IDs a registration over a given credential may use.
//!
//! The decision, for an AE registering with App-ID `api` as AE-ID `ri`:
//! 1. the rules that apply are the linked ones whose `apci` matches the Credential-ID of
//!    the registration's security association (or that have no `apci`, for a registration
//!    without one);
//! 2. when some apply, one of them must allow both `api` (`aai`) and `ri` (`aae`), else
//!    4126 APP_RULE_VALIDATION_FAILED;
//! 3. when none applies, the credential entry's own `allowed_apps` decide, as before the
//!    rules existed (empty: any App-ID). A node of this CSE whose `rlk` is an empty list is
//!    the exception: it allows no registration (TS-0001 table 9.6.20-2), so then 4126.
//!
//! The credential file's `allowed_apps` seed the rules at start ([`seed`]): a rule it names
//! is created when missing and never changed, so an administrator's change survives a
//! restart. Every change to these resources is written to the audit log before it is made
//! (`security_manager::administration`).

use crate::addressing::{resolve, Target};
use crate::security_manager::administration::{self, Change};
use crate::{Caller, Cse};
use model::{time, Error, Resource, ResourceType, ResponseStatusCode, Result};
use serde_json::{json, Map, Value};

/// The seeds are part of the configuration; they are named here too, where they are used.
pub use crate::config::AppRuleSeed;

/// The profile and node the seeded rules hang from (under the CSEBase), by resource name.
const SEED_PROFILE: &str = "mssp-config";
/// The seeded node, under [`SEED_PROFILE`].
const SEED_NODE: &str = "svsn-config";
/// The label every seeded resource carries.
const SEED_LABEL: &str = "seeded-from-config";

/// The live rule a link names, if it names one (a link whose rule was deleted names none).
fn rule_at(cse: &Cse, link: &str) -> Result<Option<Resource>> {
    match resolve(link, &cse.config, cse.store.as_ref()) {
        Ok(Target::Resource(r)) if r.ty == ResourceType::ServiceSubscribedAppRule => Ok(Some(r)),
        Ok(_) => Ok(None),
        Err(e) if e.rsc == ResponseStatusCode::InternalServerError => Err(e),
        Err(_) => Ok(None),
    }
}

/// CREATE and UPDATE of a `<serviceSubscribedNode>`: every `rlk` entry names a
/// `<serviceSubscribedAppRule>` of this CSE (4000 otherwise), so a typo is caught when the
/// administrator makes it rather than when an AE is refused.
pub(crate) fn check_links(cse: &Cse, attrs: &Map<String, Value>) -> Result<()> {
    for link in attrs
        .get("rlk")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if rule_at(cse, link)?.is_none() {
            return Err(Error::bad_request(format!(
                "rlk entry '{link}' is not a serviceSubscribedAppRule of this CSE"
            )));
        }
    }
    Ok(())
}

/// The registration check of TS-0001 clause 10.2.2.2 step 003, prepared outside the
/// registration's write with everything it needs, and decided inside it
/// ([`RegistrationCheck::decide`]): the profiles, nodes and rules are read in the
/// transaction that creates the AE, so a concurrent change to them (a node relinked, a
/// rule narrowed) is seen either whole or not at all, never half.
#[derive(Debug)]
pub(crate) struct RegistrationCheck {
    api: String,
    ae_id: String,
    credential: Option<String>,
    allowed_apps: Vec<String>,
    cse_id: String,
    cse_name: String,
    sp_id: String,
    now: String,
}

impl RegistrationCheck {
    /// The check for `ae` (App-ID and AE-ID already set); `allowed_apps` is the credential
    /// entry's list, which decides when no rule applies (see the module documentation).
    pub(crate) fn new(
        cse: &Cse,
        caller: &Caller<'_>,
        ae: &Resource,
        allowed_apps: &[String],
    ) -> Self {
        Self {
            api: ae
                .attrs
                .get("api")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            ae_id: ae.ri().to_owned(),
            credential: caller
                .ctx
                .security_association()
                .map(|sa| sa.established.credential_id.clone()),
            allowed_apps: allowed_apps.to_vec(),
            cse_id: cse.config.cse_id.clone(),
            cse_name: cse.config.cse_name.clone(),
            sp_id: cse.config.sp_id.clone(),
            now: time::format(cse.config.clock.now()),
        }
    }

    /// Whether a resource read in the transaction is still alive.
    fn live(&self, r: &Resource) -> bool {
        r.et().is_none_or(|et| et > self.now.as_str())
    }

    /// The live rule a link names, read in the transaction (a link whose rule was deleted
    /// names none). A rule is a plain resource: no virtual resource is followed.
    fn rule_at(&self, t: &mut dyn store::Txn, link: &str) -> Result<Option<Resource>> {
        let Ok(path) = crate::addressing::local_path_of(link, &self.cse_id, &self.sp_id) else {
            return Ok(None);
        };
        let mut segments = path.split('/');
        let first = segments.next().unwrap_or_default();
        let mut srn = if first == "-" || first == self.cse_id || first == self.cse_name {
            self.cse_name.clone()
        } else {
            match t.get(first)? {
                Some(r) if self.live(&r) => r.srn,
                _ => return Ok(None),
            }
        };
        for seg in segments {
            srn.push('/');
            srn.push_str(seg);
        }
        Ok(t.get_by_srn(&srn)?
            .filter(|r| r.ty == ResourceType::ServiceSubscribedAppRule && self.live(r)))
    }

    /// The live `<serviceSubscribedNode>`s of every live profile that name this CSE, read
    /// in the transaction.
    fn nodes_of_this_cse(&self, t: &mut dyn store::Txn) -> Result<Vec<Resource>> {
        let mut nodes = Vec::new();
        for profile in t.children(&self.cse_id, ResourceType::M2mServiceSubscriptionProfile)? {
            if !self.live(&profile) {
                continue;
            }
            for node in t.children(profile.ri(), ResourceType::ServiceSubscribedNode)? {
                if self.live(&node) && model::resources::svsn::names_cse(&node.attrs, &self.cse_id)
                {
                    nodes.push(node);
                }
            }
        }
        Ok(nodes)
    }

    /// Inside the registration's write: allows the registration, or refuses it with 4126.
    pub(crate) fn decide(&self, t: &mut dyn store::Txn) -> Result<()> {
        let api = self.api.as_str();
        let credential = self.credential.as_deref();
        let tag = credential.map(|c| security::privacy::credential_tag(c).to_string());
        let nodes = self.nodes_of_this_cse(t)?;
        let closed = nodes.iter().any(|n| {
            n.attrs
                .get("rlk")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
        });
        let mut applicable = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for link in nodes.iter().flat_map(|n| n.str_list("rlk")) {
            if let Some(rule) = self.rule_at(t, &link)? {
                if seen.insert(rule.ri().to_owned())
                    && model::resources::asar::applies_to(&rule.attrs, credential)
                {
                    applicable.push(rule);
                }
            }
        }
        let refuse = |why: &str| {
            tracing::info!(
                credential = tag.as_deref().unwrap_or("none"),
                app_id = %model::Untrusted(api),
                rules = applicable.len(),
                "AE registration refused: {why}"
            );
            Err(Error::new(
                ResponseStatusCode::AppRuleValidationFailed,
                format!("the service subscription does not allow App-ID '{api}' for this AE-ID and credential"),
            ))
        };
        if applicable.is_empty() {
            if closed {
                return refuse("a serviceSubscribedNode of this CSE links no rule (rlk is empty)");
            }
            if !self.allowed_apps.is_empty()
                && !self.allowed_apps.iter().any(|a| model::id::glob(a, api))
            {
                return refuse(
                    "no rule applies and the credential's allowed_apps exclude the App-ID",
                );
            }
            return Ok(());
        }
        match applicable
            .iter()
            .find(|r| model::resources::asar::allows(&r.attrs, api, &self.ae_id))
        {
            Some(rule) => {
                tracing::debug!(
                    rule = rule.ri(),
                    "AE registration allowed by a serviceSubscribedAppRule"
                );
                Ok(())
            }
            None => refuse("no applicable serviceSubscribedAppRule allows the App-ID and AE-ID"),
        }
    }
}

/// The resource name of the rule seeded for a Credential-ID: `cfg-` and the Credential-ID
/// with every character other than a letter, digit, `-` or `.` written `_` and two hex
/// digits, so that two Credential-IDs never share a name.
fn seed_name(credential_id: &str) -> String {
    let mut rn = String::from("cfg-");
    for b in credential_id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.') {
            rn.push(char::from(b));
        } else {
            rn.push_str(&format!("_{b:02x}"));
        }
    }
    rn
}

/// A resource of `ty` named `rn` under `parent`, with the universal attributes set.
fn new_resource(
    cse: &Cse,
    parent: &Resource,
    ty: ResourceType,
    rn: &str,
    attrs: Value,
) -> Resource {
    let now = cse.config.clock.now();
    let stamp = time::format(now);
    let mut map = attrs.as_object().cloned().unwrap_or_default();
    for (k, v) in [
        ("ri", json!(model::id::new_resource_id(ty.short_name()))),
        ("rn", json!(rn)),
        ("pi", json!(parent.ri())),
        ("ty", json!(ty.code())),
        ("ct", json!(stamp)),
        ("lt", json!(stamp)),
        ("et", crate::create::default_expiration(&cse.config, now)),
        ("lbl", json!([SEED_LABEL])),
    ] {
        map.insert(k.to_owned(), v);
    }
    Resource {
        ty,
        srn: format!("{}/{rn}", parent.srn),
        attrs: map,
    }
}

/// At start: turns the configured [`AppRuleSeed`]s into rules linked from a node of this
/// CSE (`<CSEBase>/mssp-config/svsn-config`), creating what is missing. A rule that exists
/// is left as it is, so an administrator's change through the API wins over the file until
/// the administrator deletes the rule; the seeded node only ever gains links. A seed whose
/// App-ID patterns a rule cannot hold is skipped with a warning (the credential's
/// `allowed_apps` then still decide for it). Every resource created is audited.
pub(crate) async fn seed(cse: &Cse) -> Result<()> {
    let seeds = &cse.config.app_rule_seeds;
    if seeds.is_empty() {
        return Ok(());
    }
    let base = cse
        .store
        .get(&cse.config.cse_id)?
        .ok_or_else(|| Error::internal("no CSEBase"))?;
    let mut created = Vec::new();
    let mut links = Vec::new();
    for s in seeds {
        let rn = seed_name(&s.credential_id);
        if let Some(rule) = cse.store.get_by_srn(&format!("{}/{rn}", base.srn))? {
            if rule.str_list("aai") != s.allowed_apps {
                tracing::info!(rule = rule.ri(), "allowed_apps of a credential differ from its administered rule; the rule is kept");
            }
            links.push(rule.ri().to_owned());
            continue;
        }
        let attrs = json!({
            "apci": [s.credential_id],
            "aai": s.allowed_apps,
            "aae": ["*"],
        });
        let rule = new_resource(
            cse,
            &base,
            ResourceType::ServiceSubscribedAppRule,
            &rn,
            attrs,
        );
        if let Err(e) = model::resources::asar::validate(&rule.attrs) {
            tracing::warn!(reason = %e.message, "a credential's allowed_apps cannot seed a serviceSubscribedAppRule; they still apply as configured");
            continue;
        }
        links.push(rule.ri().to_owned());
        created.push(rule);
    }
    let profile = match cse
        .store
        .get_by_srn(&format!("{}/{SEED_PROFILE}", base.srn))?
    {
        Some(p) => p,
        None => {
            let p = new_resource(
                cse,
                &base,
                ResourceType::M2mServiceSubscriptionProfile,
                SEED_PROFILE,
                json!({}),
            );
            created.push(p.clone());
            p
        }
    };
    let mut changed = Vec::new();
    match cse
        .store
        .get_by_srn(&format!("{}/{SEED_NODE}", profile.srn))?
    {
        Some(mut node) => {
            let mut rlk = node.str_list("rlk");
            let before = rlk.len();
            for l in &links {
                if !rlk.contains(l) {
                    rlk.push(l.clone());
                }
            }
            if rlk.len() != before && node.attrs.contains_key("csi") {
                node.attrs.insert("rlk".into(), json!(rlk));
                node.attrs
                    .insert("lt".into(), json!(time::format(cse.config.clock.now())));
                changed.push(node);
            }
        }
        None => {
            let node = new_resource(
                cse,
                &profile,
                ResourceType::ServiceSubscribedNode,
                SEED_NODE,
                json!({
                    "ni": cse.config.cse_id,
                    "csi": format!("/{}", cse.config.cse_id),
                    "rlk": links,
                }),
            );
            created.push(node);
        }
    }
    if created.is_empty() && changed.is_empty() {
        return Ok(());
    }
    // Write-ahead, as for a change through the API.
    for (r, change) in created
        .iter()
        .map(|r| (r, Change::Create))
        .chain(changed.iter().map(|r| (r, Change::Update)))
    {
        administration::record(cse, "configuration", change, r).await?;
    }
    let (to_insert, to_update) = (created.clone(), changed.clone());
    store::write(cse.store.as_ref(), move |t| {
        for r in &to_insert {
            t.insert(r)?;
        }
        for r in &to_update {
            t.update(r)?;
        }
        Ok(())
    })
    .await?;
    tracing::info!(
        created = created.len(),
        updated = changed.len(),
        "service subscription seeded from the credential file"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_names_are_valid_and_distinct() {
        let a = seed_name("12-a_b@c");
        let b = seed_name("12-a@b_c");
        assert_ne!(a, b);
        for n in [a, b, seed_name("3x-0123abcd"), seed_name("12-s@sp.example")] {
            assert!(model::id::validate_resource_name(&n).is_ok(), "{n}");
        }
    }
}
