//! `<authorizationInformation>` (ty 37, TS-0004 clause 7.4.45; TS-0001 clause 9.6.43): the
//! address of a Policy Information Point. A PDP (this CSE or another) UPDATEs it with the
//! originator of an access request (`fr`) and, optionally, the Role-IDs (`rids`) and
//! Token-IDs (`tids`) it named, and reads in the response the `<role>`s and `<token>`s this
//! CSE holds for that originator and how the retrieval ended (`sus`). Nothing of the
//! request or the answer is kept.

use crate::attributes::{attr, Attr, Kind, Presence::*};

/// The attributes of an information request: the only ones a PIP-triggering UPDATE may
/// carry (TS-0004 clause 7.4.45.2.3 step 1a).
pub const REQUEST: &[&str] = &["fr", "rids", "tids"];

/// Those an information request must carry (step 1b).
pub const REQUIRED: &[&str] = &["fr"];

/// The most Role-IDs or Token-IDs one information request may name, so one request
/// cannot make the PIP read without bound.
pub const MAX_IDS: usize = 64;

/// Attribute table (TS-0004 table 7.4.45.1-3 with the common attributes of table
/// 7.4.45.1-2). `sus` is the PIP's answer. The request attributes are refused on CREATE
/// (TS-0001 clause 10.2.3.33: created with its specific attributes null).
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("sus", Kind::OneOf(&[1, 2, 3, 4, 5]), NotPresent, NotPresent),
    attr("fr", Kind::Str, NotPresent, Optional),
    attr("rids", Kind::StrList, NotPresent, Optional),
    attr("tids", Kind::StrList, NotPresent, Optional),
];
