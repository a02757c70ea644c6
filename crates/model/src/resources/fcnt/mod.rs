//! `<flexContainer>` (ty 28): a container whose data are its own attributes, named and typed
//! by a specialisation that `cnd` (containerDefinition) names. The CSE validates each
//! representation against the specialisation's schema (TS-0004 clause 7.4.37.2): this module
//! holds the schemas as tables, one per specialisation, and the one validator that reads
//! them. A `cnd` this CSE has no table for is SPECIALIZATION_SCHEMA_NOT_FOUND (4125); an
//! attribute the schema does not define, or a value of the wrong type, is BAD_REQUEST (4000).
//!
//! In JSON and CBOR a flexContainer is wrapped in its specialisation's short name with its
//! namespace (`{"cod:binSh": {...}}`), not in `m2m:fcnt`.

mod device;
mod module_class;

use crate::attributes::{attr, Attr, Kind, Presence::*, UNIVERSAL};
use crate::error::{Error, Result};
use crate::rsc::ResponseStatusCode;
use crate::types::Operation;
use serde_json::{Map, Value};

/// Attribute table shared by every specialisation (TS-0004 tables 7.4.37.1-1 and -2).
/// Left out, so that a request setting one is refused (4000) rather than stored and
/// ignored: `at`/`aa` (this CSE announces nothing), `nl` (a link to a `<node>`, a type this
/// CSE does not host), and the Release 4 `mni`/`mbs`/`mia` with their
/// `<flexContainerInstance>` children (see docs/conformance.md).
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    // Geo-location, searched by the geo-query of discovery.
    attr("loc", Kind::GeoCoordinates, Optional, Optional),
    attr("st", Kind::Int, NotPresent, NotPresent),
    attr("cr", Kind::NullOnly, Optional, NotPresent),
    attr("cnd", Kind::Uri, Mandatory, NotPresent),
    attr("or", Kind::Uri, Optional, Optional),
    attr("cs", Kind::Int, NotPresent, NotPresent),
    attr("daci", Kind::UriList, Optional, Optional),
];

/// The row [`crate::attributes::find`] answers for a custom attribute of some
/// specialisation, so that discovery can filter on one (`powSe=true`); which custom
/// attributes a given flexContainer may hold is decided by [`validate`] alone.
pub const CUSTOM: Attr = attr("[customAttribute]", Kind::Any, Optional, Optional);

/// The value type of a custom attribute (SDT data types, TS-0023).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// `xs:boolean`.
    Boolean,
    /// `xs:integer` within an inclusive range (SDT constraints such as 0..255 for a colour).
    Integer {
        /// Smallest value allowed.
        min: i64,
        /// Largest value allowed.
        max: i64,
    },
    /// `xs:string`.
    String,
    /// A oneM2M timestamp (`m2m:timestamp`), e.g. `dataGenerationTime`.
    Timestamp,
}

impl DataType {
    /// Any `xs:integer` this CSE can hold.
    pub const INTEGER: Self = Self::Integer {
        min: i64::MIN,
        max: i64::MAX,
    };

    fn accepts(self, v: &Value) -> bool {
        match self {
            Self::Boolean => v.is_boolean(),
            Self::Integer { min, max } => v.as_i64().is_some_and(|n| n >= min && n <= max),
            Self::String => v.is_string(),
            Self::Timestamp => v.as_str().is_some_and(|s| crate::time::parse(s).is_ok()),
        }
    }
}

/// One custom attribute (an SDT DataPoint) of a specialisation.
#[derive(Debug, Clone, Copy)]
pub struct Custom {
    /// Short name, the key in JSON and CBOR.
    pub name: &'static str,
    /// Long name, for documentation and logs.
    pub long: &'static str,
    /// Value type.
    pub ty: DataType,
    /// Multiplicity 1: mandatory on CREATE and never removed by an UPDATE with `null`.
    pub mandatory: bool,
}

/// Shorthand for a table row.
pub const fn custom(
    name: &'static str,
    long: &'static str,
    ty: DataType,
    mandatory: bool,
) -> Custom {
    Custom {
        name,
        long,
        ty,
        mandatory,
    }
}

/// The optional `dataGenerationTime` every module class of TS-0023 has.
pub const DGT: Custom = custom("dgt", "dataGenerationTime", DataType::Timestamp, false);

/// How a specialisation is named on the wire: its wrapper key (namespace prefix and short
/// name) and its `cnd`. TS-0023 Release 3 put the home domain under `hd:` and
/// `org.onem2m.home.*`; later releases under `cod:` and `org.onem2m.common.*`. Both are
/// accepted, and a resource is always answered under the name it was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Name {
    /// The JSON/CBOR key, e.g. `cod:binSh`.
    pub wrapper: &'static str,
    /// The containerDefinition, e.g. `org.onem2m.common.moduleclass.binarySwitch`.
    pub cnd: &'static str,
}

