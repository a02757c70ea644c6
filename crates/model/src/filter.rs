//! Filter criteria (`fc`, TS-0004 clause 6.3.5.8): conditions for discovery and conditional
//! retrieval, parsed strictly and evaluated against stored resources.

use crate::attributes;
use crate::content_filter::ContentQuery;
use crate::error::{Error, Result};
use crate::resource::Resource;
use crate::rsc::ResponseStatusCode;
use crate::time::{self, Timestamp};
use crate::types::ResourceType;
use serde_json::{Map, Value};
use std::sync::Arc;

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
    /// Labels a child must have (`childLabels`, clause 7.3.3.17.5): parents of a child with
    /// any of them match.
    pub clbl: Vec<String>,
    /// Labels the parent must have (`parentLabels`, `palb`, clause 7.3.3.17.5).
    pub palb: Vec<String>,
    /// Types a child must have (`childResourceType`, clause 7.3.3.17.6).
    pub chty: Vec<ResourceType>,
    /// Types the parent must have (`parentResourceType`, clause 7.3.3.17.6).
    pub pty: Vec<ResourceType>,
    /// Attribute conditions on a child (`childAttribute`, clause 7.3.3.17.9): one criterion,
    /// met when some child meets any of them.
    pub catr: Vec<(String, String)>,
    /// Attribute conditions on the parent (`parentAttribute`, clause 7.3.3.17.9).
    pub patr: Vec<(String, String)>,
    /// The syntax of `cfq` (`contentFilterSyntax`, clause 7.3.3.17.13; 1 JSON path).
    pub cfs: Option<u64>,
    /// The content-based query as given (`contentFilterQuery`).
    pub cfq: Option<String>,
    /// `cfs` and `cfq` read together once both are there.
    pub content: Option<ContentQuery>,
}

/// The parent and children of a resource as the originator may see them, for the criteria on
/// relatives (`palb`, `pty`, `patr`, `clbl`, `chty`, `catr`). The CSE implements it with its
/// store and its access decisions: a relative the originator may not RETRIEVE is not shown,
/// so that no resource is selected through it.
pub trait Relatives {
    /// The parent of `of`, if it exists and the originator may RETRIEVE it.
    fn parent(&mut self, of: &Resource) -> Result<Option<Arc<Resource>>>;
    /// Shows `visit` the children of `of` that the originator may RETRIEVE (only those of
    /// `types` when not empty), until `visit` answers true (enough seen).
    fn children(
        &mut self,
        of: &Resource,
        types: &[ResourceType],
        visit: &mut dyn FnMut(&Resource) -> bool,
    ) -> Result<()>;
}

/// Relatives of no one: every criterion on a parent or child is unmet.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRelatives;

impl Relatives for NoRelatives {
    fn parent(&mut self, _of: &Resource) -> Result<Option<Arc<Resource>>> {
        Ok(None)
    }

