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
}

/// Shorthand for a table row.
pub const fn attr(name: &'static str, kind: Kind, create: Presence, update: Presence) -> Attr {
    Attr {
        name,
        kind,
        create,
        update,
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
    attr("lbl", Kind::StrList, O, O),
];

/// The table for a resource type, universal attributes excluded.
pub fn table(ty: ResourceType) -> &'static [Attr] {
    match ty {
        ResourceType::AccessControlPolicy => resources::acp::ATTRIBUTES,
        ResourceType::Ae => resources::ae::ATTRIBUTES,
        ResourceType::Container => resources::cnt::ATTRIBUTES,
        ResourceType::DynamicAuthorizationConsultation => resources::dac::ATTRIBUTES,
        ResourceType::ContentInstance => resources::cin::ATTRIBUTES,
        ResourceType::CseBase => resources::cb::ATTRIBUTES,
        ResourceType::Group => resources::grp::ATTRIBUTES,
        ResourceType::PollingChannel => resources::pch::ATTRIBUTES,
        ResourceType::Subscription => resources::sub::ATTRIBUTES,
    }
}

/// Looks up an attribute of a type.
pub fn find(ty: ResourceType, name: &str) -> Option<&'static Attr> {
    UNIVERSAL.iter().chain(table(ty)).find(|a| a.name == name)
}

/// Checks request content for a CREATE or UPDATE against the type's table: unknown names,
/// attributes the originator may not set, wrong value shapes and missing mandatory ones are
/// all 4000. `null` on UPDATE means "remove" and is allowed for optional attributes only.
pub fn validate(ty: ResourceType, op: Operation, attrs: &Map<String, Value>) -> Result<()> {
    for (name, value) in attrs {
        let a = find(ty, name).ok_or_else(|| {
            Error::bad_request(format!(
                "unknown attribute '{name}' for {}",
                ty.short_name()
            ))
        })?;
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
        if value.is_null() {
            if op == Operation::Update && presence == O {
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
        for a in UNIVERSAL.iter().chain(table(ty)) {
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
        Kind::NullOnly => false,
        Kind::Acrs => return crate::resources::acp::validate_acrs(name, v),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "attribute '{name}' has the wrong type (expected {kind:?})"
        )))
    }
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
}
