//! The security manager hosted by the CSE (seed 3.1; TS-0003 clauses 8.3, 8.8, 11): it issues
//! credentials (enrolment, MAF), supervises their use, withdraws them, keeps the audit trail,
//! resolves pseudonyms, re-reads the TLS material and answers the admin. Its building blocks
//! below the CSE live in the `manager` and `security` crates; `docs/architecture.md` maps
//! each function to its files.

pub mod admin;
pub(crate) mod administration;
pub mod audit;
pub mod enrolment;
pub mod maf;
pub mod pseudonyms;
pub mod reload;
pub mod supervision;
pub mod withdrawal;
