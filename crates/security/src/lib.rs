//! The security functions of secure-cse.
//!
//! * [`association`]: what a security association is bound to after its handshake, and the
//!   registry of live associations an admin can list;
//! * [`credentials`]: where credentials come from (files today; the security manager and the
//!   key store plug in behind the same trait), and secrets as types;
//! * [`tls`]: TLS listeners over OpenSSL for the certificate-based and the provisioned
//!   symmetric key (PSK) frameworks of TS-0003 clause 8.2.
#![forbid(unsafe_code)]

pub mod association;
pub mod credentials;
pub mod tls;
