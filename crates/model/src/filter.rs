//! Filter criteria (`fc`, TS-0004 clause 6.3.5.8): conditions for discovery and conditional
//! retrieval, parsed strictly and evaluated against stored resources.

use crate::attributes;
use crate::error::{Error, Result};
use crate::rsc::ResponseStatusCode;
use crate::time::{self, Timestamp};
use crate::types::ResourceType;
use serde_json::{Map, Value};

/// The filter criteria this CSE understands. Unknown criteria are refused with 4000, so a
/// client never believes a filter was applied when it was ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilterCriteria {
    /// 1 discovery, 2 conditional retrieval (the default).
    pub fu: Option<u8>,
    /// Created before.
    pub crb: Option<Timestamp>,
    /// Created after.
    pub cra: Option<Timestamp>,
    /// Modified since.
    pub ms: Option<Timestamp>,
    /// Unmodified since.
    pub us: Option<Timestamp>,
    /// State tag smaller than.
    pub sts: Option<u64>,
    /// State tag bigger than.
    pub stb: Option<u64>,
    /// Expires before.
    pub exb: Option<Timestamp>,
    /// Expires after.
    pub exa: Option<Timestamp>,
    /// Labels, any of which may match.
    pub lbl: Vec<String>,
    /// Resource types, any of which may match.
    pub ty: Vec<ResourceType>,
    /// Content size above or equal.
    pub sza: Option<u64>,
    /// Content size below.
    pub szb: Option<u64>,
    /// Content types (`cnf`), any of which may match.
    pub cty: Vec<String>,
    /// Resource names, any of which may match.
    pub rn: Vec<String>,
    /// Maximum number of results.
    pub lim: Option<u64>,
    /// Maximum depth below the target.
    pub lvl: Option<u64>,
    /// Number of matches to skip.
    pub ofst: Option<u64>,
    /// 1 AND (default), 2 OR between different criteria.
    pub fo: Option<u8>,
    /// Conditions on attributes by short name and value (`attribute`, clause 7.3.3.17.9):
    /// one criterion, met when any of them matches.
    pub atr: Vec<(String, String)>,
    /// Expressions on `key:value` labels (`labelsQuery`, clause 7.3.3.17.16): one
    /// criterion, met when any of them matches.
    pub lbq: Vec<LabelQuery>,
    /// A relative path appended to each discovered resource's address, whose resource
    /// replaces it in the result (`applyRelativePath`, clause 7.3.3.17.17; discovery only).
    pub arp: Option<RelativePath>,
    /// Geo-query: the geometry type of `geom`.
    pub gmty: Option<u64>,
    /// Geo-query: the query geometry's coordinates, in their JSON text form.
    pub geom: Option<String>,
    /// Geo-query: the spatial function (1 within, 2 contains, 3 intersects).
    pub gsf: Option<u64>,
    /// The three geo-query criteria read together by [`validate`](Self::validate).
    pub geo: Option<crate::location::GeoQuery>,
}

/// One `labelsQuery` expression (clause 7.3.3.17.16) on labels of the form `key` or
/// `key:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelQuery {
    /// `key`: some label has the key.
    Has(String),
    /// `NT key`: no label has the key.
    Lacks(String),
    /// `key EQ value` or `key:value`: some label is `key:value`.
    Equals(String, String),
    /// `key NE value`: some label has the key, none is `key:value`.
    NotEquals(String, String),
    /// `key IN (v1, v2, ...)`: some label is `key:vi`.
    In(String, Vec<String>),
    /// `key NI (v1, v2, ...)`: some label has the key, none is `key:vi`.
    NotIn(String, Vec<String>),
}

