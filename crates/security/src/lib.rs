//! The security functions of secure-cse.
//!
//! * [`association`]: what a security association is bound to after its handshake (with the
//!   exporter an enrolment association carries), and the registry of live associations an
//!   admin can list;
//! * [`credentials`]: where credentials come from (files today; the security manager and the
//!   key store plug in behind the same trait), and secrets as types;
//! * [`enrolment`]: the enrolee keys (Kpm) of the MEF's enrolment listener (TS-0003 clause
//!   8.3.2.1);
//! * [`enrolment_keys`]: the Enrolment Keys (Ke) the MEF keeps, sealed, so that Enrolment
//!   Targets can fetch usage-constrained keys (clause 10.3.7);
//! * [`maf_store`]: the MAF's key registrations (keys between applications, clause 8.8),
//!   durable and sealed at rest;
//! * [`gba`]: network-provided keys: the CSE as the NAF of the GBA-based provisioning
//!   framework, B-TIDs as PSK identities with keys from the BSF (TS-0003 clause 8.3.2.3);
//! * [`privacy`]: pseudonymous tags for peers and credentials in what the CSE logs;
//! * [`provisioned`]: the pre-shared keys the MEF issued, durable, layered over the others;
//! * [`revocation`]: credentials withdrawn (revoked or suspended), durably;
//! * [`tls`]: TLS listeners over OpenSSL for the certificate-based and the provisioned
//!   symmetric key (PSK) frameworks of TS-0003 clause 8.2;
//! * [`token`]: verification of dynamic-authorization tokens (signed JWTs, TS-0003 7.3).
#![forbid(unsafe_code)]

pub mod association;
pub mod credentials;
pub mod enrolment;
pub mod enrolment_keys;
pub mod gba;
mod journal;
pub mod maf_store;
pub mod privacy;
pub mod provisioned;
pub mod refusals;
pub mod revocation;
pub mod sealing;
pub mod tls;
pub mod token;