/// One specialisation's schema.
#[derive(Debug)]
pub struct Specialisation {
    /// The SDT name (`binarySwitch`, `deviceLight`), used in `children`.
    pub id: &'static str,
    /// Its names on the wire, the current one first.
    pub names: &'static [Name],
    /// Its custom attributes.
    pub attributes: &'static [Custom],
    /// The specialisations (by `id`) that may be created below it; other flexContainer
    /// children are INVALID_CHILD_RESOURCE_TYPE (4108). Containers and subscriptions may
    /// always be (TS-0004 table 7.4.37.1-3).
    pub children: &'static [&'static str],
}

impl Specialisation {
    /// A custom attribute of this specialisation.
    pub fn attribute(&self, name: &str) -> Option<&'static Custom> {
        self.attributes.iter().find(|c| c.name == name)
    }
}

/// Every specialisation this CSE has a schema for.
pub const ALL: &[&Specialisation] = &[
    &device::DEVICE_LIGHT,
    &module_class::BINARY_SWITCH,
    &module_class::BRIGHTNESS,
    &module_class::COLOUR,
    &module_class::COLOUR_SATURATION,
    &module_class::FAULT_DETECTION,
];

fn find_name(pred: impl Fn(&Name) -> bool) -> Option<(&'static Name, &'static Specialisation)> {
    ALL.iter()
        .find_map(|s| s.names.iter().find(|n| pred(n)).map(|n| (n, *s)))
}

/// The specialisation a wrapper key (`cod:binSh`) names.
pub fn by_wrapper(key: &str) -> Option<(&'static Name, &'static Specialisation)> {
    find_name(|n| n.wrapper == key)
}

/// The specialisation a `cnd` names.
pub fn by_cnd(cnd: &str) -> Option<(&'static Name, &'static Specialisation)> {
    find_name(|n| n.cnd == cnd)
}

/// The specialisation of a stored flexContainer (by its `cnd`).
pub fn of(attrs: &Map<String, Value>) -> Option<(&'static Name, &'static Specialisation)> {
    attrs.get("cnd").and_then(Value::as_str).and_then(by_cnd)
}

/// Whether `name` is a custom attribute of some specialisation (for discovery filters).
pub fn is_custom_attribute(name: &str) -> bool {
    ALL.iter().any(|s| s.attribute(name).is_some())
}

/// Checks a CREATE's `cnd` against the wrapper key the content came in: a `cnd` without a
/// schema is 4125, one naming another specialisation (or the other naming of it) 4000.
pub fn check_cnd(name: &Name, attrs: &Map<String, Value>) -> Result<()> {
    let cnd = attrs.get("cnd").and_then(Value::as_str).unwrap_or("");
    match by_cnd(cnd) {
        None => Err(Error::new(
            ResponseStatusCode::SpecializationSchemaNotFound,
            format!("no schema for the containerDefinition '{cnd}'"),
        )),
        Some((n, _)) if n != name => Err(Error::bad_request(format!(
            "containerDefinition '{cnd}' is not that of '{}' (it is '{}')",
            name.wrapper, n.wrapper
        ))),
        Some(_) => Ok(()),
    }
}

/// Validates a CREATE or UPDATE representation against the specialisation's schema and the
/// attributes every flexContainer has: unknown attributes, wrong types, values outside the
/// schema's range, missing mandatory custom attributes and `null` for one are all 4000.
pub fn validate(spec: &Specialisation, op: Operation, attrs: &Map<String, Value>) -> Result<()> {
    let mut common = Map::new();
    for (name, value) in attrs {
        if let Some(c) = spec.attribute(name) {
            if value.is_null() {
                if op == Operation::Update && !c.mandatory {
                    continue;
                }
                return Err(Error::bad_request(format!(
                    "attribute '{name}' ({}) cannot be null",
                    c.long
                )));
            }
            if !c.ty.accepts(value) {
                return Err(Error::bad_request(format!(
                    "attribute '{name}' ({}) of {} must be {:?}",
                    c.long, spec.id, c.ty
                )));
            }
        } else if UNIVERSAL.iter().chain(ATTRIBUTES).any(|a| a.name == name) {
            common.insert(name.clone(), value.clone());
        } else {
            return Err(Error::bad_request(format!(
                "unknown attribute '{name}' for {}",
                spec.id
            )));
        }
    }
    if op == Operation::Create {
        if let Some(c) = spec
            .attributes
            .iter()
            .find(|c| c.mandatory && !attrs.contains_key(c.name))
        {
            return Err(Error::bad_request(format!(
                "missing mandatory attribute '{}' ({}) of {}",
                c.name, c.long, spec.id
            )));
        }
    }
    if op == Operation::Update && attrs.is_empty() {
        return Err(Error::bad_request("UPDATE without attributes"));
    }
    if op == Operation::Create || !common.is_empty() {
        crate::attributes::validate(crate::ResourceType::FlexContainer, op, &common)?;
    }
    Ok(())
}

/// `cs` (contentSize): the sum of the sizes in bytes of the custom attributes (TS-0004
/// clause 7.4.37.2.1), each measured as a `<contentInstance>`'s `con` is.
pub fn content_size(spec: &Specialisation, attrs: &Map<String, Value>) -> u64 {
    attrs
        .iter()
        .filter(|(k, _)| spec.attribute(k).is_some())
        .map(|(_, v)| super::cin::content_size(v))
        .sum()
}

#[cfg(test)]
mod tests;