    fn children(
        &mut self,
        _of: &Resource,
        _types: &[ResourceType],
        _visit: &mut dyn FnMut(&Resource) -> bool,
    ) -> Result<()> {
        Ok(())
    }
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
/// (clause 7.3.2.1) rather than ignored. Semantic discovery.
const NOT_IMPLEMENTED: &[&str] = &["smf"];

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
        matches!(
            key,
            "lbl" | "cty" | "ty" | "lbq" | "clbl" | "palb" | "plbl" | "chty" | "pty"
        )
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
            "clbl" => self.clbl.push(value.to_owned()),
            // `palb` is the short name of TS-0004 table 8.2.5-1; `plbl` the one some clients send.
            "palb" | "plbl" => self.palb.push(value.to_owned()),
            "chty" => self.chty.push(ResourceType::from_code(int(key, value)?)?),
            "pty" => self.pty.push(ResourceType::from_code(int(key, value)?)?),
            "cfs" | "cfq" => self.add_content(key, value)?,
            _ if NOT_IMPLEMENTED.contains(&key) => {
                return Err(Error::new(
                    ResponseStatusCode::NotImplemented,
                    format!("filter criterion '{key}' is not supported"),
                ))
            }
            _ => {
                // `c.name=value` and `p.name=value`: conditions on a child's or the parent's
                // attribute (childAttribute, parentAttribute); `name=value` on the resource's.
                let (list, name) = if let Some(name) = key.strip_prefix("c.") {
                    (&mut self.catr, name)
                } else if let Some(name) = key.strip_prefix("p.") {
                    (&mut self.patr, name)
                } else {
                    (&mut self.atr, key)
                };
                check_attribute_condition(key, name)?;
                list.push((name.to_owned(), value.to_owned()));
            }
        }
        Ok(())
    }

    /// `cfs` or `cfq`; once both are there, the query is read (4000 for a syntax Release 3
    /// does not define or a malformed query) so that matching never parses it again.
    fn add_content(&mut self, key: &str, value: &str) -> Result<()> {
        if key == "cfs" {
            if self.cfs.is_some() {
                return Err(Error::bad_request("contentFilterSyntax is given once"));
            }
            let syntax = int(key, value)?;
            if syntax != crate::content_filter::JSON_PATH_SYNTAX {
                return Err(Error::bad_request(format!(
                    "contentFilterSyntax {syntax} is not defined (1: JSON_PATH_SYNTAX)"
                )));
            }
            self.cfs = Some(syntax);
        } else {
            if self.cfq.is_some() {
                return Err(Error::bad_request("contentFilterQuery is given once"));
            }
            self.cfq = Some(value.to_owned());
        }
        if let (Some(syntax), Some(query)) = (self.cfs, &self.cfq) {
            self.content = Some(ContentQuery::parse(syntax, query)?);
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

    /// Parses the JSON form of `fc` (as carried by non-HTTP bindings). Attribute conditions
    /// come as `atr`, `catr` and `patr` lists of `m2m:attribute` (`{"nm": .., "val": ..}`),
    /// or, for `atr`, as members named by the attribute.
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
            if let Some(prefix) = match k.as_str() {
                "atr" => Some(""),
                "catr" => Some("c."),
                "patr" => Some("p."),
                _ => None,
            } {
                let items = match v {
                    Value::Array(a) => a.as_slice(),
                    other => std::slice::from_ref(other),
                };
                for item in items {
                    let name = item.get("nm").and_then(Value::as_str);
                    let value = item.get("val").map(scalar).transpose()?;
                    let (Some(name), Some(value)) = (name, value) else {
                        return Err(Error::bad_request(format!(
                            "{k} items are m2m:attribute objects with nm and val"
                        )));
                    };
                    fc.add_item(&format!("{prefix}{name}"), &value)?;
                }
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
        // Clause 7.3.3.17.13: a query needs its syntax, and the syntax its query.
        if self.cfs.is_some() != self.cfq.is_some() {
            return Err(Error::bad_request(
                "contentFilterSyntax and contentFilterQuery go together",
            ));
        }
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
            || self.content.is_some()
            || self.has_related_conditions()
    }

    /// True when a condition reads an attribute's value by name (clause 7.3.3.17.9).
    /// The geo-query reads `loc` and the content filter `con`, so they count.
    pub fn has_attribute_conditions(&self) -> bool {
        !self.atr.is_empty() || self.geo.is_some() || self.content.is_some()
    }

    /// True when a condition is on the parent (`palb`, `pty`, `patr`) or on the children
    /// (`clbl`, `chty`, `catr`), which [`matches_with`](Self::matches_with) reads.
    pub fn has_related_conditions(&self) -> bool {
        self.has_parent_conditions() || self.has_child_conditions()
    }

    fn has_parent_conditions(&self) -> bool {
        !self.palb.is_empty() || !self.pty.is_empty() || !self.patr.is_empty()
    }

    fn has_child_conditions(&self) -> bool {
        !self.clbl.is_empty() || !self.chty.is_empty() || !self.catr.is_empty()
    }

    /// Whether a resource matches, its relatives' criteria included (read through
    /// `relatives` only when the resource's own criteria leave the answer open). Each
    /// criterion on relatives is one condition tag (clauses 7.3.3.17.5, .6 and .9), combined
    /// with the others by `fo`: `clbl` is met when some child has one of the labels, `chty`
    /// when some child has one of the types, `catr` when some child meets one of the
    /// attribute conditions (not necessarily the same child for each); `palb`, `pty` and
    /// `patr` likewise on the parent.
    pub fn matches_with(&self, r: &Resource, relatives: &mut dyn Relatives) -> Result<bool> {
        let mut results = self.own_results(r.ty, &r.attrs);
        if !self.has_related_conditions() {
            return Ok(self.combine(&results));
        }
        let or = self.fo == Some(2);
        let settled = |results: &[bool]| {
            if or {
                results.iter().any(|b| *b)
            } else {
                results.iter().any(|b| !*b)
            }
        };
        if settled(&results) {
            return Ok(or);
        }
        if self.has_parent_conditions() {
            let parent = relatives.parent(r)?;
            let parent = parent.as_deref();
            if !self.palb.is_empty() {
                results.push(parent.is_some_and(|p| has_label(&p.attrs, &self.palb)));
            }
            if !self.pty.is_empty() {
                results.push(parent.is_some_and(|p| self.pty.contains(&p.ty)));
            }
            if !self.patr.is_empty() {
                let fu = self.fu;
                results.push(parent.is_some_and(|p| attribute_met(&self.patr, p, fu)));
            }
            if settled(&results) {
                return Ok(or);
            }
        }
        if self.has_child_conditions() {
            // One pass over the children decides the three criteria; it stops as soon as
            // the outcome is known. Only `chty` alone lets the store select by type.
            let wanted = [
                !self.clbl.is_empty(),
                !self.chty.is_empty(),
                !self.catr.is_empty(),
            ];
            let mut met = [false; 3];
            let types: &[ResourceType] = if wanted == [false, true, false] {
                &self.chty
            } else {
                &[]
            };
            relatives.children(r, types, &mut |c| {
                met[0] = met[0] || (wanted[0] && has_label(&c.attrs, &self.clbl));
                met[1] = met[1] || (wanted[1] && self.chty.contains(&c.ty));
                met[2] = met[2] || (wanted[2] && attribute_met(&self.catr, c, self.fu));
                if or {
                    met.iter().any(|m| *m)
                } else {
                    wanted.iter().zip(met).all(|(w, m)| !w || m)
                }
            })?;
            results.extend(wanted.iter().zip(met).filter(|(w, _)| **w).map(|(_, m)| m));
        }
        Ok(self.combine(&results))
    }

    /// Whether a resource (its attribute map) matches the conditions. A range given by two
    /// tags (`cra`/`crb`, `ms`/`us`, `stb`/`sts`, `exa`/`exb`, `sza`/`szb`) is one criterion,
    /// as clauses 7.3.3.17.1 to .4 and .7 define it; `fo` combines the criteria.
    /// Criteria on relatives are unmet here (no relatives are known): see
    /// [`matches_with`](Self::matches_with).
    pub fn matches(&self, ty: ResourceType, attrs: &Map<String, Value>) -> bool {
        let mut results = self.own_results(ty, attrs);
        if self.has_parent_conditions() || self.has_child_conditions() {
            results.push(false);
        }
        self.combine(&results)
    }

    /// `fo` applied to the criteria's outcomes: all (AND, the default) or any (OR); no
    /// criterion is a match.
    fn combine(&self, results: &[bool]) -> bool {
        if results.is_empty() {
            return true;
        }
        if self.fo == Some(2) {
            results.iter().any(|b| *b)
        } else {
            results.iter().all(|b| *b)
        }
    }

    /// The outcome of each criterion on the resource's own attributes.
    fn own_results(&self, ty: ResourceType, attrs: &Map<String, Value>) -> Vec<bool> {
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
        if let Some(q) = &self.content {
            // Annex J of TS-0001: the content of <contentInstance> resources.
            results.push(ty == ResourceType::ContentInstance && q.matches_instance(attrs));
        }
        results
    }
}

/// Whether any of the resource's labels is one of `wanted` (clause 7.3.3.17.5).
fn has_label(attrs: &Map<String, Value>, wanted: &[String]) -> bool {
    attrs.get("lbl").and_then(Value::as_array).is_some_and(|l| {
        l.iter()
            .any(|v| v.as_str().is_some_and(|s| wanted.iter().any(|x| x == s)))
    })
}

/// Whether the resource meets any of the attribute conditions (clause 7.3.3.17.9): it has
/// the attribute (by its type) and the value matches.
fn attribute_met(conditions: &[(String, String)], r: &Resource, fu: Option<u8>) -> bool {
    conditions.iter().any(|(name, wanted)| {
        attributes::find(r.ty, name).is_some()
            && r.attrs
                .get(name)
                .is_some_and(|v| value_matches(v, wanted, fu == Some(1)))
    })
}

/// Refuses a name as an attribute condition (`key` as given, `name` without its `c.` or
/// `p.`): 5001 for an attribute the tables define but this CSE does not support, 4000 for
/// one clause 7.3.3.17.9 forbids or for a name that is no attribute.
fn check_attribute_condition(key: &str, name: &str) -> Result<()> {
    if is_unsupported_attribute(name) {
        return Err(Error::new(
            ResponseStatusCode::NotImplemented,
            format!("filter criterion '{key}' is not supported"),
        ));
    }
    if NOT_AN_ATTRIBUTE_CONDITION.contains(&name) {
        return Err(Error::bad_request(format!(
            "'{name}' cannot be an attribute condition (TS-0004 7.3.3.17.9)"
        )));
    }
    if !is_attribute(name) {
        return Err(Error::bad_request(format!(
            "unknown filter criterion '{key}'"
        )));
    }
    Ok(())
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
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(Error::bad_request(
            "filter criteria values must be strings, numbers or booleans",
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
        for k in ["smf", "gpi", "c.gpi", "p.gpi"] {
            assert_eq!(code(k), Some(ResponseStatusCode::NotImplemented), "{k}");
        }
        for k in ["p.lbl", "c.ty", "c.nosuch", "p."] {
            assert_eq!(code(k), Some(ResponseStatusCode::BadRequest), "{k}");
        }
    }

    /// A parent and children given as they are, for [`FilterCriteria::matches_with`].
    struct Family {
        parent: Option<Arc<Resource>>,
        children: Vec<Resource>,
        read: usize,
    }

    impl Relatives for Family {
        fn parent(&mut self, _of: &Resource) -> Result<Option<Arc<Resource>>> {
            Ok(self.parent.clone())
        }

        fn children(
            &mut self,
            _of: &Resource,
            types: &[ResourceType],
            visit: &mut dyn FnMut(&Resource) -> bool,
        ) -> Result<()> {
            for c in &self.children {
                if types.is_empty() || types.contains(&c.ty) {
                    self.read += 1;
                    if visit(c) {
                        break;
                    }
                }
            }
            Ok(())
        }
    }

    fn resource(ty: ResourceType, v: Value) -> Resource {
        Resource {
            ty,
            srn: "cse-in/x".into(),
            attrs: attrs(v),
        }
    }

    /// Clauses 7.3.3.17.5, .6 and .9: criteria on the parent and on the children, each a
    /// condition tag of its own, combined by `fo`; without relatives they are unmet.
    #[test]
    fn criteria_on_relatives() {
        let cnt = resource(ResourceType::Container, json!({"rn": "c", "lbl": ["own"]}));
        let mut family = Family {
            parent: Some(Arc::new(resource(
                ResourceType::Ae,
                json!({"api": "Nfleet", "lbl": ["site:1"]}),
            ))),
            children: vec![
                resource(ResourceType::Container, json!({"lbl": ["x"], "cni": 0})),
                resource(
                    ResourceType::ContentInstance,
                    json!({"lbl": ["hot"], "cs": 2}),
                ),
            ],
            read: 0,
        };
        let fc = |pairs: &[(&str, &str)]| {
            let mut fc = FilterCriteria::default();
            for (k, v) in pairs {
                fc.add(k, v).expect(k);
            }
            fc
        };
        let mut on = |f: FilterCriteria| f.matches_with(&cnt, &mut family).expect("matches");
        assert!(on(fc(&[("clbl", "hot")])) && !on(fc(&[("clbl", "own")])));
        assert!(on(fc(&[("chty", "4")])) && !on(fc(&[("chty", "23")])));
        assert!(on(fc(&[("c.cni", "0")])) && !on(fc(&[("c.cni", "1")])));
        assert!(on(fc(&[("palb", "site:1")])) && on(fc(&[("plbl", "site:1")])));
        assert!(on(fc(&[("pty", "2")])) && !on(fc(&[("pty", "5")])));
        assert!(on(fc(&[("p.api", "Nfleet")])) && !on(fc(&[("p.api", "Nother")])));
        // Wildcards in discovery only, as for the resource's own attributes.
        assert!(!on(fc(&[("p.api", "Nfl*")])) && on(fc(&[("p.api", "Nfl*"), ("fu", "1")])));
        // Different children may meet different criteria; AND needs each met.
        assert!(on(fc(&[("clbl", "hot"), ("c.cni", "0")])));
        assert!(!on(fc(&[("clbl", "hot"), ("chty", "23")])));
        assert!(on(fc(&[("clbl", "hot"), ("chty", "23"), ("fo", "2")])));
        // The resource's own criteria still apply with AND.
        assert!(!on(fc(&[("lbl", "nope"), ("clbl", "hot")])));
        assert!(on(fc(&[("lbl", "nope"), ("clbl", "hot"), ("fo", "2")])));
        // Without relatives, nothing is met.
        assert!(!fc(&[("chty", "4")]).matches(ResourceType::Container, &cnt.attrs));
        assert!(fc(&[("chty", "4"), ("rn", "c"), ("fo", "2")])
            .matches(ResourceType::Container, &cnt.attrs));
        // A decided criterion stops the reading: OR met by the own name reads nothing.
        family.read = 0;
        let f = fc(&[("rn", "c"), ("clbl", "none"), ("fo", "2")]);
        assert!(f.matches_with(&cnt, &mut family).expect("matches"));
        assert_eq!(family.read, 0);
        // `chty` alone lets the store pick the type.
        let f = fc(&[("chty", "4")]);
        assert!(f.matches_with(&cnt, &mut family).expect("matches"));
        assert_eq!(family.read, 1);
        // No parent (or one the originator may not read): parent criteria unmet.
        family.parent = None;
        let f = fc(&[("pty", "2")]);
        assert!(!f.matches_with(&cnt, &mut family).expect("matches"));
    }

    /// Clause 7.3.3.17.13: `cfs` and `cfq` together, syntax 1 only; instances only.
    #[test]
    fn content_filter() {
        let mut fc = FilterCriteria::default();
        fc.add("cfq", "$.t GT 20").expect("cfq");
        assert!(fc.validate().is_err(), "cfq without cfs");
        fc.add("cfs", "1").expect("cfs");
        assert!(fc.validate().is_ok() && fc.has_conditions() && fc.has_attribute_conditions());
        let hot = attrs(json!({"con": "{\"t\": 25}", "cnf": "application/json:0"}));
        assert!(fc.matches(ResourceType::ContentInstance, &hot));
        assert!(!fc.matches(ResourceType::Container, &hot));
        let code = |pairs: &[(&str, &str)]| {
            let mut fc = FilterCriteria::default();
            pairs
                .iter()
                .try_for_each(|(k, v)| fc.add(k, v))
                .and_then(|()| fc.validate())
                .err()
                .map(|e| e.rsc)
        };
        let bad = Some(ResponseStatusCode::BadRequest);
        assert_eq!(code(&[("cfs", "2")]), bad);
        assert_eq!(code(&[("cfs", "1")]), bad);
        assert_eq!(code(&[("cfs", "1"), ("cfq", "$.t XX 1")]), bad);
        assert_eq!(code(&[("cfs", "1"), ("cfs", "1")]), bad);
        assert_eq!(code(&[("cfs", "1"), ("cfq", "$.t GT 1")]), None);
    }

    /// The JSON form: `atr`, `catr` and `patr` as `m2m:attribute` lists.
    #[test]
    fn json_attribute_lists() {
        let fc = FilterCriteria::from_json(&json!({
            "atr": [{"nm": "cni", "val": 2}],
            "catr": [{"nm": "rn", "val": "x"}],
            "patr": {"nm": "rr", "val": true},
            "chty": [4, 3], "clbl": ["a"], "palb": "b", "pty": 2,
        }))
        .expect("fc");
        assert_eq!(fc.atr, vec![("cni".to_owned(), "2".to_owned())]);
        assert_eq!(fc.catr, vec![("rn".to_owned(), "x".to_owned())]);
        assert_eq!(fc.patr, vec![("rr".to_owned(), "true".to_owned())]);
        assert_eq!(fc.chty.len(), 2);
        assert_eq!((fc.clbl.len(), fc.palb.len(), fc.pty.len()), (1, 1, 1));
        for bad in [
            json!({"catr": [{"nm": "rn"}]}),
            json!({"catr": ["rn"]}),
            json!({"patr": [{"nm": "lbl", "val": "x"}]}),
            json!({"atr": [{"nm": "x", "val": {"a": 1}}]}),
        ] {
            assert!(FilterCriteria::from_json(&bad).is_err(), "{bad}");
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
