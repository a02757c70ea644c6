//! `<dynamicAuthorizationConsultation>` (ty 34): where the CSE asks a Dynamic Authorization
//! System (DAS) when the access control policies refuse a request (TS-0003 clause 7.3.2.2).
//! Resources name it in `daci`. `dae` switches consultation on, `dap` lists the DAS's
//! points of access, and `dal` is the lifetime the CSE proposes for what the DAS grants
//! (and the longest it keeps a grant).

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};
use crate::time::Timestamp;
use serde_json::{Map, Value};

/// Attribute table.
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("cr", Kind::NullOnly, Optional, NotPresent),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("dae", Kind::Bool, Mandatory, Optional),
    attr("dap", Kind::UriList, Mandatory, Optional),
    attr("dal", Kind::Any, Optional, Optional),
];

/// Checks what the table cannot: `dap` holds at least one `http://` or `https://` URL, and
/// `dal` is an `m2m:absRelTimestamp` (a oneM2M timestamp, or a relative time in milliseconds
/// as a number or a string of digits).
pub fn validate(attrs: &Map<String, Value>) -> Result<()> {
    if let Some(dap) = attrs.get("dap") {
        let urls: Vec<&str> = dap
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if urls.is_empty() {
            return Err(Error::bad_request("dap needs at least one point of access"));
        }
        if let Some(bad) = urls
            .iter()
            .find(|u| !(u.starts_with("http://") || u.starts_with("https://")) || u.len() > 2048)
        {
            return Err(Error::bad_request(format!(
                "dap entry '{bad}' is not an http:// or https:// URL"
            )));
        }
    }
    match attrs.get("dal") {
        None | Some(Value::Null) => Ok(()),
        Some(v) => lifetime_end(v, crate::time::now())
            .map(drop)
            .ok_or_else(|| Error::bad_request("dal must be a timestamp or milliseconds")),
    }
}

/// When a lifetime given as `m2m:absRelTimestamp` ends, counted from `now`; `None` when the
/// value is neither form.
pub fn lifetime_end(v: &Value, now: Timestamp) -> Option<Timestamp> {
    let relative = |ms: u64| {
        i64::try_from(ms)
            .ok()
            .and_then(chrono::Duration::try_milliseconds)
            .and_then(|d| now.checked_add_signed(d))
    };
    match v {
        Value::Number(n) => n.as_u64().and_then(relative),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok().and_then(relative)
        }
        Value::String(s) => crate::time::parse(s).ok(),
        _ => None,
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
    fn points_of_access_and_lifetimes() {
        assert!(validate(&map(
            json!({"dae": true, "dap": ["http://127.0.0.1:9/das"]})
        ))
        .is_ok());
        assert!(validate(&map(json!({"dap": []}))).is_err());
        assert!(validate(&map(json!({"dap": ["ftp://x"]}))).is_err());
        assert!(validate(&map(json!({"dap": ["https://das"], "dal": 60000}))).is_ok());
        assert!(validate(&map(
            json!({"dap": ["https://das"], "dal": "20300101T000000"})
        ))
        .is_ok());
        assert!(validate(&map(json!({"dap": ["https://das"], "dal": "soon"}))).is_err());
        assert!(validate(&map(json!({"dap": ["https://das"], "dal": -5}))).is_err());
        let now = crate::time::now();
        assert_eq!(
            lifetime_end(&json!("1500"), now),
            Some(now + chrono::Duration::milliseconds(1500))
        );
    }
}
