//! Attribute rules as data: each resource type has one table (short name, value kind, and
//! whether the originator must, may or must not send it on CREATE and UPDATE). One generic
//! validator reads the tables, so adding an attribute is adding a row.

use crate::error::{Error, Result};
use crate::resources;
use crate::types::{Operation, ResourceType};
use serde_json::{Map, Value};

/// The JSON shape an attribute's value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Str,
    /// A non-negative integer.
    Int,
    /// A boolean.
    Bool,
    /// A oneM2M timestamp string.
    Time,
    /// A list of strings.
    StrList,
    /// A list of non-negative integers.
    IntList,
    /// A JSON object.
    Object,
    /// Anything (e.g. `con`).
    Any,
    /// An `m2m:setOfAcrs` (`pv`, `pvs`).
    Acrs,
    /// Only `null` may be sent: a request for the CSE to fill the value in (`cr`).
    NullOnly,
    /// A positive integer (`xs:positiveInteger`: 1 and up).
    PositiveInt,
    /// `m2m:labels`: a non-empty list of `xs:token` strings.
    Labels,
    /// An `xs:anyURI`: a non-empty string without white space or control characters.
    Uri,
    /// A list of `xs:anyURI`.
    UriList,
    /// `m2m:poaList`: a non-empty list of points of access, each `scheme://authority...`.
    PoaList,
    /// `m2m:serializations`: a non-empty list of serialization types (`json`, `application/json`, ...).
    Serializations,
    /// `m2m:contentInfo`: `type/subtype:encoding[:security]` ([`content_info`]).
    ContentInfo,
    /// A non-negative integer no greater than the bound (`btl`: a percentage).
    UpTo(u64),
    /// One of the listed integers: an enumeration of TS-0004 clause 6.3.4.2.
    OneOf(&'static [u64]),
    /// `m2m:actionStatus` ([`resources::mgo::is_action_status`]).
    ActionStatus,
    /// `m2m:absRelTimestamp`: an absolute timestamp string, or a time relative to now in
    /// milliseconds (a JSON integer or a string of one).
    AbsRelTime,
    /// An attribute the type's Release 3 table defines but this CSE does not support:
    /// sending it (where the table lets the originator send it) is 5001 NOT_IMPLEMENTED
    /// (TS-0004 clauses 7.3.3.3 and 7.3.3.4), where a name no table defines is 4000. It is
    /// never stored.
    Unsupported,
    /// `m2m:geoCoordinates` (`loc`): a geometry type and its GeoJSON coordinates
    /// ([`crate::location::Geo::from_geo_coordinates`]).
    GeoCoordinates,
}

/// Whether the originator may send an attribute in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Must be present.
    Mandatory,
    /// May be present.
    Optional,
    /// Must not be present: set by the CSE or fixed at creation.
    NotPresent,
}

use Presence::{Mandatory as M, NotPresent as NP, Optional as O};

/// One row of an attribute table.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    /// Short name.
    pub name: &'static str,
    /// Value shape.
    pub kind: Kind,
    /// Presence on CREATE.
    pub create: Presence,
    /// Presence on UPDATE.
    pub update: Presence,
    /// Multiplicity 1 or 1 (L) in TS-0001's attribute table: the resource always has the
    /// attribute, so an UPDATE cannot remove it with `null` (TS-0004 clause 7.3.3.7: 4000).
    pub single: bool,
}

/// Shorthand for a table row. An attribute mandatory on CREATE is taken as multiplicity 1;
/// [`Attr::single`] marks the others that are.
pub const fn attr(name: &'static str, kind: Kind, create: Presence, update: Presence) -> Attr {
    Attr {
        name,
        kind,
        create,
        update,
        single: matches!(create, Presence::Mandatory),
    }
}

impl Attr {
    /// The row of an attribute that is optional on CREATE but that every resource of the
    /// type has (multiplicity 1: the CSE sets a default), so it cannot be removed.
    pub const fn single(self) -> Self {
        Self {
            single: true,
            ..self
        }
    }
}

/// Attributes every resource type has (TS-0004 clause 9.6.1.3 universal/common).
pub const UNIVERSAL: &[Attr] = &[
    attr("ty", Kind::Int, NP, NP),
    attr("ri", Kind::Str, NP, NP),
    attr("rn", Kind::Str, O, NP),
    attr("pi", Kind::Str, NP, NP),
    attr("ct", Kind::Time, NP, NP),
    attr("lt", Kind::Time, NP, NP),
    attr("et", Kind::Time, O, O),
    attr("lbl", Kind::Labels, O, O),
];

