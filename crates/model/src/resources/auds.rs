//! `<authorizationDecision>` (ty 35, TS-0004 clause 7.4.43; TS-0001 clause 9.6.41): the
//! address of a Policy Decision Point. A Policy Enforcement Point (this CSE or another)
//! UPDATEs it with the facts of an access request (`to`, `fr`, `op`, ...) and reads the
//! decision (`dec`) and how it was reached (`sus`) in the response. The facts and the
//! answer are never kept: a stored `<authorizationDecision>` has common attributes only, so
//! nobody who may read it learns who asked what.

use crate::attributes::{attr, Attr, Kind, Presence::*};

/// `m2m:authorizationDecision` PERMIT (TS-0004 table 6.3.4.2.51-1).
pub const PERMIT: u64 = 1;
/// `m2m:authorizationDecision` DENY.
pub const DENY: u64 = 2;

/// `m2m:authorizationStatus` (TS-0004 table 6.3.4.2.52-1): how a decision (or a policy or
/// information retrieval) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 1: evaluated; `dec` holds the result.
    Ok = 1,
    /// 2: no policy applies (e.g. the target is unknown to this PDP).
    NotApplicable = 2,
    /// 3: information the evaluation needs is missing (e.g. a role that is not held).
    MissingAttribute = 3,
    /// 4: the request or its tokens are malformed.
    SyntaxError = 4,
    /// 5: the evaluation failed.
    ProcessingError = 5,
}

impl Status {
    /// The number sent as `sus`.
    pub fn code(self) -> u64 {
        self as u64
    }
}

/// The attributes of a decision request: the only ones a PDP-triggering UPDATE may carry
/// (TS-0004 clause 7.4.43.2.3 step 1a).
pub const REQUEST: &[&str] = &[
    "to", "fr", "op", "rrt", "fu", "rids", "tids", "tkns", "rtm", "olo", "oip",
];

/// Those a decision request must carry (step 1b).
pub const REQUIRED: &[&str] = &["to", "fr", "op"];

/// Attribute table (TS-0004 table 7.4.43.1-3 with the common attributes of table
/// 7.4.43.1-2). `dec` and `sus` are the PDP's answer, never written by a request. The
/// request attributes are refused on CREATE (TS-0004 allows them there): a decision is
/// only asked by UPDATE, and accepting them at creation would store them.
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("dec", Kind::OneOf(&[PERMIT, DENY]), NotPresent, NotPresent),
    attr("sus", Kind::OneOf(&[1, 2, 3, 4, 5]), NotPresent, NotPresent),
    attr("to", Kind::Uri, NotPresent, Optional),
    attr("fr", Kind::Str, NotPresent, Optional),
    attr("op", Kind::OneOf(&[1, 2, 3, 4, 5, 6]), NotPresent, Optional),
    attr("rrt", Kind::Int, NotPresent, Optional),
    attr("fu", Kind::Object, NotPresent, Optional),
    attr("rids", Kind::StrList, NotPresent, Optional),
    attr("tids", Kind::StrList, NotPresent, Optional),
    attr("tkns", Kind::StrList, NotPresent, Optional),
    attr("rtm", Kind::Time, NotPresent, Optional),
    attr("olo", Kind::Object, NotPresent, Optional),
    attr("oip", Kind::Object, NotPresent, Optional),
];
