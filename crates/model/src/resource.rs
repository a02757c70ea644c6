//! A stored resource: its type, its structured name and its attributes as they are
//! represented on the wire (short names).

use crate::types::ResourceType;
use serde_json::{Map, Value};

/// One resource of the tree. Attributes are kept in their JSON form because that is what
/// every serialization and every filter works on; typed accessors cover the universal ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The resource type.
    pub ty: ResourceType,
    /// Structured (hierarchical) name from the CSEBase down, e.g. `cse-in/ae1/cnt`.
    pub srn: String,
    /// Attributes by short name, including `ri`, `pi`, `rn`, `ty`, `ct`, `lt`.
    pub attrs: Map<String, Value>,
}

impl Resource {
    fn str_attr(&self, name: &str) -> &str {
        self.attrs.get(name).and_then(Value::as_str).unwrap_or("")
    }

    /// Resource ID (`ri`).
    pub fn ri(&self) -> &str {
        self.str_attr("ri")
    }

    /// Parent's resource ID (`pi`); empty for the CSEBase.
    pub fn pi(&self) -> &str {
        self.str_attr("pi")
    }

    /// Resource name (`rn`).
    pub fn rn(&self) -> &str {
        self.str_attr("rn")
    }

    /// Expiration time (`et`), if any.
    pub fn et(&self) -> Option<&str> {
        self.attrs.get("et").and_then(Value::as_str)
    }

    /// A numeric attribute, if present.
    pub fn u64_attr(&self, name: &str) -> Option<u64> {
        self.attrs.get(name).and_then(Value::as_u64)
    }

    /// A list-of-strings attribute (empty when absent).
    pub fn str_list(&self, name: &str) -> Vec<String> {
        self.attrs
            .get(name)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The key a representation is wrapped in: the type's (`m2m:cnt`), or a specialisation's:
    /// a `<mgmtObj>`'s (`m2m:bat`, as its `mgd` says) or a flexContainer's (`cod:binSh`, as
    /// its `cnd` says).
    pub fn wrapper(&self) -> &'static str {
        let specialised = match self.ty {
            ResourceType::MgmtObj => {
                crate::resources::mgo::Specialisation::of_attrs(&self.attrs).map(|s| s.wrapper)
            }
            ResourceType::FlexContainer => {
                crate::resources::fcnt::of(&self.attrs).map(|(name, _)| name.wrapper)
            }
            _ => None,
        };
        specialised.unwrap_or(self.ty.wrapper())
    }

    /// The representation wrapped in its type's key, without copying the attributes.
    pub fn into_wrapped(self) -> Value {
        let mut m = Map::new();
        m.insert(self.wrapper().to_owned(), Value::Object(self.attrs));
        Value::Object(m)
    }

    /// The representation wrapped in its type's key, e.g. `{"m2m:cnt": {...}}`.
    pub fn wrapped(&self) -> Value {
        let mut m = Map::new();
        m.insert(self.wrapper().to_owned(), Value::Object(self.attrs.clone()));
        Value::Object(m)
    }
}