/// The table for a resource type, universal attributes excluded.
pub fn table(ty: ResourceType) -> &'static [Attr] {
    match ty {
        ResourceType::AccessControlPolicy => resources::acp::ATTRIBUTES,
        ResourceType::Ae => resources::ae::ATTRIBUTES,
        ResourceType::Container => resources::cnt::ATTRIBUTES,
        ResourceType::DynamicAuthorizationConsultation => resources::dac::ATTRIBUTES,
        ResourceType::AuthorizationDecision => resources::auds::ATTRIBUTES,
        ResourceType::ContentInstance => resources::cin::ATTRIBUTES,
        ResourceType::CseBase => resources::cb::ATTRIBUTES,
        ResourceType::Group => resources::grp::ATTRIBUTES,
        ResourceType::MgmtObj => resources::mgo::COMMON,
        ResourceType::Node => resources::nod::ATTRIBUTES,
        ResourceType::M2mServiceSubscriptionProfile => resources::mssp::ATTRIBUTES,
        ResourceType::ServiceSubscribedAppRule => resources::asar::ATTRIBUTES,
        ResourceType::ServiceSubscribedNode => resources::svsn::ATTRIBUTES,
        ResourceType::PollingChannel => resources::pch::ATTRIBUTES,
        ResourceType::CrossResourceSubscription => resources::crs::ATTRIBUTES,
        ResourceType::Request => resources::req::ATTRIBUTES,
        ResourceType::Subscription => resources::sub::ATTRIBUTES,
        ResourceType::FlexContainer => resources::fcnt::ATTRIBUTES,
        ResourceType::TimeSeries => resources::ts::ATTRIBUTES,
        ResourceType::TimeSeriesInstance => resources::tsi::ATTRIBUTES,
        ResourceType::Role => resources::rol::ATTRIBUTES,
        ResourceType::Token => resources::tk::ATTRIBUTES,
        ResourceType::AuthorizationPolicy => resources::aupy::ATTRIBUTES,
        ResourceType::AuthorizationInformation => resources::auif::ATTRIBUTES,
        ResourceType::Schedule => resources::sch::ATTRIBUTES,
        ResourceType::SemanticDescriptor => resources::smd::ATTRIBUTES,
        ResourceType::NotificationTargetPolicy => resources::ntp::ATTRIBUTES,
        ResourceType::PolicyDeletionRules => resources::pdr::ATTRIBUTES,
        ResourceType::LocationPolicy => resources::lcp::ATTRIBUTES,
    }
}

/// Looks up an attribute of a type. For `<mgmtObj>`, an attribute of any specialisation
/// (what a filter or a type-wide question needs); [`find_in`] answers for one resource. For
/// a flexContainer, a custom attribute of any specialisation answers
/// [`resources::fcnt::CUSTOM`] (which one a resource may hold is checked by
/// [`resources::fcnt::validate`]).
pub fn find(ty: ResourceType, name: &str) -> Option<&'static Attr> {
    UNIVERSAL
        .iter()
        .chain(table(ty))
        .find(|a| a.name == name)
        .or_else(|| match ty {
            ResourceType::MgmtObj => resources::mgo::SPECIALISATIONS
                .iter()
                .find_map(|s| s.attributes.iter().find(|a| a.name == name)),
            ResourceType::FlexContainer if resources::fcnt::is_custom_attribute(name) => {
                Some(&resources::fcnt::CUSTOM)
            }
            _ => None,
        })
}

/// Looks up an attribute of one resource: a `<mgmtObj>` has only its specialisation's.
pub fn find_in(r: &crate::Resource, name: &str) -> Option<&'static Attr> {
    match resources::mgo::Specialisation::of_attrs(&r.attrs) {
        Some(s) if r.ty == ResourceType::MgmtObj => UNIVERSAL
            .iter()
            .find(|a| a.name == name)
            .or_else(|| s.find(name)),
        _ => find(r.ty, name),
    }
}

