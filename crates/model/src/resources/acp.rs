//! `<accessControlPolicy>` (ty 1): privileges for other resources (`pv`) and for itself (`pvs`).
//!
//! Both are `m2m:setOfAcrs`. [`parse_rule`] turns one rule into an [`AccessControlRule`],
//! checking every element, including the contexts (`acco`: time windows, IP blocks,
//! location regions and the secure-cse credential level). Validation at CREATE and UPDATE is
//! that same parse, so whatever was accepted can be evaluated, and the CSE compiles stored
//! rules with it too.

pub mod ip;
pub mod region;
pub mod schedule;

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};
use ip::{Family, IpBlock};
use region::Region;
use schedule::Schedule;
use serde_json::{Map, Value};

/// Attribute table (TS-0004 tables 7.4.2.1-2 and 7.4.2.1-3). `<accessControlPolicy>` has no
/// `creator` (TS-0001 Table 9.6.2.0-2): a `cr` in a CREATE is an unknown attribute, 4000
/// (TS-0004 clause 7.3.3.3). Defined but not supported (5001): announcement (`at`, `aa`:
/// this CSE announces nothing). `adri` names the remote PDPs asked when `pv` refuses;
/// `apri` and `airi` the PRPs and PIPs (local `<authorizationPolicy>` and
/// `<authorizationInformation>` resources or listed remote ones) whose policies and roles are
/// evaluated when `pv` refuses.
pub const ATTRIBUTES: &[Attr] = &[
    attr("pv", Kind::Acrs, Mandatory, Optional),
    attr("pvs", Kind::Acrs, Mandatory, Optional),
    attr("at", Kind::Unsupported, Optional, Optional),
    attr("aa", Kind::Unsupported, Optional, Optional),
    attr("adri", Kind::UriList, Optional, Optional),
    attr("apri", Kind::UriList, Optional, Optional),
    attr("airi", Kind::UriList, Optional, Optional),
];

/// The `acco` key of the secure-cse extension: the minimum key-store level (1 software,
/// 2 TPM, 3 HSM) of the credential behind the originator's security association. Not a
/// oneM2M short name; chosen so it collides with none.
pub const LEVEL_KEY: &str = "scl";

/// One `accessControlRule`, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessControlRule {
    /// `acor`: who the rule is for (IDs, patterns, `all`, SP domains, groups, roles).
    pub originators: Vec<String>,
    /// `acop`: the operation bit mask (1..=63).
    pub operations: u8,
    /// `acco`: the rule applies when any one context holds; none means always.
    pub contexts: Vec<AccessContext>,
    /// `acaf`: the originator must have been authenticated (`rq_authn`).
    pub authentication: bool,
    /// `acod`: for CREATE, what may be created where; none means anything.
    pub object_details: Vec<ObjectDetails>,
}

/// One `accessControlContexts` element: every condition it has must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccessContext {
    /// `actw`: the request time must fall in one of these windows (none: any time).
    pub windows: Vec<Schedule>,
    /// `acip`: the peer's address must be in one of these blocks (`None`: any address).
    pub addresses: Option<Vec<IpBlock>>,
    /// `aclr`: the originator's location must be in the region (`None`: anywhere).
    pub region: Option<Region>,
    /// `scl` (secure-cse extension): minimum credential level of the peer (`None`: any).
    pub min_level: Option<u8>,
}

/// One `accessControlObjectDetails` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectDetails {
    /// `ty`: the target (parent) must be of this type.
    pub ty: Option<u16>,
    /// `spty`: the specialization (container/mgmt definition) the request must name.
    pub spty: Option<String>,
    /// `chty`: the types that may be created.
    pub chty: Vec<u16>,
}

/// Checks an `m2m:setOfAcrs`: `{"acr": [{"acor": [..], "acop": n, ...}]}`. Every malformed
/// element is a 4000 naming the attribute and the rule.
pub fn validate_acrs(name: &str, v: &Value) -> Result<()> {
    let rules = rules_of(v).map_err(|why| bad(name, &why))?;
    for (i, rule) in rules.iter().enumerate() {
        let parsed =
            parse_rule(rule).map_err(|why| bad(name, &format!("rule {}: {why}", i + 1)))?;
        if parsed.originators.iter().any(|o| o == "*") {
            return Err(bad(name, &format!("rule {}: {BARE_STAR}", i + 1)));
        }
    }
    if name == "pvs" && rules.is_empty() {
        return Err(bad(name, "pvs needs at least one rule"));
    }
    Ok(())
}

