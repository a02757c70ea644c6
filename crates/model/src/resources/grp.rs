//! `<group>` (ty 9): a set of member resources that requests can fan out to (`fopt`).

use crate::attributes::{attr, Attr, Kind, Presence::*};

/// Attribute table.
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::StrList, Optional, Optional),
    attr("cr", Kind::NullOnly, Optional, NotPresent),
    attr("mt", Kind::Int, Mandatory, NotPresent),
    attr("spty", Kind::Str, Optional, NotPresent),
    attr("cnm", Kind::Int, NotPresent, NotPresent),
    attr("mnm", Kind::Int, Mandatory, Optional),
    attr("mid", Kind::StrList, Mandatory, Optional),
    attr("macp", Kind::StrList, Optional, Optional),
    attr("mtv", Kind::Bool, NotPresent, NotPresent),
    attr("csy", Kind::Int, Optional, NotPresent),
    attr("gn", Kind::Str, Optional, Optional),
    attr("daci", Kind::StrList, Optional, Optional),
];

/// The `mt` value that admits members of any type.
pub const MIXED: u64 = 24;