/// Checks request content for a CREATE or UPDATE against the type's table: unknown names,
/// attributes the originator may not set, wrong value shapes and missing mandatory ones are
/// all 4000. `null` on UPDATE means "remove" and is allowed for attributes a resource may
/// lack only (not for [`Attr::single`] ones, TS-0004 clause 7.3.3.7). An attribute of
/// [`Kind::Unsupported`] that the originator may send is 5001, once nothing else in the
/// request is a 4000: a malformed request is malformed whatever else it asks for.
pub fn validate(ty: ResourceType, op: Operation, attrs: &Map<String, Value>) -> Result<()> {
    let rows = || UNIVERSAL.iter().chain(table(ty));
    validate_rows(ty.short_name(), &|name| find(ty, name), rows(), op, attrs)
}

/// [`validate`] for a `<mgmtObj>` of one specialisation: its attributes only, so that an
/// attribute of another specialisation is unknown (4000).
pub fn validate_specialised(
    s: &resources::mgo::Specialisation,
    op: Operation,
    attrs: &Map<String, Value>,
) -> Result<()> {
    let rows = UNIVERSAL
        .iter()
        .chain(resources::mgo::COMMON)
        .chain(s.attributes);
    let lookup = |name: &str| {
        UNIVERSAL
            .iter()
            .find(|a| a.name == name)
            .or_else(|| s.find(name))
    };
    validate_rows(s.name, &lookup, rows, op, attrs)
}

fn validate_rows<'a>(
    what: &str,
    lookup: &dyn Fn(&str) -> Option<&'static Attr>,
    rows: impl Iterator<Item = &'a Attr>,
    op: Operation,
    attrs: &Map<String, Value>,
) -> Result<()> {
    let mut unsupported = None;
    for (name, value) in attrs {
        let a = lookup(name)
            .ok_or_else(|| Error::bad_request(format!("unknown attribute '{name}' for {what}")))?;
        let presence = if op == Operation::Create {
            a.create
        } else {
            a.update
        };
        if presence == NP {
            return Err(Error::bad_request(format!(
                "attribute '{name}' cannot be set on {op:?}"
            )));
        }
        if a.kind == Kind::Unsupported {
            unsupported.get_or_insert(name);
            continue;
        }
        if value.is_null() {
            if op == Operation::Update && presence == O && !a.single {
                continue;
            }
            if a.kind == Kind::NullOnly {
                continue;
            }
            return Err(Error::bad_request(format!(
                "attribute '{name}' cannot be null"
            )));
        }
        check_kind(name, a.kind, value)?;
    }
    if op == Operation::Create {
        for a in rows {
            if a.create == M && !attrs.contains_key(a.name) {
                return Err(Error::bad_request(format!(
                    "missing mandatory attribute '{}'",
                    a.name
                )));
            }
        }
    }
    if op == Operation::Update && attrs.is_empty() {
        return Err(Error::bad_request("UPDATE without attributes"));
    }
    if let Some(name) = unsupported {
        return Err(Error::not_implemented(format!(
            "attribute '{name}' of {what} is not supported by this CSE"
        )));
    }
    Ok(())
}

fn check_kind(name: &str, kind: Kind, v: &Value) -> Result<()> {
    let ok = match kind {
        Kind::Str => v.is_string(),
        Kind::Int => v.is_u64(),
        Kind::Bool => v.is_boolean(),
        Kind::Time => v.as_str().is_some_and(|s| crate::time::parse(s).is_ok()),
        Kind::StrList => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        Kind::IntList => v.as_array().is_some_and(|a| a.iter().all(Value::is_u64)),
        Kind::Object => v.is_object(),
        Kind::Any => true,
        Kind::NullOnly | Kind::Unsupported => false,
        Kind::Acrs => return crate::resources::acp::validate_acrs(name, v),
        Kind::PositiveInt => v.as_u64().is_some_and(|n| n >= 1),
        Kind::UpTo(max) => v.as_u64().is_some_and(|n| n <= max),
        Kind::OneOf(values) => v.as_u64().is_some_and(|n| values.contains(&n)),
        Kind::ActionStatus => resources::mgo::is_action_status(v),
        Kind::AbsRelTime => abs_rel_time(v, crate::time::now()).is_ok(),
        Kind::Labels => non_empty_list(v).is_some_and(|a| a.iter().all(is_token)),
        Kind::Uri => v.as_str().is_some_and(is_uri),
        Kind::UriList => v
            .as_array()
            .is_some_and(|a| a.iter().all(|u| u.as_str().is_some_and(is_uri))),
        Kind::PoaList => non_empty_list(v)
            .is_some_and(|a| a.iter().all(|p| p.as_str().is_some_and(is_point_of_access))),
        Kind::Serializations => non_empty_list(v)
            .is_some_and(|a| a.iter().all(|s| s.as_str().is_some_and(is_serialization))),
        Kind::GeoCoordinates => {
            return crate::location::Geo::from_geo_coordinates(v)
                .map(|_| ())
                .map_err(|e| Error::bad_request(format!("attribute '{name}': {}", e.message)))
        }
        Kind::ContentInfo => {
            return match v.as_str().map(content_info) {
                Some(Ok(_)) => Ok(()),
                Some(Err(why)) => Err(Error::bad_request(format!(
                    "attribute '{name}' is not an m2m:contentInfo: {why}"
                ))),
                None => Err(Error::bad_request(format!(
                    "attribute '{name}' must be a string"
                ))),
            }
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "attribute '{name}' has the wrong type (expected {kind:?})"
        )))
    }
}

