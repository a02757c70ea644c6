//! Enrolment at the MEF hosted by the CSE (TS-0003 clause 8.3): pre-provisioned symmetric
//! keys ([`mef`]), fetchCredentials for Enrolment Targets ([`fetch`]) and certificate-based
//! device enrolment ([`certificate`]).

pub mod certificate;
pub mod fetch;
pub mod mef;
