//! `<AE>` (ty 2): a registered application. Its `ri` is its AE-ID stem.

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};

/// Attribute table (TS-0004 tables 7.4.5.1-2 and 7.4.5.1-3). `nl` (nodeLink) must name a
/// `<node>` (checked by the CSE). Defined but not supported, so
/// that a request setting one is refused with 5001 rather than stored and ignored: `at`/`aa`
/// (announcement: this CSE announces nothing), `esi` (end-to-end security of primitives and data, TS-0003 clause 8.4,
/// which this CSE does not provide), `mei`, `tri`, `trn`, `tren` (device triggering through
/// the underlying network), `ape` (activity patterns for the network), `regs`, `trps`, `scp`
/// (registration tracking and session capabilities). Attributes of Release 4 and later are
/// in no table (4000; see `primitive::SUPPORTED_RELEASES`).
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    // Geo-location, searched by the geo-query of discovery.
    attr("loc", Kind::GeoCoordinates, Optional, Optional),
    attr("api", Kind::Str, Mandatory, NotPresent),
    attr("apn", Kind::Str, Optional, Optional),
    attr("aei", Kind::Str, NotPresent, NotPresent),
    attr("poa", Kind::PoaList, Optional, Optional),
    attr("rr", Kind::Bool, Mandatory, Optional),
    attr("csz", Kind::Serializations, Optional, Optional),
    attr("srv", Kind::StrList, Optional, Optional),
    attr("or", Kind::Uri, Optional, Optional),
    attr("nl", Kind::Uri, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("at", Kind::Unsupported, Optional, Optional),
    attr("aa", Kind::Unsupported, Optional, Optional),
    attr("esi", Kind::Unsupported, Optional, Optional),
    attr("mei", Kind::Unsupported, Optional, Optional),
    attr("regs", Kind::Unsupported, Optional, Optional),
    attr("trps", Kind::Unsupported, Optional, Optional),
    attr("scp", Kind::Unsupported, Optional, Optional),
    attr("tren", Kind::Unsupported, Optional, Optional),
    attr("ape", Kind::Unsupported, Optional, Optional),
    attr("tri", Kind::Unsupported, Optional, Optional),
    attr("trn", Kind::Unsupported, Optional, Optional),
];

/// An App-ID (TS-0001 Table 7.2-1) is registered, `R...` (`R{authority-ID}.{reverseDNS}.
/// {applicationName}`, a format the table recommends but does not require), or
/// non-registered, `N...`. A lower-case `r` is permitted for registered App-IDs up to
/// Release 3 and forbidden from Release 4 on, so it is refused only when the request
/// declares release 4 or later (`rvi`). Something must follow the prefix, and an App-ID
/// holds no `/` (it is not a path).
pub fn validate_app_id(api: &str, rvi: Option<&str>) -> Result<()> {
    let from_release_4 = rvi.is_some_and(|v| v.parse::<u32>().is_ok_and(|n| n >= 4));
    let prefix_ok = match api.chars().next() {
        Some('R' | 'N') => true,
        Some('r') => !from_release_4,
        _ => false,
    };
    if api.len() > 1 && prefix_ok && !api.contains('/') {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "invalid App-ID '{api}': must start with R (registered; r up to Release 3) or N \
             (non-registered), then at least one character and no '/'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TS-0001 Table 7.2-1: R and N, and r for the releases that permit it.
    #[test]
    fn app_id_prefixes() {
        for rvi in [None, Some("2a"), Some("3"), Some("4"), Some("5")] {
            assert!(validate_app_id("Ra01.com.company.smartcity", rvi).is_ok());
            assert!(validate_app_id("Nk836-t071-fc022", rvi).is_ok());
            for bad in ["", "R", "N", "n836", "Xapp", "Cx", "Rapp/x"] {
                assert!(validate_app_id(bad, rvi).is_err(), "{bad} {rvi:?}");
            }
        }
        for rvi in [None, Some("2a"), Some("3")] {
            assert!(
                validate_app_id("ra01.com.company.smartcity", rvi).is_ok(),
                "{rvi:?}"
            );
        }
        for rvi in [Some("4"), Some("5")] {
            assert!(
                validate_app_id("ra01.com.company.smartcity", rvi).is_err(),
                "{rvi:?}"
            );
        }
    }
}
