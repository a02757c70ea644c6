//! The security manager (seed 3.1; TS-0003 clauses 8.3, 8.8, 10.3): the entity that issues,
//! supervises the use of and withdraws security material.
//!
//! * [`kdf`]: the key derivations of the oneM2M key hierarchy, implemented once;
//! * [`ca`]: the certificate authority, its signing key held by the key store;
//! * [`audit`]: the tamper-evident, hash-chained audit log of security events.
#![forbid(unsafe_code)]

pub mod audit;
pub mod ca;
pub mod kdf;