impl LabelQuery {
    /// Parses one expression; anything else is 4000.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::bad_request(format!("invalid labels query expression '{text}'"));
        let text = text.trim_start();
        let word = |w: &str| -> Result<String> {
            if w.is_empty() || w.contains(char::is_whitespace) || w.contains(['(', ')', ',']) {
                Err(bad())
            } else {
                Ok(w.to_owned())
            }
        };
        if let Some(key) = text.strip_prefix("NT ") {
            return Ok(Self::Lacks(word(key.trim())?));
        }
        let text = text.trim_end();
        let mut parts = text.splitn(3, char::is_whitespace);
        let (key, op, rest) = (parts.next(), parts.next(), parts.next());
        match (key, op, rest) {
            (Some(key), None, None) => match key.split_once(':') {
                Some((k, v)) => Ok(Self::Equals(word(k)?, word(v)?)),
                None => Ok(Self::Has(word(key)?)),
            },
            (Some(key), Some("EQ"), Some(v)) => Ok(Self::Equals(word(key)?, word(v.trim())?)),
            (Some(key), Some("NE"), Some(v)) => Ok(Self::NotEquals(word(key)?, word(v.trim())?)),
            (Some(key), Some(op @ ("IN" | "NI")), Some(list)) => {
                let inner = list
                    .trim()
                    .strip_prefix('(')
                    .and_then(|l| l.strip_suffix(')'))
                    .ok_or_else(bad)?;
                let values = inner
                    .split(',')
                    .map(|v| word(v.trim()))
                    .collect::<Result<Vec<_>>>()?;
                let key = word(key)?;
                Ok(if op == "IN" {
                    Self::In(key, values)
                } else {
                    Self::NotIn(key, values)
                })
            }
            _ => Err(bad()),
        }
    }

    /// Whether labels (each `key` or `key:value`) satisfy the expression.
    pub fn matches<'a>(&self, labels: impl Iterator<Item = &'a str> + Clone) -> bool {
        let split = |l: &'a str| l.split_once(':').unwrap_or((l, ""));
        let has_key = |key: &str| labels.clone().any(|l| split(l).0 == key);
        let has_pair = |key: &str, value: &str| {
            labels
                .clone()
                .any(|l| matches!(l.split_once(':'), Some((k, v)) if k == key && v == value))
        };
        match self {
            Self::Has(key) => has_key(key),
            Self::Lacks(key) => !has_key(key),
            Self::Equals(key, value) => has_pair(key, value),
            Self::NotEquals(key, value) => has_key(key) && !has_pair(key, value),
            Self::In(key, values) => values.iter().any(|v| has_pair(key, v)),
            Self::NotIn(key, values) => has_key(key) && !values.iter().any(|v| has_pair(key, v)),
        }
    }
}

/// An `applyRelativePath`: resource names, `..` (the parent) and the virtual `la`/`ol`,
/// relative to a discovered resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelativePath(Vec<String>);

impl RelativePath {
    /// Parses a relative path: non-empty segments, no leading `/` (4000 otherwise).
    pub fn parse(text: &str) -> Result<Self> {
        let bad =
            |why: &str| Error::bad_request(format!("invalid applyRelativePath '{text}': {why}"));
        if text.starts_with('/') {
            return Err(bad("it must be relative"));
        }
        let segments: Vec<String> = text.split('/').map(str::to_owned).collect();
        for s in &segments {
            if s.is_empty() {
                return Err(bad("empty segment"));
            }
            if s != ".." && s != "la" && s != "ol" {
                crate::id::validate_resource_name(s).map_err(|_| bad("not a resource name"))?;
            }
        }
        Ok(Self(segments))
    }

    /// The structured address reached from `srn` (a CSE-relative structured name); `None`
    /// when `..` would climb above the `<CSEBase>`.
    pub fn apply(&self, srn: &str) -> Option<String> {
        let mut path: Vec<&str> = srn.split('/').collect();
        for s in &self.0 {
            if s == ".." {
                path.pop();
                if path.is_empty() {
                    return None;
                }
            } else {
                path.push(s);
            }
        }
        Some(path.join("/"))
    }
}

/// Attributes that other criteria cover, so clause 7.3.3.17.9 forbids them as attribute
/// conditions.
const NOT_AN_ATTRIBUTE_CONDITION: &[&str] = &["ct", "lt", "st", "et", "lbl", "ty", "cs", "cnf"];

/// Criteria TS-0004 defines that this CSE does not implement: refused with 5001
/// (clause 7.3.2.1) rather than ignored. Semantic and content-based discovery, the
/// labels query, criteria on parents and children, and the relative path.
const NOT_IMPLEMENTED: &[&str] = &["smf", "cfs", "cfq", "clbl", "plbl", "chty", "pty"];

