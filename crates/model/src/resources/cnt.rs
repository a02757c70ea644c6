//! `<container>` (ty 3): holds content instances within limits (`mni`, `mbs`, `mia`).

use crate::attributes::{attr, Attr, Kind, Presence::*};

/// Attribute table.
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("st", Kind::Int, NotPresent, NotPresent),
    attr("cr", Kind::NullOnly, Optional, NotPresent),
    attr("mni", Kind::Int, Optional, Optional),
    attr("mbs", Kind::Int, Optional, Optional),
    attr("mia", Kind::Int, Optional, Optional),
    attr("cni", Kind::Int, NotPresent, NotPresent),
    attr("cbs", Kind::Int, NotPresent, NotPresent),
    attr("li", Kind::Uri, NotPresent, NotPresent),
    attr("or", Kind::Uri, Optional, Optional),
    attr("disr", Kind::Bool, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("at", Kind::StrList, Optional, Optional),
    attr("aa", Kind::StrList, Optional, Optional),
];
