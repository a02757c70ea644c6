//! `<authorizationPolicy>` (ty 36, TS-0004 clause 7.4.44; TS-0001 clause 9.6.42): the
//! address of a Policy Retrieval Point. A PDP (this CSE or another) UPDATEs it with `to`,
//! the target of an access request, and reads the policies that apply to it (`ps`), how to
//! combine them (`ca`) and how the retrieval ended (`sus`) in the response. Like a
//! decision, the request and the answer are never kept: a stored `<authorizationPolicy>`
//! has common attributes only.

use crate::attributes::{attr, Attr, Kind, Presence::*};

/// `m2m:acpCombiningAlgorithm` PERMIT_OVERRIDES (TS-0004 table 6.3.4.2.53-1), the only
/// value Release 3 defines: one permitting policy permits.
pub const PERMIT_OVERRIDES: u64 = 1;

/// The attributes of a policy request: the only one a PRP-triggering UPDATE may carry
/// (TS-0004 clause 7.4.44.2.3 step 1a), and it is mandatory (TS-0003 table 7.5.3-1).
pub const REQUEST: &[&str] = &["to"];

/// Attribute table (TS-0004 table 7.4.44.1-3 with the common attributes of table
/// 7.4.44.1-2). `ps`, `ca` and `sus` are the PRP's answer, never written by a request.
/// `to` is refused on CREATE (TS-0001 clause 10.2.3.28 wants the resource created with its
/// specific attributes null): a policy request is only asked by UPDATE.
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("ps", Kind::Object, NotPresent, NotPresent),
    attr(
        "ca",
        Kind::OneOf(&[PERMIT_OVERRIDES]),
        NotPresent,
        NotPresent,
    ),
    attr("sus", Kind::OneOf(&[1, 2, 3, 4, 5]), NotPresent, NotPresent),
    attr("to", Kind::Uri, NotPresent, Optional),
];

/// The label that files an `<accessControlPolicy>` of the `<CSEBase>` in this CSE's policy
/// repository for targets on other CSEs: `prp-target=<address>` makes the policy's `pv`
/// apply to that address and every address below it (a whole CSE with `/<CSE-ID>`).
pub const TARGET_LABEL: &str = "prp-target=";

/// Whether the repository address `filed` covers the requested target `to`: equal, or a
/// prefix of it ending at a `/`.
pub fn covers(filed: &str, to: &str) -> bool {
    let filed = filed.trim_end_matches('/');
    !filed.is_empty()
        && (to == filed
            || to
                .strip_prefix(filed)
                .is_some_and(|rest| rest.starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filed_address_covers_itself_and_what_is_below_it_only() {
        assert!(covers("/cse-a", "/cse-a"));
        assert!(covers("/cse-a", "/cse-a/cnt1"));
        assert!(covers("/cse-a/", "/cse-a/cnt1"));
        assert!(!covers("/cse-a", "/cse-ab/cnt1"));
        assert!(!covers("/cse-a/cnt1", "/cse-a"));
        assert!(!covers("", "/cse-a"));
        assert!(!covers("/", "/cse-a"));
    }
}