/// Whether a name is an attribute of some resource type this CSE hosts (and supports: one
/// of [`attributes::Kind::Unsupported`] is never stored, so a condition on it could only
/// pretend to filter).
fn is_attribute(name: &str) -> bool {
    crate::types::ResourceType::ALL.iter().any(|ty| {
        attributes::find(*ty, name).is_some_and(|a| a.kind != attributes::Kind::Unsupported)
    })
}

/// Whether a name is an attribute the Release 3 tables define but this CSE does not
/// support on any type: a condition on it is 5001, like the attribute itself.
fn is_unsupported_attribute(name: &str) -> bool {
    !is_attribute(name)
        && crate::types::ResourceType::ALL
            .iter()
            .any(|ty| attributes::find(*ty, name).is_some())
}

/// Query parameters that are request parameters rather than filter criteria.
pub const NON_FILTER_PARAMS: &[&str] = &[
    "rcn", "rt", "rp", "da", "drt", "atrl", "rvi", "rqi", "ec", "sqi",
];

fn int(key: &str, v: &str) -> Result<u64> {
    v.parse::<u64>()
        .map_err(|_| Error::bad_request(format!("filter '{key}' needs a non-negative integer")))
}

impl FilterCriteria {
    /// Whether a criterion is a list whose items the HTTP query form joins with `+`.
    pub fn is_list(key: &str) -> bool {
        matches!(key, "lbl" | "cty" | "ty" | "lbq")
    }

    /// Adds one `key=value` criterion in its decoded query form: list criteria are split on
    /// `+` (`ty=3+4`); repeated keys add to lists. A list item containing `+` needs
    /// [`add_item`](Self::add_item).
    pub fn add(&mut self, key: &str, value: &str) -> Result<()> {
        if !Self::is_list(key) {
            return self.add_item(key, value);
        }
        value
            .split('+')
            .filter(|item| key == "ty" || !item.is_empty())
            .try_for_each(|item| self.add_item(key, item))
    }

