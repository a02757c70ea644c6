//! `<CSEBase>` (ty 5): the root of this CSE. Created by the CSE itself; read-only to requests.

use crate::attributes::{attr, Attr, Kind, Presence::*};

/// Attribute table.
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, NotPresent, Optional),
    attr("daci", Kind::UriList, NotPresent, Optional),
    attr("cst", Kind::Int, NotPresent, NotPresent),
    attr("csi", Kind::Str, NotPresent, NotPresent),
    attr("srt", Kind::IntList, NotPresent, NotPresent),
    attr("poa", Kind::StrList, NotPresent, NotPresent),
    attr("nl", Kind::Str, NotPresent, NotPresent),
    attr("srv", Kind::StrList, NotPresent, NotPresent),
    attr("csz", Kind::StrList, NotPresent, NotPresent),
    attr("esi", Kind::Object, NotPresent, NotPresent),
];
