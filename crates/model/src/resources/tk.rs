//! `<token>` (ty 32, TS-0004 clause 7.4.41; TS-0001 clause 9.6.39): a token an
//! Authorization Authority issued to an AE or CSE, kept so that its holder can name it by
//! Token-ID (`tids`) instead of carrying it (TS-0003 clause 7.4.3). `tkob` is the token
//! itself (a signed JWT); the other attributes show its claims in plaintext. Everything is
//! fixed at creation: a token is replaced, never edited.

use crate::attributes::{attr, Attr, Kind, Presence::*};

/// Attribute table (TS-0004 table 7.4.41.1-3 with the common attributes of table
/// 7.4.41.1-2).
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("tkid", Kind::Str, Mandatory, NotPresent),
    attr("tkob", Kind::Str, Mandatory, NotPresent),
    attr("vr", Kind::Str, Optional, NotPresent),
    attr("tkis", Kind::Str, Optional, NotPresent),
    attr("tkhd", Kind::Str, Optional, NotPresent),
    attr("tknb", Kind::Time, Optional, NotPresent),
    attr("tkna", Kind::Time, Optional, NotPresent),
    attr("tknm", Kind::Str, Optional, NotPresent),
    attr("tkau", Kind::StrList, Optional, NotPresent),
    attr("tkps", Kind::Object, Optional, NotPresent),
    attr("tkex", Kind::Str, Optional, NotPresent),
];

/// The claims shown in plaintext: the attributes the CSE fills from the verified token
/// (and compares with what the creator sent).
pub const PLAINTEXT: &[&str] = &[
    "vr", "tkis", "tkhd", "tknb", "tkna", "tknm", "tkau", "tkps", "tkex",
];