    /// Adds one criterion whose value is a single item (a list criterion gets one more
    /// entry, taken as it is).
    pub fn add_item(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "fu" => {
                self.fu = Some(match int(key, value)? {
                    n @ (1 | 2) => n as u8,
                    _ => return Err(Error::bad_request("fu must be 1 or 2")),
                })
            }
            "crb" => self.crb = Some(time::parse(value)?),
            "cra" => self.cra = Some(time::parse(value)?),
            "ms" => self.ms = Some(time::parse(value)?),
            "us" => self.us = Some(time::parse(value)?),
            "exb" => self.exb = Some(time::parse(value)?),
            "exa" => self.exa = Some(time::parse(value)?),
            "sts" => self.sts = Some(int(key, value)?),
            "stb" => self.stb = Some(int(key, value)?),
            "sza" => self.sza = Some(int(key, value)?),
            "szb" => self.szb = Some(int(key, value)?),
            "lim" => self.lim = Some(int(key, value)?),
            "lvl" => self.lvl = Some(int(key, value)?),
            "ofst" => self.ofst = Some(int(key, value)?),
            "fo" => {
                self.fo = Some(match int(key, value)? {
                    n @ (1 | 2) => n as u8,
                    _ => return Err(Error::bad_request("fo must be 1 or 2")),
                })
            }
            "lbl" => self.lbl.push(value.to_owned()),
            "cty" => self.cty.push(value.to_owned()),
            "rn" => self.rn.push(value.to_owned()),
            "lbq" => self.lbq.push(LabelQuery::parse(value)?),
            "arp" if self.arp.is_some() => {
                return Err(Error::bad_request("applyRelativePath is given once"))
            }
            "arp" => self.arp = Some(RelativePath::parse(value)?),
            "ty" => self.ty.push(ResourceType::from_code(int(key, value)?)?),
            "gmty" | "geom" | "gsf" => self.add_geo(key, value)?,
            _ if NOT_IMPLEMENTED.contains(&key)
                || key.starts_with("c.")
                || key.starts_with("p.")
                || is_unsupported_attribute(key) =>
            {
                return Err(Error::new(
                    ResponseStatusCode::NotImplemented,
                    format!("filter criterion '{key}' is not supported"),
                ))
            }
            _ if NOT_AN_ATTRIBUTE_CONDITION.contains(&key) => {
                return Err(Error::bad_request(format!(
                    "'{key}' cannot be an attribute condition (TS-0004 7.3.3.17.9)"
                )))
            }
            _ if is_attribute(key) => self.atr.push((key.to_owned(), value.to_owned())),
            _ => {
                return Err(Error::bad_request(format!(
                    "unknown filter criterion '{key}'"
                )))
            }
        }
        Ok(())
    }

    /// One of the three geo-query criteria; once all three are there, the query is read
    /// (4000 for a bad geometry) so that matching never parses it again.
    fn add_geo(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "gmty" => {
                let n = int(key, value)?;
                crate::location::GeometryType::from_code(n)?;
                self.gmty = Some(n);
            }
            "gsf" => {
                let n = int(key, value)?;
                crate::location::SpatialFunction::from_code(n)?;
                self.gsf = Some(n);
            }
            _ => self.geom = Some(value.to_owned()),
        }
        if let (Some(_), Some(_), Some(_)) = (self.gmty, &self.geom, self.gsf) {
            self.geo =
                crate::location::GeoQuery::from_parts(self.gmty, self.geom.as_deref(), self.gsf)?;
        }
        Ok(())
    }

    /// Parses the JSON form of `fc` (as carried by non-HTTP bindings).
    pub fn from_json(v: &Value) -> Result<Self> {
        let obj = v
            .as_object()
            .ok_or_else(|| Error::bad_request("fc must be an object"))?;
        let mut fc = Self::default();
        for (k, v) in obj {
            if k == "geom" && v.is_array() {
                fc.add_item(k, &v.to_string())?;
                continue;
            }
            let items: Vec<String> = match v {
                Value::Array(a) => a.iter().map(scalar).collect::<Result<_>>()?,
                other => vec![scalar(other)?],
            };
            for item in items {
                fc.add_item(k, &item)?;
            }
        }
        Ok(fc)
    }

    /// Cross-field checks that a single parameter cannot make: `sza` below `szb`, and a
    /// geo-query has all of `gmty`, `geom` and `gsf` or none of them.
    pub fn validate(&self) -> Result<()> {
        if matches!((self.sza, self.szb), (Some(a), Some(b)) if a >= b) {
            return Err(Error::bad_request("sza must be smaller than szb"));
        }
        if self.arp.is_some() && self.fu != Some(1) {
            // Clause 7.3.3.17.17 shapes a discovery result; a conditional retrieval has
            // none to shape.
            return Err(Error::bad_request(
                "applyRelativePath needs fu=1 (discovery)",
            ));
        }
        crate::location::GeoQuery::from_parts(self.gmty, self.geom.as_deref(), self.gsf)?;
        Ok(())
    }

    /// True when any condition on the resources themselves is present.
    pub fn has_conditions(&self) -> bool {
        self.crb.is_some()
            || self.cra.is_some()
            || self.ms.is_some()
            || self.us.is_some()
            || self.sts.is_some()
            || self.stb.is_some()
            || self.exb.is_some()
            || self.exa.is_some()
            || !self.lbl.is_empty()
            || !self.ty.is_empty()
            || self.sza.is_some()
            || self.szb.is_some()
            || !self.cty.is_empty()
            || !self.rn.is_empty()
            || !self.atr.is_empty()
            || !self.lbq.is_empty()
            || self.geo.is_some()
    }

    /// True when a condition reads an attribute's value by name (clause 7.3.3.17.9).
    /// The geo-query reads `loc`, so it counts.
    pub fn has_attribute_conditions(&self) -> bool {
        !self.atr.is_empty() || self.geo.is_some()
    }

    /// Whether a resource (its attribute map) matches the conditions. A range given by two
    /// tags (`cra`/`crb`, `ms`/`us`, `stb`/`sts`, `exa`/`exb`, `sza`/`szb`) is one criterion,
    /// as clauses 7.3.3.17.1 to .4 and .7 define it; `fo` combines the criteria.
    pub fn matches(&self, ty: ResourceType, attrs: &Map<String, Value>) -> bool {
        let ts = |k: &str| {
            attrs
                .get(k)
                .and_then(Value::as_str)
                .and_then(|s| time::parse(s).ok())
        };
        let num = |k: &str| attrs.get(k).and_then(Value::as_u64);
        let mut results: Vec<bool> = Vec::new();
        let mut range =
            |value: Option<Timestamp>, after: Option<Timestamp>, before: Option<Timestamp>| {
                if after.is_some() || before.is_some() {
                    results.push(value.is_some_and(|v| {
                        after.is_none_or(|a| a <= v) && before.is_none_or(|b| v < b)
                    }));
                }
            };
        range(ts("ct"), self.cra, self.crb);
        range(ts("lt"), self.ms, self.us);
        range(ts("et"), self.exa, self.exb);
        let mut check = |present: bool, ok: bool| {
            if present {
                results.push(ok);
            }
        };
        let within = |value: Option<u64>, above: Option<u64>, below: Option<u64>| {
            value.is_some_and(|v| above.is_none_or(|a| a <= v) && below.is_none_or(|b| v < b))
        };
        check(
            self.stb.is_some() || self.sts.is_some(),
            within(num("st"), self.stb, self.sts),
        );
        check(
            self.sza.is_some() || self.szb.is_some(),
            within(num("cs"), self.sza, self.szb),
        );
        check(!self.lbl.is_empty(), {
            let labels = attrs.get("lbl").and_then(Value::as_array);
            labels.is_some_and(|l| {
                l.iter()
                    .any(|v| v.as_str().is_some_and(|s| self.lbl.iter().any(|x| x == s)))
            })
        });
        check(!self.lbq.is_empty(), {
            let labels = attrs
                .get("lbl")
                .and_then(Value::as_array)
                .map(|l| l.iter().filter_map(Value::as_str).collect::<Vec<_>>())
                .unwrap_or_default();
            self.lbq.iter().any(|q| q.matches(labels.iter().copied()))
        });
        check(!self.ty.is_empty(), self.ty.contains(&ty));
        check(!self.cty.is_empty(), {
            let cnf = attrs
                .get("cnf")
                .and_then(Value::as_str)
                .map(|c| c.split(':').next().unwrap_or(c));
            cnf.is_some_and(|c| self.cty.iter().any(|x| x == c))
        });
        check(!self.rn.is_empty(), {
            let rn = attrs.get("rn").and_then(Value::as_str);
            rn.is_some_and(|r| self.rn.iter().any(|x| x == r))
        });
        check(
            !self.atr.is_empty(),
            self.atr.iter().any(|(name, wanted)| {
                attributes::find(ty, name).is_some()
                    && attrs
                        .get(name)
                        .is_some_and(|v| value_matches(v, wanted, self.fu == Some(1)))
            }),
        );
        if let Some(q) = &self.geo {
            results.push(attributes::find(ty, "loc").is_some() && q.matches(attrs.get("loc")));
        }
        if results.is_empty() {
            return true;
        }
        if self.fo == Some(2) {
            results.iter().any(|b| *b)
        } else {
            results.iter().all(|b| *b)
        }
    }
}

