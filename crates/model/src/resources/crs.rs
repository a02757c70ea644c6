//! `<crossResourceSubscription>` (ty 48, TS-0004 clause 7.4.58): one notification when
//! events happen on all of several target resources within a time window.

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::time::Duration;

/// Attribute table (TS-0004 tables 7.4.58.1-2 and 7.4.58.1-3). `nec` (notification event
/// category) is left out, as for `<subscription>`: refused rather than ignored.
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("cr", Kind::NullOnly, Optional, NotPresent),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("rrat", Kind::UriList, Optional, NotPresent),
    attr("srat", Kind::UriList, Optional, NotPresent),
    attr("rrats", Kind::UriList, NotPresent, NotPresent),
    attr(
        "twt",
        Kind::OneOf(&[PERIODIC, SLIDING]),
        Mandatory,
        Optional,
    ),
    attr("tws", Kind::Str, Mandatory, Optional),
    attr("encs", Kind::Object, Optional, NotPresent),
    attr("exc", Kind::PositiveInt, Optional, Optional),
    attr("nu", Kind::UriList, Mandatory, Optional),
    attr("su", Kind::Uri, Optional, NotPresent),
];

/// `twt` 1 (`m2m:timeWindowType`, TS-0004 table 6.3.4.2.61-1): back-to-back windows that
/// start when the resource is created (or its window is changed).
pub const PERIODIC: u64 = 1;
/// `twt` 2: a window that starts with the first event and restarts after a notification.
pub const SLIDING: u64 = 2;

/// The longest time window this CSE accepts (TS-0001 table 9.6.58-2 lets the hosting CSE
/// enforce a maximum): a day; events further apart are not "concurrent".
pub const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The checks the generic table cannot make, on CREATE (`create`) or on the resource as an
/// UPDATE would leave it: targets present and without repeats, `encs` matching `rrat`,
/// a window size within bounds, a non-empty `nu`.
pub fn validate(attrs: &Map<String, Value>, create: bool) -> Result<()> {
    let list = |k: &str| -> Vec<String> {
        attrs
            .get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let rrat = list("rrat");
    let srat = list("srat");
    if create {
        if rrat.is_empty() && srat.is_empty() {
            return Err(Error::bad_request(
                "a cross-resource subscription needs rrat or srat (TS-0004 clause 7.4.58.2.1)",
            ));
        }
        let mut all: Vec<&String> = rrat.iter().chain(srat.iter()).collect();
        all.sort();
        if all.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::bad_request("a target is named twice in rrat/srat"));
        }
        let n = criteria(attrs)?.len();
        if !rrat.is_empty() {
            if attrs.get("encs").is_none() {
                return Err(Error::bad_request(
                    "rrat needs encs (TS-0004 clause 7.4.58.2.1)",
                ));
            }
            if n != 1 && n != rrat.len() {
                return Err(Error::bad_request(format!(
                    "encs holds {n} criteria for {} regular targets: one, or one each",
                    rrat.len()
                )));
            }
        } else if n > 0 {
            return Err(Error::bad_request("encs applies to rrat targets only"));
        }
    }
    window_size(attrs)?;
    if let Some(nu) = attrs.get("nu").and_then(Value::as_array) {
        if nu.is_empty() || nu.iter().any(|u| u.as_str().is_some_and(str::is_empty)) {
            return Err(Error::bad_request("nu must list at least one target"));
        }
    }
    Ok(())
}

/// The time window size `tws` (`xs:duration`): more than zero, at most [`MAX_WINDOW`].
pub fn window_size(attrs: &Map<String, Value>) -> Result<Duration> {
    let tws = attrs
        .get("tws")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::bad_request("tws must be a duration"))?;
    let d = crate::time::parse_duration(tws)?;
    if d.is_zero() || d > MAX_WINDOW {
        return Err(Error::bad_request(format!(
            "tws must be more than zero and at most {} s",
            MAX_WINDOW.as_secs()
        )));
    }
    Ok(d)
}

/// The event notification criteria of `encs` (`m2m:eventNotificationCriteriaSet`, member
/// `encn`, TS-0004 table 6.3.5.66-1), in order; none when `encs` is absent.
pub fn criteria(attrs: &Map<String, Value>) -> Result<Vec<Map<String, Value>>> {
    let Some(encs) = attrs.get("encs") else {
        return Ok(Vec::new());
    };
    let obj = encs
        .as_object()
        .ok_or_else(|| Error::bad_request("encs must be an object"))?;
    if let Some(k) = obj.keys().find(|k| *k != "encn") {
        return Err(Error::bad_request(format!("unsupported encs member '{k}'")));
    }
    let list = obj
        .get("encn")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::bad_request("encs/encn must list at least one criteria"))?;
    list.iter()
        .map(|e| {
            e.as_object()
                .cloned()
                .ok_or_else(|| Error::bad_request("each encs/encn entry must be an object"))
        })
        .collect()
}

/// The criteria for the `i`-th of `n` regular targets: the only one, or the `i`-th.
pub fn criteria_for(all: &[Map<String, Value>], i: usize) -> Map<String, Value> {
    match all {
        [one] => one.clone(),
        many => many.get(i).cloned().unwrap_or_default(),
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
    fn targets_and_criteria_are_checked() {
        let ok = attrs(json!({"rrat": ["a", "b"], "encs": {"encn": [{"net": [3]}]},
            "twt": 1, "tws": "PT10S", "nu": ["x"]}));
        assert!(validate(&ok, true).is_ok());
        let cases = [
            json!({"twt": 1, "tws": "PT10S", "nu": ["x"]}),
            json!({"rrat": ["a"], "twt": 1, "tws": "PT10S", "nu": ["x"]}),
            json!({"rrat": ["a", "b", "c"], "encs": {"encn": [{}, {}]}, "twt": 1, "tws": "PT1S", "nu": ["x"]}),
            json!({"rrat": ["a", "a"], "encs": {"encn": [{}]}, "twt": 1, "tws": "PT1S", "nu": ["x"]}),
            json!({"srat": ["s"], "encs": {"encn": [{}]}, "twt": 1, "tws": "PT1S", "nu": ["x"]}),
            json!({"srat": ["s"], "twt": 1, "tws": "PT0S", "nu": ["x"]}),
            json!({"srat": ["s"], "twt": 1, "tws": "P2D", "nu": ["x"]}),
            json!({"srat": ["s"], "twt": 1, "tws": "soon", "nu": ["x"]}),
            json!({"srat": ["s"], "twt": 1, "tws": "PT1S", "nu": []}),
            json!({"rrat": ["a"], "encs": {"enc": [{}]}, "twt": 1, "tws": "PT1S", "nu": ["x"]}),
        ];
        for c in cases {
            assert!(validate(&attrs(c.clone()), true).is_err(), "{c}");
        }
    }
}
