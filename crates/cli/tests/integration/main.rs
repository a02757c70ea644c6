//! The integration tests of `cli`, in one binary (one link instead of one per file).
//! A new test file is a module here, kept in alphabetical order.

mod audit_checkpoints;
mod audit_cli;
mod audit_flood;
mod bootstrap;
mod cert_enrolment;
mod common;
mod conformance_releases;
mod conformance_requests;
mod conformance_results;
mod conformance_validation;
mod data_folder;
mod durability;
mod dynamic_authorization;
mod enrolment;
mod fetch_credentials;
mod full_disk;
mod gba;
mod groups;
mod https_notifications;
mod key_homes;
mod log_escaping;
mod maf;
mod notifications;
mod polling;
mod psk_derived;
mod quick_tour;
mod results;
mod roles;
mod supervision;
mod tls;
