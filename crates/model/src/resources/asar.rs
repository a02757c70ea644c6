//! `<serviceSubscribedAppRule>` (ty 19, TS-0004 clause 7.4.29, TS-0001 clause 9.6.29): which
//! App-IDs (`aai`) and AE-ID-Stems (`aae`) an AE may register with, when it registers over a
//! security association whose Credential-ID matches `apci` (or, with `apci` absent or
//! empty, without any association). Every list is an allow-list of patterns in which `*`
//! stands for any run of characters; an absent or empty list allows nothing.
//!
//! `ari` (allowedRole-IDs) is defined but not supported (5001): it would restrict the roles used in requests,
//! which this CSE does not check against the subscription, so storing it would promise a
//! restriction that is not enforced.

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};
use crate::id::glob;
use serde_json::{Map, Value};

/// Attribute table (TS-0004 table 7.4.29.1-3).
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("apci", Kind::UriList, Optional, Optional),
    attr("aai", Kind::UriList, Optional, Optional),
    attr("aae", Kind::UriList, Optional, Optional),
    attr("ari", Kind::Unsupported, Optional, Optional),
];

/// The strings of a list attribute (absent: none).
fn list<'a>(attrs: &'a Map<String, Value>, name: &str) -> impl Iterator<Item = &'a str> {
    attrs
        .get(name)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// Checks what the table cannot, on CREATE and on the resource an UPDATE would leave: an
/// `aai` pattern starts with `*`, `R` or `N` (TS-0004 clauses 7.4.29.2.1 and 7.4.29.2.3),
/// an `aae` pattern with `*`, `C` or `S` (the AE-ID-Stem forms of TS-0001 table 7.2-1), and
/// neither holds a `/` (which no App-ID or AE-ID-Stem contains). 4000 otherwise.
pub fn validate(attrs: &Map<String, Value>) -> Result<()> {
    let checks: [(&str, &[char], &str); 2] = [
        (
            "aai",
            &['*', 'R', 'N'],
            "an App-ID pattern starts with *, R or N",
        ),
        (
            "aae",
            &['*', 'C', 'S'],
            "an AE-ID-Stem pattern starts with *, C or S",
        ),
    ];
    for (name, starts, why) in checks {
        if let Some(bad) = list(attrs, name).find(|p| !p.starts_with(starts) || p.contains('/')) {
            return Err(Error::bad_request(format!(
                "{name} entry '{bad}' is not allowed: {why} and has no '/'"
            )));
        }
    }
    Ok(())
}

/// Whether the rule governs a registration over `credential` (its Credential-ID), or without
/// a security association (`None`): an `apci` pattern matches the Credential-ID, or the rule
/// has no `apci` and there is no association (TS-0001 table 9.6.29-2).
pub fn applies_to(attrs: &Map<String, Value>, credential: Option<&str>) -> bool {
    match credential {
        Some(c) => list(attrs, "apci").any(|p| glob(p, c)),
        None => list(attrs, "apci").next().is_none(),
    }
}

/// Whether the rule allows an AE with App-ID `app_id` to register as AE-ID-Stem `ae_id`:
/// both lists hold a matching pattern.
pub fn allows(attrs: &Map<String, Value>, app_id: &str, ae_id: &str) -> bool {
    list(attrs, "aai").any(|p| glob(p, app_id)) && list(attrs, "aae").any(|p| glob(p, ae_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn patterns_have_the_identifier_forms() {
        assert!(validate(&map(
            json!({"aai": ["*", "Nsensor", "R12*X"], "aae": ["*", "C*", "S*", "Cabc"]})
        ))
        .is_ok());
        assert!(validate(&map(json!({}))).is_ok());
        for bad in [
            json!({"aai": ["sensor"]}),
            json!({"aai": ["rlegacy"]}),
            json!({"aai": ["N/x"]}),
            json!({"aae": ["Xabc"]}),
            json!({"aae": ["C/x"]}),
        ] {
            assert!(validate(&map(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rule_applies_to_its_credentials_or_to_no_association() {
        let rule = map(json!({"apci": ["12-s*@sp"]}));
        assert!(applies_to(&rule, Some("12-s1@sp")));
        assert!(!applies_to(&rule, Some("12-t1@sp")));
        assert!(!applies_to(&rule, None));
        let any = map(json!({"apci": ["*"]}));
        assert!(applies_to(&any, Some("3x-abcd")));
        assert!(!applies_to(&any, None));
        for open in [json!({}), json!({"apci": []})] {
            let rule = map(open);
            assert!(applies_to(&rule, None));
            assert!(!applies_to(&rule, Some("12-s1@sp")));
        }
    }

    #[test]
    fn both_lists_must_allow() {
        let rule = map(json!({"aai": ["Nsensor*"], "aae": ["C*"]}));
        assert!(allows(&rule, "Nsensor-7", "Cabc"));
        assert!(!allows(&rule, "Nother", "Cabc"));
        assert!(!allows(&rule, "Nsensor", "Sabc"));
        assert!(!allows(&map(json!({"aai": ["*"]})), "Nx", "Cabc"));
        assert!(!allows(&map(json!({"aae": ["*"]})), "Nx", "Cabc"));
        assert!(!allows(
            &map(json!({"aai": [], "aae": ["*"]})),
            "Nx",
            "Cabc"
        ));
    }
}