/// Whether an attribute's value matches a condition's value, given as text (the HTTP query
/// form): a string equals it (with `*` for any run of characters in discovery, clause
/// 7.3.3.17.9), a number or boolean is compared in its JSON text, a list matches when any
/// item does. An object never matches: no text form of it is defined.
fn value_matches(v: &Value, wanted: &str, wildcards: bool) -> bool {
    match v {
        Value::String(s) if wildcards && wanted.contains('*') => wildcard(s, wanted),
        Value::String(s) => s == wanted,
        Value::Number(n) => n.to_string() == wanted,
        Value::Bool(b) => b.to_string() == wanted,
        Value::Array(items) => items
            .iter()
            .any(|i| !i.is_array() && value_matches(i, wanted, wildcards)),
        _ => false,
    }
}

/// Glob matching with `*` only, in time linear in the text per pattern piece (no
/// backtracking blow-up on hostile patterns).
fn wildcard(text: &str, pattern: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn scalar(v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(Error::bad_request(
            "filter criteria values must be strings or numbers",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn parses_and_refuses() {
        let mut fc = FilterCriteria::default();
        assert!(fc.add("ty", "3+4").is_ok());
        assert_eq!(
            fc.ty,
            vec![ResourceType::Container, ResourceType::ContentInstance]
        );
        assert!(fc.add("ty", "999").is_err());
        assert!(fc.add("lim", "-1").is_err());
        assert!(fc.add("bogus", "1").is_err());
        assert!(fc.add("cra", "yesterday").is_err());
        assert!(fc.add("fu", "3").is_err());
    }

    #[test]
    fn and_or_semantics() {
        let r = attrs(json!({"lbl": ["a", "b"], "ct": "20260101T000000", "rn": "x", "cs": 10}));
        let mut fc = FilterCriteria::default();
        fc.add("lbl", "b").ok();
        fc.add("cra", "20250101T000000").ok();
        assert!(fc.matches(ResourceType::Container, &r));
        fc.add("ty", "4").ok();
        assert!(!fc.matches(ResourceType::Container, &r));
        fc.fo = Some(2);
        assert!(fc.matches(ResourceType::Container, &r));
        let mut sz = FilterCriteria::default();
        sz.add("sza", "10").ok();
        sz.add("szb", "11").ok();
        assert!(sz.matches(ResourceType::ContentInstance, &r));
    }

    #[test]
    fn ranges_include_their_lower_bound_and_are_one_criterion() {
        // TS-0004 7.3.3.17.1/.3: createdAfter <= ct < createdBefore, stateTagBigger <= st.
        let r = attrs(json!({"ct": "20260101T000000", "st": 3, "rn": "x"}));
        let mut fc = FilterCriteria::default();
        fc.add("cra", "20260101T000000").ok();
        fc.add("stb", "3").ok();
        assert!(fc.matches(ResourceType::Container, &r));
        fc.add("crb", "20260101T000000").ok();
        assert!(!fc.matches(ResourceType::Container, &r));
        // With OR the creation-time range still needs both of its bounds.
        fc.fo = Some(2);
        fc.stb = None;
        fc.add("rn", "y").ok();
        assert!(!fc.matches(ResourceType::Container, &r));
    }

    #[test]
    fn attribute_conditions() {
        let cnt = attrs(json!({"cni": 5, "cr": "CAE-ID12", "acpi": ["a1", "a2"], "rn": "c"}));
        let mut fc = FilterCriteria::default();
        fc.add("cni", "5").expect("cni");
        assert!(fc.matches(ResourceType::Container, &cnt));
        assert_eq!(fc.atr, vec![("cni".to_owned(), "5".to_owned())]);
        let mut other = FilterCriteria::default();
        other.add("cni", "4").ok();
        assert!(!other.matches(ResourceType::Container, &cnt));
        // Several attribute conditions are one criterion: any of them (clause 7.3.3.17.9).
        other.add("acpi", "a2").ok();
        assert!(other.matches(ResourceType::Container, &cnt));
        // Wildcards in discovery only.
        let mut wild = FilterCriteria::default();
        wild.add("cr", "CAE-*2").ok();
        assert!(!wild.matches(ResourceType::Container, &cnt));
        wild.fu = Some(1);
        assert!(wild.matches(ResourceType::Container, &cnt));
        // An attribute the type does not have never matches.
        let mut api = FilterCriteria::default();
        api.add("api", "Nx").ok();
        assert!(!api.matches(ResourceType::Container, &json_map(json!({"api": "Nx"}))));
        assert!(api.matches(ResourceType::Ae, &json_map(json!({"api": "Nx"}))));
        // Refusals: forbidden names 4000, unknown names 4000, unimplemented criteria 5001.
        let code = |k: &str| FilterCriteria::default().add(k, "1").err().map(|e| e.rsc);
        assert_eq!(code("ct"), Some(ResponseStatusCode::BadRequest));
        assert_eq!(code("nosuch"), Some(ResponseStatusCode::BadRequest));
        // `gpi` is defined for <subscription> but not supported (never stored).
        for k in ["smf", "c.rn", "p.lbl", "chty", "gpi"] {
            assert_eq!(code(k), Some(ResponseStatusCode::NotImplemented), "{k}");
        }
    }

    /// The geo-query: the three criteria together select resources whose `loc` relates to
    /// the geometry; one missing is 4000 at validation, a bad geometry 4000 when read.
    #[test]
    fn geo_query() {
        let inside = json_map(json!({"loc": {"typ": 1, "crd": "[2.35, 48.85]"}}));
        let outside = json_map(json!({"loc": {"typ": 1, "crd": [13.4, 52.5]}}));
        let mut fc = FilterCriteria::default();
        fc.add("gmty", "3").expect("gmty");
        fc.add("gsf", "1").expect("gsf");
        assert_eq!(
            fc.validate().err().map(|e| e.rsc),
            Some(ResponseStatusCode::BadRequest)
        );
        fc.add("geom", "[[[2,48],[3,48],[3,49],[2,49],[2,48]]]")
            .expect("geom");
        assert!(fc.validate().is_ok());
        assert!(fc.has_conditions());
        assert!(fc.matches(ResourceType::Ae, &inside));
        assert!(!fc.matches(ResourceType::Ae, &outside));
        assert!(!fc.matches(ResourceType::Ae, &json_map(json!({"rn": "x"}))));
        // A type without `loc` never matches, whatever it holds.
        assert!(!fc.matches(ResourceType::ContentInstance, &inside));
        let mut bad = FilterCriteria::default();
        bad.add("gmty", "1").ok();
        bad.add("gsf", "1").ok();
        assert_eq!(
            bad.add("geom", "[200,0]").err().map(|e| e.rsc),
            Some(ResponseStatusCode::BadRequest)
        );
        let from_json =
            FilterCriteria::from_json(&json!({"gmty": 1, "geom": [2.5, 48.5], "gsf": 1}));
        assert!(from_json.is_ok_and(|f| f.geo.is_some()));
    }

    fn json_map(v: Value) -> Map<String, Value> {
        attrs(v)
    }

    #[test]
    fn labels_queries() {
        let labels = ["room:kitchen", "sensor", "room:hall"];
        let q = |text: &str| LabelQuery::parse(text).expect(text);
        let on = |text: &str| q(text).matches(labels.iter().copied());
        assert!(on("room") && on("sensor") && !on("floor"));
        assert!(on("NT floor") && !on("NT room"));
        assert!(on("room EQ kitchen") && on("room:kitchen") && !on("room:bath"));
        assert!(on("room NE bath") && !on("floor NE bath"));
        assert!(on("room IN (bath, hall)") && !on("room IN (bath)"));
        assert!(on("room NI (bath)") && !on("room NI (kitchen, bath)"));
        // `sensor` is a key without a value: it has no `sensor:x` pair.
        assert!(!on("sensor EQ x") && on("sensor NE x"));
        for bad in [
            "", "NT ", "a XX b", "a IN b", "a IN ()", "a EQ", "a b c d", "a:b:c d",
        ] {
            assert!(LabelQuery::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn relative_paths() {
        let p = |text: &str| RelativePath::parse(text).expect(text);
        assert_eq!(
            p("la").apply("cse-in/ae/c").as_deref(),
            Some("cse-in/ae/c/la")
        );
        assert_eq!(
            p("../d/ol").apply("cse-in/ae/c").as_deref(),
            Some("cse-in/ae/d/ol")
        );
        assert_eq!(p("..").apply("cse-in").as_deref(), None);
        for bad in ["/cse-in", "a//b", "", "a/"] {
            assert!(RelativePath::parse(bad).is_err(), "{bad:?}");
        }
        let mut fc = FilterCriteria::default();
        fc.add("arp", "la").expect("arp");
        assert!(fc.add("arp", "ol").is_err(), "given once");
        assert!(fc.validate().is_err(), "discovery only");
        fc.fu = Some(1);
        assert!(fc.validate().is_ok());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("CAE-ID123", "CAE-ID*"));
        assert!(wildcard("CAE-ID123", "*ID123"));
        assert!(wildcard("abc", "a*b*c"));
        assert!(wildcard("abc", "*"));
        assert!(!wildcard("ab", "a*b*b"));
        assert!(!wildcard("abc", "b*"));
    }
}
