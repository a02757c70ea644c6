//! `<policyDeletionRules>` (ty 27, TS-0004 clause 7.4.32; TS-0001 clause 9.6.33): one group
//! of rules of a `<notificationTargetPolicy>`, which must hold for its action to be taken.
//! `dr` (`m2m:deletionContexts`, TS-0004 table 6.3.5.37-1) lists time-of-day windows
//! (`tod`, `m2m:scheduleEntry`) and location regions (`lr`, `m2m:locationRegion`); each
//! entry is one rule, and `drr` combines them (AND, or OR by default).
//!
//! NOTE(pdr): TS-0004's row for `dr` is garbled (its update column is lost); TS-0001 makes
//! it RW, so an UPDATE may replace it.

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};
use crate::resources::acp::region::{Location, Region};
use crate::resources::acp::schedule::Schedule;
use crate::resources::ntp::logical;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Attribute table (TS-0004 table 7.4.32.1-3 with the common attributes of table
/// 7.4.32.1-2).
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("dr", Kind::Object, Optional, Optional),
    attr("drr", Kind::OneOf(&[1, 2]), Optional, Optional),
];

/// The most rules one group holds: the rules are evaluated on a request path.
pub const MAX_RULES: usize = 64;

/// The rules of one `<policyDeletionRules>`, parsed.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    windows: Vec<Schedule>,
    regions: Vec<Region>,
    all: bool,
}

impl Rules {
    /// Reads `dr` and `drr` of a resource (or of a CREATE's or UPDATE's preview); a
    /// malformed `dr` is 4000 with the reason.
    pub fn of(attrs: &Map<String, Value>) -> Result<Self> {
        let all = attrs.get("drr").and_then(Value::as_u64) == Some(logical::AND);
        let Some(dr) = attrs.get("dr") else {
            return Ok(Self {
                all,
                ..Self::default()
            });
        };
        let bad = |why: String| Error::bad_request(format!("dr: {why}"));
        let obj = dr
            .as_object()
            .ok_or_else(|| bad("must be an m2m:deletionContexts object".into()))?;
        if let Some(k) = obj.keys().find(|k| *k != "tod" && *k != "lr") {
            return Err(bad(format!("unknown member '{k}' (tod, lr)")));
        }
        let list = |name: &str| -> Result<Vec<Value>> {
            match obj.get(name) {
                None => Ok(Vec::new()),
                Some(Value::Array(a)) => Ok(a.clone()),
                Some(_) => Err(bad(format!("{name} must be a list"))),
            }
        };
        let windows = list("tod")?
            .iter()
            .map(|s| {
                s.as_str()
                    .ok_or_else(|| "tod entries must be schedule strings".to_owned())
                    .and_then(Schedule::parse)
                    .map_err(bad)
            })
            .collect::<Result<Vec<_>>>()?;
        let regions = list("lr")?
            .iter()
            .map(|r| crate::resources::acp::parse_region(r).map_err(bad))
            .collect::<Result<Vec<_>>>()?;
        if windows.len() + regions.len() > MAX_RULES {
            return Err(bad(format!("more than {MAX_RULES} rules")));
        }
        Ok(Self {
            windows,
            regions,
            all,
        })
    }

    /// Whether the rules hold for a target at `location` (unknown: no region rule holds)
    /// at `now`. No rule at all holds.
    pub fn hold(&self, now: DateTime<Utc>, location: Option<&Location>) -> bool {
        let mut results = self
            .windows
            .iter()
            .map(|w| w.matches(now))
            .chain(
                self.regions
                    .iter()
                    .map(|r| location.is_some_and(|l| r.contains(l))),
            )
            .peekable();
        if results.peek().is_none() {
            return true;
        }
        if self.all {
            results.all(|b| b)
        } else {
            results.any(|b| b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(v: Value) -> Result<Rules> {
        Rules::of(v.as_object().expect("object"))
    }

    #[test]
    fn rules_combine_by_drr() {
        let noon = "2026-12-08T12:00:00Z".parse::<DateTime<Utc>>().expect("t");
        let seoul = Location {
            position: Some((37.5665, 126.978)),
            country: Some("KR".into()),
        };
        let any_time = "* * * * * * *";
        let night = "* * 0-5 * * * *";
        let korea = json!({"accc": ["KR"]});
        let or = rules(json!({"dr": {"tod": [night], "lr": [korea]}})).expect("ok");
        assert!(or.hold(noon, Some(&seoul)));
        assert!(!or.hold(noon, None));
        let and =
            rules(json!({"dr": {"tod": [night, any_time], "lr": [korea]}, "drr": 1})).expect("ok");
        assert!(!and.hold(noon, Some(&seoul)));
        let and = rules(json!({"dr": {"tod": [any_time], "lr": [korea]}, "drr": 1})).expect("ok");
        assert!(and.hold(noon, Some(&seoul)));
        assert!(rules(json!({})).expect("ok").hold(noon, None));
        assert!(rules(json!({"dr": {}})).expect("ok").hold(noon, None));
    }

    #[test]
    fn malformed_rules_are_refused() {
        for bad in [
            json!({"dr": {"tod": ["not a schedule"]}}),
            json!({"dr": {"tod": "* * * * * * *"}}),
            json!({"dr": {"tod": [1]}}),
            json!({"dr": {"lr": [{"accc": ["KOR"]}]}}),
            json!({"dr": {"lr": [{"accr": [1.0, 2.0]}]}}),
            json!({"dr": {"lr": [{"accr": [1.0, 2.0, 3.0], "accc": ["KR"]}]}}),
            json!({"dr": {"when": []}}),
            json!({"dr": []}),
        ] {
            assert!(rules(bad.clone()).is_err(), "{bad}");
        }
        let many: Vec<Value> = (0..=MAX_RULES).map(|_| json!("* * * * * * *")).collect();
        assert!(rules(json!({"dr": {"tod": many}})).is_err());
    }
}
