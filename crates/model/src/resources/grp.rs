//! `<group>` (ty 9): a set of member resources that requests can fan out to (`fopt`).

use crate::attributes::{attr, Attr, Kind, Presence::*};

/// Attribute table (TS-0004 tables 7.4.13.1-2 and 7.4.13.1-3). Defined but not supported
/// (5001): `at`/`aa` (announcement), `spty` (it constrains `<flexContainer>` and
/// `<mgmtObj>` members by specialisation, which `check_members` does not enforce) and
/// `nar` (aggregation of the members' notifications). `ssi` is set by the CSE only (NP:
/// 4000); this CSE does not do semantic discovery, so it never sets it.
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    // Geo-location, searched by the geo-query of discovery.
    attr("loc", Kind::GeoCoordinates, Optional, Optional),
    attr("cr", Kind::NullOnly, Optional, NotPresent),
    attr("mt", Kind::Int, Optional, NotPresent),
    attr("cnm", Kind::Int, NotPresent, NotPresent),
    attr("mnm", Kind::PositiveInt, Mandatory, Optional),
    attr("mid", Kind::UriList, Mandatory, Optional),
    attr("macp", Kind::UriList, Optional, Optional),
    attr("mtv", Kind::Bool, NotPresent, NotPresent),
    attr("csy", Kind::Int, Optional, NotPresent),
    attr("gn", Kind::Str, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("at", Kind::Unsupported, Optional, Optional),
    attr("aa", Kind::Unsupported, Optional, Optional),
    attr("spty", Kind::Unsupported, Optional, NotPresent),
    attr("nar", Kind::Unsupported, Optional, Optional),
    attr("ssi", Kind::Unsupported, NotPresent, NotPresent),
];

/// The `mt` value that admits members of any type (TS-0004 table 6.3.4.2.11-1); also the
/// default when a CREATE leaves `mt` out.
pub const MIXED: u64 = 0;

/// What to do with a member whose type is not `mt` (`csy`, TS-0004 table 6.3.4.2.12-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsistencyStrategy {
    /// 1, the default: drop the inconsistent members.
    AbandonMember,
    /// 2: refuse the request with GROUP_MEMBER_TYPE_INCONSISTENT.
    AbandonGroup,
    /// 3: turn the group into a MIXED one.
    SetMixed,
}

impl ConsistencyStrategy {
    /// The strategy for a `csy` value; `None` for a value the table does not define.
    pub fn from_code(n: u64) -> Option<Self> {
        match n {
            1 => Some(Self::AbandonMember),
            2 => Some(Self::AbandonGroup),
            3 => Some(Self::SetMixed),
            _ => None,
        }
    }
}