/// Why a bare `*` in `acor` is refused when a policy is written. TS-0003 clause 7.1.3 lets
/// `*` stand for part of a CSE-ID or AE-ID (`C*`, `/id-mn/*`), and TS-0001 clause 9.6.2.1
/// names the keyword `all` for any originator; a lone `*` is neither an ID nor that keyword,
/// so a writer who meant "everyone" would otherwise get a rule that admits no one. Policies
/// stored before this check keep compiling and the entry still admits no one.
const BARE_STAR: &str = "acor entry '*' is not an originator: write \"all\" for any \
    originator, or a pattern within an ID such as \"C*\" or \"/id-mn/*\"";

fn bad(name: &str, why: &str) -> Error {
    Error::bad_request(format!("invalid '{name}': {why}"))
}

/// The rule list of an `m2m:setOfAcrs`, unparsed. `acr` has multiplicity 0..n (TS-0004
/// Table 6.3.5.26-1), so `{}` is an empty set: privileges that grant nothing.
pub fn rules_of(v: &Value) -> std::result::Result<&[Value], String> {
    let obj = v.as_object().ok_or("not an object")?;
    if let Some(k) = obj.keys().find(|k| *k != "acr") {
        return Err(format!("unknown member '{k}'"));
    }
    match obj.get("acr") {
        None => Ok(&[]),
        Some(acr) => acr
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| "acr must be a list".to_owned()),
    }
}

