//! `<request>`: created by the CSE alone when it accepts a non-blocking request, and never
//! changed through the API; its life (acceptance, execution, result) is in `non_blocking`.

use model::Error;

/// TS-0004 clause 7.4.12.2.1: a `<request>` is never created through the API (4005).
pub(crate) fn not_created() -> Error {
    Error::operation_not_allowed(
        "a <request> is created by the CSE alone, for a non-blocking request",
    )
}

/// An UPDATE of a `<request>` (4005): every attribute this CSE hosts is set by the CSE
/// (TS-0004 table 7.4.12.1-3); `acpi` and `daci`, which the spec lets an UPDATE set, are not
/// hosted, so a result cannot be handed to other originators through them.
pub(crate) fn not_updated() -> Error {
    Error::operation_not_allowed("a <request> is not updated through the API")
}
