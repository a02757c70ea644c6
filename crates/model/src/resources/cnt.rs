//! `<container>` (ty 3): holds content instances within limits (`mni`, `mbs`, `mia`).

use crate::attributes::{attr, Attr, Kind, Presence::*};

/// Attribute table (TS-0004 tables 7.4.6.1-2 and 7.4.6.1-3). `disr` (disableRetrieval) is
/// enforced (`cse::resources::cnt`). Defined but not supported, so that a request setting
/// one is refused with 5001 rather than stored and ignored: `at`/`aa` (announcement: this
/// CSE announces nothing). `li` (locationID: the `<locationPolicy>` whose positions the
/// container keeps) is set by the CSE only (NP: 4000), when it creates the container for a
/// policy (`resources::lcp`).
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    // Geo-location, searched by the geo-query of discovery.
    attr("loc", Kind::GeoCoordinates, Optional, Optional),
    attr("st", Kind::Int, NotPresent, NotPresent),
    attr("cr", Kind::NullOnly, Optional, NotPresent),
    attr("mni", Kind::Int, Optional, Optional),
    attr("mbs", Kind::Int, Optional, Optional),
    attr("mia", Kind::Int, Optional, Optional),
    attr("cni", Kind::Int, NotPresent, NotPresent),
    attr("cbs", Kind::Int, NotPresent, NotPresent),
    attr("or", Kind::Uri, Optional, Optional),
    attr("disr", Kind::Bool, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("at", Kind::Unsupported, Optional, Optional),
    attr("aa", Kind::Unsupported, Optional, Optional),
    attr("li", Kind::Uri, NotPresent, NotPresent),
];

/// Whether a container disables the retrieval of its content instances (`disr` true): then
/// no request reads one, directly, as `la`/`ol`, or among child resources or discovery
/// results (OPERATION_NOT_ALLOWED for a direct read).
pub fn retrieval_disabled(attrs: &serde_json::Map<String, serde_json::Value>) -> bool {
    attrs.get("disr") == Some(&serde_json::Value::Bool(true))
}