/// The point in time an `m2m:absRelTimestamp` value names, relative values counted from
/// `now`: a timestamp string, or milliseconds as a JSON integer or a string of one.
pub fn abs_rel_time(v: &Value, now: crate::time::Timestamp) -> Result<crate::time::Timestamp> {
    match v {
        Value::String(s) => crate::time::parse_abs_rel(s, now),
        Value::Number(n) => match n.as_i64() {
            Some(ms) => crate::time::parse_abs_rel(&ms.to_string(), now),
            None => Err(Error::bad_request(format!(
                "'{n}' is not a time in milliseconds"
            ))),
        },
        _ => Err(Error::bad_request(
            "an absolute or relative time must be a string or an integer",
        )),
    }
}

fn non_empty_list(v: &Value) -> Option<&Vec<Value>> {
    v.as_array().filter(|a| !a.is_empty())
}

/// An `xs:token`: no tab, carriage return or line feed, no space at either end and no run of
/// two spaces (TS-0004 Table 6.3.2-1); and not empty, since a label names something.
fn is_token(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        !s.is_empty()
            && !s.contains(['\t', '\r', '\n'])
            && !s.starts_with(' ')
            && !s.ends_with(' ')
            && !s.contains("  ")
    })
}

/// An `xs:anyURI` as this CSE stores it: not empty, and no white space or control
/// characters (which a URI reference cannot hold unescaped).
fn is_uri(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// An `m2m:pointOfAccess` (TS-0004 Table 6.3.3-1): a URI naming its transport protocol (a
/// scheme), then `://` and a host, with no white space.
fn is_point_of_access(s: &str) -> bool {
    is_uri(s)
        && s.split_once("://").is_some_and(|(scheme, rest)| {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                && !rest.is_empty()
                && !rest.starts_with('/')
        })
}

/// A serialization type of `m2m:serializations`: XML (which this CSE neither reads nor
/// sends, but an AE may prefer it), or one of the [`Format`](crate::codec::Format)s.
fn is_serialization(s: &str) -> bool {
    matches!(s, "xml" | "application/xml") || crate::codec::Format::from_serialization(s).is_some()
}

/// The parts of an `m2m:contentInfo` (TS-0004 Table 6.3.3-1): a media type
/// (`type/subtype`, with optional `;` parameters), an `m2m:encodingType` (0 plain, 1 base64
/// of a string, 2 base64 of binary data; Table 6.3.4.2.28-1) and an optional
/// `m2m:contentSecurity` (0 to 5; Table 6.3.4.2.38-1), joined by `:`. The error says which
/// part is wrong.
pub fn content_info(s: &str) -> std::result::Result<(&str, u8, u8), String> {
    let mut parts = s.split(':');
    let media = parts.next().unwrap_or("");
    let (ty, sub) = media
        .split(';')
        .next()
        .and_then(|m| m.split_once('/'))
        .ok_or_else(|| format!("'{media}' is not a media type (type/subtype)"))?;
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    if !token(ty) || !token(sub) {
        return Err(format!("'{media}' is not a media type (type/subtype)"));
    }
    let number = |part: Option<&str>, what: &str, max: u8| match part {
        Some(p) if p.len() == 1 => p
            .parse::<u8>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| format!("{what} '{p}' is not 0 to {max}")),
        Some(p) => Err(format!("{what} '{p}' is not 0 to {max}")),
        None => Err(format!("the {what} is missing (type/subtype:encoding)")),
    };
    let encoding = number(parts.next(), "encoding type", 2)?;
    let security = match parts.next() {
        None => 0,
        p => number(p, "content security", 5)?,
    };
    if parts.next().is_some() {
        return Err("more than three ':'-separated parts".to_owned());
    }
    Ok((media, encoding, security))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn every_table_has_unique_names() {
        for ty in ResourceType::ALL {
            let mut names: Vec<_> = UNIVERSAL.iter().chain(table(ty)).map(|a| a.name).collect();
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(n, names.len(), "{ty:?}");
        }
    }

    #[test]
    fn read_only_attributes_are_refused_everywhere() {
        for ty in ResourceType::ALL {
            for a in UNIVERSAL.iter().chain(table(ty)) {
                for (op, p) in [(Operation::Create, a.create), (Operation::Update, a.update)] {
                    if p == NP {
                        let r = validate(ty, op, &map(json!({ a.name: "x" })));
                        assert!(r.is_err(), "{ty:?} {op:?} {}", a.name);
                    }
                }
            }
        }
    }

    /// TS-0004 clause 7.3.3.7: `null` removes only what may be absent (TS-0001
    /// multiplicity 0..1); walks every table.
    #[test]
    fn null_removes_only_what_may_be_absent() {
        for ty in ResourceType::ALL {
            for a in UNIVERSAL.iter().chain(table(ty)) {
                if a.update != O || a.kind == Kind::Unsupported {
                    continue;
                }
                let r = validate(ty, Operation::Update, &map(json!({ a.name: null })));
                assert_eq!(r.is_err(), a.single, "{ty:?} {}", a.name);
            }
        }
        let single = |ty, name| find(ty, name).is_some_and(|a| a.single);
        for (ty, name) in [
            (ResourceType::Subscription, "nu"),
            (ResourceType::Subscription, "nct"),
            (ResourceType::AccessControlPolicy, "pv"),
            (ResourceType::AccessControlPolicy, "pvs"),
            (ResourceType::Group, "mnm"),
            (ResourceType::Group, "mid"),
            (ResourceType::Ae, "rr"),
            (ResourceType::DynamicAuthorizationConsultation, "dae"),
            (ResourceType::DynamicAuthorizationConsultation, "dap"),
        ] {
            assert!(single(ty, name), "{ty:?} {name}");
        }
        // `et` (multiplicity 1) may be sent as null: the CSE then sets a new lifetime.
        assert!(!single(ResourceType::Container, "et"));
    }

    /// The data types of TS-0004 Tables 6.3.2-1 and 6.3.3-1 that the tables name.
    #[test]
    fn value_types() {
        let ok = |ty, attrs: Value| validate(ty, Operation::Create, &map(attrs)).is_ok();
        let cnt = ResourceType::Container;
        assert!(ok(cnt, json!({"lbl": ["a b", "key:value", "x"]})));
        for bad in [
            json!([]),
            json!(["a  b"]),
            json!([" a"]),
            json!(["a "]),
            json!(["a\tb"]),
            json!(["a\rb"]),
            json!(["a\nb"]),
            json!([""]),
            json!("a"),
            json!([1]),
        ] {
            assert!(!ok(cnt, json!({ "lbl": bad })), "{bad}");
        }
        assert!(ok(cnt, json!({"mni": 0, "mbs": 0, "mia": 0})));
        assert!(!ok(cnt, json!({"li": "x"})));
        let sub = ResourceType::Subscription;
        assert!(ok(
            sub,
            json!({"nu": ["http://h/n", "Cae"], "exc": 1, "su": "Cae"})
        ));
        assert!(!ok(sub, json!({"nu": ["a b"]})));
        assert!(!ok(sub, json!({"nu": [""]})));
        assert!(!ok(sub, json!({"nu": ["x"], "exc": 0})));
        assert!(!ok(sub, json!({"nu": ["x"], "su": "a\nb"})));
        let grp = ResourceType::Group;
        assert!(ok(grp, json!({"mnm": 1, "mid": []})));
        assert!(!ok(grp, json!({"mnm": 0, "mid": []})));
        let ae = |extra: Value| {
            let mut m = map(json!({"api": "Nx", "rr": true}));
            m.extend(map(extra));
            validate(ResourceType::Ae, Operation::Create, &m).is_ok()
        };
        for good in [
            json!(["json"]),
            json!(["application/cbor", "xml"]),
            json!(["application/json", "application/xml", "cbor"]),
        ] {
            assert!(ae(json!({ "csz": good })), "{good}");
        }
        for bad in [
            json!(["wrong"]),
            json!([]),
            json!(["application/json", "text/plain"]),
            json!(["JSON"]),
            json!("json"),
        ] {
            assert!(!ae(json!({ "csz": bad })), "{bad}");
        }
        assert!(ae(json!({"poa": ["http://10.0.0.1:8080/n"]})));
        // `nl` links to a <node> (whether it names one is the CSE's check).
        assert!(ae(
            json!({"poa": ["http://10.0.0.1:8080/n"], "nl": "cse-in/node"})
        ));
        assert!(!ae(json!({"nl": ["cse-in/node"]})));
        assert!(ae(
            json!({"poa": ["coap://m2m.sp.com:5683", "mqtt://172.25.0.10:1883"]})
        ));
        for bad in [
            json!(["http://a b"]),
            json!([]),
            json!(["10.0.0.1:80"]),
            json!(["http://"]),
            json!(["http:///x"]),
            json!(["1http://h"]),
            json!(["://h"]),
        ] {
            assert!(!ae(json!({ "poa": bad })), "{bad}");
        }
    }

    /// TS-0004 Table 6.3.3-1 (`m2m:contentInfo`), Tables 6.3.4.2.28-1 and 6.3.4.2.38-1.
    #[test]
    fn content_info_parts() {
        assert_eq!(content_info("text/plain:0"), Ok(("text/plain", 0, 0)));
        assert_eq!(
            content_info("application/xml:1:5"),
            Ok(("application/xml", 1, 5))
        );
        assert_eq!(
            content_info("text/plain;charset=utf-8:2:0"),
            Ok(("text/plain;charset=utf-8", 2, 0))
        );
        assert_eq!(content_info("application/vnd.x+json:0").map(|c| c.1), Ok(0));
        for bad in [
            "",
            "text/plain",
            "text/plain:",
            "text/plain:3",
            "text/plain:00",
            "text/plain:-1",
            "text/plain:0:6",
            "text/plain:0:",
            "text/plain:0:1:2",
            "plain:0",
            "/plain:0",
            "text/:0",
            "te xt/plain:0",
            "text/pl@in:0",
            ":0",
        ] {
            assert!(content_info(bad).is_err(), "{bad}");
        }
        let cin = |cnf: &str| {
            validate(
                ResourceType::ContentInstance,
                Operation::Create,
                &map(json!({"con": "x", "cnf": cnf})),
            )
        };
        assert!(cin("text/plain:0").is_ok());
        let err = cin("text/plain").expect_err("no encoding");
        assert!(err.message.contains("encoding"), "{}", err.message);
    }

    #[test]
    fn wrong_types_unknown_and_missing() {
        let ok = map(json!({"mni": 3, "lbl": ["a"]}));
        assert!(validate(ResourceType::Container, Operation::Create, &ok).is_ok());
        assert!(validate(
            ResourceType::Container,
            Operation::Create,
            &map(json!({"mni": "3"}))
        )
        .is_err());
        assert!(validate(
            ResourceType::Container,
            Operation::Create,
            &map(json!({"mni": -1}))
        )
        .is_err());
        assert!(validate(
            ResourceType::Container,
            Operation::Create,
            &map(json!({"zzz": 1}))
        )
        .is_err());
        assert!(validate(
            ResourceType::ContentInstance,
            Operation::Create,
            &map(json!({"cnf": "text/plain:0"}))
        )
        .is_err());
        assert!(validate(
            ResourceType::Container,
            Operation::Update,
            &map(json!({"mni": null}))
        )
        .is_ok());
        assert!(validate(ResourceType::Container, Operation::Update, &map(json!({}))).is_err());
    }

    /// Issue 12, group 9: attributes of later releases are in no table, and those this CSE
    /// would store without acting on them are [`Kind::Unsupported`], so a request that sets
    /// one is refused either way; `disr` is accepted, being enforced.
    #[test]
    fn attributes_not_enforced_are_not_accepted() {
        use ResourceType as T;
        let later_releases = [
            (T::Ae, "cstn"),
            (T::Container, "cstn"),
            (T::ContentInstance, "dgt"),
            (T::ContentInstance, "dcnt"),
            (T::Subscription, "nse"),
            (T::Subscription, "nsi"),
            (T::Subscription, "om"),
            (T::Group, "cstn"),
        ];
        for (ty, name) in later_releases {
            assert!(find(ty, name).is_none(), "{ty:?} {name}");
        }
        let unsupported = [
            (T::Ae, "at"),
            (T::Ae, "aa"),
            (T::Ae, "esi"),
            (T::Ae, "regs"),
            (T::Container, "at"),
            (T::Container, "aa"),
            (T::Subscription, "gpi"),
            (T::Group, "spty"),
            (T::Group, "nar"),
            (T::ServiceSubscribedNode, "nrq"),
            (T::ServiceSubscribedAppRule, "ari"),
        ];
        for (ty, name) in unsupported {
            assert!(
                find(ty, name).is_some_and(|a| a.kind == Kind::Unsupported),
                "{ty:?} {name}"
            );
        }
        assert!(find(T::Container, "disr").is_some_and(|a| a.kind == Kind::Bool));
    }

    /// TS-0004 clauses 7.3.3.3 and 7.3.3.4: an attribute the type's table defines but this
    /// CSE does not support is 5001 where the originator may send it, 4000 where it may not
    /// (NP); a name no table defines is 4000, and so is any other fault in the same request.
    #[test]
    fn defined_but_unsupported_is_not_implemented() {
        use crate::rsc::ResponseStatusCode as R;
        let mut seen = 0;
        for ty in ResourceType::ALL {
            for a in table(ty).iter().filter(|a| a.kind == Kind::Unsupported) {
                for (op, p) in [(Operation::Create, a.create), (Operation::Update, a.update)] {
                    let mut attrs = map(json!({ a.name: "x" }));
                    if op == Operation::Create {
                        for m in table(ty).iter().filter(|m| m.create == M) {
                            attrs.insert(m.name.to_owned(), mandatory_value(m.kind));
                        }
                    }
                    let err = validate(ty, op, &attrs).expect_err(a.name);
                    let want = if p == NP {
                        R::BadRequest
                    } else {
                        R::NotImplemented
                    };
                    assert_eq!(err.rsc, want, "{ty:?} {op:?} {}: {}", a.name, err.message);
                    seen += 1;
                    // null is no way around it.
                    if op == Operation::Update && p == O {
                        let err =
                            validate(ty, op, &map(json!({ a.name: null }))).expect_err(a.name);
                        assert_eq!(err.rsc, R::NotImplemented, "{ty:?} {}", a.name);
                    }
                }
            }
        }
        assert!(seen >= 30, "{seen}");
        let sub = ResourceType::Subscription;
        let err = validate(
            sub,
            Operation::Create,
            &map(json!({"nu": ["x"], "nse": true})),
        );
        assert_eq!(err.expect_err("nse").rsc, R::BadRequest);
        for bad in [
            json!({"nu": ["x"], "gpi": "g", "zzz": 1}),
            json!({"nu": ["x"], "gpi": "g", "exc": 0}),
            json!({"gpi": "g"}),
        ] {
            let err = validate(sub, Operation::Create, &map(bad.clone())).expect_err("refused");
            assert_eq!(err.rsc, R::BadRequest, "{bad}");
        }
    }

    /// A value of the right shape for a mandatory attribute, to isolate another check.
    fn mandatory_value(kind: Kind) -> Value {
        match kind {
            Kind::Acrs => json!({"acr": [{"acor": ["all"], "acop": 2}]}),
            Kind::Bool => json!(true),
            Kind::PositiveInt => json!(1),
            Kind::UriList | Kind::PoaList => json!(["http://h/x"]),
            Kind::Object => json!({}),
            Kind::OneOf(values) => json!(values.last().copied().unwrap_or(0)),
            _ => json!("Nx"),
        }
    }
}
