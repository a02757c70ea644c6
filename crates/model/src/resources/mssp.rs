//! `<m2mServiceSubscriptionProfile>` (ty 11, TS-0004 clause 7.4.19, TS-0001 clause 9.6.19):
//! the technical part of one subscriber's contract with the service provider. It carries no
//! attribute of its own; it groups the subscriber's `<serviceSubscribedNode>`s.

use crate::attributes::{attr, Attr, Kind, Presence::*};

/// Attribute table: the universal and common attributes only (TS-0004 table 7.4.19.1-2).
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
];
