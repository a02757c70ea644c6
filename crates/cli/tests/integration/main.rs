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
mod device_management;
mod durability;
mod dynamic_authorization;
mod enrolment;
mod fetch_credentials;
mod flex_container;
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
mod requests_nonblocking;
mod results;
mod roles;
mod service_subscription;
mod supervision;
mod time_series;
mod tls;
