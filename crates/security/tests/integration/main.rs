//! The integration tests of `security`, in one binary (one link instead of one per file).
//! A new test file is a module here, kept in alphabetical order.

mod common;
mod psk_master;
mod tls_certificate;
mod tls_key_home;
mod tls_psk;
mod tls_robustness;
mod tls_startup;
