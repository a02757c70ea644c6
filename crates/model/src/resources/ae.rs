//! `<AE>` (ty 2): a registered application. Its `ri` is its AE-ID stem.

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};

/// Attribute table. Left out, so that a request setting one is refused (4000) rather than
/// stored and ignored: `at`/`aa` (announcement: this CSE announces nothing), `nl` (a link
/// to a `<node>`, a type this CSE does not host), `esi` (end-to-end security of primitives
/// and data, TS-0003 clause 8.4, which this CSE does not provide), and every attribute of
/// Release 4 and later (see `primitive::SUPPORTED_RELEASES`).
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::StrList, Optional, Optional),
    attr("api", Kind::Str, Mandatory, NotPresent),
    attr("apn", Kind::Str, Optional, Optional),
    attr("aei", Kind::Str, NotPresent, NotPresent),
    attr("poa", Kind::StrList, Optional, Optional),
    attr("rr", Kind::Bool, Mandatory, Optional),
    attr("csz", Kind::StrList, Optional, Optional),
    attr("srv", Kind::StrList, Optional, Optional),
    attr("or", Kind::Str, Optional, Optional),
    attr("daci", Kind::StrList, Optional, Optional),
];

/// An App-ID starts with `R` (registered) or `N` (non-registered) (TS-0001 clause 7.1.3).
pub fn validate_app_id(api: &str) -> Result<()> {
    if api.len() > 1 && (api.starts_with('R') || api.starts_with('N')) && !api.contains('/') {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "invalid App-ID '{api}': must start with R or N"
        )))
    }
}
