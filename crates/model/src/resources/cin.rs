//! `<contentInstance>` (ty 4): one immutable data item in a container.

use crate::attributes::{attr, Attr, Kind, Presence::*};
use serde_json::Value;

/// Attribute table (TS-0004 tables 7.4.7.1-2 and 7.4.7.1-3). A content instance cannot be
/// updated at all. Defined but not supported (5001): `at`/`aa` (announcement).
pub const ATTRIBUTES: &[Attr] = &[
    attr("st", Kind::Int, NotPresent, NotPresent),
    attr("cr", Kind::NullOnly, Optional, NotPresent),
    attr("cnf", Kind::ContentInfo, Optional, NotPresent),
    attr("cs", Kind::Int, NotPresent, NotPresent),
    attr("conr", Kind::Str, Optional, NotPresent),
    attr("or", Kind::Uri, Optional, NotPresent),
    attr("con", Kind::Any, Mandatory, NotPresent),
    attr("at", Kind::Unsupported, Optional, NotPresent),
    attr("aa", Kind::Unsupported, Optional, NotPresent),
];

/// The content size (`cs`): the length of `con` as it would be serialized as a string.
pub fn content_size(con: &Value) -> u64 {
    match con {
        Value::String(s) => s.len() as u64,
        other => serde_json::to_string(other).map_or(0, |s| s.len() as u64),
    }
}