/// Parses one rule; the error says which element is wrong and why.
pub fn parse_rule(v: &Value) -> std::result::Result<AccessControlRule, String> {
    let rule = v.as_object().ok_or("a rule must be an object")?;
    if let Some(k) = rule
        .keys()
        .find(|k| !matches!(k.as_str(), "acor" | "acop" | "acco" | "acaf" | "acod"))
    {
        return Err(format!("unknown rule member '{k}'"));
    }
    let originators = rule
        .get("acor")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .and_then(|a| {
            a.iter()
                .map(|o| o.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or("acor must be a non-empty list of strings")?;
    let operations = rule
        .get("acop")
        .and_then(Value::as_u64)
        .filter(|n| (1..=63).contains(n))
        .and_then(|n| u8::try_from(n).ok())
        .ok_or("acop must be an integer from 1 to 63")?;
    let authentication = match rule.get("acaf") {
        None => false,
        Some(v) => v.as_bool().ok_or("acaf must be a boolean")?,
    };
    let contexts = match rule.get("acco") {
        None => Vec::new(),
        Some(v) => v
            .as_array()
            .ok_or("acco must be a list of objects")?
            .iter()
            .enumerate()
            .map(|(i, c)| parse_context(c).map_err(|why| format!("acco {}: {why}", i + 1)))
            .collect::<std::result::Result<_, _>>()?,
    };
    let object_details = match rule.get("acod") {
        None => Vec::new(),
        Some(v) => v
            .as_array()
            .ok_or("acod must be a list of objects")?
            .iter()
            .map(parse_object_details)
            .collect::<std::result::Result<_, _>>()?,
    };
    Ok(AccessControlRule {
        originators,
        operations,
        contexts,
        authentication,
        object_details,
    })
}

fn parse_context(v: &Value) -> std::result::Result<AccessContext, String> {
    let ctx = v.as_object().ok_or("a context must be an object")?;
    let mut out = AccessContext::default();
    for (k, v) in ctx {
        match k.as_str() {
            "actw" => {
                out.windows = v
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or("actw must be a non-empty list of schedule strings")?
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .ok_or_else(|| "actw entries must be strings".to_owned())
                            .and_then(Schedule::parse)
                    })
                    .collect::<std::result::Result<_, _>>()?;
            }
            "acip" => out.addresses = Some(parse_addresses(v)?),
            "aclr" => out.region = Some(parse_region(v)?),
            LEVEL_KEY => {
                let level = v
                    .as_u64()
                    .filter(|n| (1..=3).contains(n))
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or("scl must be a credential level from 1 to 3")?;
                out.min_level = Some(level);
            }
            other => return Err(format!("unknown context member '{other}'")),
        }
    }
    Ok(out)
}

fn parse_addresses(v: &Value) -> std::result::Result<Vec<IpBlock>, String> {
    let obj: &Map<String, Value> = v
        .as_object()
        .ok_or("acip must be an object with ipv4 and/or ipv6 lists")?;
    let mut blocks = Vec::new();
    for (k, list) in obj {
        let family = match k.as_str() {
            "ipv4" => Family::V4,
            "ipv6" => Family::V6,
            other => return Err(format!("unknown acip member '{other}'")),
        };
        let list = list
            .as_array()
            .ok_or_else(|| format!("acip {k} must be a list of strings"))?;
        for entry in list {
            let s = entry
                .as_str()
                .ok_or_else(|| format!("acip {k} entries must be strings"))?;
            blocks.push(IpBlock::parse(s, family)?);
        }
    }
    if blocks.is_empty() {
        return Err("acip needs at least one address".to_owned());
    }
    Ok(blocks)
}

/// Reads an `m2m:locationRegion` (`accr` circle or `accc` country list, never both): an
/// ACP context's `aclr`, and a `<policyDeletionRules>`' `lr` entries.
pub fn parse_region(v: &Value) -> std::result::Result<Region, String> {
    let obj = v
        .as_object()
        .ok_or("aclr must be an object with accr or accc")?;
    if let Some(k) = obj.keys().find(|k| *k != "accr" && *k != "accc") {
        return Err(format!("unknown aclr member '{k}'"));
    }
    match (obj.get("accr"), obj.get("accc")) {
        (Some(circle), None) => {
            let values = circle
                .as_array()
                .and_then(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<_>>>())
                .ok_or("accr must be [latitude, longitude, radius in metres]")?;
            Region::circle(&values)
        }
        (None, Some(codes)) => {
            let codes = codes
                .as_array()
                .and_then(|a| a.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
                .ok_or("accc must be a list of country codes")?;
            Region::countries(codes)
        }
        _ => Err("aclr needs exactly one of accr and accc".to_owned()),
    }
}

fn parse_object_details(v: &Value) -> std::result::Result<ObjectDetails, String> {
    let obj = v.as_object().ok_or("acod entries must be objects")?;
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "ty" | "spty" | "chty"))
    {
        return Err(format!("unknown acod member '{k}'"));
    }
    let ty_code = |v: &Value| v.as_u64().and_then(|n| u16::try_from(n).ok());
    let ty = match obj.get("ty") {
        None => None,
        Some(v) => Some(ty_code(v).ok_or("acod ty must be a resource type number")?),
    };
    let spty = match obj.get("spty") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .filter(|s| !s.is_empty())
                .ok_or("acod spty must be a string")?
                .to_owned(),
        ),
    };
    let chty = obj
        .get("chty")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .and_then(|a| a.iter().map(ty_code).collect::<Option<Vec<_>>>())
        .ok_or("acod chty must be a non-empty list of resource type numbers")?;
    Ok(ObjectDetails { ty, spty, chty })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(rule: Value) -> Value {
        json!({ "acr": [rule] })
    }

    #[test]
    fn a_full_rule_parses() {
        let rule = parse_rule(&json!({
            "acor": ["all"], "acop": 63, "acaf": true,
            "acco": [{"actw": ["* * 8-17 * * 1-5 *"], "acip": {"ipv4": ["10.0.0.0/8"], "ipv6": ["::1"]},
                      "aclr": {"accc": ["KR"]}, "scl": 2}],
            "acod": [{"ty": 3, "chty": [4]}, {"spty": "org.example.x", "chty": [3]}]
        }))
        .expect("valid");
        assert_eq!(rule.operations, 63);
        assert!(rule.authentication);
        let ctx = &rule.contexts[0];
        assert_eq!(ctx.windows.len(), 1);
        assert_eq!(ctx.addresses.as_ref().map(Vec::len), Some(2));
        assert_eq!(ctx.region, Some(Region::Countries(vec!["KR".into()])));
        assert_eq!(ctx.min_level, Some(2));
        assert_eq!(rule.object_details[0].ty, Some(3));
        assert_eq!(
            rule.object_details[1].spty.as_deref(),
            Some("org.example.x")
        );
        // An empty context restricts nothing; an empty acco list means "no contexts".
        let open = parse_rule(&json!({"acor": ["all"], "acop": 2, "acco": [{}]})).expect("valid");
        assert_eq!(open.contexts, vec![AccessContext::default()]);
        assert!(parse_rule(&json!({"acor": ["all"], "acop": 2, "acco": []})).is_ok());
    }

    #[test]
    fn a_bare_star_in_acor_is_refused_and_named() {
        for acor in [json!(["*"]), json!(["Cowner", "*"])] {
            let err = validate_acrs("pv", &set(json!({"acor": acor, "acop": 2})))
                .expect_err("a bare * is refused");
            assert_eq!(err.rsc, crate::ResponseStatusCode::BadRequest);
            assert!(
                err.message.contains("rule 1") && err.message.contains("\"all\""),
                "{}",
                err.message
            );
        }
        for acor in ["all", "C*", "/id-mn/*", "//*/id-in/C*"] {
            assert!(
                validate_acrs("pv", &set(json!({"acor": [acor], "acop": 2}))).is_ok(),
                "{acor}"
            );
        }
    }

    #[test]
    fn every_malformed_element_is_a_bad_request() {
        let bad_rules = [
            json!({"acop": 2}),
            json!({"acor": ["all"]}),
            json!({"acor": [], "acop": 2}),
            json!({"acor": [""], "acop": 2}),
            json!({"acor": "all", "acop": 2}),
            json!({"acor": ["all"], "acop": 0}),
            json!({"acor": ["all"], "acop": 64}),
            json!({"acor": ["all"], "acop": "2"}),
            json!({"acor": ["all"], "acop": 2, "acaf": "yes"}),
            json!({"acor": ["all"], "acop": 2, "xyz": 1}),
            json!({"acor": ["all"], "acop": 2, "acco": {}}),
            json!({"acor": ["all"], "acop": 2, "acco": [1]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"zzz": 1}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"actw": []}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"actw": "* * * * * * *"}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"actw": ["* * * * * *"]}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"actw": ["* * 25 * * * *"]}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"actw": [5]}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"acip": {}}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"acip": {"ipv4": []}}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"acip": ["10.0.0.1"]}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"acip": {"ipv4": ["10.0.0.0/33"]}}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"acip": {"ipv4": ["::1"]}}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"acip": {"ipv6": ["10.0.0.1"]}}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"acip": {"ipv5": ["x"]}}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"aclr": {}}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"aclr": {"accr": [1, 2]}}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"aclr": {"accr": [100, 2, 3]}}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"aclr": {"accr": ["1", 2, 3]}}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"aclr": {"accc": ["KOR"]}}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"aclr": {"accc": []}}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"aclr": {"accr": [1, 2, 3], "accc": ["KR"]}}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"scl": 0}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"scl": 4}]}),
            json!({"acor": ["all"], "acop": 2, "acco": [{"scl": "2"}]}),
            json!({"acor": ["all"], "acop": 1, "acod": {}}),
            json!({"acor": ["all"], "acop": 1, "acod": [{}]}),
            json!({"acor": ["all"], "acop": 1, "acod": [{"chty": []}]}),
            json!({"acor": ["all"], "acop": 1, "acod": [{"chty": ["4"]}]}),
            json!({"acor": ["all"], "acop": 1, "acod": [{"chty": [4], "ty": -1}]}),
            json!({"acor": ["all"], "acop": 1, "acod": [{"chty": [4], "spty": 1}]}),
            json!({"acor": ["all"], "acop": 1, "acod": [{"chty": [4], "zz": 1}]}),
        ];
        for rule in bad_rules {
            let err = validate_acrs("pv", &set(rule.clone())).expect_err("must be refused");
            assert_eq!(err.rsc, crate::ResponseStatusCode::BadRequest, "{rule}");
            assert!(err.message.contains("rule 1"), "{}", err.message);
        }
        assert!(validate_acrs("pv", &json!({"acr": [], "x": 1})).is_err());
        assert!(validate_acrs("pv", &json!([])).is_err());
        assert!(validate_acrs("pv", &json!({"acr": []})).is_ok());
        assert!(validate_acrs("pvs", &json!({"acr": []})).is_err());
        // `acr` is 0..n: an empty set of privileges may leave it out; pvs still needs a rule.
        assert!(validate_acrs("pv", &json!({})).is_ok());
        assert!(validate_acrs("pvs", &json!({})).is_err());
        assert!(validate_acrs("pv", &json!({"acr": {}})).is_err());
    }
}
