//! Filter criteria (`fc`, TS-0004 clause 6.3.5.8): conditions for discovery and conditional
//! retrieval, parsed strictly and evaluated against stored resources.

use crate::error::{Error, Result};
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
}

/// Query parameters that are request parameters rather than filter criteria.
pub const NON_FILTER_PARAMS: &[&str] =
    &["rcn", "rt", "rp", "da", "drt", "atrl", "rvi", "rqi", "ec"];

fn int(key: &str, v: &str) -> Result<u64> {
    v.parse::<u64>()
        .map_err(|_| Error::bad_request(format!("filter '{key}' needs a non-negative integer")))
}

impl FilterCriteria {
    /// Whether a criterion is a list whose items the HTTP query form joins with `+`.
    pub fn is_list(key: &str) -> bool {
        matches!(key, "lbl" | "cty" | "ty")
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
            "ty" => self.ty.push(ResourceType::from_code(int(key, value)?)?),
            _ => {
                return Err(Error::bad_request(format!(
                    "unknown filter criterion '{key}'"
                )))
            }
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

    /// Cross-field checks that a single parameter cannot make.
    pub fn validate(&self) -> Result<()> {
        if matches!((self.sza, self.szb), (Some(a), Some(b)) if a >= b) {
            return Err(Error::bad_request("sza must be smaller than szb"));
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
    }

    /// Whether a resource (its attribute map) matches the conditions.
    pub fn matches(&self, ty: ResourceType, attrs: &Map<String, Value>) -> bool {
        let ts = |k: &str| {
            attrs
                .get(k)
                .and_then(Value::as_str)
                .and_then(|s| time::parse(s).ok())
        };
        let num = |k: &str| attrs.get(k).and_then(Value::as_u64);
        let mut results: Vec<bool> = Vec::new();
        let mut check = |present: bool, ok: bool| {
            if present {
                results.push(ok);
            }
        };
        check(
            self.crb.is_some(),
            matches!((ts("ct"), self.crb), (Some(c), Some(b)) if c < b),
        );
        check(
            self.cra.is_some(),
            matches!((ts("ct"), self.cra), (Some(c), Some(a)) if c > a),
        );
        check(
            self.ms.is_some(),
            matches!((ts("lt"), self.ms), (Some(l), Some(m)) if l > m),
        );
        check(
            self.us.is_some(),
            matches!((ts("lt"), self.us), (Some(l), Some(u)) if l < u),
        );
        check(
            self.sts.is_some(),
            matches!((num("st"), self.sts), (Some(s), Some(x)) if s < x),
        );
        check(
            self.stb.is_some(),
            matches!((num("st"), self.stb), (Some(s), Some(x)) if s > x),
        );
        check(
            self.exb.is_some(),
            matches!((ts("et"), self.exb), (Some(e), Some(x)) if e < x),
        );
        check(
            self.exa.is_some(),
            matches!((ts("et"), self.exa), (Some(e), Some(x)) if e > x),
        );
        check(!self.lbl.is_empty(), {
            let labels = attrs.get("lbl").and_then(Value::as_array);
            labels.is_some_and(|l| {
                l.iter()
                    .any(|v| v.as_str().is_some_and(|s| self.lbl.iter().any(|x| x == s)))
            })
        });
        check(!self.ty.is_empty(), self.ty.contains(&ty));
        check(
            self.sza.is_some(),
            matches!((num("cs"), self.sza), (Some(s), Some(x)) if s >= x),
        );
        check(
            self.szb.is_some(),
            matches!((num("cs"), self.szb), (Some(s), Some(x)) if s < x),
        );
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
}
