//! `<node>` (ty 14): an M2M Node, the device whose management objects (`<mgmtObj>`) are its
//! children (TS-0001 clause 9.6.18, TS-0004 clause 7.4.18).

use crate::attributes::{attr, Attr, Kind, Presence::*};

/// Attribute table (TS-0004 table 7.4.18.1-3). `rms` and `nid` come from the underlying
/// network, which this CSE does not query: nobody may set them, so they are never present.
/// Left out, so that a request setting one is refused (4000): `at`/`aa` (this CSE announces
/// nothing).
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    // Geo-location, searched by the geo-query of discovery.
    attr("loc", Kind::GeoCoordinates, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("ni", Kind::Uri, Mandatory, Optional),
    attr("hcl", Kind::Uri, Optional, Optional),
    attr("hael", Kind::UriList, Optional, Optional),
    attr("hsl", Kind::UriList, Optional, Optional),
    attr("mgca", Kind::Str, Optional, Optional),
    attr("rms", Kind::Bool, NotPresent, NotPresent),
    attr("nid", Kind::Str, NotPresent, NotPresent),
];
